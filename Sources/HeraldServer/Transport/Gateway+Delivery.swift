import CLibWebSockets
import HeraldCore
import Logging

/// Queueing, overflow, resume and liveness: what both transports share (DESIGN §5, §7).
extension Gateway {
    /// Queues an event for a subscriber and applies its overflow policy.
    func deliver(_ event: Event, subscriptions: SubscriptionSet, to subscriber: Subscriber) {
        let wasEmpty = subscriber.queue.isEmpty
        let before = (bytes: subscriber.queue.byteCount, dropped: subscriber.queue.droppedCount, coalesced: subscriber.queue.coalescedCount)
        let result = subscriber.queue.enqueue(event, subscriptions: subscriptions)
        queuedBytesTotal += subscriber.queue.byteCount - before.bytes
        subscriber.sentThrough = max(subscriber.sentThrough, event.seq)
        let dropped = subscriber.queue.droppedCount - before.dropped
        let coalesced = subscriber.queue.coalescedCount - before.coalesced
        if dropped + coalesced > 0 { countDrops(dropped, coalesced: coalesced, for: subscriber) }
        if result == .overflow {
            metrics.disconnectedOverflow += 1
            closeForOverflow(subscriber)
        } else if wasEmpty {
            LWS.requestWritable(subscriber.wsi)
        }
    }

    /// Counts dropped events in total and for the routes of the client's subscriptions.
    func countDrops(_ dropped: UInt64, coalesced: UInt64, for subscriber: Subscriber) {
        metrics.droppedOverflow += dropped
        metrics.droppedCoalesced += coalesced
        subscriber.routes(of: subscriber.subscriptionSlots).forEach { metrics.routes[$0].dropped += dropped + coalesced }
    }

    /// Counts an event written to a client: deliveries, latency, per route.
    func countDelivery(_ event: Event, subscriptions: SubscriptionSet, to subscriber: Subscriber, webSocket: Bool, now: UInt64) {
        subscriber.sent += 1
        if webSocket { metrics.deliveredWebSocket += 1 } else { metrics.deliveredSSE += 1 }
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
        queuedBytesTotal += bytes.count
        if subscriber.queue.enqueue(control: bytes) == .overflow {
            if let client = subscriber as? WebSocketClient {
                close(client, code: 1008, reason: "too many unread replies", immediately: true)
            } else {
                closeForOverflow(subscriber)
            }
        } else if wasEmpty {
            LWS.requestWritable(subscriber.wsi)
        }
    }

    /// Takes the next entry to write, keeping the gateway-wide byte count.
    func takeNext(from subscriber: Subscriber) -> Outgoing? {
        let before = subscriber.queue.byteCount
        let next = subscriber.queue.next()
        queuedBytesTotal -= before - subscriber.queue.byteCount
        return next
    }

    /// The `disconnect` policy: WebSockets close with 4000, SSE streams end; the client
    /// resumes from history.
    func closeForOverflow(_ subscriber: Subscriber) {
        disconnect(subscriber, code: 4000, reason: "queue overflow")
        logger.debug("client disconnected on overflow", metadata: ["client": "\(subscriber.id)"])
    }

    /// Stops delivering to a client and closes it at its next WRITEABLE: a WebSocket with
    /// `code`, an SSE stream by ending it.
    func disconnect(_ subscriber: Subscriber, code: UInt16, reason: String) {
        index.removeAll(owner: subscriber.id)
        if let client = subscriber as? WebSocketClient {
            close(client, code: code, reason: reason, immediately: true)
        } else if let client = subscriber as? SSEClient {
            client.ending = true
            LWS.requestWritable(client.wsi)
        }
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
            let before = subscriber.queue.byteCount
            let dropped = subscriber.queue.shed(toBytes: max(0, before - excess))
            queuedBytesTotal -= before - subscriber.queue.byteCount
            countDrops(UInt64(dropped), coalesced: 0, for: subscriber)
            LWS.requestWritable(subscriber.wsi)
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
    func beginCatchUp(_ subscriber: Subscriber, since: UInt64, slots: SubscriptionSet) {
        let since = min(since, lastSeq)  // a position from a previous run means "now"
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
                subscriber.queue.enqueueGap(from: next, to: to, subscriptions: slots, reason: .expired)
                metrics.expiredGaps += 1
                catchUp.cursor = to
                continue
            }
            catchUp.cursor = next
            let floor = catchUp.floor
            let replaying = catchUp.replaying
            let matched = matchHistoryEvent(event, for: subscriber) { slot in next > floor || replaying.contains(slot) }
            if !matched.isEmpty {
                let before = subscriber.queue.byteCount
                _ = subscriber.queue.enqueue(event, subscriptions: matched)
                queuedBytesTotal += subscriber.queue.byteCount - before
                subscriber.sentThrough = max(subscriber.sentThrough, event.seq)
            }
        }
        subscriber.catchUp = catchUp.cursor >= lastSeq ? nil : catchUp
        if wasEmpty && !subscriber.queue.isEmpty { LWS.requestWritable(subscriber.wsi) }
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

    /// A connection's timer fired: SSE heartbeat, or WebSocket ping and idle check.
    func timerFired(_ wsi: OpaquePointer) {
        switch connections[wsi] {
        case .webSocket(let client)?:
            let silent = MonotonicClock.nanoseconds() - client.lastHeard
            if silent > UInt64(config.delivery.idleTimeoutSeconds) * 1_000_000_000 {
                logger.debug("websocket idle, closing", metadata: ["client": "\(client.id)"])
                close(client, code: 1001, reason: "idle timeout", immediately: true)
                return
            }
            client.pingDue = true
            LWS.requestWritable(wsi)
            lws_set_timer_usecs(wsi, lws_usec_t(config.delivery.pingSeconds) * 1_000_000)
        default:
            break
        }
    }

    /// Runs once a second on the loop thread: sends `: hb` heartbeats when due and ends
    /// SSE streams whose peer has gone.
    func tick() {
        let now = MonotonicClock.nanoseconds()
        let heartbeat = UInt64(config.delivery.heartbeatSeconds) * 1_000_000_000
        for case .sse(let client) in connections.values where client.headSent && !client.ending {
            if now - client.lastHeartbeat >= heartbeat {
                client.lastHeartbeat = now
                if client.queue.isEmpty { sendControl(WireFormat.sseHeartbeat, to: client) }
            }
        }
        sweepStreams(now: now)
    }

    /// Called after each service iteration with whether it dispatched any callback. Several
    /// empty iterations in a row mean lws is being woken by a readable SSE socket it will
    /// not read (below), so look now, at most every 20 ms; a lone empty wake-up is lws'
    /// own housekeeping and costs nothing.
    func serviced(handledCallbacks: Bool) {
        guard !handledCallbacks else { emptyServices = 0; return }
        emptyServices += 1
        let now = MonotonicClock.nanoseconds()
        if emptyServices >= 3 && now - lastStreamSweep >= 20_000_000 { sweepStreams(now: now) }
    }

    /// Ends every SSE stream whose socket has input: the peer closed it (or sent data,
    /// which an SSE client never does).
    ///
    /// lws does not read an HTTP connection while its response is in progress, so it
    /// notices a closed SSE peer only when a write fails — after up to two heartbeats —
    /// and meanwhile its poll returns at once, again and again, for the readable socket.
    /// The sweep runs every second and after a few empty wake-ups in a row, so a
    /// closed tab leaves its presence groups at once and the spin lasts milliseconds.
    private func sweepStreams(now: UInt64) {
        lastStreamSweep = now
        for case .sse(let client) in connections.values where client.headSent && !client.ending {
            if LWS.hasPendingInput(client.wsi) {
                client.ending = true
                LWS.requestWritable(client.wsi)
            }
        }
    }

    /// The queue settings for a client subscribing through `route` (or the defaults).
    func queue(forRoute route: String?) -> ClientQueue {
        let limits = route.flatMap { config.route(named: $0)?.queue } ?? config.delivery.queue
        let slot = limits.coalesceKey.flatMap { key in FieldPath(key).flatMap { coalescePaths.firstIndex(of: $0) } }
        return ClientQueue(limits: limits, coalesceSlot: slot)
    }
}
