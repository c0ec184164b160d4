import HeraldCore
import Testing

/// Several loops in one process: each loop's Hub is clustered on one `LoopSequencer`, so
/// positions, dedup and presence are the process's while sessions stay each loop's own.
/// Inboxes are drained by hand, so every interleaving is chosen by the test.
extension HubTests {
    /// Two Hubs on one sequencer and the inboxes the sequencer posts to.
    struct TwoLoops {
        let sequencer: LoopSequencer
        let hubs: [Hub]
        let inboxes: [Inbox<HubMessage>]

        /// Hands every loop what the sequencer posted to it, in order.
        func drain() {
            for (hub, inbox) in zip(hubs, inboxes) {
                for message in inbox.drain() { hub.handle(message) }
            }
        }
    }

    func twoLoops() -> TwoLoops {
        var config = HeraldConfig()
        config.routes = [.init(name: "chat", pattern: try! Pattern(parsing: Array(#"{"type":["chat"]}"#.utf8)))]
        let sequencer = LoopSequencer(loopCount: 2, clock: clock.hubClock, dedup: config.dedup)
        let inboxes = (0..<2).map { _ in Inbox<HubMessage>(wake: {}) }
        let hubs = (0..<2).map { index in
            let broker = sequencer.attach(loop: index) { [inbox = inboxes[index]] in inbox.post($0) }
            return Hub(
                config: config, clock: clock.hubClock, log: InMemoryEventLog(limits: config.history, epoch: sequencer.epoch),
                broker: broker,
                clientIDs: .loop(index, of: 2))
        }
        return TwoLoops(sequencer: sequencer, hubs: hubs, inboxes: inboxes)
    }

    @Test func loopsShareOneSequenceAndEveryLoopDeliversEveryEventInItsOrder() throws {
        let loops = twoLoops()
        let (a, b) = (session(loops.hubs[0]), session(loops.hubs[1]))
        #expect([a.id, b.id, session(loops.hubs[0]).id, session(loops.hubs[1]).id] == [1, 2, 3, 4], "ids are the process's")
        #expect(Hub.ClientIDs.loop(of: 3, count: 2) == 0 && Hub.ClientIDs.loop(of: 4, count: 2) == 1)
        try subscribe(loops.hubs[0], a, "s", #"{"type":["chat"]}"#)
        try subscribe(loops.hubs[1], b, "s", #"{"type":["chat"]}"#)

        let first = submit(loops.hubs[0], #"{"type":"chat","id":"x","n":1}"#)
        let second = submit(loops.hubs[1], #"[{"type":"chat","n":2},{"type":"chat","id":"x","n":3}]"#)
        #expect(writes(loops.hubs[0], a).isEmpty, "nothing is delivered before the sequencer's message is handled")
        loops.drain()
        let epoch = loops.sequencer.epoch
        #expect(loops.hubs[0].takeSequencingResult(first) == .accepted([.init(id: "x", seq: 1, duplicate: false)], epoch: epoch))
        guard case .accepted(let placed, _) = loops.hubs[1].takeSequencingResult(second) else {
            Issue.record("the second loop's batch is answered")
            return
        }
        #expect(placed.map(\.seq) == [2, 1] && placed.map(\.duplicate) == [false, true], "dedup spans the loops")
        #expect(writes(loops.hubs[0], a) == ["event 1 s", "event 2 s"])
        #expect(writes(loops.hubs[1], b) == ["event 1 s", "event 2 s"])
        #expect(loops.hubs.allSatisfy { $0.lastSeq == 2 && $0.epoch == epoch })
        #expect(loops.hubs[0].metrics.accepted == 1 && loops.hubs[1].metrics.accepted == 1 && loops.hubs[1].metrics.duplicates == 1)
        // Both loops matched both events through ad-hoc filters; each event counts once.
        #expect(loops.hubs.map { $0.metrics.routes[$0.metrics.adHocRoute].matched }.reduce(0, +) == 2)

        // A WebSocket publisher is answered once its loop delivered the event, as on one loop.
        _ = submit(loops.hubs[0], #"{"type":"chat","n":4}"#, answer: .published(to: a))
        #expect(writes(loops.hubs[0], a).isEmpty)
        loops.drain()
        let replies = writes(loops.hubs[0], a)
        #expect(replies.count == 2 && replies[0] == "event 3 s" && replies[1].contains(#""type":"published""#), "\(replies)")

        // A client resuming on the other loop replays from that loop's history.
        let late = session(loops.hubs[1])
        try subscribe(loops.hubs[1], late, "s", #"{"type":["chat"]}"#, since: 0, epoch: epoch)
        #expect(writes(loops.hubs[1], late).filter { $0.hasPrefix("replay") } == ["replay 1 s", "replay 2 s", "replay 3 s"])
    }

    @Test func presenceListsEveryLoopsMembersOnce() throws {
        let loops = twoLoops()
        let publisher = Credentials.publisherKey(name: "test")
        let (a, b) = (session(loops.hubs[0], credentials: publisher), session(loops.hubs[1], credentials: publisher))
        try loops.hubs[0].join(a, group: "room", info: RawJSON(parsing: Array(#"{"nick":"ada"}"#.utf8)))
        try loops.hubs[1].join(b, group: "room", info: RawJSON(parsing: Array(#"{"nick":"bob"}"#.utf8)))
        loops.drain()
        for hub in loops.hubs {
            #expect(hub.members(of: "room", visibleTo: .anonymous).map(\.id).sorted() == ["1", "2"])
        }
        #expect(loops.hubs[0].leave(a, group: "room") != nil)
        loops.drain()
        #expect(loops.hubs[1].members(of: "room", visibleTo: .anonymous).map(\.id) == ["2"])
        #expect(loops.hubs[0].members(of: "room", visibleTo: .anonymous).map(\.id) == ["2"])
    }

    @Test func theSlowestLoopsBacklogIsWhatIngestIsBoundedBy() {
        let loops = twoLoops()
        #expect(loops.hubs.allSatisfy { $0.deliveryBacklogBytes == 0 })
        _ = submit(loops.hubs[0], #"{"type":"chat","n":1}"#)
        let posted = loops.hubs[0].deliveryBacklogBytes
        #expect(posted > 0 && loops.hubs[1].deliveryBacklogBytes == posted, "every loop sees the same figure")
        for message in loops.inboxes[0].drain() { loops.hubs[0].handle(message) }
        #expect(loops.hubs[0].deliveryBacklogBytes == posted, "the loop that has not taken its events still counts")
        for message in loops.inboxes[1].drain() { loops.hubs[1].handle(message) }
        #expect(loops.hubs.allSatisfy { $0.deliveryBacklogBytes == 0 })
    }

    @Test func aPositionFromTheFutureMeansFromNowOnEveryLoop() throws {
        let loops = twoLoops()
        _ = submit(loops.hubs[0], #"{"type":"chat","n":1}"#)
        loops.drain()
        let client = session(loops.hubs[1])
        try subscribe(loops.hubs[1], client, "s", #"{"type":["chat"]}"#, since: 1_000, epoch: loops.sequencer.epoch)
        _ = writes(loops.hubs[1], client)
        _ = submit(loops.hubs[0], #"{"type":"chat","n":2}"#)
        loops.drain()
        #expect(writes(loops.hubs[1], client) == ["event 2 s"], "the next event is delivered, not skipped as seen")
    }

    @Test func loopFiguresAddUp() {
        var total = GatewayMetrics(routeNames: ["chat"])
        var other = GatewayMetrics(routeNames: ["chat"])
        total.accepted = 2
        total.rejected["forbidden"] = 1
        other.accepted = 3
        other.rejected = ["forbidden": 2, "invalid_json": 1]
        other.delivered[.sse] = 4
        other.routes[0].matched = 5
        other.deliveryLatency.observe(0.002)
        total.add(other)
        #expect(total.accepted == 5 && total.rejected == ["forbidden": 3, "invalid_json": 1] && total.delivered[.sse] == 4)
        #expect(total.routes[0].matched == 5 && total.deliveryLatency.count == 1)
    }
}
