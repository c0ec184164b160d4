import HeraldCore
import Testing

/// Rate limits and connection counts: the arithmetic every limit of `limits` rests on,
/// driven by a clock the test moves.
@Suite struct AdmissionTests {
    static let second: UInt64 = 1_000_000_000

    @Test func aBucketAdmitsItsBurstThenItsRateAndSaysHowLongToWait() {
        var bucket = TokenBucket(rate: 10, burst: 20, now: 0)
        for _ in 0..<20 {
            let r1 = bucket.take(now: 0)
            #expect(r1 == nil)
        }
        let r2 = bucket.take(now: 0)
        #expect(r2 == Self.second / 10, "one token is 100 ms away")
        let r3 = bucket.take(now: Self.second / 20)
        #expect(r3 == Self.second / 20, "half of it came")
        let r4 = bucket.take(now: Self.second / 10)
        #expect(r4 == nil)
        let r5 = bucket.take(5, now: Self.second)
        #expect(r5 == nil, "nine tokens came in 0.9 s")
        let r6 = bucket.take(5, now: Self.second)
        #expect(r6 == Self.second / 10)
        let r7 = bucket.take(now: 100 * Self.second)
        #expect(r7 == nil)
        let r8 = bucket.isFull(now: 100 * Self.second)
        #expect(r8 == false)
        let r9 = bucket.isFull(now: 101 * Self.second)
        #expect(r9)
        let r10 = bucket.take(21, now: 200 * Self.second)
        #expect(r10 == Self.second / 10, "more than the burst never passes")
        let r11 = bucket.take(1, now: 99 * Self.second)
        #expect(r11 == nil, "a clock that goes back adds nothing and takes nothing away")
    }

    @Test func aBucketAgreesWithCountingByHand() {
        // Against a slow reference: admitted events never exceed burst + rate × elapsed.
        var bucket = TokenBucket(rate: 7, burst: 3, now: 0)
        var generator = SystemRandomNumberGenerator()
        var now: UInt64 = 0
        var admitted = 0
        for _ in 0..<5000 {
            now += UInt64.random(in: 0...(Self.second / 20), using: &generator)
            if bucket.take(now: now) == nil { admitted += 1 }
            #expect(Double(admitted) <= 3 + 7 * Double(now) / 1e9 + 1e-9)
        }
        #expect(Double(admitted) >= 7 * Double(now) / 1e9 - 1, "it admits its rate when asked more often than it refills")
    }

    @Test func keyedLimitersKeepKeysApartAndForgetFullBuckets() {
        var limiter = KeyedRateLimiter<String>(rate: 2, burst: 2)
        let r12 = limiter.take(2, for: "a", now: 0)
        #expect(r12 == nil)
        let r13 = limiter.take(1, for: "a", now: 0)
        #expect(r13 != nil)
        let r14 = limiter.take(2, for: "b", now: 0)
        #expect(r14 == nil, "b has its own bucket")
        limiter.refund(1, for: "b")
        limiter.refund(5, for: "b")
        #expect(limiter.take(2, for: "b", now: 0) == nil, "refunded, never above the burst")
        #expect(limiter.take(1, for: "b", now: 0) != nil)
        for k in 0..<5000 { _ = limiter.take(1, for: "k\(k)", now: 10 * Self.second) }
        #expect(limiter.trackedKeys == 5000, "partly used buckets are kept; a and b, full again at 10 s, were swept")
        for _ in 0..<4096 { _ = limiter.take(0, for: "z", now: 20 * Self.second) }
        #expect(limiter.trackedKeys <= 2, "buckets full again are swept away")
    }

    @Test func connectionsAreCountedInAllAndPerAddress() {
        var admission = ConnectionAdmission(maxTotal: 5, maxPerAddress: 2)
        let r15 = admission.admit(peer: "10.0.0.1")
        #expect(r15 == nil)
        let r16 = admission.admit(peer: "::ffff:10.0.0.1")
        #expect(r16 == nil, "an IPv4-mapped address is the same client")
        let r17 = admission.admit(peer: "10.0.0.1")
        #expect(r17 == .perAddress("10.0.0.1", 2))
        let r18 = admission.admit(peer: "2001:db8:1:2::1")
        #expect(r18 == nil)
        let r19 = admission.admit(peer: "2001:db8:1:2:ffff::9")
        #expect(r19 == nil)
        let r20 = admission.admit(peer: "2001:db8:1:2:aaaa:bbbb:cccc:dddd")
        #expect(r20 == .perAddress("2001:db8:1:2::/64", 2), "one /64")
        let r21 = admission.admit(peer: "2001:db8:1:3::1")
        #expect(r21 == nil, "another /64")
        let r22 = admission.admit(peer: "10.0.0.9")
        #expect(r22 == .total(5))
        #expect(admission.total == 5)
        admission.release(peer: "10.0.0.1")
        admission.release(peer: "10.0.0.77")  // never admitted: nothing changes
        #expect(admission.total == 4 && admission.held(by: "10.0.0.1") == 1)
        let r23 = admission.admit(peer: "10.0.0.9")
        #expect(r23 == nil)
    }

    @Test func streamsAreCountedPerSubject() {
        var admission = ConnectionAdmission(maxTotal: 100, maxPerAddress: 100, maxPerSubject: 2)
        let first = admission.admit(subject: "ada")
        let second = admission.admit(subject: "ada")
        let third = admission.admit(subject: "ada")
        let other = admission.admit(subject: "bob")
        #expect(first == nil && second == nil && other == nil)
        #expect(third == .perSubject("ada", 2))
        admission.release(subject: "ada")
        admission.release(subject: "carol")  // never counted: nothing changes
        let again = admission.admit(subject: "ada")
        #expect(again == nil)
        #expect(admission.total == 0, "streams are counted apart from connections")
    }

    /// A generator that gives the same numbers every run.
    struct SplitMix: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    @Test func aWaveIsTakenAtTheRateAndTheRestIsSpreadOverTheTimeTheRateNeeds() {
        var generator = SplitMix(state: 7)
        let start: UInt64 = 5_000_000_000
        var wave = WaveLimiter(rate: 1000, now: start)
        // 5,000 clients within 100 ms: one second's worth comes in, the rest is refused.
        var waits: [Int] = []
        for i in 0..<5000 {
            let now = start + UInt64(i) * 20_000
            if let wait = wave.admit(now: now, using: &generator) { waits.append(wait) }
        }
        #expect(waits.count == 5000 - 1000 - 99, "the burst, and 99.98 ms of refill, came in")
        #expect(waits.allSatisfy { (1000...5000).contains($0) }, "the first refusals: 1–5 s")
        // Past the burst the refused are spread over how long the rate needs for them all.
        let late = waits.suffix(500)
        #expect(late.max()! > 4000 && late.min()! < 2000, "jittered across the range")
        // The next second the wave comes back: the spread reaches as far as the backlog.
        var more: [Int] = []
        for i in 0..<3000 {
            if let wait = wave.admit(now: start + 1_100_000_000 + UInt64(i) * 10_000, using: &generator) { more.append(wait) }
        }
        #expect(more.count == 3000 - 1000 - 29, "a full bucket, and 29.99 ms of refill, came in")
        #expect(more.max()! > 5000 && more.max()! <= 1000 + (3900 + 1970) * 1000 / 1000, "wider than 5 s: the backlog is long")
        #expect(more.allSatisfy { $0 >= WaveLimiter.minimumWaitMs && $0 <= WaveLimiter.maximumWaitMs })
        // Once quiet, a lone refusal is told 1–5 s again.
        var quiet = WaveLimiter(rate: 1, now: start)
        #expect(quiet.admit(now: start, using: &generator) == nil)
        let alone = quiet.admit(now: start + 1, using: &generator)
        #expect(alone.map { (1000...5000).contains($0) } == true)
    }

    @Test func theHighestRatesSurviveALongQuiet() {
        // rate × an hour of nanoseconds would pass Int64: a bucket that long idle is full.
        var wave = WaveLimiter(rate: 10_000_000, now: 0)
        #expect(wave.admit(now: 1_000_000_000_000) == nil)
        var bucket = TokenBucket(rate: 100_000_000, burst: 100_000_000, now: 0)
        #expect(bucket.take(100_000_000, now: 0) == nil)
        #expect(bucket.take(100_000_000, now: 10_000 * Self.second) == nil, "full again after the quiet")
        #expect(bucket.take(1, now: 10_000 * Self.second) != nil)
    }

    @Test func theLimitsAreReadWithTheirDefaults() throws {
        let defaults = try HeraldConfig(parsing: Array("{}".utf8)).limits
        #expect(defaults.maxConnections == 100_000 && defaults.maxConnectionsPerAddress == 10_000)
        #expect(defaults.maxConnectionsPerSubject == 100)
        #expect(defaults.ingestEventsPerSecondPerKey == 1_000_000 && defaults.webSocketMessagesPerSecond == 1_000)
        #expect(defaults.webSocketSubscribesPerSecond == 100 && defaults.webSocketPublishesPerSecond == 500)
        #expect(defaults.newConnectionsPerSecond == 20_000 && defaults.resumesPerSecond == 1_000)
        let text =
            #"{"limits":{"maxConnections":5,"maxConnectionsPerAddress":2,"ingestEventsPerSecondPerKey":20,"ingestEventsPerSecondPerAddress":30,"webSocketMessagesPerSecond":4,"webSocketSubscribesPerSecond":3,"webSocketPublishesPerSecond":2,"newConnectionsPerSecond":50,"resumesPerSecond":10}}"#
        let limits = try HeraldConfig(parsing: Array(text.utf8)).limits
        #expect(limits.webSocketSubscribesPerSecond == 3 && limits.webSocketPublishesPerSecond == 2)
        #expect(limits.newConnectionsPerSecond == 50 && limits.resumesPerSecond == 10)
        #expect(limits.maxConnections == 5 && limits.maxConnectionsPerAddress == 2)
        #expect(
            limits.ingestEventsPerSecondPerKey == 20 && limits.ingestEventsPerSecondPerAddress == 30
                && limits.webSocketMessagesPerSecond == 4)
        let bad =
            #"{"limits":{"maxConnections":0,"webSocketMessagesPerSecond":"10","ingestEventsPerSecondPerKey":[1],"resumesPerSecond":0}}"#
        #expect { try HeraldConfig(parsing: Array(bad.utf8)) } throws: { error in
            guard let errors = error as? HeraldConfig.ValidationErrors else { return false }
            return Set(errors.errors.compactMap(\.path)) == [
                "$.limits.maxConnections", "$.limits.webSocketMessagesPerSecond", "$.limits.ingestEventsPerSecondPerKey",
                "$.limits.resumesPerSecond",
            ]
        }
    }

    @Test(arguments: [
        ("127.0.0.1", "127.0.0.1"), ("::1", "0:0:0:0::/64"), ("fe80::1%eth0", "fe80:0:0:0::/64"),
        ("2001:DB8::", "2001:db8:0:0::/64"), ("1:2:3:4:5:6:7:8", "1:2:3:4::/64"), ("not:an:address", "not:an:address"),
        ("1::2::3", "1::2::3"),
    ])
    func addressKeys(peer: String, key: String) {
        #expect(ConnectionAdmission.addressKey(peer) == key)
    }
}
