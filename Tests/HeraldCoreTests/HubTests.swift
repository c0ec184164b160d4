import HeraldCore
import Testing

/// The Hub without sockets: publishing, resume, overflow policies, the gateway-wide
/// bound, dedup, presence, liveness and the log and broker seams — synchronous and
/// deterministic (the clock is a variable).
@Suite struct HubTests {
    /// A clock the test moves by hand.
    final class ManualClock: @unchecked Sendable {
        var nanoseconds: UInt64 = 1_000_000_000
        var unix: Int64 = 1_800_000_000
        func advance(seconds: Double) {
            nanoseconds += UInt64(seconds * 1e9)
            unix += Int64(seconds)
        }
        var hubClock: HubClock { HubClock(now: { self.nanoseconds }, unixSeconds: { self.unix }) }
    }

    let clock = ManualClock()

    func makeHub(
        _ customize: (inout HeraldConfig) -> Void = { _ in }, log: (any EventLog)? = nil, broker: (any EventBroker)? = nil
    ) -> Hub {
        var config = HeraldConfig()
        config.routes = [.init(name: "chat", pattern: try! Pattern(parsing: Array(#"{"type":["chat"]}"#.utf8)))]
        customize(&config)
        return Hub(config: config, clock: clock.hubClock, log: log, broker: broker)
    }

    @discardableResult
    func publish(_ hub: Hub, _ json: String) -> [WireFormat.Acceptance] {
        var tape = JSONTape()
        let bytes = Array(json.utf8)
        return bytes.withUnsafeBytes { raw in
            let events = try! IngestParser.parse(raw, format: .json, limits: IngestLimits(), tape: &tape)
            return hub.publish(events, tape: tape, body: raw)
        }
    }

    func session(
        _ hub: Hub, _ transport: TransportKind = .webSocket, credentials: Credentials = .anonymous, route: String? = nil
    ) -> Session {
        hub.openSession(transport: transport, remote: "127.0.0.1", credentials: credentials, route: route)
    }

    @discardableResult
    func subscribe(
        _ hub: Hub, _ session: Session, _ id: String, _ filter: String?, route: String? = nil, since: UInt64? = nil,
        epoch: StreamEpoch? = nil
    ) throws -> Hub.Subscribed {
        let pattern = try filter.map { try Pattern(parsing: Array($0.utf8)) }
        let subscribed = try hub.subscribe(session, id: id, route: route, filter: pattern)
        if let since { hub.resume(session, from: ResumePosition(epoch: epoch, seq: since), slots: SubscriptionSet(slot: subscribed.slot)) }
        return subscribed
    }

    /// Everything the session's socket would write now, in order.
    func writes(_ hub: Hub, _ session: Session) -> [String] {
        var out: [String] = []
        while let next = write(hub, session) { out.append(next) }
        return out
    }

    /// One socket write, as a writeable callback makes it; nil when there is nothing to send.
    func write(_ hub: Hub, _ session: Session) -> String? {
        while true {
            switch hub.nextWrite(for: session) {
            case .idle:
                if !hub.finishedWriting(session) { return nil }
            case .keepalive:
                return "keepalive"
            case .close(let closing):
                return "close \(closing.code.rawValue)" + (closing.notice.map { " \($0.code)" } ?? "")
            case .entry(.event(let event, let subs, let replayed)):
                var ids: [String] = []
                subs.forEach { ids.append(session.descriptions[$0]?.id ?? "?") }
                return "\(replayed ? "replay" : "event") \(event.seq) \(ids.joined(separator: ","))"
            case .entry(.gap(let from, let to, _, let reason)):
                return "gap \(reason.rawValue) \(from)-\(to)"
            case .entry(.control(let bytes)):
                return String(decoding: bytes, as: UTF8.self)
            }
        }
    }

    func woken(_ hub: Hub) -> [UInt64] {
        var ids: [UInt64] = []
        hub.drainWakes { ids.append($0.id) }
        return ids
    }

    /// The gateway-wide total is the sum of the queues.
    func checkTotal(_ hub: Hub) {
        let sum = hub.sessions.compactMap { $0?.queue.byteCount }.reduce(0, +)
        #expect(hub.queuedBytesTotal == sum)
    }

    // MARK: -

    @Test func matchingEventsAreQueuedOnceWithEverySubscriptionAndTheSocketIsWoken() throws {
        let hub = makeHub()
        let ada = session(hub)
        let bob = session(hub, .sse)
        try subscribe(hub, ada, "room", #"{"room":["lobby"]}"#)
        try subscribe(hub, ada, "all", nil, route: "chat")
        try subscribe(hub, bob, "sse", #"{"room":["ops"]}"#)
        publish(hub, #"[{"type":"chat","room":"lobby"},{"type":"chat","room":"ops"},{"type":"x","room":"ops"}]"#)
        #expect(woken(hub) == [ada.id, bob.id])
        #expect(writes(hub, ada) == ["event 1 room,all", "event 2 all"])
        #expect(writes(hub, bob) == ["event 2 sse", "event 3 sse"])
        #expect(hub.metrics.routes[0].matched == 2, "route chat")
        checkTotal(hub)
    }

    @Test func resumeAcrossTheLiveAndReplaySwitchLosesAndRepeatsNothing() throws {
        // A small queue makes the replay advance in steps, while live events keep coming.
        let hub = makeHub { $0.delivery.queue = QueueLimits(maxMessages: 4, maxBytes: 1 << 20, policy: .dropOldest) }
        for n in 1...10 { publish(hub, #"{"type":"chat","n":\#(n)}"#) }
        let client = session(hub)
        try subscribe(hub, client, "live", #"{"type":["chat"]}"#)
        publish(hub, #"{"type":"chat","n":11}"#)
        #expect(writes(hub, client) == ["event 11 live"])
        // A second subscription resumes from 3 on the same connection.
        try subscribe(hub, client, "back", #"{"type":["chat"]}"#, since: 3)
        var seen: [String] = []
        for n in 12...15 {
            publish(hub, #"{"type":"chat","n":\#(n)}"#)
            if let one = write(hub, client) { seen.append(one) }  // one write at a time: the replay advances
        }
        seen += writes(hub, client)
        publish(hub, #"{"type":"chat","n":16}"#)
        seen += writes(hub, client)
        let seqs = seen.map { Int($0.split(separator: " ")[1])! }
        #expect(seqs == Array(4...16), "\(seen)")
        #expect(
            seen.prefix(8).allSatisfy {
                $0.hasPrefix("replay") && $0.hasSuffix(" back") || $0.hasSuffix(" back,live") || $0.hasSuffix(" live,back")
            })
        #expect(seen.last == "event 16 live,back", "live again")
        #expect(!client.isResuming)
        checkTotal(hub)
    }

    @Test func aLongReplayIsReadASliceAtATimeAndWakesItselfToGoOn() throws {
        // 2,000 events of history, of which the resuming filter matches only the last:
        // one call reads at most a slice, so the loop serves others in between.
        let hub = makeHub { $0.history = HistoryLimits(maxEvents: 5000) }
        for n in 1...1999 { publish(hub, #"{"type":"noise","n":\#(n)}"#) }
        publish(hub, #"{"type":"chat","n":2000}"#)
        let client = session(hub)
        _ = woken(hub)
        try subscribe(hub, client, "s", #"{"type":["chat"]}"#, since: 0)
        #expect(client.isResuming, "one slice did not reach the end")
        #expect(woken(hub) == [client.id], "an empty queue still asks for a write, to go on")
        var calls = 0
        while client.isResuming {
            guard case .idle = hub.nextWrite(for: client) else {
                Issue.record("nothing was to be written yet")
                break
            }
            #expect(hub.finishedWriting(client), "more to come: the transport asks for another write")
            calls += 1
        }
        #expect(calls >= 2000 / Hub.replayBatch - 1 && calls <= 2000 / Hub.replayBatch + 1, "\(calls) slices")
        publish(hub, #"{"type":"chat","n":2001}"#)
        #expect(writes(hub, client) == ["replay 2000 s", "event 2001 s"])
    }

    @Test func subscriptionsResumingInOneBurstOverALongHistoryGetNothingTwice() throws {
        // herald.js resubscribes every subscription with `since` at once; with more than
        // a slice of history the first catch-up is still open when the next arrives, and
        // the cursor moves back for it.
        let hub = makeHub { $0.history = HistoryLimits(maxEvents: 5000) }
        publish(hub, #"{"type":"chat","n":1}"#)
        for n in 2...999 { publish(hub, #"{"type":"noise","n":\#(n)}"#) }
        publish(hub, #"{"type":"chat","n":1000}"#)
        let client = session(hub)
        try subscribe(hub, client, "live", #"{"type":["chat"]}"#)
        publish(hub, #"{"type":"chat","n":1001}"#)
        try subscribe(hub, client, "a", #"{"type":["chat"]}"#, since: 0)
        _ = write(hub, client)  // a slice or more goes out before the next resume
        try subscribe(hub, client, "b", #"{"type":["noise"]}"#, since: 997)
        let out = writes(hub, client)
        let seen = ["event 1001 live"] + out
        #expect(seen.filter { $0.hasSuffix(" a") || $0.contains("a,") || $0.contains(",a") }.count == 3, "\(seen)")
        #expect(seen.filter { $0.contains("live") }.count == 1, "the live subscription had 1001 already: \(seen)")
        #expect(seen.filter { $0.contains("b") }.map { $0.split(separator: " ")[1] } == ["998", "999"], "\(seen)")
    }

    @Test func aSubscriptionMadeDuringACatchUpGetsNothingOlderThanItsPosition() throws {
        let hub = makeHub { $0.history = HistoryLimits(maxEvents: 5000) }
        for n in 1...1000 { publish(hub, #"{"type":"noise","n":\#(n)}"#) }
        let client = session(hub)
        try subscribe(hub, client, "a", #"{"type":["chat"]}"#, since: 0)
        let fresh = try subscribe(hub, client, "b", #"{"type":["noise"]}"#)
        #expect(fresh.position == 1000 && client.isResuming)
        publish(hub, #"{"type":"noise","n":1001}"#)
        let out = writes(hub, client)
        #expect(out == ["replay 1001 b"], "only what follows its position, read from history in turn: \(out.prefix(3))")
    }

    @Test func liveDeliveriesAreCheckedAgainstTheirRoutesDeadlineAndMissesSplitByCause() throws {
        let hub = makeHub {
            $0.routes[0].deadlineMs = 5
            $0.delivery.deadlineMs = 50
        }
        let client = session(hub)
        try subscribe(hub, client, "chat", nil, route: "chat")
        try subscribe(hub, client, "mine", #"{"type":["mine"]}"#)
        /// Writes what is queued `after` seconds from now, as a transport does.
        func deliver(after seconds: Double, clientBehind: Bool = false) {
            clock.advance(seconds: seconds)
            while case .entry(.event(let event, let subs, let replayed)) = hub.nextWrite(for: client) {
                hub.recordDelivery(
                    event, subscriptions: subs, to: client, replayed: replayed, clientBehind: clientBehind, now: clock.nanoseconds)
            }
        }
        publish(hub, #"{"type":"chat"}"#)
        deliver(after: 0.004)  // within 5 ms
        publish(hub, #"{"type":"chat"}"#)
        deliver(after: 0.006)  // the gateway was late
        publish(hub, #"{"type":"chat"}"#)
        deliver(after: 0.020, clientBehind: true)  // the client was
        publish(hub, #"{"type":"mine"}"#)
        deliver(after: 0.020)  // ad-hoc filters: 50 ms
        let chat = hub.metrics.routes[0].live
        let adHoc = hub.metrics.routes[hub.metrics.adHocRoute].live
        #expect(chat.deadline == 5_000_000 && adHoc.deadline == 50_000_000)
        #expect(chat.met == 1 && chat.missedGateway == 1 && chat.missedSlowClient == 1 && chat.missed == 2)
        #expect(adHoc.met == 1 && adHoc.missed == 0)
        #expect(chat.latency.bounds.contains(0.005), "the deadline is a bucket bound: the histogram counts exactly what met it")
        #expect(chat.slowestSinceSnapshot == 20_000_000)
        #expect(client.missedDeadlines == 2 && client.slowestDelivery == 20_000_000, "the client's own: two late, the slowest 20 ms")
        // A replay is not a live delivery: no deadline.
        let late = session(hub)
        try subscribe(hub, late, "chat", nil, route: "chat", since: 0)
        clock.advance(seconds: 1)
        while case .entry(.event(let event, let subs, let replayed)) = hub.nextWrite(for: late) {
            #expect(replayed)
            hub.recordDelivery(event, subscriptions: subs, to: late, replayed: replayed, now: clock.nanoseconds)
        }
        #expect(hub.metrics.routes[0].live.met + hub.metrics.routes[0].live.missed == 3, "replays are counted apart")
        #expect(late.missedDeadlines == 0 && late.slowestDelivery == 0)
        #expect(hub.metrics.replayed[.webSocket] == 3)
    }

    @Test func sinceZeroNeverGapsAndAPositionOlderThanHistoryDoes() throws {
        let hub = makeHub { $0.history = HistoryLimits(maxEvents: 3) }
        for n in 1...8 { publish(hub, #"{"type":"chat","n":\#(n)}"#) }
        let fresh = session(hub)
        try subscribe(hub, fresh, "s", #"{"type":["chat"]}"#, since: 0)
        #expect(writes(hub, fresh) == ["replay 6 s", "replay 7 s", "replay 8 s"])
        let late = session(hub)
        try subscribe(hub, late, "s", #"{"type":["chat"]}"#, since: 2)
        #expect(writes(hub, late) == ["gap expired 3-5", "replay 6 s", "replay 7 s", "replay 8 s"])
        let ahead = session(hub)
        try subscribe(hub, ahead, "s", #"{"type":["chat"]}"#, since: 99)
        #expect(writes(hub, ahead).isEmpty, "a position past the last means now")
    }

    @Test func aPositionFromAnotherEpochGetsAResetGapThenHistoryNeverASilentSkip() throws {
        let epoch = StreamEpoch("aaaa1111")!
        let hub = makeHub(
            { $0.history = HistoryLimits(maxEvents: 3) }, log: InMemoryEventLog(limits: HistoryLimits(maxEvents: 3), epoch: epoch))
        #expect(hub.epoch == epoch)
        for n in 1...2 { publish(hub, #"{"type":"chat","n":\#(n)}"#) }
        // The client stopped at 9050 before a restart (another epoch): everything the new
        // epoch holds follows the reset notice, even though 9050 is "ahead" of it.
        let before = session(hub)
        try subscribe(hub, before, "s", #"{"type":["chat"]}"#, since: 9050, epoch: StreamEpoch("0ld")!)
        #expect(writes(hub, before) == ["gap reset 1-0", "replay 1 s", "replay 2 s"])
        // The same position in the current epoch is a position past the last: now.
        let same = session(hub)
        try subscribe(hub, same, "s", #"{"type":["chat"]}"#, since: 9050, epoch: epoch)
        #expect(writes(hub, same).isEmpty)
        // Once history dropped the epoch's first events, the reset gap says which.
        for n in 3...6 { publish(hub, #"{"type":"chat","n":\#(n)}"#) }
        let later = session(hub)
        try subscribe(hub, later, "s", #"{"type":["chat"]}"#, since: 5, epoch: StreamEpoch("0ld")!)
        #expect(writes(hub, later) == ["gap reset 1-3", "replay 4 s", "replay 5 s", "replay 6 s"])
        // A bare position (no epoch) is the current epoch's.
        let bare = session(hub)
        try subscribe(hub, bare, "s", #"{"type":["chat"]}"#, since: 5)
        #expect(writes(hub, bare) == ["replay 6 s"])
        #expect(hub.metrics.resetGaps == 2)
        // A reset with nothing to replay still wakes the socket for the notice.
        let empty = makeHub()
        let quiet = session(empty)
        try subscribe(empty, quiet, "s", "{}", since: 1, epoch: StreamEpoch("0ld")!)
        #expect(woken(empty) == [quiet.id])
        #expect(writes(empty, quiet) == ["gap reset 1-0"])
    }

    @Test(arguments: [OverflowPolicy.dropOldest, .dropNewest, .coalesce, .disconnect])
    func everyOverflowPolicy(policy: OverflowPolicy) throws {
        let hub = makeHub {
            $0.delivery.queue = QueueLimits(
                maxMessages: 3, maxBytes: 1 << 20, policy: policy, coalesceKey: policy == .coalesce ? "symbol" : nil)
        }
        let client = session(hub)
        try subscribe(hub, client, "q", "{}")
        for (n, symbol) in ["A", "B", "A", "C", "B"].enumerated() { publish(hub, #"{"symbol":"\#(symbol)","n":\#(n)}"#) }
        let expected: [String]
        switch policy {
        case .dropOldest: expected = ["gap overflow 1-2", "event 3 q", "event 4 q", "event 5 q"]
        case .dropNewest: expected = ["event 1 q", "event 2 q", "event 3 q", "gap overflow 4-5"]
        // Coalescing acts on overflow: C has no older twin so the oldest A goes with a
        // gap, then the second B replaces the first.
        case .coalesce: expected = ["gap overflow 1-1", "event 3 q", "event 4 q", "event 5 q"]
        case .disconnect: expected = ["close 4000"]
        }
        #expect(writes(hub, client) == expected)
        if policy == .disconnect { #expect(hub.metrics.disconnectedOverflow == 1) }
        checkTotal(hub)
    }

    @Test func theGatewayWideBoundShedsTheLargestQueuesFirst() throws {
        let hub = makeHub {
            $0.delivery.queue = QueueLimits(maxMessages: 1000, maxBytes: 10 << 20, policy: .dropOldest)
            $0.limits.maxQueuedBytesTotal = 40_000
        }
        let big = session(hub)
        let small = session(hub)
        try subscribe(hub, big, "b", "{}")
        try subscribe(hub, small, "s", #"{"to":["small"]}"#)
        let pad = String(repeating: "x", count: 1000)
        publish(hub, #"{"to":"small","pad":"\#(pad)"}"#)
        for _ in 0..<40 { publish(hub, #"{"to":"big","pad":"\#(pad)"}"#) }
        #expect(hub.queuedBytesTotal <= 40_000)
        #expect(hub.shedRounds >= 1)
        #expect(small.queue.count == 1, "the small queue kept its event")
        #expect(big.queue.droppedCount > 0 && hub.metrics.droppedOverflow == big.queue.droppedCount)
        #expect(writes(hub, big).first?.hasPrefix("gap overflow") == true)
        checkTotal(hub)
    }

    @Test func aDuplicateIsAnsweredWithItsFirstSeqAndNotDeliveredTwice() throws {
        let hub = makeHub()
        let client = session(hub)
        try subscribe(hub, client, "s", "{}")
        let first = publish(hub, #"{"source":"billing","id":"inv-7","type":"paid"}"#)
        let again = publish(hub, #"[{"source":"billing","id":"inv-7","type":"paid"},{"source":"other","id":"inv-7"}]"#)
        #expect(first.map(\.seq) == [1] && !first[0].duplicate)
        #expect(again.map(\.seq) == [1, 2] && again.map(\.duplicate) == [true, false])
        #expect(writes(hub, client) == ["event 1 s", "event 2 s"])
        #expect(hub.metrics.duplicates == 1)
        clock.advance(seconds: 301)  // past dedup.windowSeconds
        #expect(publish(hub, #"{"source":"billing","id":"inv-7"}"#).map(\.duplicate) == [false])
    }

    @Test func presenceIsPublishedListedByScopeAndLeftOnClose() throws {
        let hub = makeHub()
        let watcher = session(hub)
        try subscribe(hub, watcher, "p", #"{"type":["herald.presence"]}"#)
        let key = Credentials.publisherKey(name: "k")
        let ada = session(hub, credentials: key)
        let bob = session(hub, .sse, credentials: key)
        let joined = try hub.join(ada, group: "chat:a", info: RawJSON(parsing: Array(#"{"nick": "ada"}"#.utf8)))
        try hub.join(bob, group: "chat:b", info: RawJSON(parsing: Array(#"{"nick":"bob"}"#.utf8)))
        #expect(joined == 1)
        #expect(writes(hub, watcher) == ["event 1 p", "event 2 p"])
        #expect(hub.members(of: "chat:a", visibleTo: .anonymous).map(\.info.bytes) == [Array(#"{"nick":"ada"}"#.utf8)])
        let scoped = try SubscriberToken(claims: #"{"herald.scope":{"group":["chat:b"]}}"#)
        #expect(hub.members(of: "chat:a", visibleTo: .token(scoped)).isEmpty, "outside the scope")
        #expect(hub.members(of: "chat:b", visibleTo: .token(scoped)).count == 1)
        #expect { try hub.join(session(hub), group: "chat:a", info: .emptyObject) } throws: { ($0 as? HeraldError)?.code == .forbidden }
        hub.closeSession(ada)
        #expect(hub.presence.members(of: "chat:a").isEmpty)
        #expect(writes(hub, watcher) == ["event 3 p"])
        #expect(hub.leave(bob, group: "chat:b") == 4)
        #expect(hub.leave(bob, group: "chat:b") == nil)
    }

    @Test func keepalivesIdleSessionsAndExpiredTokens() throws {
        let hub = makeHub()
        let ws = session(hub)
        let sse = session(hub, .sse)
        let expiring = session(hub, credentials: .token(try SubscriberToken(claims: #"{"exp":1800000005}"#)))
        let renewed = session(hub, credentials: .token(try SubscriberToken(claims: #"{"exp":1800000005}"#)))
        clock.advance(seconds: 16)
        hub.tick()
        #expect(writes(hub, sse) == ["keepalive"], "heartbeat after heartbeatSeconds (15)")
        #expect(writes(hub, ws).isEmpty, "pings after pingSeconds (20)")
        hub.authenticate(renewed, as: .token(try SubscriberToken(claims: #"{"exp":1800009999}"#)))
        clock.advance(seconds: 20)  // past exp + 30 s of leeway
        hub.tick()
        #expect(writes(hub, ws) == ["keepalive"])
        #expect(writes(hub, expiring) == ["close 4001 token_expired"])
        #expect(writes(hub, renewed) == ["keepalive"])
        hub.heard(from: renewed)
        clock.advance(seconds: 45)  // ws silent for 65 s > idleTimeoutSeconds (60)
        hub.tick()
        #expect(writes(hub, ws) == ["close 1001"])
        #expect(writes(hub, renewed) == ["keepalive"], "it was heard 45 s ago")
        // A tick that comes late (a busy loop) pings before it judges a silent client.
        let late = session(hub)
        clock.advance(seconds: 61)
        hub.tick()
        #expect(writes(hub, late) == ["keepalive"], "never pinged, so not yet idle")
        clock.advance(seconds: 1)
        hub.tick()
        #expect(writes(hub, late) == ["close 1001"])
    }

    @Test func controlMessagesQueueInOrderAndACloseWaitsForThem() throws {
        let hub = makeHub()
        let client = session(hub)
        hub.send(client, control: Array("ack".utf8))
        hub.close(client, code: .policyViolation, reason: "invalid token", immediately: false)
        hub.send(client, control: Array("late".utf8))
        #expect(writes(hub, client) == ["ack", "late", "close 1008"])
        #expect(hub.nextWrite(for: client).isIdle, "nothing after the close")
    }

    @Test func anAsynchronousLogHoldsDeliveryUntilItIsDurable() throws {
        let log = PendingLog()
        let hub = makeHub(log: log)
        let client = session(hub)
        try subscribe(hub, client, "s", "{}")
        #expect(publish(hub, #"[{"n":1},{"n":2}]"#).map(\.seq) == [1, 2])
        #expect(writes(hub, client).isEmpty && hub.committedThrough == 0, "nothing delivered before the fsync")
        hub.logged(through: 1)
        #expect(writes(hub, client) == ["event 1 s"] && hub.committedThrough == 1)
        hub.logged(through: 2)
        #expect(writes(hub, client) == ["event 2 s"])
    }

    @Test func acknowledgementsWaitForTheLogAndAFailedLogAcknowledgesNothingMore() throws {
        let hub = makeHub(log: PendingLog())
        let client = session(hub)
        try subscribe(hub, client, "s", "{}")
        #expect(publish(hub, #"[{"n":1},{"n":2}]"#).map(\.seq) == [1, 2])
        #expect(hub.pendingBytes > 0, "what waits for the disk is counted")
        hub.send(client, control: Array("ack 2".utf8), after: 2)
        hub.send(client, control: Array("ack 0".utf8), after: 0)
        #expect(writes(hub, client) == ["ack 0"], "what is stored already is acknowledged at once")
        hub.logged(through: 1)
        #expect(writes(hub, client) == ["event 1 s"])
        hub.logged(through: 2)
        #expect(writes(hub, client) == ["event 2 s", "ack 2"], "the acknowledgement after the event it stored")
        #expect(hub.pendingBytes == 0)
        // The log fails with event 3 accepted but not stored: it is neither delivered nor acknowledged.
        publish(hub, #"{"n":3}"#)
        hub.send(client, control: Array("ack 3".utf8), after: 3)
        hub.storageFailed("disk full")
        hub.storageFailed("again")
        #expect(hub.storageFailure == "disk full" && hub.metrics.storageFailures == 1)
        let failed = writes(hub, client)
        #expect(failed.count == 1 && failed[0].contains(#""code":"storage_unavailable""#) && hub.committedThrough == 2, "\(failed)")
        // Nothing more is accepted, presence changes included.
        #expect { try hub.join(client, group: "g", info: .emptyObject) } throws: {
            ($0 as? HeraldError)?.code == .storageUnavailable
        }
        // A closed session's waiting replies go with it.
        hub.closeSession(client)
        hub.logged(through: 3)
        #expect(hub.sessionCount == 0)
    }

    // MARK: - A node of a cluster

    /// Validated events for `submit`, as the gateway hands them over.
    func submit(_ hub: Hub, _ json: String, answer: Hub.Answer = .taken) -> UInt64 {
        var tape = JSONTape()
        return Array(json.utf8).withUnsafeBytes { raw in
            hub.submit(try! IngestParser.parse(raw, format: .json, limits: IngestLimits(), tape: &tape), answer: answer)
        }
    }

    /// An event as the stream brings it back.
    func streamed(_ seq: UInt64, _ json: String, epoch: StreamEpoch) -> Event {
        Array(json.utf8).withUnsafeBytes {
            Event(epoch: epoch, seq: seq, id: "e\(seq)", source: "s", type: "chat", acceptedAt: clock.nanoseconds, json: $0)
        }
    }

    @Test func aClusteredHubDeliversWhatTheStreamSaysInTheStreamsOrder() throws {
        let broker = RecordingBroker()
        let hub = makeHub(broker: broker)
        let epoch = hub.epoch
        let client = session(hub)
        try subscribe(hub, client, "s", #"{"type":["chat"]}"#)
        let ticket = submit(hub, #"[{"type":"chat","id":"a","n":1},{"type":"chat","n":2}]"#)
        #expect(writes(hub, client).isEmpty && hub.pendingBytes > 0, "nothing is delivered before the stream has it")
        #expect(broker.submitted.map(\.ticket) == [ticket])
        #expect(broker.submitted[0].events.map(\.hasExplicitID) == [true, false])
        #expect(broker.submitted[0].events[0].json == Array(#"{"type":"chat","id":"a","n":1}"#.utf8))
        #expect(hub.takeSequencingResult(ticket) == nil, "not answered yet")
        let placed: [WireFormat.Acceptance] = [.init(id: "a", seq: 2, duplicate: false), .init(id: "b", seq: 3, duplicate: false)]
        hub.sequenced(ticket: ticket, result: .accepted(placed, epoch: hub.epoch))
        #expect(hub.pendingBytes == 0 && hub.metrics.accepted == 2)
        #expect(hub.takeSequencingResult(ticket) == .accepted(placed, epoch: hub.epoch))
        #expect(hub.takeSequencingResult(ticket) == nil, "an answer is taken once")
        // Another node's event 1 came first on the stream: the stream's order wins.
        hub.receive(
            [streamed(1, #"{"type":"chat","n":0}"#, epoch: epoch), streamed(2, #"{"type":"chat","n":1}"#, epoch: epoch)], epoch: epoch)
        hub.receive(
            [streamed(2, #"{"type":"chat","n":1}"#, epoch: epoch), streamed(3, #"{"type":"chat","n":2}"#, epoch: epoch)], epoch: epoch)
        #expect(writes(hub, client) == ["event 1 s", "event 2 s", "event 3 s"], "what was read already is skipped")
        #expect(hub.committedThrough == 3 && hub.lastSeq == 3)
        // The stream trimmed what this node did not read: the log continues after the hole
        // and a resume across it is told.
        hub.receive([streamed(10, #"{"type":"chat","n":9}"#, epoch: epoch)], epoch: epoch)
        #expect(writes(hub, client) == ["gap expired 4-9", "event 10 s"], "live subscribers are told too")
        let late = session(hub)
        try subscribe(hub, late, "s", #"{"type":["chat"]}"#, since: 1, epoch: epoch)
        #expect(writes(hub, late).filter { $0.hasPrefix("gap") || $0.hasPrefix("replay") } == ["gap expired 2-9", "replay 10 s"])
    }

    @Test func aFailedOrForgottenSubmissionAcknowledgesNothing() throws {
        let broker = RecordingBroker()
        let hub = makeHub(broker: broker)
        let failed = submit(hub, #"{"type":"chat"}"#)
        hub.sequenced(ticket: failed, result: .failed("Redis at 127.0.0.1:6379 failed: connection refused"))
        #expect(hub.takeSequencingResult(failed) == .failed("Redis at 127.0.0.1:6379 failed: connection refused"))
        #expect(hub.metrics.storageRefusals == 1 && hub.metrics.accepted == 0)
        let forgotten = submit(hub, #"{"type":"chat"}"#)
        hub.forgetSubmission(forgotten)
        #expect(hub.pendingBytes == 0, "a requester that went away holds nothing")
        hub.sequenced(ticket: forgotten, result: .accepted([.init(id: "x", seq: 1, duplicate: false)], epoch: hub.epoch))
        #expect(hub.takeSequencingResult(forgotten) == nil && hub.pendingBytes == 0)
        // Redis away and back: refused meanwhile, accepted again after.
        hub.storageFailed("cannot reach Redis at 127.0.0.1:6379")
        #expect(hub.storageFailure != nil && hub.storageName == "the cluster's stream")
        hub.storageRecovered()
        #expect(hub.storageFailure == nil)
    }

    @Test func aWebSocketPublishIsAnsweredWhenTheStreamPlacedIt() throws {
        let broker = RecordingBroker()
        let hub = makeHub(broker: broker)
        let client = session(hub, credentials: .publisherKey(name: "k"))
        let ticket = submit(hub, #"[{"type":"chat","id":"a"},{"type":"chat","id":"a"}]"#, answer: .published(to: client))
        #expect(writes(hub, client).isEmpty)
        hub.sequenced(
            ticket: ticket,
            result: .accepted([.init(id: "a", seq: 7, duplicate: false), .init(id: "a", seq: 7, duplicate: true)], epoch: hub.epoch))
        let published = #"{"type":"published","id":"a","seq":7,"epoch":"\#(hub.epoch)"}"#
        #expect(writes(hub, client) == [published, published])
        #expect(hub.metrics.accepted == 1 && hub.metrics.duplicates == 1)
        let refused = submit(hub, #"{"type":"chat"}"#, answer: .published(to: client))
        hub.sequenced(ticket: refused, result: .failed("cannot reach Redis"))
        let error = writes(hub, client)
        #expect(error.count == 1 && error[0].contains(#""code":"storage_unavailable""#) && error[0].contains("not stored"), "\(error)")
        // A presence change goes to the stream too, and its answer to nobody.
        try hub.join(client, group: "room", info: .emptyObject)
        #expect(broker.submitted.last?.events.first?.type == "herald.presence")
        hub.sequenced(
            ticket: broker.submitted.last!.ticket, result: .accepted([.init(id: "p", seq: 8, duplicate: false)], epoch: hub.epoch))
        #expect(writes(hub, client).isEmpty)
        // A session that closed before its answer gets nothing.
        let gone = submit(hub, #"{"type":"chat"}"#, answer: .published(to: client))
        hub.closeSession(client)
        hub.sequenced(ticket: gone, result: .accepted([.init(id: "z", seq: 9, duplicate: false)], epoch: hub.epoch))
        #expect(hub.sessionCount == 0)
    }

    @Test func presenceInAClusterNamesMembersByNodeAndListsEveryNodes() throws {
        let broker = RecordingBroker()
        let hub = makeHub(broker: broker)
        let remote = PresenceRegistry.Member(client: 1, node: "n2", info: .emptyObject, transport: "sse")
        broker.shared = ["room": [remote]]
        let ada = session(hub, credentials: .publisherKey(name: "k"))
        try hub.join(ada, group: "room", info: .emptyObject)
        guard case .join(let group, let member, let transport, _)? = broker.submitted.last?.presence else {
            throw HeraldError(.io, "a join goes to the shared store with its event")
        }
        #expect(group == "room" && member == "n1.\(ada.id)" && transport == "ws")
        let event = String(decoding: broker.submitted.last!.events[0].json, as: UTF8.self)
        #expect(event.contains(#""member":"n1.\#(ada.id)""#) && event.contains(#""count":2"#), "\(event)")
        // The store also lists this node's own member once its event is on the stream:
        // this node's registry answers for its own.
        broker.shared = ["room": [remote, PresenceRegistry.Member(client: ada.id, node: "n1", info: .emptyObject, transport: "ws")]]
        #expect(hub.members(of: "room", visibleTo: .anonymous).map(\.id) == ["n2.1", "n1.\(ada.id)"])
        hub.closeSession(ada)
        #expect(broker.submitted.last?.presence == .leave(group: "room", member: "n1.\(ada.id)"))
        #expect(hub.members(of: "room", visibleTo: .anonymous).map(\.id) == ["n2.1"], "left here at once")
        // The store cannot be reached: this node's own members.
        broker.shared = nil
        #expect(hub.members(of: "room", visibleTo: .anonymous).isEmpty)
        // A leave while the stream is away is announced once it is back.
        let bob = session(hub, credentials: .publisherKey(name: "k"))
        try hub.join(bob, group: "room", info: .emptyObject)
        hub.storageFailed("cannot reach Redis")
        let before = broker.submitted.count
        hub.closeSession(bob)
        #expect(broker.submitted.count == before, "nothing can be stored now")
        hub.storageRecovered()
        #expect(broker.submitted.count == before + 1)
        #expect(broker.submitted.last?.presence == .leave(group: "room", member: "n1.\(bob.id)"))
        // Its append fails (the connection died with Redis): announced again at the next recovery.
        hub.storageFailed("Redis at 127.0.0.1:6379 failed")
        hub.sequenced(ticket: broker.submitted.last!.ticket, result: .failed("Redis at 127.0.0.1:6379 failed"))
        hub.storageRecovered()
        #expect(broker.submitted.count == before + 2 && broker.submitted.last?.presence == .leave(group: "room", member: "n1.\(bob.id)"))
        // A join whose append fails is announced again while the member stays; each
        // recovery also writes this node's members back (Redis may have lost them).
        let cy = session(hub, credentials: .publisherKey(name: "k"))
        try hub.join(cy, group: "room", info: .emptyObject)
        hub.sequenced(ticket: broker.submitted.last!.ticket, result: .failed("Redis refused the append: MISCONF"))
        #expect(hub.storageFailure == nil, "an error reply changes no health")
        let third = submit(hub, #"{"type":"chat"}"#)
        hub.sequenced(ticket: third, result: .accepted([.init(id: "c", seq: 20, duplicate: false)], epoch: hub.epoch))
        guard case .join(_, let again, _, _)? = broker.submitted.last?.presence else { throw HeraldError(.io, "the join again") }
        #expect(again == "n1.\(cy.id)", "the next accepted append retries it")
        // Failed again while all looks healthy (cut off in doubt): the tick retries it.
        let retried = broker.submitted.count
        hub.sequenced(
            ticket: broker.submitted.last!.ticket, result: .failed("Redis at 127.0.0.1:6379 failed: Server closed the connection"))
        hub.tick()
        #expect(broker.submitted.count == retried + 1)
        let restores = broker.restored.count
        hub.storageRecovered()
        #expect(broker.restored.count == restores + 1 && broker.restored.last?.map(\.member.id) == ["n1.\(cy.id)"])
        hub.receive([streamed(1, #"{"type":"chat"}"#, epoch: StreamEpoch("new")!)], epoch: StreamEpoch("new")!)
        #expect(broker.restored.count == restores + 2, "a new epoch: the shared lists went with the old data")
    }

    @Test func aNewStreamEpochClosesStreamsSoThatTheyResumeIntoAReset() throws {
        let hub = makeHub(broker: RecordingBroker())
        let old = hub.epoch
        let client = session(hub)
        try subscribe(hub, client, "s", "{}")
        hub.receive((1...5).map { streamed($0, #"{"type":"chat"}"#, epoch: old) }, epoch: old)
        #expect(writes(hub, client).count == 5)
        // Redis lost its data: the stream starts again under a new epoch.
        let new = StreamEpoch("feed")!
        hub.receive([streamed(1, #"{"type":"chat","n":1}"#, epoch: new)], epoch: new)
        #expect(writes(hub, client) == ["close 1012"], "positions count from 1 again: the client must resume")
        #expect(hub.epoch == new && hub.committedThrough == 1)
        let resumed = session(hub)
        try subscribe(hub, resumed, "s", "{}", since: 5, epoch: old)
        #expect(writes(hub, resumed).filter { !$0.hasPrefix("{") } == ["gap reset 1-0", "replay 1 s"])
    }

    @Test func aClientFromANodeFurtherAlongGetsNothingTwice() throws {
        let hub = makeHub(broker: RecordingBroker())
        let epoch = hub.epoch
        hub.receive((1...2).map { streamed($0, #"{"type":"chat"}"#, epoch: epoch) }, epoch: epoch)
        let client = session(hub)
        try subscribe(hub, client, "s", "{}", since: 5, epoch: epoch)
        hub.receive((3...6).map { streamed($0, #"{"type":"chat"}"#, epoch: epoch) }, epoch: epoch)
        #expect(writes(hub, client) == ["event 6 s"], "3 to 5 it had from the other node")
        // Only a position of this stream's epoch says so: a bare or foreign one never
        // mutes live events.
        for epoch in [nil, StreamEpoch("0ther")!] {
            let other = session(hub)
            try subscribe(hub, other, "s", "{}", since: 5000, epoch: epoch)
            _ = writes(hub, other)
            hub.receive([streamed(hub.lastSeq + 1, #"{"type":"chat"}"#, epoch: hub.epoch)], epoch: hub.epoch)
            #expect(writes(hub, other) == ["event \(hub.lastSeq) s"])
        }
    }

    @Test func unsubscribingDropsWhatWasQueuedForItOnly() throws {
        let hub = makeHub()
        let client = session(hub)
        try subscribe(hub, client, "a", "{}")
        try subscribe(hub, client, "b", #"{"n":[2]}"#)
        publish(hub, #"[{"n":1},{"n":2}]"#)
        #expect(hub.unsubscribe(client, id: "a"))
        #expect(!hub.unsubscribe(client, id: "a"))
        #expect(writes(hub, client) == ["event 2 b"])
        #expect(throws: HeraldError.self) { try subscribe(hub, client, "b", "{}") }
        checkTotal(hub)
    }

    @Test func sessionIndicesAreReusedAndAClosedSessionIsForgotten() throws {
        let hub = makeHub()
        let first = session(hub)
        try subscribe(hub, first, "s", "{}")
        hub.closeSession(first)
        let second = session(hub)
        #expect(second.index == first.index && second.id != first.id)
        publish(hub, "{}")
        #expect(writes(hub, second).isEmpty, "the old subscription went with its session")
        #expect(hub.sessionCount == 1 && hub.subscriptionCount == 0)
    }
}

/// A log that makes nothing durable until told (like a file log waiting for fsync).
final class PendingLog: EventLog {
    private let memory = InMemoryEventLog(limits: HistoryLimits())
    var epoch: StreamEpoch { memory.epoch }
    var nextPosition: UInt64 { memory.nextPosition }
    var oldestPosition: UInt64? { memory.oldestPosition }
    var retainedCount: Int { memory.retainedCount }
    var retainedBytes: Int { memory.retainedBytes }
    func append(_ event: Event, now: UInt64) -> LogAppend {
        _ = memory.append(event, now: now)
        return .pending
    }
    func event(at position: UInt64) -> Event? { memory.event(at: position) }
    func expire(now: UInt64) {}
    func recover() -> [Event] { [] }
    func close() {}
    func follow(_ event: Event, now: UInt64) { memory.follow(event, now: now) }
    func follow(epoch: StreamEpoch) { memory.follow(epoch: epoch) }
}

/// A broker that records what it was given to place on the stream.
final class RecordingBroker: EventBroker, @unchecked Sendable {
    var submitted: [Submission] = []
    /// What the shared store lists (nil: it cannot be reached).
    var shared: [String: [PresenceRegistry.Member]]? = [:]
    let node = "n1"
    func submit(_ submission: Submission) -> SequencingResult? {
        submitted.append(submission)
        return nil
    }
    var restored: [[(group: String, member: PresenceRegistry.Member)]] = []
    func members(of group: String, fresh: Bool) -> [PresenceRegistry.Member]? { shared.map { $0[group] ?? [] } }
    func restore(_ members: [(group: String, member: PresenceRegistry.Member)]) { restored.append(members) }
    func presenceChanged() {}
}

extension SessionWrite {
    var isIdle: Bool { if case .idle = self { true } else { false } }
}

extension SubscriberToken {
    /// An unsigned token with these claims (the Hub never checks signatures).
    init(claims: String) throws {
        // Any deterministic "MAC" will do: the Hub trusts tokens the server verified.
        let mac: SubscriberToken.HMAC = { _, message in Array(repeating: UInt8(message.count & 0xFF), count: 32) }
        let text = SubscriberToken.sign(claims: try JSONValue(parsing: claims), secret: [], hmac: mac)
        self = try SubscriberToken(verifying: text, secret: [], now: 1_800_000_000 - 100, audience: nil, limits: PatternLimits(), hmac: mac)
    }
}
