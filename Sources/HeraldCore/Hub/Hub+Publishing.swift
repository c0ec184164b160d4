/// The publish pipeline: sequence → dedup → log → match → enqueue (DESIGN §1).
extension Hub {
    /// Sequences validated events, logs them and queues each for its live recipients.
    ///
    /// `tape` and `body` are the scanned ingest body the events' nodes point into; each
    /// event is matched once, in place, and encoded once. An event whose `(source, id)`
    /// was accepted within the dedup window is answered with its original `seq` and not
    /// delivered again. Permission checks are the caller's (they depend on how the
    /// client authenticated). An event the log has not made durable yet is answered here
    /// with its `seq` but delivered only once `logged(through:)` reaches it; the caller
    /// acknowledges when `committedThrough` does.
    /// - Complexity: O(events × (match + recipients)).
    public func publish(_ events: [IncomingEvent], tape: JSONTape, body: UnsafeRawBufferPointer) -> [WireFormat.Acceptance] {
        var accepted: [WireFormat.Acceptance] = []
        accepted.reserveCapacity(events.count)
        let now = clock.now()
        for incoming in events {
            let identity = incoming.hasExplicitID ? Deduplicator.Key(source: incoming.source, id: incoming.id) : nil
            if let identity, let original = dedup.lookup(identity, now: now) {
                accepted.append(.init(id: incoming.id, seq: original, duplicate: true))
                metrics.duplicates += 1
                continue
            }
            let event = accept(incoming, tape: tape, body: body, now: now)
            if let identity { dedup.record(identity, seq: event.seq, now: now) }
            accepted.append(.init(id: incoming.id, seq: event.seq, duplicate: false))
        }
        return accepted
    }

    /// Sequences one event and logs it; delivers it when the log says it is durable.
    @discardableResult
    func accept(_ incoming: IncomingEvent, tape: JSONTape, body: UnsafeRawBufferPointer, now: UInt64) -> Event {
        precondition(!isClustered, "a clustered hub submits events to the stream; it does not position them")
        metrics.accepted += 1
        let coalesceKeys = coalescePaths.map { $0.valueHash(in: tape, node: incoming.node, bytes: body) }
        let event = incoming.compactJSON.withUnsafeBytes {
            Event(
                epoch: log.epoch, seq: log.nextPosition, id: incoming.id, source: incoming.source, type: incoming.type, acceptedAt: now,
                json: $0, coalesceKeys: coalesceKeys)
        }
        switch log.append(event, now: now) {
        case .durable where pending.isEmpty:
            committedThrough = event.seq
            route(event, view: EventView(tape: tape, node: incoming.node, bytes: body))
        case .durable, .pending:
            pending.append(event)
            pendingBytes += event.byteCount
        }
        return event
    }

    /// The log made every event up to `position` durable: deliver them, in order. Called
    /// from the loop's inbox by a log that writes on another thread.
    public func logged(through position: UInt64) {
        while let first = pending.first, first.seq <= position {
            pending.removeFirst()  // a Deque: O(1), however many wait for a slow disk
            pendingBytes -= first.byteCount
            committedThrough = first.seq
            routeRescanning(first)
        }
        releaseRepliesAwaitingCommit()
    }

    /// The log cannot store events any more: from now on ingest is refused (the caller
    /// checks `storageFailure`), and what was accepted but not stored is never delivered
    /// nor acknowledged. Subscribers keep their connections.
    public func storageFailed(_ reason: String) {
        guard storageFailure == nil else { return }
        storageFailure = reason
        metrics.storageFailures += 1
        // Publishes waiting for their acknowledgement get an error in its place (in order,
        // as a client matches answers to requests), never silence.
        let notStored = WireFormat.webSocketError(
            HeraldError(.storageUnavailable, "\(storageName) cannot store events: \(reason); this event was not stored"), id: nil)
        for session in sessionsAwaitingCommit {
            for _ in session.repliesAwaitingCommit {
                metrics.storageRefusals += 1
                send(session, control: notStored)
            }
            session.repliesAwaitingCommit = []
        }
        sessionsAwaitingCommit = []
    }

    /// Matches a committed event against every live subscription, in place on its tape,
    /// and queues it for each recipient.
    func route(_ event: Event, view: EventView) {
        matches.removeAll(keepingCapacity: true)
        let matchStart = metrics.timingEnabled ? clock.now() : 0
        index.match(view, into: &matches)
        if metrics.timingEnabled { metrics.matchDuration.observe(Double(clock.now() - matchStart) / 1e9) }
        var matchedRoutes = RouteSet()
        for match in matches {
            guard let session = session(owner: match.owner) else { continue }
            matchedRoutes.formUnion(session.routes(of: match.subscriptions))
            // A resuming client reads this event from history when its turn comes.
            guard session.catchUp == nil else { continue }
            deliver(event, subscriptions: match.subscriptions, to: session)
        }
        matchedRoutes.forEach { route in
            if event.routeTally?.mark(route) ?? true { metrics.routes[route].matched += 1 }
        }
        if queuedBytesTotal > config.limits.maxQueuedBytesTotal { shedLargestQueues() }
    }

    /// `route` for an event whose ingest tape is gone: its JSON is scanned again.
    func routeRescanning(_ event: Event) {
        guard subscriptionCount > 0 else { return }  // nobody to match: no scan
        replayTape.removeAll()
        do throws(HeraldError) {
            try JSONScanner.scan(event.json, limits: JSONLimits(maxDepth: config.limits.maxJSONDepth), into: &replayTape)
        } catch {
            return  // cannot happen: the event was validated when it was accepted
        }
        route(event, view: EventView(tape: replayTape, node: 0, bytes: event.json))
    }

    /// The open session a subscription index entry belongs to (owners are session
    /// indices, so this is an array access).
    func session(owner: UInt64) -> Session? {
        sessions[Int(owner)]
    }

    /// Queues a live event for a session and applies its overflow policy.
    func deliver(_ event: Event, subscriptions: SubscriptionSet, to session: Session) {
        // Live events arrive in order; one at or before what the session was sent (or, on
        // a node behind the one it came from, said it had) would be a duplicate.
        guard event.seq > session.sentThrough else { return }
        let wasEmpty = session.queue.isEmpty
        let before = (dropped: session.queue.droppedCount, coalesced: session.queue.coalescedCount)
        let result = changeQueue(of: session) { $0.enqueue(event, subscriptions: subscriptions) }
        session.sentThrough = max(session.sentThrough, event.seq)
        let dropped = session.queue.droppedCount - before.dropped
        let coalesced = session.queue.coalescedCount - before.coalesced
        if dropped + coalesced > 0 { countDrops(dropped, coalesced: coalesced, for: session) }
        if result == .overflow {
            metrics.disconnectedOverflow += 1
            close(session, code: .queueOverflow, reason: "queue overflow", immediately: true)
        } else if wasEmpty {
            wake(session)
        }
    }

    /// Counts dropped events in total and for the routes of the session's subscriptions.
    func countDrops(_ dropped: UInt64, coalesced: UInt64, for session: Session) {
        metrics.droppedOverflow += dropped
        metrics.droppedCoalesced += coalesced
        session.routes(of: session.subscriptionSlots).forEach { metrics.routes[$0].dropped += dropped + coalesced }
    }

    /// Past `limits.maxQueuedBytesTotal`, the largest queues shed by their policy first,
    /// until the total is back under 75 % of the bound (so that shedding is not redone for
    /// every event).
    func shedLargestQueues() {
        let target = config.limits.maxQueuedBytesTotal / 4 * 3
        let largest = sessions.compactMap { $0 }.sorted { $0.queue.byteCount > $1.queue.byteCount }
        for session in largest where queuedBytesTotal > target {
            let excess = queuedBytesTotal - target
            if session.queue.limits.policy == .disconnect {
                metrics.disconnectedOverflow += 1
                close(session, code: .queueOverflow, reason: "queue overflow", immediately: true)
                changeQueue(of: session) { $0 = ClientQueue(limits: $0.limits, coalesceSlot: $0.coalesceSlot, transport: $0.transport) }
                continue
            }
            let dropped = changeQueue(of: session) { $0.shed(toBytes: max(0, $0.byteCount - excess)) }
            countDrops(UInt64(dropped), coalesced: 0, for: session)
            wake(session)
        }
        shedRounds += 1
    }
}
