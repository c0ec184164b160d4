import HeraldCore
import Testing

/// The client queue's bound and the WebSocket message decoder.
@Suite struct DeliveryTests {
    func event(_ seq: UInt64, size: Int = 10, key: UInt64? = nil, at time: UInt64 = 0) -> Event {
        let json = Array(#"{"p":""#.utf8) + Array(repeating: UInt8(ascii: "x"), count: size) + Array(#""}"#.utf8)
        return json.withUnsafeBytes {
            Event(epoch: StreamEpoch("e")!, seq: seq, id: "\(seq)", source: "", type: "t", acceptedAt: time, json: $0, coalesceKeys: [key])
        }
    }

    func seqs(_ queue: inout ClientQueue) -> [String] {
        var out: [String] = []
        while let next = queue.next() {
            switch next {
            case .event(let e, _, _): out.append("\(e.seq)")
            case .control(let bytes): out.append(String(decoding: bytes, as: UTF8.self))
            case .gap(let from, let to, _, let reason): out.append("\(reason.rawValue) \(from)-\(to)")
            }
        }
        return out
    }

    @Test func deliversInOrderWithinTheBound() {
        var queue = ClientQueue(limits: QueueLimits(maxMessages: 10, maxBytes: 1 << 20))
        for seq: UInt64 in 1...5 { #expect(queue.enqueue(event(seq), subscriptions: SubscriptionSet(slot: 0)) == .queued) }
        #expect(queue.enqueue(control: Array("ack".utf8)) == .queued)
        #expect(queue.count == 6)
        #expect(seqs(&queue) == ["1", "2", "3", "4", "5", "ack"])
        #expect(queue.byteCount == 0)
    }

    @Test func dropsTheOldestEventsAndReportsTheGapFirst() {
        var queue = ClientQueue(limits: QueueLimits(maxMessages: 3, maxBytes: 1 << 20))
        // Control messages count towards the bound but are never dropped.
        _ = queue.enqueue(control: Array("ack".utf8))
        for seq: UInt64 in 1...2 { _ = queue.enqueue(event(seq), subscriptions: SubscriptionSet(slot: 1)) }
        #expect(queue.enqueue(event(3), subscriptions: SubscriptionSet(slot: 1)) == .queued)
        #expect(queue.enqueue(event(4), subscriptions: SubscriptionSet(slot: 1)) == .queued)
        #expect(queue.droppedCount == 2)
        #expect(seqs(&queue) == ["ack", "overflow 1-2", "3", "4"])
    }

    @Test func theByteBoundCountsToo() {
        let size = event(1, size: 100).wireBytes(for: .webSocket)
        var queue = ClientQueue(limits: QueueLimits(maxMessages: 100, maxBytes: size * 2))
        for seq: UInt64 in 1...4 { _ = queue.enqueue(event(seq, size: 100), subscriptions: SubscriptionSet(slot: 0)) }
        #expect(queue.byteCount <= size * 2)
        #expect(seqs(&queue) == ["overflow 1-2", "3", "4"])
    }

    @Test func aQueueChargesWhatItsTransportSendsOnce() {
        // Each event is charged the bytes of its own transport's encoding, not of both.
        let big = event(1, size: 200_000)
        for transport in TransportKind.allCases {
            var queue = ClientQueue(limits: QueueLimits(maxMessages: 10, maxBytes: 10 << 20), transport: transport)
            for seq: UInt64 in 1...5 { _ = queue.enqueue(event(seq, size: 200_000), subscriptions: SubscriptionSet(slot: 0)) }
            #expect(queue.byteCount == 5 * big.wireBytes(for: transport))
            #expect(queue.byteCount < 5 * 200_000 + 5 * 100, "\(transport)")
            #expect(big.byteCount > 2 * 200_000, "the event itself holds both encodings")
        }
    }

    @Test func dropNewestKeepsWhatWasQueuedAndReportsTheGapAfterIt() {
        var queue = ClientQueue(limits: QueueLimits(maxMessages: 2, policy: .dropNewest))
        for seq: UInt64 in 1...5 { _ = queue.enqueue(event(seq), subscriptions: SubscriptionSet(slot: 0)) }
        #expect(queue.droppedCount == 3)
        #expect(seqs(&queue) == ["1", "2", "overflow 3-5"])
        _ = queue.enqueue(event(6), subscriptions: SubscriptionSet(slot: 0))
        #expect(seqs(&queue) == ["6"])
    }

    @Test func disconnectReportsTheOverflow() {
        var queue = ClientQueue(limits: QueueLimits(maxMessages: 2, policy: .disconnect))
        #expect(queue.enqueue(event(1), subscriptions: SubscriptionSet(slot: 0)) == .queued)
        #expect(queue.enqueue(event(2), subscriptions: SubscriptionSet(slot: 0)) == .queued)
        #expect(queue.enqueue(event(3), subscriptions: SubscriptionSet(slot: 0)) == .overflow)
    }

    @Test func coalesceKeepsTheNewestEventPerKeyInOrder() {
        var queue = ClientQueue(limits: QueueLimits(maxMessages: 3, policy: .coalesce, coalesceKey: "symbol"), coalesceSlot: 0)
        // Keys: 1=AAPL, 2=MSFT, 3=AAPL (replaces 1), 4=GOOG (replaces nothing: the oldest goes, with a gap)
        #expect(queue.enqueue(event(1, key: 10), subscriptions: SubscriptionSet(slot: 0)) == .queued)
        #expect(queue.enqueue(event(2, key: 20), subscriptions: SubscriptionSet(slot: 0)) == .queued)
        #expect(queue.enqueue(event(3, key: 20), subscriptions: SubscriptionSet(slot: 0)) == .queued)
        #expect(queue.enqueue(event(4, key: 10), subscriptions: SubscriptionSet(slot: 0)) == .queued)
        #expect(queue.coalescedCount == 1 && queue.droppedCount == 0)
        #expect(queue.enqueue(event(5, key: 30), subscriptions: SubscriptionSet(slot: 0)) == .queued)
        #expect(queue.coalescedCount == 1 && queue.droppedCount == 1)
        #expect(seqs(&queue) == ["overflow 2-2", "3", "4", "5"])
    }

    @Test func sheddingDropsOldestEventsToATarget() {
        var queue = ClientQueue(limits: QueueLimits(maxMessages: 100))
        for seq: UInt64 in 1...10 { _ = queue.enqueue(event(seq), subscriptions: SubscriptionSet(slot: 0)) }
        let lastFour = (UInt64(7)...10).reduce(0) { $0 + event($1).byteCount }
        #expect(queue.shed(toBytes: lastFour) == 6)
        #expect(seqs(&queue) == ["overflow 1-6", "7", "8", "9", "10"])
    }

    @Test func historyIsBoundedByCountBytesAndAge() {
        var history = History(limits: HistoryLimits(maxEvents: 3, maxBytes: 1 << 20, maxAgeSeconds: 10))
        for seq: UInt64 in 1...5 { history.append(event(seq, at: seq * 1_000_000_000), now: seq * 1_000_000_000) }
        #expect(history.count == 3)
        #expect(history.firstSeq == 3)
        #expect(history.event(seq: 2) == nil)
        #expect(history.event(seq: 4)?.seq == 4)
        #expect(history.event(seq: 6) == nil)
        history.expire(now: 14_500_000_000)
        #expect(history.firstSeq == 5, "events older than 10 s are gone")
        let size = event(1).byteCount
        var small = History(limits: HistoryLimits(maxEvents: 100, maxBytes: size * 2))
        for seq: UInt64 in 1...4 { small.append(event(seq), now: 0) }
        #expect(small.count == 2)
        var none = History(limits: HistoryLimits(maxEvents: 0))
        none.append(event(1), now: 0)
        #expect(none.count == 0)
    }

    @Test func dedupRemembersWithinTheWindowAndTheBound() {
        var dedup = Deduplicator(windowSeconds: 10, maxEntries: 2)
        dedup.record(source: "s", id: "a", seq: 1, now: 0)
        #expect(dedup.lookup(source: "s", id: "a", now: 1) == 1)
        #expect(dedup.lookup(source: "other", id: "a", now: 1) == nil)
        dedup.record(source: "s", id: "b", seq: 2, now: 2_000_000_000)
        dedup.record(source: "s", id: "c", seq: 3, now: 3_000_000_000)
        #expect(dedup.lookup(source: "s", id: "a", now: 4_000_000_000) == nil, "the oldest key goes past maxEntries")
        #expect(dedup.lookup(source: "s", id: "c", now: 12_000_000_000) == 3)
        #expect(dedup.lookup(source: "s", id: "b", now: 12_500_000_000) == nil, "past the window")
    }

    @Test func controlMessagesPastTheBoundAreAnOverflow() {
        var queue = ClientQueue(limits: QueueLimits(maxMessages: 2, maxBytes: 1 << 20))
        #expect(queue.enqueue(control: [1]) == .queued)
        #expect(queue.enqueue(control: [2]) == .queued)
        #expect(queue.enqueue(control: [3]) == .overflow)
    }

    @Test func unsubscribingForgetsQueuedEventsOfThatSubscription() {
        var queue = ClientQueue(limits: QueueLimits())
        var both = SubscriptionSet(slot: 0)
        both.insert(1)
        _ = queue.enqueue(event(1), subscriptions: SubscriptionSet(slot: 0))
        _ = queue.enqueue(event(2), subscriptions: both)
        queue.removeSubscription(0)
        guard case .event(let e, let subs, _)? = queue.next() else {
            Issue.record("expected an event")
            return
        }
        #expect(e.seq == 2)
        #expect(subs == SubscriptionSet(slot: 1))
        #expect(queue.isEmpty)
    }

    @Test func subscriptionSetsIterateInOrder() {
        var set = SubscriptionSet()
        for slot in [127, 3, 64, 0] { set.insert(slot) }
        var slots: [Int] = []
        set.forEach { slots.append($0) }
        #expect(slots == [0, 3, 64, 127])
        set.remove(64)
        #expect(!set.contains(64))
        #expect(set.contains(127))
    }

    @Test(arguments: [
        (
            #"{"op":"subscribe","id":"s1","filter":{"a":[1]},"route":"chat","since":1041}"#,
            ClientMessage.subscribe(
                id: "s1", filter: .object([.init("a", .array([.number(1)]))]), route: "chat", since: ResumePosition(epoch: nil, seq: 1041))
        ),
        (
            #"{"op":"subscribe","id":"s1","filter":{},"since":7,"epoch":"k3f9"}"#,
            .subscribe(id: "s1", filter: .object([]), route: nil, since: ResumePosition(epoch: StreamEpoch("k3f9"), seq: 7))
        ),
        (#"{"op":"subscribe","id":"s2","route":"chat"}"#, .subscribe(id: "s2", filter: nil, route: "chat", since: nil)),
        (#"{"op":"unsubscribe","id":"s1"}"#, .unsubscribe(id: "s1")),
        (
            #"{"op":"publish","event":{ "a" : 12345678901234567 , "e":1.50}}"#,
            .publish(event: try! RawJSON(parsing: Array(#"{"a":12345678901234567,"e":1.50}"#.utf8)))
        ),
        (#"{"op":"ping"}"#, .ping),
        (#"{"op":"auth","token":"t"}"#, .auth(token: "t")),
    ])
    func decodesClientMessages(text: String, expected: ClientMessage) throws {
        #expect(try ClientMessage(decoding: Array(text.utf8)) == expected)
    }

    @Test(arguments: [
        ("{", HeraldError.Code.invalidMessage),
        (#""op""#, .invalidMessage),
        (#"{"op":1}"#, .invalidMessage),
        (#"{"op":"fly"}"#, .unknownOp),
        (#"{"op":"subscribe","filter":{}}"#, .invalidMessage),
        (#"{"op":"subscribe","id":"s","filter":{},"since":-1}"#, .invalidMessage),
        (#"{"op":"subscribe","id":"s","filter":{},"since":1.5}"#, .invalidMessage),
        (#"{"op":"subscribe","id":"s","filter":{},"since":1,"epoch":7}"#, .invalidMessage),
        (#"{"op":"subscribe","id":"s","filter":{},"since":1,"epoch":["k3f9"]}"#, .invalidMessage),
        (#"{"op":"subscribe","id":"s","filter":{},"since":1,"epoch":"K3F9"}"#, .invalidMessage),
        (#"{"op":"subscribe","id":"s","filter":{},"since":1,"epoch":""}"#, .invalidMessage),
        (#"{"op":"subscribe","id":"s","route":3}"#, .invalidMessage),
        (#"{"op":"publish"}"#, .invalidMessage),
        (#"{"op":"auth"}"#, .invalidMessage),
    ])
    func refusesMalformedMessages(text: String, code: HeraldError.Code) {
        #expect { try ClientMessage(decoding: Array(text.utf8)) } throws: { ($0 as? HeraldError)?.code == code }
    }

    @Test func wireMessagesAreExact() {
        func text(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self) }
        let epoch = StreamEpoch("k3f9")!
        #expect(
            text(WireFormat.subscribed(id: "s\"1", position: 7, epoch: epoch))
                == #"{"type":"subscribed","id":"s\"1","position":7,"epoch":"k3f9"}"#)
        #expect(
            text(WireFormat.webSocketGap(subscriptionIDs: [Array(#""a""#.utf8)], from: 2, to: 5, reason: .overflow, epoch: epoch))
                == #"{"type":"gap","subs":["a"],"from":2,"to":5,"reason":"overflow","epoch":"k3f9"}"#)
        #expect(
            text(WireFormat.sseGap(from: 1, to: 1, reason: .reset, epoch: epoch))
                == "event: herald.gap\ndata: {\"from\":1,\"to\":1,\"reason\":\"reset\",\"epoch\":\"k3f9\"}\n\n")
        #expect(
            text(WireFormat.published(id: "e1", seq: 9, epoch: epoch)) == #"{"type":"published","id":"e1","seq":9,"epoch":"k3f9"}"#)
        #expect(
            text(WireFormat.httpError(HeraldError(.invalidJSON, "bad", offset: 118, index: 3)))
                == #"{"error":{"code":"invalid_json","message":"bad","index":3,"offset":118}}"#)
        #expect(
            text(WireFormat.accepted([.init(id: "a", seq: 42, duplicate: false)], epoch: epoch))
                == #"{"accepted":[{"id":"a","seq":42,"duplicate":false}],"epoch":"k3f9"}"#)
    }
}

@Suite struct ResumePositionTests {
    @Test(arguments: [
        ("41", ResumePosition(epoch: nil, seq: 41)),
        (" 41 ", ResumePosition(epoch: nil, seq: 41)),
        ("k3f9:41", ResumePosition(epoch: StreamEpoch("k3f9"), seq: 41)),
        ("0123456789abcdef:0", ResumePosition(epoch: StreamEpoch("0123456789abcdef"), seq: 0)),
    ])
    func parsesLastEventID(text: String, position: ResumePosition) throws {
        #expect(try ResumePosition(lastEventID: text) == position)
    }

    @Test(arguments: ["", "x", ":41", "k3f9:", "k3f9:-1", "K3F9:41", "k3f9:41:2", "a b:1", String(repeating: "a", count: 33) + ":1"])
    func refusesMalformedLastEventID(text: String) {
        #expect { try ResumePosition(lastEventID: text) } throws: { ($0 as? HeraldError)?.code == .invalidMessage }
    }

    @Test func randomEpochsAreSixteenHexDigitsAndDiffer() {
        let a = StreamEpoch.random()
        let b = StreamEpoch.random()
        #expect(a.text.count == 16 && StreamEpoch(a.text) == a && a != b)
    }
}
