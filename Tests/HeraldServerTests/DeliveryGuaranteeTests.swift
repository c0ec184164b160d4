import HeraldClient
import HeraldCore
import HeraldTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Resume, gap notices, overflow policies and idempotent ingest, over real sockets.
@Suite struct DeliveryGuaranteeTests {
    /// Publishes `count` events `{"k":"tick","n":…}` (plus `extra` fields) in batches.
    static func publish(_ server: TestServer, from: Int, count: Int, extra: String = "", batch: Int = 100) throws {
        var n = from
        while n < from + count {
            let size = min(batch, from + count - n)
            let events = (n..<(n + size)).map { #"{"k":"tick","n":\#($0)\#(extra)}"# }
            let response = try server.publish("[" + events.joined(separator: ",") + "]")
            guard response.status == 202 else { throw TestFailure("publish refused: \(response.status) \(response.bodyText)") }
            n += size
        }
    }

    @Test func aWebSocketResumesWithExactlyTheMissedMatchingEventsThenLiveOnes() throws {
        try withTestServer { server in
            let first = try server.webSocket()
            try first.send(json: #"{"op":"subscribe","id":"s","filter":{"k":["tick"]}}"#)
            _ = try first.receiveJSON()
            try Self.publish(server, from: 0, count: 5)
            var last = 0.0
            for _ in 0..<5 { if case .number(let seq)? = try first.receiveJSON()["seq"] { last = seq } }
            first.abort()  // the connection drops

            #expect(try server.publish(#"[{"k":"tock"},{"k":"tick","n":5},{"k":"tick","n":6}]"#).status == 202)
            let second = try server.webSocket()
            try second.send(json: #"{"op":"subscribe","id":"s","filter":{"k":["tick"]},"since":\#(Int(last))}"#)
            #expect(try second.receiveJSON() == json(#"{"type":"subscribed","id":"s","position":8,"epoch":"\#(server.epoch)"}"#))
            #expect(try second.receiveJSON()["event"]?["n"] == .number(5))
            #expect(try second.receiveJSON()["event"]?["n"] == .number(6))
            try Self.publish(server, from: 7, count: 1)
            let live = try second.receiveJSON()
            #expect(live["event"]?["n"] == .number(7))
            #expect(live["seq"] == .number(9))
        }
    }

    @Test func sseResumesFromLastEventID() throws {
        try withTestServer { server in
            try Self.publish(server, from: 0, count: 10)
            let stream = try server.sse(filter: #"{"k":["tick"]}"#, headers: [("Last-Event-ID", "7")])
            #expect(try stream.next(timeout: .seconds(5))?.id == "\(server.epoch):8")
            #expect(try stream.next(timeout: .seconds(5))?.id == "\(server.epoch):9")
            #expect(try stream.next(timeout: .seconds(5))?.id == "\(server.epoch):10")
            let query = try server.sse(filter: #"{"k":["tick"]}"#, query: [("lastEventId", "9")])
            #expect(try query.next(timeout: .seconds(5))?.id == "\(server.epoch):10")
        }
    }

    @Test func historyThatNoLongerReachesBackGivesAnExpiredGapFirst() throws {
        try withTestServer(testConfig { $0.history.maxEvents = 3 }) { server in
            try Self.publish(server, from: 0, count: 10)
            let ws = try server.webSocket()
            try ws.send(json: #"{"op":"subscribe","id":"s","filter":{},"since":2}"#)
            _ = try ws.receiveJSON()
            #expect(
                try ws.receiveJSON() == json(#"{"type":"gap","subs":["s"],"from":3,"to":7,"reason":"expired","epoch":"\#(server.epoch)"}"#))
            for seq in 8...10 { #expect(try ws.receiveJSON()["seq"] == .number(Double(seq))) }
            let sse = try server.sse(filter: "{}", headers: [("Last-Event-ID", "1")])
            let gap = try #require(try sse.next(timeout: .seconds(5)))
            #expect(gap.event == "herald.gap")
            #expect(gap.data == #"{"from":2,"to":7,"reason":"expired","epoch":"\#(server.epoch)"}"#)
            #expect(try sse.next(timeout: .seconds(5))?.id == "\(server.epoch):8")
        }
    }

    /// Events published while a client replays history arrive once, in order, after it.
    /// The replay is complete; live events behind a reader slower than an unpaced
    /// publisher may overflow the 50-message queue, and then every one is reported in a
    /// gap (with several loops the publisher is answered before the subscriber's loop
    /// delivers, so nothing paces it).
    @Test(arguments: [1, 2]) func resumeDuringConcurrentPublishingHasNoDuplicateOrReordering(loops: Int) throws {
        try withTestServer(
            testConfig {
                $0.delivery.queue.maxMessages = 50
                $0.listen.loops = loops
            }
        ) { server in
            try Self.publish(server, from: 0, count: 2000)
            let publisher = TestThread { _ = try? Self.publish(server, from: 2000, count: 2000, batch: 20) }
            let ws = try server.webSocket()
            try ws.send(json: #"{"op":"subscribe","id":"s","filter":{"k":["tick"]},"since":0}"#)
            _ = try ws.receiveJSON()
            var messages: [JSONValue] = []
            var covered = 0  // the highest seq received or reported in a gap
            while covered < 4000 {
                let message = try ws.receiveJSON(timeout: .seconds(10))
                messages.append(message)
                if case .number(let seq)? = message["seq"] { covered = Int(seq) }
                if case .number(let to)? = message["to"] { covered = Int(to) }
            }
            publisher.join()
            _ = try Self.checkCoverage(messages, upTo: 4000)
            let replayed = messages.prefix { $0["type"] == .string("event") }.compactMap { $0["event"]?["n"] }
            #expect(replayed.count >= 2000 && replayed.prefix(2000) == ArraySlice((0..<2000).map { JSONValue.number(Double($0)) }))
        }
    }

    /// Runs `body` with a client that stops reading while `count` events of ~1 KiB go out,
    /// then reads everything it is sent.
    static func stalledClient(
        policy: String, extraConfig: (inout HeraldConfig) -> Void = { _ in }, count: Int = 12000,
        keyOf: (Int) -> String = { _ in "" }
    ) throws -> (messages: [JSONValue], server: HeraldConfig) {
        var config = testConfig {
            $0.delivery.queue = QueueLimits(
                maxMessages: 100, maxBytes: 1 << 20, policy: OverflowPolicy(rawValue: policy)!,
                coalesceKey: policy == "coalesce" ? "sym" : nil)
            $0.history.maxEvents = 100_000
            $0.history.maxBytes = 256 << 20
        }
        extraConfig(&config)
        let padding = String(repeating: "p", count: 1000)
        var messages: [JSONValue] = []
        try withTestServer(config) { server in
            let ws = try server.webSocket()
            try ws.send(json: #"{"op":"subscribe","id":"s","filter":{"k":["tick"]}}"#)
            _ = try ws.receiveJSON()
            var n = 0
            while n < count {
                let events = (n..<min(n + 100, count)).map { #"{"k":"tick","n":\#($0),"sym":"\#(keyOf($0))","pad":"\#(padding)"}"# }
                #expect(try server.publish("[" + events.joined(separator: ",") + "]").status == 202)
                n += 100
            }
            while true {
                do {
                    switch try ws.receive(timeout: .milliseconds(1500)) {
                    case .text(let text): messages.append(try JSONValue(parsing: text))
                    case .close(let code, let reason):
                        messages.append(.object([.init("close", .number(Double(code ?? 0))), .init("reason", .string(reason))]))
                    case .binary: throw TestFailure("binary frame")
                    }
                } catch let error as ClientError where error.isTimeout || error.isEOF {
                    break
                }
            }
        }
        return (messages, config)
    }

    /// Every seq is received once or reported in exactly one gap, in increasing order.
    static func checkCoverage(_ messages: [JSONValue], upTo last: Int) throws -> (events: Int, gaps: Int) {
        var next = 1, events = 0, gaps = 0
        for message in messages {
            switch message["type"]?.stringValue {
            case "event":
                guard case .number(let seq)? = message["seq"], Int(seq) >= next else {
                    throw TestFailure("out of order at \(message["seq"].map { $0.serialized } ?? "?")")
                }
                guard Int(seq) == next else { throw TestFailure("seq \(next)..\(Int(seq) - 1) missing without a gap notice") }
                next = Int(seq) + 1
                events += 1
            case "gap":
                guard case .number(let from)? = message["from"], case .number(let to)? = message["to"], Int(from) == next else {
                    throw TestFailure("gap does not start at \(next): \(message.serialized)")
                }
                #expect(message["reason"] == .string("overflow"))
                next = Int(to) + 1
                gaps += 1
            default:
                continue
            }
        }
        guard next == last + 1 else { throw TestFailure("stopped at \(next - 1), expected \(last)") }
        return (events, gaps)
    }

    @Test func dropOldestDeliversEverythingElseAndReportsTheGaps() throws {
        let (messages, _) = try Self.stalledClient(policy: "drop-oldest")
        let coverage = try Self.checkCoverage(messages, upTo: 12000)
        #expect(coverage.gaps >= 1)
        #expect(coverage.events < 12000)
        #expect(messages.last?["event"]?["n"] == .number(11999), "drop-oldest keeps the newest")
    }

    @Test func dropNewestKeepsTheOldestAndReportsTheGaps() throws {
        let (messages, _) = try Self.stalledClient(policy: "drop-newest")
        let coverage = try Self.checkCoverage(messages, upTo: 12000)
        #expect(coverage.gaps >= 1)
        #expect(messages.first(where: { $0["type"] == .string("event") })?["event"]?["n"] == .number(0))
    }

    @Test func coalesceKeepsTheNewestEventOfEveryKey() throws {
        let (messages, _) = try Self.stalledClient(policy: "coalesce", keyOf: { "S\($0 % 7)" })
        var lastSeq = 0.0
        var seen = Set<String>()
        for message in messages where message["type"] == .string("event") {
            guard case .number(let seq)? = message["seq"], seq > lastSeq else { throw TestFailure("out of order") }
            lastSeq = seq
            if case .number(let n)? = message["event"]?["n"], n >= 12000 - 7 { seen.insert(message["event"]?["sym"]?.stringValue ?? "") }
        }
        #expect(seen.count == 7, "the newest event of each of the 7 keys arrives")
        #expect(messages.filter { $0["type"] == .string("event") }.count < 12000)
    }

    @Test func disconnectClosesWith4000AndTheClientResumesFromHistory() throws {
        var config = testConfig {
            $0.delivery.queue = QueueLimits(maxMessages: 100, policy: .disconnect)
            $0.history.maxEvents = 100_000
            $0.history.maxBytes = 256 << 20
        }
        config.limits.maxBodyBytes = 1 << 20
        try withTestServer(config) { server in
            let padding = String(repeating: "p", count: 1000)
            let ws = try server.webSocket()
            try ws.send(json: #"{"op":"subscribe","id":"s","filter":{"k":["tick"]}}"#)
            _ = try ws.receiveJSON()
            try Self.publish(server, from: 0, count: 12000, extra: #","pad":"\#(padding)""#)
            var last = 0
            var closeCode: UInt16?
            while closeCode == nil {
                switch try ws.receive(timeout: .seconds(5)) {
                case .text(let text):
                    if case .number(let seq)? = try JSONValue(parsing: text)["seq"] {
                        #expect(Int(seq) == last + 1)
                        last = Int(seq)
                    }
                case .close(let code, _): closeCode = code
                case .binary: break
                }
            }
            #expect(closeCode == 4000)
            #expect(last < 12000)
            let resumed = try server.webSocket()
            try resumed.send(json: #"{"op":"subscribe","id":"s","filter":{"k":["tick"]},"since":\#(last)}"#)
            _ = try resumed.receiveJSON()
            for seq in (last + 1)...12000 {
                guard try resumed.receiveJSON()["seq"] == .number(Double(seq)) else { throw TestFailure("resume broke at \(seq)") }
            }
        }
    }

    /// 50 readers receive 20,000 events while one WebSocket and one SSE client stop
    /// reading. The stalled pair also subscribes to 2,000 bulky events (10 KiB each, 20 MB
    /// in all) that nobody else wants, so their queues overflow for certain.
    @Test func aStalledClientDoesNotDelayOthersAndMemoryStaysBounded() throws {
        // The readers connect through a route whose queue holds a few bursts: on two cores
        // shared with the rest of the suite a reader thread may be starved for a moment,
        // and that must not read as the stalled clients' fault. The stalled pair keeps the
        // small default queue, so it overflows for certain.
        let ticks = try Pattern(parsing: Array(#"{"k":["tick"]}"#.utf8))
        let config = testConfig {
            $0.delivery.queue = QueueLimits(maxMessages: 200, maxBytes: 256 << 10)
            $0.history.maxEvents = 1000
            $0.routes = [.init(name: "ticks", pattern: ticks, queue: QueueLimits(maxMessages: 5000, maxBytes: 512 << 10))]
        }
        try withTestServer(config) { server in
            let stalledWS = try server.webSocket()
            try stalledWS.send(json: #"{"op":"subscribe","id":"s","filter":{}}"#)
            let stalledSSE = try server.sse(filter: "{}")
            let readers = 50
            let count = 20_000
            final class Result: @unchecked Sendable {
                var received = 0
                var inOrder = true
                var worstLatency = Duration.zero
            }
            final class Owned: @unchecked Sendable {
                let client: WebSocketClient
                init(_ c: WebSocketClient) { client = c }
            }
            let results = (0..<readers).map { _ in Result() }
            let owned = try (0..<readers).map { i -> Owned in
                let ws = try server.webSocket(query: "?route=ticks")
                try ws.send(json: #"{"op":"subscribe","id":"r\#(i)","filter":{"k":["tick"]}}"#)
                _ = try ws.receiveJSON()
                return Owned(ws)
            }
            let rssBefore = residentMegabytes()
            let threads = (0..<readers).map { i in
                TestThread {
                    var expected = 0
                    while expected < count, let message = try? owned[i].client.receive(timeout: .seconds(30)),
                        case .text(let text) = message
                    {
                        guard text.contains(#""n":\#(expected)}"#) else {
                            results[i].inOrder = false
                            return
                        }
                        expected += 1
                    }
                    results[i].received = expected
                }
            }
            let bulk = #","pad":""# + String(repeating: "b", count: 10_000) + #"""#
            for round in 0..<20 {
                try Self.publish(server, from: round * 1000, count: 1000)
                let events = (0..<100).map { #"{"k":"bulk","n":\#($0)\#(bulk)}"# }
                #expect(try server.publish("[" + events.joined(separator: ",") + "]").status == 202)
            }
            threads.forEach { $0.join() }
            let rssAfter = residentMegabytes()
            for (i, result) in results.enumerated() {
                #expect(result.received == count, "reader \(i) got \(result.received)")
                #expect(result.inOrder)
            }
            #expect(rssAfter - rssBefore < 100, "RSS grew by \(rssAfter - rssBefore) MiB")
            // The stalled clients' queues were bounded: what they read now has gap notices.
            var stalledEvents = 0
            var sawGap = false
            while let message = try? stalledWS.receive(timeout: .milliseconds(1500)), case .text(let text) = message {
                if text.hasPrefix(#"{"type":"event""#) { stalledEvents += 1 }
                if text.hasPrefix(#"{"type":"gap""#) { sawGap = true }
            }
            #expect(sawGap)
            #expect(stalledEvents < count + 2000)
            var sawSSEGap = false
            while let event = try? stalledSSE.next(timeout: .milliseconds(1500)) {
                if event.event == "herald.gap" { sawSSEGap = true }
            }
            #expect(sawSSEGap)
        }
    }

    @Test func theSameEventPostedThreeTimesIsDeliveredOnce() throws {
        try withTestServer { server in
            let ws = try server.webSocket()
            try ws.send(json: #"{"op":"subscribe","id":"s","filter":{}}"#)
            _ = try ws.receiveJSON()
            let event = #"{"source":"billing","eventId":"inv-7","k":"x"}"#
            var answers: [JSONValue] = []
            for _ in 0..<3 { answers.append(try server.publish(event).json) }
            #expect(answers[0] == json(#"{"accepted":[{"id":"inv-7","seq":1,"duplicate":false}],"epoch":"\#(server.epoch)"}"#))
            #expect(answers[1] == json(#"{"accepted":[{"id":"inv-7","seq":1,"duplicate":true}],"epoch":"\#(server.epoch)"}"#))
            #expect(answers[2] == answers[1])
            // Concurrently, and within one batch: still once.
            let concurrent = #"{"source":"billing","eventId":"inv-8"}"#
            let threads = (0..<3).map { _ in TestThread { _ = try? server.publish(concurrent) } }
            threads.forEach { $0.join() }
            let batch = try server.publish(#"[{"source":"s","id":"b"},{"source":"s","id":"b"},{"source":"t","id":"b"}]"#).json
            #expect(
                batch
                    == json(
                        #"{"accepted":[{"id":"b","seq":3,"duplicate":false},{"id":"b","seq":3,"duplicate":true},{"id":"b","seq":4,"duplicate":false}],"epoch":"\#(server.epoch)"}"#
                    ))
            var seqs: [Double] = []
            for _ in 0..<4 { if case .number(let seq)? = try ws.receiveJSON()["seq"] { seqs.append(seq) } }
            #expect(seqs == [1, 2, 3, 4])
            try ws.send(json: #"{"op":"ping"}"#)
            #expect(try ws.receiveJSON()["type"] == .string("pong"), "nothing else was delivered")
        }
    }

    @Test func webSocketsThatStopAnsweringPingsAreClosed() throws {
        try withTestServer(
            testConfig {
                $0.delivery.pingSeconds = 1
                $0.delivery.idleTimeoutSeconds = 2
            }
        ) { server in
            let alive = try server.webSocket()
            let silent = try server.webSocket()
            let start = ContinuousClock.now
            while ContinuousClock.now - start < .milliseconds(3500) {
                _ = try? alive.receive(timeout: .milliseconds(300))  // answers pings
            }
            #expect(alive.pingsReceived >= 2)
            try alive.send(json: #"{"op":"ping"}"#)
            #expect(try alive.receiveJSON()["type"] == .string("pong"))
            var closed: UInt16?
            while closed == nil, let message = try? silent.receive(timeout: .seconds(2)) {
                if case .close(let code, _) = message { closed = code }
            }
            #expect(closed == 1001)
        }
    }
}

/// This process's resident set size in MiB (from /proc/self/status).
func residentMegabytes() -> Int {
    guard let file = fopen("/proc/self/status", "r") else { return 0 }
    defer { fclose(file) }
    var line = [CChar](repeating: 0, count: 256)
    while fgets(&line, Int32(line.count), file) != nil {
        let text = String(decoding: line.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        if text.hasPrefix("VmRSS:") {
            return (Int(text.split(separator: " ").dropFirst().first ?? "0") ?? 0) / 1024
        }
    }
    return 0
}
