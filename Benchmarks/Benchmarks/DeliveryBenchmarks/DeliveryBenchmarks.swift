import Benchmark
import Glibc
import HeraldCore

// What a live delivery costs the Hub, and the share of it that checking each delivery
// against its route's deadline takes (issue: deadline accounting under 2 %).
//
// Each measured iteration publishes one event to 100 WebSocket sessions subscribed to a
// route, and takes each session's write from the Hub and counts it (`nextWrite` +
// `recordDelivery`): the Hub's whole share of a fan-out, without encoding or sockets
// (which a real delivery adds, so the share measured here is an upper bound). With
// `metrics.timing` off neither latency nor deadlines are kept. `DeadlineTally.check`
// and `Histogram.observe` ×100 show the check alone: the check observes the route's
// histogram (which routes always did) and compares with the deadline.
//
// Run from Benchmarks/:
//     swift package --scratch-path .build-bench benchmark --target DeliveryBenchmarks

private func monotonicNanoseconds() -> UInt64 {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
}

private let event = Array(#"{"type":"chat","room":"lobby","text":"hello, everyone in the lobby"}"#.utf8)

/// A Hub with 100 sessions subscribed through route "chat", and a way to publish one
/// event to them and deliver it.
private final class FanOut {
    let hub: Hub
    let sessions: [Session]
    var tape = JSONTape()

    init(timing: Bool, sessions count: Int = 100) {
        var config = HeraldConfig()
        config.routes = [.init(name: "chat", pattern: try! Pattern(parsing: Array(#"{"type":["chat"]}"#.utf8)), deadlineMs: 50)]
        config.metrics.timing = timing
        config.history = HistoryLimits(maxEvents: 1000)
        let hub = Hub(config: config, clock: HubClock(now: monotonicNanoseconds, unixSeconds: { 1_700_000_000 }))
        sessions = (0..<count).map { _ in hub.openSession(transport: .webSocket, remote: "127.0.0.1", credentials: .anonymous, route: nil) }
        for session in sessions { _ = try! hub.subscribe(session, id: "s", route: "chat", filter: nil) }
        self.hub = hub
    }

    /// One that has delivered a few events already: each sample runs on a new one, and
    /// only what every event costs is measured — not the first event's growth of the
    /// queues, the wake list and the match scratch.
    static func warm(timing: Bool, sessions: Int = 100) -> FanOut {
        let fanOut = FanOut(timing: timing, sessions: sessions)
        for _ in 0..<8 { fanOut.publishAndDeliver() }
        return fanOut
    }

    func publishAndDeliver() {
        event.withUnsafeBytes { raw in
            let events = try! IngestParser.parse(raw, format: .json, limits: IngestLimits(), tape: &tape)
            _ = hub.publish(events, tape: tape, body: raw)
        }
        let now = monotonicNanoseconds()
        hub.drainWakes { _ in }  // what the gateway does after each callback
        for session in sessions {
            while case .entry(.event(let event, let subscriptions, let replayed)) = hub.nextWrite(for: session) {
                hub.recordDelivery(event, subscriptions: subscriptions, to: session, replayed: replayed, now: now)
            }
        }
    }
}

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .throughput, .mallocCountTotal], warmupIterations: 100, maxDuration: .seconds(3), maxIterations: 100_000)

    Benchmark("publish 1 event to 10 sessions, deliver and count (timing on)") { benchmark in
        let fanOut = FanOut.warm(timing: true, sessions: 10)
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations { fanOut.publishAndDeliver() }
    }

    for timing in [true, false] {
        Benchmark("publish 1 event to 100 sessions, deliver and count (timing \(timing ? "on: latency + deadlines" : "off"))") {
            benchmark in
            let fanOut = FanOut.warm(timing: timing)
            benchmark.startMeasurement()
            for _ in benchmark.scaledIterations { fanOut.publishAndDeliver() }
        }
    }

    Benchmark("DeadlineTally.check ×100 (observes the route's histogram, compares with the deadline)") { benchmark in
        var tally = DeadlineTally(deadline: 50_000_000)
        var latency: UInt64 = 1_000_000
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            for _ in 0..<100 {
                latency = (latency &* 6_364_136_223_846_793_005 &+ 1) & 0x7FF_FFFF  // up to ~134 ms: some late
                tally.check(latency)
            }
        }
        blackHole(tally.met)
    }

    Benchmark("Histogram.observe ×100 (what a route did per delivery before deadlines)") { benchmark in
        var histogram = Histogram.latency(including: 0.05)
        var latency: UInt64 = 1_000_000
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            for _ in 0..<100 {
                latency = (latency &* 6_364_136_223_846_793_005 &+ 1) & 0x7FF_FFFF
                histogram.observe(Double(latency) / 1e9)
            }
        }
        blackHole(histogram.count)
    }
}
