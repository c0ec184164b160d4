import HeraldCore
import Logging

/// Queueing, overflow, resume and liveness: what both transports share (DESIGN §5, §7).
extension Gateway {
    /// Queues a live event for a subscriber and applies its overflow policy.
    func deliver(_ event: Event, subscriptions: SubscriptionSet, to subscriber: Subscriber) {
        let wasEmpty = subscriber.queue.isEmpty
        let before = (dropped: subscriber.queue.droppedCount, coalesced: subscriber.queue.coalescedCount)
        let result = changeQueue(of: subscriber) { $0.enqueue(event, subscriptions: subscriptions) }
        subscriber.sentThrough = max(subscriber.sentThrough, event.seq)
        let dropped = subscriber.queue.droppedCount - before.dropped
        let coalesced = subscriber.queue.coalescedCount - before.coalesced
        if dropped + coalesced > 0 { countDrops(dropped, coalesced: coalesced, for: subscriber) }
        if result == .overflow {
            metrics.disconnectedOverflow += 1
            closeForOverflow(subscriber)
        } else if wasEmpty {
            subscriber.socket.requestWritable()
        }
    }

    /// Counts dropped events in total and for the routes of the client's subscriptions.
    func countDrops(_ dropped: UInt64, coalesced: UInt64, for subscriber: Subscriber) {
        metrics.droppedOverflow += dropped
        metrics.droppedCoalesced += coalesced
        subscriber.routes(of: subscriber.subscriptionSlots).forEach { metrics.routes[$0].dropped += dropped + coalesced }
    }

    /// Counts an event written to a client. A live delivery counts per transport and
    /// route with its latency; a replay from history counts apart, without latency (its
    /// age says how long the client was away, not how fast the gateway is).
    func countDelivery(_ event: Event, subscriptions: SubscriptionSet, to subscriber: Subscriber, replayed: Bool, now: UInt64) {
        subscriber.sent += 1
        switch (subscriber.transport, replayed) {
        case (.webSocket, false): metrics.deliveredWebSocket += 1
        case (.sse, false): metrics.deliveredSSE += 1
        case (.webSocket, true): metrics.replayedWebSocket += 1; return
        case (.sse, true): metrics.replayedSSE += 1; return
        }
        let latency = metrics.timingEnabled ? Double(now &- event.acceptedAt) / 1e9 : 0
        if metrics.timingEnabled { metrics.deliveryLatency.observe(latency) }
        subscriber.routes(of: subscriptions).forEach { route in
            metrics.routes[route].delivered += 1
            if metrics.timingEnabled { metrics.routes[route].latency.observe(latency) }
        }
    }

    /// What a new subscription is recorded as: its id (also JSON-encoded once), route
    /// and filter, and the metrics entry of its route (the ad-hoc entry without one).
    func describe(id: String, route: String?, filter: JSONValue?) -> SubscriptionDescription {
        var encodedID: [UInt8] = []
        JSONWriter.writeString(id, into: &encodedID)
        let routeIndex = route.flatMap { name in config.routes.firstIndex { $0.name == name } } ?? metrics.adHocRoute
        return SubscriptionDescription(id: id, encodedID: encodedID, route: route, filter: filter, routeIndex: routeIndex)
    }

    /// Queues a transport-encoded control message (never dropped).
    func sendControl(_ bytes: [UInt8], to subscriber: Subscriber) {
        let wasEmpty = subscriber.queue.isEmpty
        if changeQueue(of: subscriber, { $0.enqueue(control: bytes) }) == .overflow {
            disconnect(subscriber, code: .policyViolation, reason: "too many unread replies")
        } else if wasEmpty {
            subscriber.socket.requestWritable()
        }
    }

    /// Takes the next entry to write.
    func takeNext(from subscriber: Subscriber) -> Outgoing? {
        changeQueue(of: subscriber) { $0.next() }
    }

    /// The `disconnect` policy: WebSockets close with 4000, SSE streams end; the client
    /// resumes from history.
    func closeForOverflow(_ subscriber: Subscriber) {
        disconnect(subscriber, code: .queueOverflow, reason: "queue overflow")
        logger.debug("client disconnected on overflow", metadata: ["client": "\(subscriber.id)"])
    }

    /// Stops delivering to a client and closes it at its next WRITEABLE: a WebSocket with
    /// `code`, an SSE stream by ending it.
    func disconnect(_ subscriber: Subscriber, code: WebSocketCloseCode, reason: String) {
        index.removeAll(owner: subscriber.id)
        subscriber.catchUp = nil
        switch subscriber {
        case let client as WebSocketClient:
            client.closing = (code, reason, true)
        case let client as SSEClient:
            client.ending = true
        default:
            break
        }
        subscriber.socket.requestWritable()
    }

    /// Past `limits.maxQueuedBytesTotal`, the largest queues shed by their policy first,
    /// until the total is back under 75 % of the bound (so that shedding is not redone for
    /// every event).
    func shedLargestQueues() {
        let target = config.limits.maxQueuedBytesTotal / 4 * 3
        let largest = subscribers.values.sorted { $0.queue.byteCount > $1.queue.byteCount }
        for subscriber in largest where queuedBytesTotal > target {
            let excess = queuedBytesTotal - target
            if subscriber.queue.limits.policy == .disconnect {
                closeForOverflow(subscriber)
                continue
            }
            let dropped = changeQueue(of: subscriber) { $0.shed(toBytes: max(0, $0.byteCount - excess)) }
            countDrops(UInt64(dropped), coalesced: 0, for: subscriber)
            subscriber.socket.requestWritable()
        }
        shedCount += 1
        let now = MonotonicClock.nanoseconds()
        if now - lastShedWarning > 10_000_000_000 {
            lastShedWarning = now
            logger.warning("queued bytes reached limits.maxQueuedBytesTotal; the largest queues shed events", metadata: [
                "queuedBytes": "\(queuedBytesTotal)", "limit": "\(config.limits.maxQueuedBytesTotal)", "sheddingRounds": "\(shedCount)",
            ])
        }
    }

    // MARK: - Resume

    /// Starts replaying history after `since` for the subscriptions in `slots`.
    ///
    /// `since: 0` asks for everything history still holds, so it never causes a gap. A
    /// position older than history gets one `expired` gap for the events no longer held
    /// (whether any of them matched cannot be known once they are gone).
    func beginCatchUp(_ subscriber: Subscriber, since: UInt64, slots: SubscriptionSet) {
        var since = min(since, lastSeq)  // a position from a previous run means "now"
        if since == 0 { since = (history.firstSeq ?? lastSeq + 1) - 1 }
        guard since < lastSeq else { return }
        if var catchUp = subscriber.catchUp {
            catchUp.cursor = min(catchUp.cursor, since)
            catchUp.replaying.formUnion(slots)
            subscriber.catchUp = catchUp
        } else {
            subscriber.catchUp = CatchUp(cursor: since, floor: subscriber.sentThrough, replaying: slots)
        }
        pump(subscriber)
    }

    /// Moves a resuming client forward through history while its queue has room; when it
    /// reaches the newest event it is live again. Events that have left history become one
    /// `expired` gap notice. Nothing is delivered twice and nothing out of order, because
    /// live events for the client wait in history until the cursor reaches them.
    func pump(_ subscriber: Subscriber) {
        guard var catchUp = subscriber.catchUp else { return }
        let room = max(1, subscriber.queue.limits.maxMessages / 2)
        let wasEmpty = subscriber.queue.isEmpty
        while catchUp.cursor < lastSeq && subscriber.queue.count < room && !subscriber.queue.isFull {
            let next = catchUp.cursor + 1
            guard let event = history.event(seq: next) else {
                let to = min(lastSeq, (history.firstSeq ?? lastSeq + 1) - 1)
                let slots = to <= catchUp.floor ? catchUp.replaying : subscriber.subscriptionSlots
                changeQueue(of: subscriber) { $0.enqueueGap(from: next, to: to, subscriptions: slots, reason: .expired) }
                metrics.expiredGaps += 1
                catchUp.cursor = to
                continue
            }
            catchUp.cursor = next
            let floor = catchUp.floor
            let replaying = catchUp.replaying
            let matched = matchHistoryEvent(event, for: subscriber) { slot in next > floor || replaying.contains(slot) }
            if !matched.isEmpty {
                changeQueue(of: subscriber) { _ = $0.enqueue(event, subscriptions: matched, replayed: true) }
                subscriber.sentThrough = max(subscriber.sentThrough, event.seq)
            }
        }
        subscriber.catchUp = catchUp.cursor >= lastSeq ? nil : catchUp
        if wasEmpty && !subscriber.queue.isEmpty { subscriber.socket.requestWritable() }
    }

    /// Which of the subscriber's subscriptions an event from history matches.
    private func matchHistoryEvent(_ event: Event, for subscriber: Subscriber, include: (Int) -> Bool) -> SubscriptionSet {
        let json = event.json
        replayTape.removeAll()
        do throws(HeraldError) {
            try JSONScanner.scan(json, limits: JSONLimits(maxDepth: config.limits.maxJSONDepth), into: &replayTape)
        } catch {
            return SubscriptionSet()  // cannot happen: the event was validated on ingest
        }
        return subscriber.matchingSubscriptions(EventView(tape: replayTape, node: 0, bytes: json), include: include)
    }

    // MARK: - Liveness

    /// Runs once a second on the loop thread: SSE heartbeats when due, expired tokens,
    /// late or idle HTTP requests.
    func tick() {
        let now = MonotonicClock.nanoseconds()
        let heartbeat = UInt64(config.delivery.heartbeatSeconds) * 1_000_000_000
        for subscriber in subscribers.values {
            if let client = subscriber as? SSEClient, !client.ending, now - client.lastHeartbeat >= heartbeat {
                client.lastHeartbeat = now
                if client.queue.isEmpty { sendControl(WireFormat.sseHeartbeat, to: client) }
            }
        }
        expireTokens()
        expireHTTP(now: now)
        releaseMemoryAfterDisconnects(now: now)
    }

    /// Once a wave of at least 256 disconnects has settled (a second without one), gives
    /// the allocator's free pages back, so the process shrinks with its load instead of
    /// keeping its peak for ever.
    private func releaseMemoryAfterDisconnects(now: UInt64) {
        guard closedSinceTrim >= 256, now - lastClosedAt > 1_000_000_000 else { return }
        closedSinceTrim = 0
        Socket.releaseFreeMemory()
    }

    /// The queue settings for a client subscribing through `route` (or the defaults).
    func queue(forRoute route: String?, transport: TransportKind) -> ClientQueue {
        let limits = route.flatMap { config.route(named: $0)?.queue } ?? config.delivery.queue
        let slot = limits.coalesceKey.flatMap { key in FieldPath(key).flatMap { coalescePaths.firstIndex(of: $0) } }
        return ClientQueue(limits: limits, coalesceSlot: slot, transport: transport)
    }
}
