import CLibWebSockets
import HeraldCore
import Logging
#if canImport(Glibc)
import Glibc
#endif

/// The gateway's state and logic on its loop thread.
///
/// libwebsockets calls `heraldCallback` for every connection event; the callback finds
/// this object through the context's user pointer and hands it the event. Everything in
/// here runs on the one loop thread that services the context, so nothing is locked: the
/// connection table, the subscription index, the sequence counter and every client queue
/// are plain values owned by this object.
final class Gateway {
    let config: HeraldConfig
    let logger: Logger
    let publishers: PublisherKeys
    let admins: PublisherKeys
    var metrics: GatewayMetrics
    var statsWindow = StatsWindow()
    /// Canonical absolute path of the static files directory, if serving one.
    let publicRoot: String?

    /// Every open socket, by connection id.
    var connections: [UInt64: Connection] = [:]
    var nextConnectionID: UInt64 = 1
    var subscribers: [UInt64: Subscriber] = [:]
    var index = SubscriptionIndex()
    var lastSeq: UInt64 = 0
    var history: History
    var dedup: Deduplicator
    /// The distinct `coalesceKey` paths of the configuration; an event carries the hash of
    /// its value at each, in this order.
    let coalescePaths: [FieldPath]
    /// Bytes queued for all clients together (bounded by `limits.maxQueuedBytesTotal`).
    /// Changed only in `changeQueue`.
    private(set) var queuedBytesTotal = 0
    /// Bytes of unfinished input held by all connections together (bounded by
    /// `limits.maxPendingInputBytesTotal`); changed only in `chargeInput`.
    var pendingInputBytes = 0
    /// How often queues were shed for the gateway-wide bound, and when that was last logged.
    var shedCount = 0
    var lastShedWarning: UInt64 = 0
    /// Reused to rescan history events when a client resumes.
    var replayTape = JSONTape()
    var nextClientID: UInt64 = 1
    /// Reused for every event so matching allocates nothing.
    var matches: [SubscriptionIndex.Match] = []
    /// Reused for every ingest body.
    var ingestTape = JSONTape()
    /// Reused for every presence event (kept apart from `ingestTape`, which may be in use
    /// when a disconnect announces a leave).
    var presenceTape = JSONTape()
    /// Reused to encode every HTTP response.
    var responseScratch: [UInt8] = []
    /// Who is in which presence group.
    var presence = PresenceRegistry()
    /// The HS256 secret for subscriber JWTs: `auth.jwtSecret`, or a random one per process
    /// when only demo tokens need it; nil when JWTs are not accepted.
    let jwtSecret: [UInt8]?
    /// Connections closed since free memory was last given back, and when the last closed.
    var closedSinceTrim = 0
    var lastClosedAt: UInt64 = 0
    /// Shutting down: refuse new work, close clients.
    var draining = false
    let startedAt = MonotonicClock.nanoseconds()

    init(config: HeraldConfig, logger: Logger, publicDirectory: String?) {
        self.config = config
        self.logger = logger
        self.publishers = PublisherKeys(config.auth.publisherKeys)
        self.admins = PublisherKeys(config.auth.adminKeys)
        self.metrics = GatewayMetrics(routeNames: config.routes.map(\.name), timingEnabled: config.metrics.timing)
        self.publicRoot = publicDirectory.flatMap { Self.realPath($0) }
        if let secret = config.auth.jwtSecret {
            self.jwtSecret = Array(secret.utf8)
        } else if config.auth.demo {
            var random = [UInt8](repeating: 0, count: 32)
            let ok = random.withUnsafeMutableBufferPointer { herald_random_bytes($0.baseAddress, 32) }
            precondition(ok == 1, "OpenSSL could not produce random bytes for the demo token secret")
            self.jwtSecret = random
        } else {
            self.jwtSecret = nil
        }
        self.history = History(limits: config.history)
        self.dedup = Deduplicator(windowSeconds: config.dedup.windowSeconds, maxEntries: config.dedup.maxEntries)
        var paths: [FieldPath] = []
        for key in [config.delivery.queue.coalesceKey] + config.routes.map(\.queue?.coalesceKey) {
            if let key, let path = FieldPath(key), !paths.contains(path) { paths.append(path) }
        }
        self.coalescePaths = paths
    }

    /// Applies `change` to a subscriber's queue and keeps the gateway-wide byte count: the
    /// one place `queuedBytesTotal` changes, so it is always the sum of the queues.
    @discardableResult
    func changeQueue<R>(of subscriber: Subscriber, _ change: (inout ClientQueue) -> R) -> R {
        let before = subscriber.queue.byteCount
        let result = change(&subscriber.queue)
        queuedBytesTotal += subscriber.queue.byteCount - before
        return result
    }

    /// Forgets a subscriber whose connection closed: its subscriptions, queue and presence.
    func forget(_ client: Subscriber) {
        index.removeAll(owner: client.id)
        subscribers[client.id] = nil
        changeQueue(of: client) { $0 = ClientQueue(limits: $0.limits, coalesceSlot: $0.coalesceSlot, transport: $0.transport) }
        leaveAllPresence(client)
    }

    // MARK: - Publishing

    /// Sequences validated events and queues them for every matching subscriber.
    ///
    /// `tape` and `body` are the scanned ingest body the events' nodes point into; each
    /// event is matched once, in place, and encoded once. An event whose `(source, id)`
    /// was accepted within the dedup window is answered with its original `seq` and not
    /// delivered again.
    /// - Complexity: O(events × (match + recipients)).
    func publish(_ events: [IncomingEvent], tape: JSONTape, body: UnsafeRawBufferPointer) -> [WireFormat.Acceptance] {
        var accepted: [WireFormat.Acceptance] = []
        accepted.reserveCapacity(events.count)
        let now = MonotonicClock.nanoseconds()
        for incoming in events {
            if incoming.hasExplicitID, let original = dedup.lookup(source: incoming.source, id: incoming.id, now: now) {
                accepted.append(.init(id: incoming.id, seq: original, duplicate: true))
                metrics.duplicates += 1
                continue
            }
            let event = accept(incoming, tape: tape, body: body, now: now)
            if incoming.hasExplicitID { dedup.record(source: incoming.source, id: incoming.id, seq: event.seq, now: now) }
            accepted.append(.init(id: incoming.id, seq: event.seq, duplicate: false))
        }
        statsWindow.record(metrics, now: now)
        return accepted
    }

    /// Sequences one event, keeps it in history and queues it for its live recipients.
    func accept(_ incoming: IncomingEvent, tape: JSONTape, body: UnsafeRawBufferPointer, now: UInt64) -> Event {
        metrics.accepted += 1
        lastSeq += 1
        let coalesceKeys = coalescePaths.map { $0.valueHash(in: tape, node: incoming.node, bytes: body) }
        let event = incoming.compactJSON.withUnsafeBytes {
            Event(seq: lastSeq, id: incoming.id, source: incoming.source, type: incoming.type, acceptedAt: now,
                  json: $0, headroom: 0, coalesceKeys: coalesceKeys)
        }
        history.append(event, now: now)
        matches.removeAll(keepingCapacity: true)
        let matchStart = metrics.timingEnabled ? MonotonicClock.nanoseconds() : 0
        index.match(EventView(tape: tape, node: incoming.node, bytes: body), into: &matches)
        if metrics.timingEnabled { metrics.matchDuration.observe(Double(MonotonicClock.nanoseconds() - matchStart) / 1e9) }
        var matchedRoutes = RouteSet()
        for match in matches {
            guard let subscriber = subscribers[match.owner] else { continue }
            matchedRoutes.formUnion(subscriber.routes(of: match.subscriptions))
            // A resuming client reads this event from history when its turn comes.
            guard subscriber.catchUp == nil else { continue }
            deliver(event, subscriptions: match.subscriptions, to: subscriber)
        }
        matchedRoutes.forEach { metrics.routes[$0].matched += 1 }
        if queuedBytesTotal > config.limits.maxQueuedBytesTotal { shedLargestQueues() }
        return event
    }

    // MARK: - Shutdown

    /// Starts a graceful shutdown: new requests get 503, idle connections close,
    /// WebSockets close with 1001, SSE streams end.
    func beginDraining() {
        guard !draining else { return }
        draining = true
        logger.info("shutting down", metadata: ["clients": "\(subscribers.count)"])
        for connection in connections.values {
            switch connection.mode {
            case .webSocket(let client):
                client.closing = (.goingAway, "server shutting down", true)
            case .sse(let client):
                client.ending = true
            case .http:
                if case .awaitingHead = connection.http.phase, !connection.http.headStarted, connection.output.isEmpty {
                    connection.closeAfterOutput = true
                }
            }
            connection.socket.requestWritable()
        }
    }

    /// True when every streaming client has gone.
    var isDrained: Bool { subscribers.isEmpty }
}

/// Monotonic time for latency measurements.
enum MonotonicClock {
    static func nanoseconds() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }
}
