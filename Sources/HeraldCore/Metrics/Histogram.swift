/// A fixed-bucket histogram of non-negative values, cheap enough for the hot path.
///
/// Observing is a short scan over at most 16 upper bounds and two additions; nothing
/// allocates. Buckets are cumulative only when rendered, as Prometheus wants them.
/// - Complexity: `observe` O(buckets); `quantile` O(buckets).
public struct Histogram: Sendable, Equatable {
    /// Upper bounds of the buckets, ascending; a final +Inf bucket is implicit.
    public let bounds: [Double]
    /// Per-bucket counts (not cumulative); the last entry is the +Inf bucket.
    public private(set) var counts: [UInt64]
    public private(set) var sum: Double = 0
    public private(set) var count: UInt64 = 0

    public init(bounds: [Double]) {
        precondition(bounds == bounds.sorted(), "bucket bounds must ascend")
        self.bounds = bounds
        self.counts = Array(repeating: 0, count: bounds.count + 1)
    }

    /// 100 µs to 5 s, for delivery latency.
    public static func latency() -> Histogram {
        Histogram(bounds: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5])
    }

    /// `latency()`'s buckets with `bound` among them (a route's deadline, so that its
    /// histogram says exactly how many deliveries were within it).
    public static func latency(including bound: Double) -> Histogram {
        let standard = latency().bounds
        return Histogram(bounds: standard.contains(bound) ? standard : (standard + [bound]).sorted())
    }

    /// 1 µs to 10 ms, for matching one event.
    public static func matchDuration() -> Histogram {
        Histogram(bounds: [0.000001, 0.0000025, 0.000005, 0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.01])
    }

    /// 0 to 10,000 messages, for queue depths.
    public static func queueDepth() -> Histogram {
        Histogram(bounds: [0, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000])
    }

    public mutating func observe(_ value: Double) {
        var index = 0
        while index < bounds.count && value > bounds[index] { index += 1 }
        counts[index] += 1
        sum += value
        count += 1
    }

    /// The difference `self - earlier`, for rates over a window.
    public func subtracting(_ earlier: Histogram) -> Histogram {
        var delta = self
        for i in counts.indices { delta.counts[i] -= min(delta.counts[i], earlier.counts[i]) }
        delta.sum -= earlier.sum
        delta.count -= min(delta.count, earlier.count)
        return delta
    }

    /// Adds another histogram of the same bounds (another loop's figures).
    public mutating func add(_ other: Histogram) {
        precondition(other.bounds == bounds, "only histograms of the same bounds add up")
        for i in counts.indices { counts[i] += other.counts[i] }
        sum += other.sum
        count += other.count
    }

    /// An estimate of quantile `q` (0...1) by linear interpolation inside its bucket; nil
    /// when empty. Values in the +Inf bucket are reported as the largest bound.
    public func quantile(_ q: Double) -> Double? {
        guard count > 0 else { return nil }
        let rank = q * Double(count)
        var seen: Double = 0
        for (index, bucketCount) in counts.enumerated() where bucketCount > 0 {
            let next = seen + Double(bucketCount)
            if next >= rank {
                guard index < bounds.count else { return bounds.last ?? 0 }
                let lower = index == 0 ? 0 : bounds[index - 1]
                let fraction = (rank - seen) / Double(bucketCount)
                return lower + (bounds[index] - lower) * max(0, min(1, fraction))
            }
            seen = next
        }
        return bounds.last
    }
}
