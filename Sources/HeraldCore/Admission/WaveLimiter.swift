/// A node-wide rate for what arrives in waves — new connections, resumes — after a deploy
/// or a network blip, and the wait it tells what it refuses.
///
/// A plain token bucket would tell every refused client that a token is due within a
/// millisecond, and the whole wave would come back at once. Here the wait is jittered
/// over the time the rate needs to take everyone refused lately (at least
/// `minimumWaitMs`…`5 s`, at most `maximumWaitMs`), so the wave comes back spread out at
/// about the rate the node takes. The bucket holds one second's worth.
public struct WaveLimiter: Sendable {
    public let rate: Int
    private var bucket: TokenBucket
    /// Refusals in the current one-second window and in the one before it: about how
    /// many clients are waiting to come back.
    private var refusedNow = 0
    private var refusedBefore = 0
    private var windowStart: UInt64

    public static let minimumWaitMs = 1000
    /// The upper end of the jitter when few are refused.
    public static let shortestSpreadMs = 5000
    public static let maximumWaitMs = 60_000

    public init(rate: Int, now: UInt64) {
        self.rate = rate
        bucket = TokenBucket(rate: rate, burst: rate, now: now)
        windowStart = now
    }

    /// Admits one arrival (nil), or refuses it and returns how many milliseconds the
    /// client should wait, jittered.
    public mutating func admit(now: UInt64, using generator: inout some RandomNumberGenerator) -> Int? {
        guard bucket.take(now: now) != nil else { return nil }
        if now &- windowStart >= 1_000_000_000 {
            refusedBefore = now &- windowStart < 2_000_000_000 ? refusedNow : 0
            refusedNow = 0
            windowStart = now
        }
        refusedNow += 1
        let spreadMs = (refusedNow + refusedBefore) * 1000 / rate
        let upper = min(Self.maximumWaitMs, max(Self.shortestSpreadMs, Self.minimumWaitMs + spreadMs))
        return Int.random(in: Self.minimumWaitMs...upper, using: &generator)
    }

    public mutating func admit(now: UInt64) -> Int? {
        var generator = SystemRandomNumberGenerator()
        return admit(now: now, using: &generator)
    }
}
