/// A rate limit: `rate` tokens a second, at most `burst` saved up. Each admitted unit
/// (an event, a message, a subscribe) takes one; when none is left the caller is told
/// how long until one is. Plain integers in nanoseconds, no clock of its own: the
/// owner passes the time, so tests drive it and the hot path reads the clock once.
public struct TokenBucket: Sendable, Equatable {
    public let rate: Int
    public let burst: Int
    /// Tokens, scaled by 1e9 (nanotokens), so that refills below one token add up.
    private var nanotokens: Int64
    private var last: UInt64

    /// A full bucket at `now`.
    public init(rate: Int, burst: Int, now: UInt64) {
        precondition(rate > 0 && burst > 0)
        self.rate = rate
        self.burst = burst
        nanotokens = Int64(burst) * 1_000_000_000
        last = now
    }

    /// Takes `count` tokens if there are that many; else takes none and returns the
    /// nanoseconds until there will be (a batch larger than the burst can never pass:
    /// the wait says so by being longer than the burst takes to refill).
    public mutating func take(_ count: Int = 1, now: UInt64) -> UInt64? {
        refill(now: now)
        let needed = Int64(count) * 1_000_000_000
        if nanotokens >= needed {
            nanotokens -= needed
            return nil
        }
        let missing = needed - nanotokens
        return UInt64((missing + Int64(rate) - 1) / Int64(rate))
    }

    /// Gives back `count` tokens taken for something that was refused elsewhere after all
    /// (never above the burst).
    public mutating func refund(_ count: Int) {
        nanotokens = min(Int64(burst) * 1_000_000_000, nanotokens + Int64(count) * 1_000_000_000)
    }

    /// Whether the bucket is full at `now` (an owner may forget a full bucket: a new
    /// one would be the same).
    public mutating func isFull(now: UInt64) -> Bool {
        refill(now: now)
        return nanotokens >= Int64(burst) * 1_000_000_000
    }

    private mutating func refill(now: UInt64) {
        guard now > last else { return }
        let elapsed = now - last
        last = now
        let full = Int64(burst) * 1_000_000_000
        // Time enough to fill it: full, without multiplying a long quiet by a high rate.
        let fillTime = UInt64((full - nanotokens) / Int64(rate)) + 1
        nanotokens = elapsed >= fillTime ? full : nanotokens + Int64(elapsed) * Int64(rate)
    }
}

/// Rate limits by key (a publisher key's name, a client address): one bucket per key,
/// made full on first use, forgotten once full again so that the table holds only the
/// keys that are being limited (swept every `sweepEvery` takes).
public struct KeyedRateLimiter<Key: Hashable & Sendable>: Sendable {
    public let rate: Int
    public let burst: Int
    private var buckets: [Key: TokenBucket] = [:]
    private var takesSinceSweep = 0
    private let sweepEvery = 4096

    public init(rate: Int, burst: Int) {
        self.rate = rate
        self.burst = burst
    }

    /// Takes `count` tokens from `key`'s bucket; nil when admitted, else the nanoseconds
    /// until it would be.
    public mutating func take(_ count: Int, for key: Key, now: UInt64) -> UInt64? {
        takesSinceSweep += 1
        if takesSinceSweep >= sweepEvery { sweep(now: now) }
        var bucket = buckets[key] ?? TokenBucket(rate: rate, burst: burst, now: now)
        let wait = bucket.take(count, now: now)
        buckets[key] = bucket
        return wait
    }

    /// Gives back tokens `take` took for `key` (the request was refused by another limit).
    public mutating func refund(_ count: Int, for key: Key) {
        buckets[key]?.refund(count)
    }

    public var trackedKeys: Int { buckets.count }

    private mutating func sweep(now: UInt64) {
        takesSinceSweep = 0
        for key in Array(buckets.keys) {
            if buckets[key]!.isFull(now: now) { buckets[key] = nil }
        }
    }
}
