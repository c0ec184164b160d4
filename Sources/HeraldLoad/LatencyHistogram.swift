/// Latencies counted in buckets of 0.1 % relative width (HdrHistogram's idea at three
/// significant digits): a million deliveries cost no more memory than ten, percentiles
/// are exact to 0.1 %, and histograms of several threads add up.
public struct LatencyHistogram: Sendable {
    /// Values below `exact` nanoseconds have a bucket each; above, every power of two is
    /// split into `exact / 2` buckets.
    static let exactBits = 11
    static let exact: UInt64 = 1 << exactBits
    static let half = Int(exact / 2)
    /// Up to 2^44 ns (about 4.9 hours); larger values count in the last bucket.
    static let bucketCount = Int(exact) + (44 - exactBits) * half

    private var counts: [UInt64]
    public private(set) var count: UInt64 = 0
    public private(set) var max: UInt64 = 0

    public init() { counts = [UInt64](repeating: 0, count: Self.bucketCount) }

    static func bucket(of value: UInt64) -> Int {
        guard value >= exact else { return Int(value) }
        let shift = (63 - value.leadingZeroBitCount) - (exactBits - 1)  // value >> shift is in [half, exact)
        let index = Int(exact) + (shift - 1) * half + Int(value >> UInt64(shift)) - half
        return Swift.min(index, bucketCount - 1)
    }

    /// The largest value a bucket holds (what a percentile reports: never under the truth).
    static func highest(in bucket: Int) -> UInt64 {
        guard bucket >= Int(exact) else { return UInt64(bucket) }
        let shift = (bucket - Int(exact)) / half + 1
        let mantissa = UInt64((bucket - Int(exact)) % half + half)
        return ((mantissa + 1) << UInt64(shift)) - 1
    }

    public mutating func record(_ nanoseconds: UInt64) {
        counts[Self.bucket(of: nanoseconds)] += 1
        count += 1
        if nanoseconds > max { max = nanoseconds }
    }

    public mutating func add(_ other: LatencyHistogram) {
        for i in 0..<counts.count where other.counts[i] != 0 { counts[i] += other.counts[i] }
        count += other.count
        max = Swift.max(max, other.max)
    }

    /// How many values were over `threshold` nanoseconds, exact to the histogram's 0.1 %:
    /// a value in the bucket that holds `threshold` counts as over only when the bucket
    /// lies wholly above it, so a value a hair past the threshold may count as within.
    public func count(over threshold: UInt64) -> UInt64 {
        guard count > 0, max > threshold else { return 0 }
        let first = Self.bucket(of: threshold) + 1
        return first < counts.count ? counts[first...].reduce(0, +) : 0
    }

    /// The value at or under which `fraction` (0...1) of the recorded values lie; 0 when empty.
    public func percentile(_ fraction: Double) -> UInt64 {
        guard count > 0 else { return 0 }
        if fraction >= 1 { return max }
        let rank = Swift.max(1, UInt64((Double(count) * fraction).rounded(.up)))
        var seen: UInt64 = 0
        for (bucket, n) in counts.enumerated() where n != 0 {
            seen += n
            if seen >= rank { return Swift.min(Self.highest(in: bucket), max) }
        }
        return max
    }
}
