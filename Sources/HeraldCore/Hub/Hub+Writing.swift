/// What a session writes next, resume from history, and what is counted when it writes.
extension Hub {
    /// The next thing to write for `session`: a keepalive, the next queued entry, or the
    /// close. A transport calls this until it has a write's worth (or `.idle`), encodes
    /// each answer, then calls `finishedWriting(_:)`.
    ///
    /// A session that is closing writes its close at once when told to close
    /// immediately or while the gateway drains, otherwise after its queue; after `.close`
    /// it answers `.idle`.
    public func nextWrite(for session: Session) -> SessionWrite {
        if session.closeWritten { return .idle }
        if let closing = session.closing {
            if closing.immediately || draining || session.queue.isEmpty {
                session.closeWritten = true
                return .close(closing)
            }
        } else if session.keepaliveDue {
            session.keepaliveDue = false
            return .keepalive
        }
        guard let entry = changeQueue(of: session, { $0.next() }) else { return .idle }
        return .entry(entry)
    }

    /// After a write: a resuming session reads on through history while its queue has
    /// room. Returns whether the session has more to write.
    public func finishedWriting(_ session: Session) -> Bool {
        if session.catchUp != nil { pump(session) }
        return !session.closeWritten && (!session.queue.isEmpty || session.closing != nil || session.catchUp != nil)
    }

    /// Counts an event written to a client. A live delivery counts per transport and
    /// route with its latency, checked against each route's deadline; a replay from
    /// history counts apart, without latency or deadline (its age says how long the
    /// client was away, not how fast the gateway is). `clientBehind`: the connection had
    /// a write after the event arrived and this event was not in it — it waited in the
    /// client's queue behind earlier ones, so a miss is the client's; otherwise this is
    /// the first write since, and a miss is the time the gateway took to get to it.
    public func recordDelivery(
        _ event: Event, subscriptions: SubscriptionSet, to session: Session, replayed: Bool, clientBehind: Bool = false, now: UInt64
    ) {
        session.sent += 1
        if replayed {
            metrics.replayed[session.transport] += 1
            return
        }
        metrics.delivered[session.transport] += 1
        guard metrics.timingEnabled else {
            session.routes(of: subscriptions).forEach { metrics.routes[$0].delivered += 1 }
            return
        }
        let nanoseconds = now &- event.acceptedAt
        metrics.deliveryLatency.observe(Double(nanoseconds) / 1e9)
        if nanoseconds > session.slowestDelivery { session.slowestDelivery = nanoseconds }
        var late = false
        session.routes(of: subscriptions).forEach { route in
            metrics.routes[route].delivered += 1
            if !metrics.routes[route].live.check(nanoseconds, clientBehind: clientBehind) { late = true }
        }
        if late { session.missedDeadlines += 1 }
    }

    // MARK: - Resume

    /// Whether resuming from `position` would read anything from history: a position at
    /// or past the last one of this epoch replays nothing (and costs no resume token).
    public func replays(from position: ResumePosition) -> Bool {
        if let epoch = position.epoch, epoch != log.epoch { return true }
        return position.seq < committedThrough
    }

    /// Replays history after `position` for the subscriptions in `slots`, then goes live.
    ///
    /// `seq: 0` asks for everything history still holds, so it never causes a gap. A
    /// position older than history gets one `expired` gap for the events no longer held
    /// (whether any of them matched cannot be known once they are gone). A position past
    /// the last one means "now". A position in another epoch gets a `reset` gap — `from`
    /// 1 `to` the last position of this epoch that history no longer holds (0: none) —
    /// and then everything history holds: never a silent skip.
    public func resume(_ session: Session, from position: ResumePosition, slots: SubscriptionSet) {
        var since = position.seq
        if let epoch = position.epoch, epoch != log.epoch {
            let to = (log.oldestPosition ?? committedThrough + 1) - 1
            changeQueue(of: session) { $0.enqueueGap(from: 1, to: to, subscriptions: slots, reason: .reset) }
            metrics.resetGaps += 1
            wake(session)
            since = 0
        }
        if isClustered, position.epoch == log.epoch, since > committedThrough {
            // The client comes from a node further along the stream: what this node has
            // not read yet up to `since`, the client has; it arrives live and is skipped.
            // (Never past the last position given out, where it is known: a position from
            // the future means "from now", as on a single node.)
            session.sentThrough = max(session.sentThrough, broker?.lastPosition.map { min(since, $0) } ?? since)
        }
        since = min(since, committedThrough)
        if since == 0 { since = (log.oldestPosition ?? committedThrough + 1) - 1 }
        guard since < committedThrough else { return }
        if var catchUp = session.catchUp {
            // The cursor may move back for the new subscriptions: the others were served
            // through it already and must not get those events again.
            session.subscriptionSlots.forEach { slot in
                catchUp.servedThrough[slot] = max(catchUp.servedThrough[slot] ?? catchUp.floor, catchUp.cursor)
            }
            catchUp.cursor = min(catchUp.cursor, since)
            catchUp.replaying.formUnion(slots)
            slots.forEach { slot in catchUp.servedThrough[slot] = since }
            session.catchUp = catchUp
        } else {
            var catchUp = CatchUp(cursor: since, floor: session.sentThrough, replaying: slots)
            slots.forEach { slot in catchUp.servedThrough[slot] = since }
            session.catchUp = catchUp
        }
        pump(session)
    }

    /// Moves a resuming session forward through history while its queue has room; when it
    /// reaches the last committed event it is live again. Events that have left history
    /// become one `expired` gap notice. Nothing is delivered twice and nothing out of
    /// order, because live events for the session wait in history until the cursor
    /// reaches them.
    ///
    /// One call reads at most `replayBatch` events of history, so a wave of resumes is
    /// served a slice at a time between the loop's other callbacks and live clients keep
    /// their latency; a session stopped by that bound (its queue may be empty: history
    /// held nothing for it) is woken to go on in its next write.
    func pump(_ session: Session) {
        guard var catchUp = session.catchUp else { return }
        let room = max(1, session.queue.limits.maxMessages / 2)
        let wasEmpty = session.queue.isEmpty
        var budget = Self.replayBatch
        while catchUp.cursor < committedThrough && session.queue.count < room && !session.queue.isFull && budget > 0 {
            budget -= 1
            let next = catchUp.cursor + 1
            guard let event = log.event(at: next) else {
                // (At least `next`: a hole inside history — a record the log could not
                // read — must not move the cursor back.)
                let to = max(next, min(committedThrough, (log.oldestPosition ?? committedThrough + 1) - 1))
                let slots = to <= catchUp.floor ? catchUp.replaying : session.subscriptionSlots
                changeQueue(of: session) { $0.enqueueGap(from: next, to: to, subscriptions: slots, reason: .expired) }
                metrics.expiredGaps += 1
                catchUp.cursor = to
                continue
            }
            catchUp.cursor = next
            let floor = catchUp.floor
            let servedThrough = catchUp.servedThrough
            let matched = matchRetained(event, for: session) { slot in next > (servedThrough[slot] ?? floor) }
            if !matched.isEmpty {
                changeQueue(of: session) { _ = $0.enqueue(event, subscriptions: matched, replayed: true) }
                session.sentThrough = max(session.sentThrough, event.seq)
            }
        }
        session.catchUp = catchUp.cursor >= committedThrough ? nil : catchUp
        if wasEmpty && (!session.queue.isEmpty || session.catchUp != nil) { wake(session) }
    }

    /// Events of history one `pump` reads at most (about 0.3 ms of matching).
    public static let replayBatch = 256

    /// Which of the session's subscriptions a retained event matches.
    private func matchRetained(_ event: Event, for session: Session, include: (Int) -> Bool) -> SubscriptionSet {
        replayTape.removeAll()
        do throws(HeraldError) {
            try JSONScanner.scan(event.json, limits: JSONLimits(maxDepth: config.limits.maxJSONDepth), into: &replayTape)
        } catch {
            return SubscriptionSet()  // cannot happen: the event was validated when accepted
        }
        return session.matchingSubscriptions(EventView(tape: replayTape, node: 0, bytes: event.json), include: include)
    }
}
