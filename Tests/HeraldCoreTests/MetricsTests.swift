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
            window.record(metrics, now: UInt64(t) * second)
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
                metrics.routes[0].checkDeadline(latency: late ? 9_000_000 : 1_000_000, clientBehind: false)
                metrics.routes[0].latency.observe(late ? 0.009 : 0.001)
            }
            window.record(metrics, now: UInt64(t) * second)
        }
        let current = StatsWindow.snapshot(of: metrics, at: 65 * second)
        let tenSeconds = window.window(over: 10, current: current).routes[0]
        let minute = window.window(over: 60, current: current).routes[0]
        #expect(tenSeconds.met + tenSeconds.missed == 100 && tenSeconds.missed == 5)
        #expect(minute.missed == 5 && minute.met + minute.missed == 600)
        #expect(tenSeconds.latency.quantile(0.99) ?? 0 > 0.005, "the late ones are in the window's latencies")
        #expect(DeadlineState(last10s: tenSeconds.missedRatio, last60s: minute.missedRatio, budget: 0.001) == .red)
        #expect(DeadlineState(last10s: tenSeconds.missedRatio, last60s: minute.missedRatio, budget: 0.01) == .amber)
        #expect(DeadlineState(last10s: tenSeconds.missedRatio, last60s: minute.missedRatio, budget: 0.1) == .green)
        #expect(DeadlineState(last10s: nil, last60s: nil, budget: 0) == .green, "no deliveries: nothing late")
    }
}
