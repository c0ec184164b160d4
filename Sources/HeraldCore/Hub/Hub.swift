import DequeModule

/// The gateway without sockets: the publish pipeline and every subscriber's state.
///
/// Why it exists: the rules that make Herald trustworthy — sequence, dedup, history,
/// matching once, bounded queues with their policies, resume without loss or duplicates,
/// the gateway-wide bound on queued bytes, presence, liveness and token expiry — are
/// decided here, synchronously and deterministically (the clock is injected), and tested
/// without a socket. The server turns bytes into calls on the Hub and the Hub's answers
/// into bytes: it asks which sessions have something to write (`drainWakes`) and, for
/// each, what to write next (`nextWrite(for:)`).
///
/// Seams: an `EventLog` (the in-memory ring, or a file log that acknowledges after fsync)
/// and, for a node of a cluster, an `EventBroker` that positions events on a shared
/// stream (`submit`, then `sequenced` and `receive` from the loop's inbox).
///
/// Owned by one loop thread; not thread-safe.
public final class Hub {
    public let config: HeraldConfig
    public let clock: HubClock
    public var metrics: GatewayMetrics
    /// Who is in which presence group.
    public internal(set) var presence = PresenceRegistry()
    /// Shutting down: sessions close, nothing new is accepted.
    public private(set) var draining = false

    let log: any EventLog
    /// The cluster's stream, or nil for a single node (which positions events itself).
    let broker: (any EventBroker)?
    var index = SubscriptionIndex()
    var dedup: Deduplicator
    /// The distinct `coalesceKey` paths of the configuration; an event carries the hash of
    /// its value at each, in this order.
    let coalescePaths: [FieldPath]

    /// Sessions by `Session.index`; nil where a session ended (its index is reused).
    public private(set) var sessions: [Session?] = []
    private var freeIndices: [Int] = []
    public private(set) var sessionCount = 0
    private var nextClientID: UInt64
    private let clientIDs: ClientIDs

    /// The client ids a Hub hands out: `first`, `first + stride`, … With several loops
    /// each loop's Hub takes every `stride`-th id (loop `i` starts at `i + 1`), so an id
    /// names one client in the whole process and tells which loop holds it.
    public struct ClientIDs: Sendable {
        public var first: UInt64
        public var stride: UInt64
        public init(first: UInt64 = 1, stride: UInt64 = 1) {
            self.first = first
            self.stride = stride
        }
        /// The ids of loop `index` of `count`.
        public static func loop(_ index: Int, of count: Int) -> ClientIDs { ClientIDs(first: UInt64(index) + 1, stride: UInt64(count)) }
        /// The loop (of `count`) whose Hub gave out `id`.
        public static func loop(of id: UInt64, count: Int) -> Int { Int((id &- 1) % UInt64(count)) }
    }

    /// Bytes queued for all sessions together (bounded by `limits.maxQueuedBytesTotal`).
    /// Changed only in `changeQueue`, so it is always the sum of the queues.
    public private(set) var queuedBytesTotal = 0
    /// How often queues were shed for that bound (the server logs changes).
    public internal(set) var shedRounds = 0

    /// The last position the log reported durable; events after it wait in `pending`.
    public internal(set) var committedThrough: UInt64 = 0
    /// Accepted events the log has not made durable yet, in order, and their bytes (the
    /// server refuses new events past `limits.maxPendingInputBytesTotal` of them).
    var pending: Deque<Event> = []
    public internal(set) var pendingBytes = 0
    /// Sessions with replies waiting for `committedThrough` (see `send(_:control:after:)`).
    var sessionsAwaitingCommit: [Session] = []
    /// Why the log cannot store events (nil while it works): ingest is refused meanwhile,
    /// and nothing not stored is ever acknowledged. A file log's failure is for good; the
    /// cluster's stream recovers when Redis can be reached again.
    public internal(set) var storageFailure: String?

    /// Sessions that have something new to write, each once.
    private var wakes: [Session] = []

    /// Reused so that matching and rescanning allocate nothing per event.
    var matches: [SubscriptionIndex.Match] = []
    var replayTape = JSONTape()
    var presenceTape = JSONTape()

    /// Presence changes the cluster's stream could not store, announced again when it is
    /// back (at most `maxPresenceAwaitingStorage`, oldest dropped).
    var presenceAwaitingStorage: [PresenceAwaitingStorage] = []
    static let maxPresenceAwaitingStorage = 10_000
    /// Submissions to the broker not answered yet, or answered and not taken yet.
    var submissions: [UInt64: Submitted] = [:]
    var nextTicket: UInt64 = 1

    public init(
        config: HeraldConfig, clock: HubClock, log: (any EventLog)? = nil, broker: (any EventBroker)? = nil,
        clientIDs: ClientIDs = ClientIDs()
    ) {
        self.config = config
        self.clientIDs = clientIDs
        self.nextClientID = clientIDs.first
        self.clock = clock
        self.log = log ?? InMemoryEventLog(limits: config.history)
        self.broker = broker
        self.metrics = GatewayMetrics(
            routeNames: config.routes.map(\.name), deadlines: config.routeDeadlines,
            ingestDeadline: UInt64(config.ingest.deadlineMs) * 1_000_000,
            timingEnabled: config.metrics.timing)
        self.dedup = Deduplicator(windowSeconds: config.dedup.windowSeconds, maxEntries: config.dedup.maxEntries)
        var paths: [FieldPath] = []
        for key in [config.delivery.queue.coalesceKey] + config.routes.map(\.queue?.coalesceKey) {
            if let key, let path = FieldPath(key), !paths.contains(path) { paths.append(path) }
        }
        self.coalescePaths = paths
        self.committedThrough = self.log.nextPosition - 1
        // The dedup window survives a restart: the log's newest events are recorded again
        // at their own acceptance times (older ones fall out of the window as usual).
        for event in self.log.recover() where !event.id.isEmpty {
            dedup.record(source: event.source, id: event.id, seq: event.seq, now: event.acceptedAt)
        }
    }

    /// Stores what the log holds and stops its threads (after the loop stopped).
    public func closeLog() { log.close() }

    /// The last position given to an event (0 before the first).
    public var lastSeq: UInt64 { log.nextPosition - 1 }
    /// The epoch every position of this hub counts in (its log's).
    public var epoch: StreamEpoch { log.epoch }

    /// What history retains for resume.
    public var retained: (events: Int, bytes: Int) { (log.retainedCount, log.retainedBytes) }

    /// Live subscriptions over all sessions.
    public var subscriptionCount: Int { index.count }

    // MARK: - Sessions

    /// Opens a session; `route` chooses its queue settings (else `delivery.queue`).
    public func openSession(transport: TransportKind, remote: String, credentials: Credentials, route: String? = nil) -> Session {
        let limits = route.flatMap { config.route(named: $0)?.queue } ?? config.delivery.queue
        let coalesceSlot = limits.coalesceKey.flatMap { key in FieldPath(key).flatMap { coalescePaths.firstIndex(of: $0) } }
        let slots = transport == .sse ? 1 : config.limits.maxSubscriptionsPerConnection
        let index = freeIndices.popLast() ?? sessions.count
        let session = Session(
            id: nextClientID, index: index, transport: transport, remote: remote, credentials: credentials,
            queue: ClientQueue(limits: limits, coalesceSlot: coalesceSlot, transport: transport), maxSlots: slots, now: clock.now())
        nextClientID += clientIDs.stride
        if index == sessions.count { sessions.append(session) } else { sessions[index] = session }
        sessionCount += 1
        return session
    }

    /// Forgets a session whose connection is gone: its subscriptions, its queue and its
    /// presence (each group it was in announces a `disconnected` leave).
    public func closeSession(_ session: Session) {
        guard sessions.indices.contains(session.index), sessions[session.index] === session else { return }
        index.removeAll(owner: session.owner)
        changeQueue(of: session) { $0 = ClientQueue(limits: $0.limits, coalesceSlot: $0.coalesceSlot, transport: $0.transport) }
        session.catchUp = nil
        if !session.repliesAwaitingCommit.isEmpty {
            session.repliesAwaitingCommit = []
            sessionsAwaitingCommit.removeAll { $0 === session }
        }
        sessions[session.index] = nil
        freeIndices.append(session.index)
        sessionCount -= 1
        leaveAllPresence(session)
    }

    /// The session with client id `id`, if it is open.
    public func session(id: UInt64) -> Session? {
        for case let session? in sessions where session.id == id { return session }
        return nil
    }

    /// Replaces a session's credentials (the WebSocket `auth` op); later subscriptions use
    /// the new scope, and a renewed token moves its expiry.
    public func authenticate(_ session: Session, as credentials: Credentials) {
        session.credentials = credentials
    }

    /// The client sent something (a message, a pong): it is alive.
    public func heard(from session: Session) {
        session.lastHeard = clock.now()
    }

    // MARK: - Subscriptions

    /// What a subscription answers with.
    public struct Subscribed: Sendable, Equatable {
        public var slot: Int
        /// The last accepted position: the subscription sees every event after it.
        public var position: UInt64
    }

    /// Adds a subscription: the route's pattern, the filter and the token's scope must all
    /// match. Resume with `resume(_:since:slots:)` after acknowledging it.
    /// - Throws: `duplicate_subscription`, `too_many_subscriptions`, `unknown_route`,
    ///   `invalid_pattern` (a subscription needs a filter or a route).
    public func subscribe(_ session: Session, id: String, route: String?, filter: Pattern?) throws(HeraldError) -> Subscribed {
        guard session.slot(of: id) == nil else {
            throw HeraldError(.duplicateSubscription, "subscription \"\(id)\" already exists on this connection")
        }
        guard let slot = session.freeSlot() else {
            throw HeraldError(.tooManySubscriptions, "a connection may hold at most \(session.maxSlots) subscriptions")
        }
        var patterns: [Pattern] = []
        if let route {
            guard let named = config.route(named: route) else {
                let known = config.routes.map(\.name).joined(separator: ", ")
                throw HeraldError(.unknownRoute, "no route named \"\(route)\"" + (known.isEmpty ? "" : " (routes: \(known))"))
            }
            patterns.append(named.pattern)
        }
        if let filter { patterns.append(filter) }
        guard !patterns.isEmpty else {
            throw HeraldError(.invalidPattern, "a subscription needs a filter or a route (filter {} receives every event)")
        }
        if let scope = session.credentials.scope { patterns.append(scope) }
        var encodedID: [UInt8] = []
        JSONWriter.writeString(id, into: &encodedID)
        let routeIndex = route.flatMap { name in config.routes.firstIndex { $0.name == name } } ?? metrics.adHocRoute
        session.setSubscription(
            slot, patterns: patterns,
            description: SubscriptionDescription(id: id, encodedID: encodedID, route: route, filter: filter?.value, routeIndex: routeIndex))
        index.add(owner: session.owner, slot: slot, patterns: patterns)
        // While the session catches up, live events wait in history: this subscription
        // is owed only what follows the position it is told.
        session.catchUp?.servedThrough[slot] = committedThrough
        // Only stored events count: one still waiting for the log is delivered after this.
        return Subscribed(slot: slot, position: committedThrough)
    }

    /// Removes the subscription named `id`; events queued only for it are dropped.
    /// Returns false when there is none.
    @discardableResult
    public func unsubscribe(_ session: Session, id: String) -> Bool {
        guard let slot = session.slot(of: id) else { return false }
        session.clearSubscription(slot)
        session.catchUp?.replaying.remove(slot)
        session.catchUp?.servedThrough[slot] = nil
        index.remove(owner: session.owner, slot: slot)
        changeQueue(of: session) { $0.removeSubscription(slot) }
        return true
    }

    // MARK: - Control messages and closing

    /// Queues a transport-encoded control message (an acknowledgement, an error); control
    /// messages are never dropped, but a client that lets too many pile up is closed.
    /// Queues `bytes` once `committedThrough` reaches `position` (at once if it has): an
    /// acknowledgement is never sent for an event that is not stored yet.
    public func send(_ session: Session, control bytes: [UInt8], after position: UInt64) {
        guard position > committedThrough else { return send(session, control: bytes) }
        if session.repliesAwaitingCommit.isEmpty { sessionsAwaitingCommit.append(session) }
        session.repliesAwaitingCommit.append((position, bytes))
    }

    /// Sends the replies whose events became durable.
    func releaseRepliesAwaitingCommit() {
        guard !sessionsAwaitingCommit.isEmpty else { return }
        sessionsAwaitingCommit.removeAll { session in
            while let first = session.repliesAwaitingCommit.first, first.position <= committedThrough {
                session.repliesAwaitingCommit.removeFirst()
                if session.closing == nil { send(session, control: first.bytes) }
            }
            return session.repliesAwaitingCommit.isEmpty
        }
    }

    public func send(_ session: Session, control bytes: [UInt8]) {
        let wasEmpty = session.queue.isEmpty
        if changeQueue(of: session, { $0.enqueue(control: bytes) }) == .overflow {
            close(session, code: .policyViolation, reason: "too many unread replies", immediately: true)
        } else if wasEmpty {
            wake(session)
        }
    }

    /// Ends a session at its next write (`immediately`), or once what is queued now has
    /// been written; nothing new is queued for it meanwhile. `notice` goes to the client
    /// first where the transport can say it (a WebSocket error frame).
    public func close(_ session: Session, code: WebSocketCloseCode, reason: String, immediately: Bool, notice: HeraldError? = nil) {
        if session.closing == nil || immediately {
            session.closing = Session.Closing(code: code, reason: reason, immediately: immediately, notice: notice)
        }
        index.removeAll(owner: session.owner)
        session.catchUp = nil
        wake(session)
    }

    /// Starts a graceful shutdown: every session closes with 1001 at its next write.
    public func beginDraining() {
        guard !draining else { return }
        draining = true
        for case let session? in sessions {
            close(session, code: .goingAway, reason: "server shutting down", immediately: true)
        }
    }

    // MARK: - Wakes

    /// Notes that `session` has something new to write.
    func wake(_ session: Session) {
        guard !session.wakePending else { return }
        session.wakePending = true
        wakes.append(session)
    }

    /// Calls `body` with each session that has something new to write since the last
    /// call (each once), and forgets them. The server asks the socket of each for a
    /// WRITEABLE callback.
    public func drainWakes(_ body: (Session) -> Void) {
        guard !wakes.isEmpty else { return }
        for session in wakes {
            session.wakePending = false
            body(session)
        }
        wakes.removeAll(keepingCapacity: true)
    }

    /// Applies `change` to a session's queue and keeps the gateway-wide byte count: the
    /// one place `queuedBytesTotal` changes.
    @discardableResult
    func changeQueue<R>(of session: Session, _ change: (inout ClientQueue) -> R) -> R {
        let before = session.queue.byteCount
        let result = change(&session.queue)
        queuedBytesTotal += session.queue.byteCount - before
        return result
    }
}
