import HeraldClient
import HeraldServer
import HeraldTestSupport
import Testing

@testable import HeraldLoad

@Suite struct LoadTemplateTests {
    @Test func placeholdersAreRenderedAndOtherBracesStay() {
        let template = LoadTemplate(#"{"g":{i},"n":{n},"sentAt":{sentAt},"x":{"y":1},"{j}":2}"#)
        var out: [UInt8] = []
        template.render(i: 7, n: 42, sentAt: 1_000_000_007, into: &out)
        #expect(String(decoding: out, as: UTF8.self) == #"{"g":7,"n":42,"sentAt":1000000007,"x":{"y":1},"{j}":2}"#)
        #expect(template.mentions(.subscriber) && template.mentions(.sentAt))
        #expect(!LoadTemplate("ws://127.0.0.1:8081/sub/all").mentions(.subscriber))
        #expect(LoadTemplate("ws://h/sub/{i}").string(i: 0) == "ws://h/sub/0")
    }

    @Test func plansThatCannotWorkAreRefused() {
        var plan = LoadPlan(
            subscribers: 2, transport: .webSocket, subscribeURL: LoadTemplate("ws://127.0.0.1:1/sub/{i}"),
            publishURL: LoadTemplate("http://127.0.0.1:1/pub/{i}"), event: LoadTemplate(#"{"sentAt":{sentAt}}"#), events: 10)
        #expect(throws: Never.self) { try plan.validate() }
        plan.batch = 10
        #expect(throws: LoadFailure.self) { try plan.validate() }  // a URL per subscriber takes one event per POST
        plan.batch = 1
        plan.event = LoadTemplate(#"{"n":{n}}"#)
        #expect(throws: LoadFailure.self) { try plan.validate() }  // nothing to measure latency with
        plan.event = LoadTemplate(#"{"sentAt":{sentAt}}"#)
        plan.sources = 0
        #expect(throws: LoadFailure.self) { try plan.validate() }
        // Stalled subscribers of a routed run subscribe like a reader, so events reach them.
        plan.stalled = 3
        #expect((0..<5).map(plan.templateIndex(of:)) == [0, 1, 0, 1, 0])
    }
}

@Suite struct LatencyHistogramTests {
    /// Against the exact order statistic of the sorted values: never below it, at most 0.1 % above.
    @Test func percentilesMatchSortedValuesWithinATenthOfAPercent() {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<20 {
            var histogram = LatencyHistogram()
            let values = (0..<Int.random(in: 1...5000, using: &generator)).map { _ in
                UInt64.random(in: 0...(1 << UInt64.random(in: 1...40, using: &generator)), using: &generator)
            }
            values.forEach { histogram.record($0) }
            let sorted = values.sorted()
            for fraction in [0.0, 0.5, 0.9, 0.99, 0.999, 1.0] {
                let rank = max(1, Int((Double(sorted.count) * fraction).rounded(.up)))
                let exact = sorted[rank - 1]
                let reported = histogram.percentile(fraction)
                #expect(reported >= exact)
                #expect(Double(reported) <= Double(exact) * 1.001 + 1, "p\(fraction) of \(sorted.count) values")
            }
            #expect(histogram.percentile(1) == sorted.last)
        }
    }

    @Test func histogramsAddUp() {
        var a = LatencyHistogram()
        var b = LatencyHistogram()
        (1...100).forEach { a.record(UInt64($0) * 1000) }
        (101...200).forEach { b.record(UInt64($0) * 1000) }
        a.add(b)
        #expect(a.count == 200)
        #expect(a.max == 200_000)
        let median = a.percentile(0.5)
        #expect(median >= 100_000 && median <= 100_100)
    }

    @Test func lateValuesAreCountedAgainstASlowReferenceWithinATenthOfAPercent() {
        var generator = SystemRandomNumberGenerator()
        let values = (0..<20_000).map { _ in UInt64.random(in: 0...200_000_000, using: &generator) }
        var histogram = LatencyHistogram()
        values.forEach { histogram.record($0) }
        for threshold: UInt64 in [0, 1000, 2047, 2048, 5_000_000, 100_000_000, 199_999_999, 300_000_000] {
            let over = histogram.count(over: threshold)
            // Exactly what is over the threshold, give or take what lies within 0.1 % above it.
            let surely = UInt64(values.filter { $0 > threshold + threshold / 1000 + 1 }.count)
            let atMost = UInt64(values.filter { $0 > threshold }.count)
            #expect(over >= surely && over <= atMost, "threshold \(threshold): \(over) not in \(surely)...\(atMost)")
        }
        #expect(LatencyHistogram().count(over: 0) == 0)
    }

    @Test func theGatewaysDeadlineCountsAreSummedOverRoutes() {
        let text = """
            # TYPE herald_deadline_deliveries_total counter
            herald_deadline_deliveries_total{route="chat",result="met"} 90
            herald_deadline_deliveries_total{route="chat",result="missed"} 10
            herald_deadline_deliveries_total{route="",result="met"} 5
            herald_deadline_missed_total{route="chat",cause="slow_client"} 7
            herald_deadline_missed_total{route="chat",cause="gateway"} 3
            herald_deadline_missed_total{route="",cause="gateway"} 0
            herald_deadlines_other{result="met"} 1000
            """
        let figures = GatewayDeadlines(prometheusText: text)
        #expect(figures == GatewayDeadlines(met: 95, missedSlowClient: 7, missedGateway: 3))
        #expect(figures.subtracting(GatewayDeadlines(met: 45, missedSlowClient: 7)) == GatewayDeadlines(met: 50, missedGateway: 3))
    }
}

@Suite struct WireDecodingTests {
    @Test func chunkedBodiesDecodeInAnySplit() throws {
        let wire = Array("5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nTrailer: x\r\n\r\nNEXT".utf8)
        for step in [1, 2, 3, 7, wire.count] {
            var decoder = ChunkDecoder()
            var out: [UInt8] = []
            var used = 0
            var offset = 0
            while offset < wire.count, !decoder.isDone {
                let end = min(wire.count, offset + step)
                used += try wire[offset..<end].withUnsafeBytes { try decoder.feed($0, into: &out) }
                offset = end
            }
            #expect(String(decoding: out, as: UTF8.self) == "hello world")
            #expect(decoder.isDone)
            #expect(used == wire.count - 4, "the bytes after the body are not the body's (step \(step))")
        }
        var broken = ChunkDecoder()
        var out: [UInt8] = []
        #expect(throws: LoadFailure.self) { try Array("zz\r\n".utf8).withUnsafeBytes { try broken.feed($0, into: &out) } }
    }

    @Test func serverFramesParseOnlyWhenWhole() throws {
        var frame: [UInt8] = [0x81, 126, 0x01, 0x00]
        frame += [UInt8](repeating: 0x61, count: 256)
        #expect(try frame.dropLast().withUnsafeBytes { try ServerFrame.parse($0) } == nil)
        let parsed = try #require(try frame.withUnsafeBytes { try ServerFrame.parse($0) })
        #expect(parsed == ServerFrame(fin: true, opcode: ServerFrame.text, payload: 4..<260, length: 260))
        #expect(throws: LoadFailure.self) { try ([0x81, 0x85, 1, 2, 3, 4, 5] as [UInt8]).withUnsafeBytes { try ServerFrame.parse($0) } }
        #expect(throws: LoadFailure.self) {
            try ([0x81, 127, 0x80, 0, 0, 0, 0, 0, 0, 1] as [UInt8]).withUnsafeBytes { try ServerFrame.parse($0) }
        }
    }

    @Test func sseEventsEndAtABlankLineOfAnyLineEnding() {
        for (text, events) in [
            ("data: a\n\ndata: b\n\n", 2), ("data: a\r\n\r\ndata: b\r\n\r\n", 2), ("data: a\r\rdata: b\r\r", 2),
            ("data: a\r\n", 0), ("data: a\n\ndata: b\r\n", 1),
        ] {
            let count = Array(text.utf8).withUnsafeBytes { stream in
                var start = 0
                var found = 0
                while let (_, next) = SubscriberFleet.sseEventEnd(in: stream, from: start) {
                    found += 1
                    start = next
                }
                return found
            }
            #expect(count == events, "\(text.debugDescription)")
        }
    }

    @Test func messagesAreToldApartByByteScans() {
        func kind(_ text: String) -> MessageKind { Array(text.utf8).withUnsafeBytes { MessageKind.of($0) } }
        #expect(kind(#"{"type":"event","event":{"a":"\"sentAt\":5","sentAt":1234}}"#) == .event(sentAt: 1234))
        #expect(kind(#"{"type":"gap","reason":"overflow","from":3,"to":9}"#) == .gap)
        #expect(kind("id: 1:4\nevent: herald.gap\ndata: {\"from\":3}") == .gap)
        #expect(kind(#"{"type":"subscribed","id":"b"}"#) == .other)
        #expect(kind(#"{"x": 1, "sentAt": 77}"#) == .event(sentAt: 77))  // re-serialised with spaces
        #expect(kind(#"{"sentAt":1.7e15}"#) == .other)  // not a plain integer: no latency from it
        #expect(kind(#"{"sentAt":"12"}"#) == .other)
        #expect(kind("") == .other)
    }
}

/// The load tool against a real gateway on an ephemeral port.
@Suite(.serialized) struct LoadRunTests {
    private func plan(_ server: TestServer, transport: LoadPlan.Transport = .webSocket, routed: Bool, event: String? = nil) -> LoadPlan {
        let filter = routed ? #"{"type":["bench"],"g":[{i}]}"# : #"{"type":["bench"]}"#
        let subscribeURL =
            transport == .webSocket
            ? "ws://127.0.0.1:\(server.port)/v1/ws"
            : "http://127.0.0.1:\(server.port)/v1/sse?filter="
                + percentEncode(filter).split(separator: "%7Bi%7D", omittingEmptySubsequences: false).joined(separator: "{i}")
        var plan = LoadPlan(
            subscribers: 30, transport: transport, subscribeURL: LoadTemplate(subscribeURL),
            publishURL: LoadTemplate("http://127.0.0.1:\(server.port)/v1/events"),
            event: LoadTemplate(event ?? #"{"type":"bench","id":"e{n}",\#(routed ? #""g":{i},"# : "")"sentAt":{sentAt}}"#), events: 300)
        if transport == .webSocket {
            plan.subscribeMessage = LoadTemplate(#"{"op":"subscribe","id":"s","filter":\#(filter)}"#)
            plan.webSocketProtocol = "herald.v1"
        }
        plan.publishHeaders = [("Authorization", "Bearer \(TestServer.publisherKey)"), ("Content-Type", "application/json")]
        plan.drainTimeout = 1
        return plan
    }

    @Test func routedWebSocketRunDeliversEveryEventToItsSubscriberOnly() throws {
        try withTestServer { server in
            var plan = plan(server, routed: true)
            plan.batch = 1
            plan.rate = 3000
            plan.sources = 3
            let report = try LoadRun.run(plan)
            #expect(report.acceptedEvents == 300)
            #expect(report.expected == 300 && report.delivered == 300 && report.lost == 0 && report.unexpected == 0)
            #expect(report.latencies.count == 300)
            #expect(report.failures.isEmpty)
            #expect(try server.request("GET", "/healthz").status == 200)
        }
    }

    @Test func broadcastSSERunInBatchesReachesEverySubscriber() throws {
        try withTestServer { server in
            var plan = plan(server, transport: .sse, routed: false)
            plan.subscribers = 10
            plan.batch = 10
            plan.threads = 2
            let report = try LoadRun.run(plan)
            #expect(report.delivered == 3000 && report.expected == 3000 && report.lost == 0)
            #expect(report.json.contains(#""lost":0"#))
        }
    }

    @Test func eventsThatNeverArriveCountAsLost() throws {
        try withTestServer { server in
            // Every event says it is for subscriber 1000, which no subscriber's filter is.
            var plan = plan(server, routed: true, event: #"{"type":"bench","g":1000,"n":{n},"i":{i},"sentAt":{sentAt}}"#)
            plan.events = 60
            let report = try LoadRun.run(plan)
            #expect(report.acceptedEvents == 60)
            #expect(report.delivered == 0 && report.lost == 60)
        }
    }

    @Test func refusalsAreReportedNotHidden() throws {
        try withTestServer { server in
            var plan = plan(server, routed: false)
            plan.publishHeaders = [("Authorization", "Bearer wrong-key"), ("Content-Type", "application/json")]
            plan.events = 20
            let report = try LoadRun.run(plan)
            #expect(report.acceptedEvents == 0 && report.refusedPosts == 20)
            #expect(report.failures.first?.contains("HTTP 401") == true)

            var refused = self.plan(server, routed: false)
            refused.subscribeMessage = LoadTemplate(#"{"op":"subscribe","id":"s","filter":{"type":"not-an-array"}}"#)
            #expect(throws: LoadFailure.self) { try LoadRun.run(refused) }
            #expect(try server.request("GET", "/healthz").status == 200)
        }
    }
}
