import HeraldClient
import HeraldServer
import HeraldTestSupport
import Testing

@testable import HeraldLoad

@Suite struct DeliveryLedgerTests {
    @Test func everyNumberOnceInSeqOrderIsComplete() {
        var ledger = DeliveryLedger(events: 5)
        // Publishers race: numbers arrive in another order than seqs, which is fine.
        for (seq, number) in [(10, 1), (11, 0), (12, 2)] { ledger.record(seq: UInt64(seq), number: number) }
        #expect(ledger.lastSeq == 12 && !ledger.isComplete(accepted: 5))
        // A resume from 12 goes on at 13, whatever seqs other traffic took meanwhile.
        for (seq, number) in [(20, 4), (21, 3)] { ledger.record(seq: UInt64(seq), number: number) }
        #expect(ledger.isComplete(accepted: 5) && ledger.isClean && ledger.distinct == 5)
    }

    @Test func repeatsReorderingsAndUnreadableEventsAreCounted() {
        var ledger = DeliveryLedger(events: 70)
        ledger.record(seq: 1, number: 64)
        ledger.record(seq: 2, number: 65)
        ledger.record(seq: 2, number: 65)  // a resume from too far back
        #expect(ledger.duplicates == 1 && ledger.outOfOrder == 0)
        ledger.record(seq: 1, number: 3)  // a new event with an older seq
        #expect(ledger.outOfOrder == 1 && ledger.lastSeq == 2)
        ledger.record(seq: nil, number: 4)
        ledger.record(seq: 9, number: 70)  // never published
        ledger.record(seq: 10, number: nil)
        #expect(ledger.unreadable == 3 && ledger.lastSeq == 10)
        #expect(!ledger.isClean && ledger.distinct == 3 && !ledger.isComplete(accepted: 3))
    }
}

@Suite struct ReconnectScheduleTests {
    @Test func popsWhatIsDueSoonestFirst() {
        var schedule = ReconnectSchedule()
        var generator = SystemRandomNumberGenerator()
        let times = (0..<500).map { _ in UInt64.random(in: 1...1_000, using: &generator) }
        for (token, time) in times.enumerated() { schedule.add(token, at: time) }
        #expect(schedule.popDue(0) == nil && schedule.count == 500)
        var popped: [UInt64] = []
        while let token = schedule.popDue(500) { popped.append(times[token]) }
        #expect(popped == times.filter { $0 <= 500 }.sorted())
        schedule.add(9999, at: 600)
        while let token = schedule.popDue(1_000) { popped.append(token == 9999 ? 600 : times[token]) }
        #expect(popped == (times + [600]).sorted() && schedule.count == 0)
    }

    @Test func backoffWithoutAHintIsFullJitterUnderAnExponentialStep() {
        #expect(StormPlan.backoffNanoseconds(attempt: 1, random: 1) == 1_000_000_000)
        #expect(StormPlan.backoffNanoseconds(attempt: 1, random: 0) == 0)
        #expect(StormPlan.backoffNanoseconds(attempt: 40, random: 1) == 15_000_000_000)
    }
}

@Suite struct HeraldWireTests {
    private func bytes<T>(_ text: String, _ body: (UnsafeRawBufferPointer) -> T) -> T { Array(text.utf8).withUnsafeBytes(body) }

    @Test func seqsAndNumbersAreReadFromEvents() {
        let frame = #"{"type":"event","subs":["b"],"seq":1043,"event":{"eventId":"b1-7","n":7,"sentAt":99}}"#
        #expect(bytes(frame) { HeraldWire.webSocketSeq(in: $0) } == 1043)
        #expect(bytes(frame) { HeraldWire.eventNumber(in: $0) } == 7)
        #expect(bytes(#"{"x":"a\"n\":5","sentAt":1}"#) { HeraldWire.eventNumber(in: $0) } == nil)
        #expect(bytes(#"{"type":"subscribed","id":"b"}"#) { HeraldWire.webSocketSeq(in: $0) } == nil)
    }

    @Test func sseIDsGiveEpochAndSeq() {
        let block = "id: 9f2cab:1041\nevent: VibrationRecorded\ndata: {\"n\":3,\"sentAt\":5}"
        let id = bytes(block) { stream in
            HeraldWire.sseID(in: stream).map {
                (String(decoding: UnsafeRawBufferPointer(rebasing: stream[$0.epoch]), as: UTF8.self), $0.seq)
            }
        }
        #expect(id?.0 == "9f2cab" && id?.1 == 1041)
        #expect(bytes("id:12\ndata: {}") { HeraldWire.sseID(in: $0)?.seq } == 12)
        #expect(bytes("id:12\ndata: {}") { HeraldWire.sseID(in: $0)?.epoch.isEmpty } == true)
        #expect(bytes("data: {}\nid: 1:2") { HeraldWire.sseID(in: $0) } == nil)  // Herald writes the id first
        #expect(bytes("retry: 2500") { HeraldWire.sseID(in: $0) } == nil)
    }

    @Test func subscribedAnswersAndRefusalsAreRead() {
        let answer = bytes(#"{"type":"subscribed","id":"b","position":77,"epoch":"k3x9"}"#) { HeraldWire.subscribed($0) }
        #expect(answer.position == 77 && answer.epoch == Array("k3x9".utf8))
        #expect(
            bytes(#"{"error":{"code":"too_many_connections","retryAfterMs":3000}}"#) { HeraldWire.retryAfterMilliseconds(in: $0) } == 3000)
        #expect(bytes("too many resumes; retryAfterMs=1250") { HeraldWire.retryAfterMilliseconds(in: $0) } == 1250)
        #expect(bytes(#"{"error":{"code":"overloaded"}}"#) { HeraldWire.retryAfterMilliseconds(in: $0) } == nil)
    }
}

@Suite struct StormPlanTests {
    private func plan(storm: StormPlan?) -> LoadPlan {
        var plan = LoadPlan(
            subscribers: 2, transport: .webSocket, subscribeURL: LoadTemplate("ws://127.0.0.1:1/v1/ws"),
            publishURL: LoadTemplate("http://127.0.0.1:1/v1/events"), event: LoadTemplate(#"{"n":{n},"sentAt":{sentAt}}"#), events: 100)
        plan.subscribeMessage = LoadTemplate(#"{"op":"subscribe","id":"b","filter":{"t":["x"]}}"#)
        plan.stalled = 1
        plan.rate = 50
        plan.storm = storm
        return plan
    }

    @Test func stormClientsComeAfterReadersAndStalledOnes() throws {
        let plan = plan(storm: StormPlan(clients: 3, at: 0.5, window: 1))
        #expect(throws: Never.self) { try plan.validate() }
        #expect((0..<6).map(plan.role(of:)) == [.reader, .reader, .stalled, .storm, .storm, .storm])
        #expect(plan.connections == 6)
    }

    @Test func stormsThatCannotBeCheckedAreRefused() {
        var late = plan(storm: StormPlan(clients: 3, at: 2, window: 1))  // publishing lasts 2 s
        #expect(throws: LoadFailure.self) { try late.validate() }
        late.storm?.at = 1
        late.event = LoadTemplate(#"{"sentAt":{sentAt}}"#)
        #expect(throws: LoadFailure.self) { try late.validate() }  // no event number
        var routed = plan(storm: StormPlan(clients: 3, at: 0.5, window: 1))
        routed.event = LoadTemplate(#"{"g":{i},"n":{n},"sentAt":{sentAt}}"#)
        #expect(throws: LoadFailure.self) { try routed.validate() }
    }
}

/// Storms against a real gateway on an ephemeral port.
@Suite(.serialized) struct StormRunTests {
    private func plan(_ server: TestServer, transport: LoadPlan.Transport) -> LoadPlan {
        let filter = #"{"type":["storm"]}"#
        let subscribeURL =
            transport == .webSocket
            ? "ws://127.0.0.1:\(server.port)/v1/ws" : "http://127.0.0.1:\(server.port)/v1/sse?filter=" + percentEncode(filter)
        var plan = LoadPlan(
            subscribers: 5, transport: transport, subscribeURL: LoadTemplate(subscribeURL),
            publishURL: LoadTemplate("http://127.0.0.1:\(server.port)/v1/events"),
            event: LoadTemplate(#"{"type":"storm","id":"s\#(transport.rawValue){n}","n":{n},"sentAt":{sentAt}}"#), events: 400)
        if transport == .webSocket {
            plan.subscribeMessage = LoadTemplate(#"{"op":"subscribe","id":"s","filter":\#(filter)}"#)
            plan.webSocketProtocol = "herald.v1"
        }
        plan.publishHeaders = [("Authorization", "Bearer \(TestServer.publisherKey)"), ("Content-Type", "application/json")]
        plan.rate = 400
        plan.threads = 2
        plan.sources = 2
        plan.drainTimeout = 2
        plan.storm = StormPlan(clients: 40, at: 0.3, window: 0.3)
        return plan
    }

    @Test(arguments: [LoadPlan.Transport.webSocket, .sse])
    func everyClientResumesCompleteAndInOrder(transport: LoadPlan.Transport) throws {
        try withTestServer { server in
            let report = try LoadRun.run(plan(server, transport: transport))
            let storm = try #require(report.storm)
            #expect(report.failures.isEmpty, "\(report.failures)")
            #expect(report.acceptedEvents == 400 && report.lost == 0 && report.gaps == 0)
            #expect(storm.stormComplete == 40 && storm.undisturbedComplete == 5 && storm.resumes == 40 && storm.caughtUp == 40)
            #expect(storm.outOfOrder == 0 && storm.duplicates == 0 && storm.seconds != nil)
            #expect(report.latencies.count == 5 * 400)
            #expect(report.json.contains(#""storm_complete":40"#))
        }
    }
}
