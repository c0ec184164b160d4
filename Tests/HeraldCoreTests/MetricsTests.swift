import HeraldCore
import Testing

/// Histograms, the Prometheus exposition and windowed rates.
@Suite struct MetricsTests {
    @Test func histogramBucketsAndQuantiles() {
        var h = Histogram(bounds: [1, 2, 5])
        for value in [0.5, 1, 1.5, 3, 10] { h.observe(value) }
        #expect(h.counts == [2, 1, 1, 1])
        #expect(h.count == 5)
        #expect(h.sum == 16)
        #expect(h.quantile(0.2) == 0.5, "rank 1 of 2 in the first bucket [0, 1]")
        #expect(h.quantile(1.0) == 5, "values past the last bound report it")
        #expect(Histogram(bounds: [1]).quantile(0.5) == nil)
        var earlier = h
        h.observe(4)
        #expect(h.counts == [2, 1, 2, 1])
        #expect(h.subtracting(earlier).counts == [0, 0, 1, 0])
    }

    @Test func prometheusTextIsCumulativeAndEscaped() {
        var h = Histogram(bounds: [0.5, 1])
        h.observe(0.25)
        h.observe(0.75)
        h.observe(2)
        var out = PrometheusText()
        out.family("x_seconds", type: "histogram", help: "A test.")
        out.histogram("x_seconds", [("route", "a\"b\\c\nd")], h)
        out.sample("y_total", [], 3)
        #expect(
            out.text == """
                # HELP x_seconds A test.
                # TYPE x_seconds histogram
                x_seconds_bucket{route="a\\"b\\\\c\\nd",le="0.5"} 1
                x_seconds_bucket{route="a\\"b\\\\c\\nd",le="1"} 2
                x_seconds_bucket{route="a\\"b\\\\c\\nd",le="+Inf"} 3
                x_seconds_sum{route="a\\"b\\\\c\\nd"} 3
                x_seconds_count{route="a\\"b\\\\c\\nd"} 3
                y_total 3

                """)
    }

    @Test func ratesCompareWithTheSnapshotAWindowAgo() {
        var metrics = GatewayMetrics(routeNames: ["chat"])
        var window = StatsWindow()
        let second: UInt64 = 1_000_000_000
        for t in 0...20 {
            metrics.accepted += 10
            metrics.delivered[.webSocket] += 30
            metrics.deliveryLatency.observe(0.002)
            window.record(&metrics, now: UInt64(t) * second)
        }
        let current = StatsWindow.snapshot(of: metrics, at: 20 * second)
        let tenSeconds = window.rates(over: 10, current: current)
        #expect(tenSeconds.seconds == 10)
        #expect(tenSeconds.eventsIn == 10)
        #expect(tenSeconds.deliveries == 30)
        #expect(tenSeconds.latencyP99 ?? 0 > 0.001)
        #expect(tenSeconds.latencyP99 ?? 1 <= 0.0025)
        let minute = window.rates(over: 60, current: current)
        #expect(minute.seconds == 20, "no snapshot is a minute old: the oldest is used")
        #expect(metrics.routes.map(\.name) == ["chat", ""])
    }

    @Test func aRoutesMissedShareIsWindowedAndSaysItsState() {
        var metrics = GatewayMetrics(routeNames: ["chat"], deadlines: [5_000_000, 100_000_000])
        var window = StatsWindow()
        let second: UInt64 = 1_000_000_000
        // A minute on time, then 5 s in which one delivery in ten is late.
        for t in 0...65 {
            for n in 0..<10 {
                let late = t > 60 && n == 0
                metrics.routes[0].live.check(late ? UInt64(9_000_000 + t) : 1_000_000)
            }
            window.record(&metrics, now: UInt64(t) * second)
        }
        let current = StatsWindow.snapshot(of: metrics, at: 65 * second)
        let tenSeconds = window.window(over: 10, current: current).routes[0]
        let minute = window.window(over: 60, current: current).routes[0]
        #expect(tenSeconds.met + tenSeconds.missed == 100 && tenSeconds.missed == 5)
        #expect(minute.missed == 5 && minute.met + minute.missed == 600)
        #expect(tenSeconds.latency.quantile(0.99) ?? 0 > 0.005, "the late ones are in the window's latencies")
        #expect(DeadlineState(last10s: tenSeconds, last60s: minute, budget: 0.001) == .red)
        #expect(DeadlineState(last10s: tenSeconds, last60s: minute, budget: 0.01) == .amber)
        #expect(DeadlineState(last10s: tenSeconds, last60s: minute, budget: 0.1) == .green)
        #expect(DeadlineState(last10s: nil, last60s: nil, budget: 0) == .green, "no deliveries: nothing late")
        // A quiet route: four late deliveries of four are too few to call the route late.
        var quiet = GatewayMetrics(routeNames: ["rare"], deadlines: [5_000_000, 100_000_000])
        var quietWindow = StatsWindow()
        quietWindow.record(&quiet, now: 0)
        for _ in 0..<4 { quiet.routes[0].live.check(9_000_000) }
        let now = StatsWindow.snapshot(of: quiet, at: 5 * second)
        let rare = quietWindow.window(over: 60, current: now).routes[0]
        #expect(rare.missedRatio == 1 && DeadlineState(last10s: rare, last60s: rare, budget: 0.001) == .green)
        quiet.routes[0].live.check(9_000_000, clientBehind: true)
        let fifth = quietWindow.window(over: 60, current: StatsWindow.snapshot(of: quiet, at: 6 * second)).routes[0]
        #expect(DeadlineState(last10s: fifth, last60s: fifth, budget: 0.001) == .red && fifth.missedSlowClient == 1)
        #expect(tenSeconds.slowest == 9_000_065 && minute.slowest == 9_000_065, "the slowest: the latest late one")
        #expect(window.window(over: 1, current: current).routes[0].slowest == 9_000_065)
    }

    @Test func theSlowestOverAWindowIsTheSlowestOfItsSeconds() {
        var metrics = GatewayMetrics(routeNames: ["chat"])
        var window = StatsWindow()
        let second: UInt64 = 1_000_000_000
        window.record(&metrics, now: 0)
        // One slow delivery 30 s ago, fast ones since.
        for t in 1...40 {
            metrics.routes[0].live.check(t == 10 ? 80_000_000 : UInt64(t) * 1000)
            window.record(&metrics, now: UInt64(t) * second)
        }
        metrics.routes[0].live.check(5_000)  // since the last snapshot
        let current = StatsWindow.snapshot(of: metrics, at: 40 * second + second / 2)
        #expect(window.window(over: 60, current: current).routes[0].slowest == 80_000_000)
        #expect(window.window(over: 10, current: current).routes[0].slowest == 40_000, "the slow one is older than 10 s")
        #expect(window.window(over: 1, current: current).routes[0].slowest == 40_000)
        #expect(metrics.routes[0].live.slowestSinceSnapshot == 5_000)
        #expect(window.window(over: 10, current: current).routes[0].met == 11, "ten seconds and the half since")
    }

    @Test func aRouteStateChangeIsLoggedAtOnceThenAtMostOncePerTenSeconds() {
        var watch = DeadlineWatch(routes: 2)
        let second: UInt64 = 1_000_000_000
        #expect(watch.observe([.green, .green], now: 0).isEmpty, "routes start green")
        #expect(watch.observe([.red, .green], now: 1 * second) == [.init(route: 0, from: .green, to: .red)])
        #expect(watch.observe([.amber, .amber], now: 2 * second) == [.init(route: 1, from: .green, to: .amber)], "route 0 keeps quiet")
        #expect(watch.observe([.green, .amber], now: 5 * second).isEmpty)
        #expect(watch.observe([.red, .amber], now: 9 * second).isEmpty, "back to what was reported: nothing to say")
        #expect(watch.observe([.green, .amber], now: 11 * second) == [.init(route: 0, from: .red, to: .green)], "what it settled on")
        #expect(watch.observe([.green, .green], now: 12 * second) == [.init(route: 1, from: .amber, to: .green)])
        #expect(watch.observe([.green, .green], now: 60 * second).isEmpty)
    }
}
