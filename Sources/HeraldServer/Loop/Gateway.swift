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
    /// Absolute path of the static files directory, if serving it.
    let publicDirectory: String?

    var connections: [OpaquePointer: Connection] = [:]
    var subscribers: [UInt64: Subscriber] = [:]
    /// WebSocket upgrades that passed `CONFIRM_UPGRADE`, keyed by connection.
    var pendingUpgrades: [OpaquePointer: PendingUpgrade] = [:]
    var index = SubscriptionIndex()
    var lastSeq: UInt64 = 0
    var history: History
    var dedup: Deduplicator
    /// The distinct `coalesceKey` paths of the configuration; an event carries the hash of
    /// its value at each, in this order.
    let coalescePaths: [FieldPath]
    /// Bytes queued for all clients together (bounded by `limits.maxQueuedBytesTotal`).
    var queuedBytesTotal = 0
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
    /// Who is in which presence group.
    var presence = PresenceRegistry()
    /// The HS256 secret for subscriber JWTs: `auth.jwtSecret`, or a random one per process
    /// when only demo tokens need it; nil when JWTs are not accepted.
    let jwtSecret: [UInt8]?
    /// True while a HEAD request is being routed: its response carries no body.
    var respondingToHead = false
    /// Shutting down: refuse new work, close clients.
    var draining = false
    /// Callbacks handled so far; the loop compares it across a service iteration.
    var callbacksHandled: UInt64 = 0
    /// When SSE sockets were last checked for a closed peer, and how many service
    /// iterations in a row handled no callback.
    var lastStreamSweep: UInt64 = 0
    var emptyServices = 0
    let startedAt = MonotonicClock.nanoseconds()

    init(config: HeraldConfig, logger: Logger, publicDirectory: String?) {
        self.config = config
        self.logger = logger
        self.publishers = PublisherKeys(config.auth.publisherKeys)
        self.admins = PublisherKeys(config.auth.adminKeys)
        self.metrics = GatewayMetrics(routeNames: config.routes.map(\.name), timingEnabled: config.metrics.timing)
        self.publicDirectory = publicDirectory
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

    /// Dispatches one libwebsockets callback. The return value goes back to lws
    /// (non-zero closes the connection).
    func handle(_ wsi: OpaquePointer, _ reason: lws_callback_reasons, _ user: UnsafeMutableRawPointer?, _ input: UnsafeMutableRawPointer?, _ length: Int) -> Int32 {
        callbacksHandled &+= 1
        switch reason {
        case LWS_CALLBACK_HTTP:
            let path = input.map { String(cString: $0.assumingMemoryBound(to: CChar.self)) } ?? "/"
            return handleHTTPRequest(wsi, path: path)
        case LWS_CALLBACK_HTTP_BODY:
            return handleHTTPBody(wsi, UnsafeRawBufferPointer(start: input, count: length))
        case LWS_CALLBACK_HTTP_BODY_COMPLETION:
            return handleHTTPBodyCompletion(wsi)
        case LWS_CALLBACK_HTTP_WRITEABLE:
            return handleHTTPWriteable(wsi)
        case LWS_CALLBACK_HTTP_FILE_COMPLETION:
            connections[wsi] = nil
            return lws_http_transaction_completed(wsi) != 0 ? -1 : 0
        case LWS_CALLBACK_CLOSED_HTTP:
            closeConnection(wsi)
            return 0
        case LWS_CALLBACK_TIMER:
            timerFired(wsi)
            return 0
        case LWS_CALLBACK_RECEIVE_PONG:
            if case .webSocket(let client)? = connections[wsi] { client.lastHeard = MonotonicClock.nanoseconds() }
            return 0
        case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
            return confirmUpgrade(wsi)
        case LWS_CALLBACK_ESTABLISHED:
            return webSocketEstablished(wsi)
        case LWS_CALLBACK_RECEIVE:
            return webSocketReceive(wsi, UnsafeRawBufferPointer(start: input, count: length))
        case LWS_CALLBACK_SERVER_WRITEABLE:
            return webSocketWriteable(wsi)
        case LWS_CALLBACK_CLOSED:
            closeConnection(wsi)
            return 0
        case LWS_CALLBACK_WSI_DESTROY:
            pendingUpgrades[wsi] = nil
            if connections[wsi] != nil { closeConnection(wsi) }
            return 0
        default:
            return lws_callback_http_dummy(wsi, reason, user, input, length)
        }
    }

    /// Forgets a connection and its subscriptions.
    func closeConnection(_ wsi: OpaquePointer) {
        guard let connection = connections.removeValue(forKey: wsi) else { return }
        switch connection {
        case .exchange: break
        case .sse(let client):
            forget(client)
            logger.debug("sse stream closed", metadata: ["client": "\(client.id)"])
        case .webSocket(let client):
            forget(client)
            logger.debug("websocket closed", metadata: ["client": "\(client.id)"])
        }
    }

    func forget(_ client: Subscriber) {
        index.removeAll(owner: client.id)
        subscribers[client.id] = nil
        queuedBytesTotal -= client.queue.byteCount
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
            metrics.accepted += 1
            lastSeq += 1
            let coalesceKeys = coalescePaths.map { $0.valueHash(in: tape, node: incoming.node, bytes: body) }
            let event = incoming.compactJSON.withUnsafeBytes {
                Event(seq: lastSeq, id: incoming.id, source: incoming.source, type: incoming.type, acceptedAt: now,
                      json: $0, headroom: LWS.pre, coalesceKeys: coalesceKeys)
            }
            if incoming.hasExplicitID { dedup.record(source: incoming.source, id: incoming.id, seq: event.seq, now: now) }
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
            accepted.append(.init(id: incoming.id, seq: event.seq, duplicate: false))
        }
        if queuedBytesTotal > config.limits.maxQueuedBytesTotal { shedLargestQueues() }
        statsWindow.record(metrics, now: now)
        return accepted
    }

    // MARK: - Shutdown

    /// Starts a graceful shutdown: new requests get 503, WebSockets close with 1001, SSE
    /// streams end. Returns true when no streaming client is left.
    func beginDraining() {
        guard !draining else { return }
        draining = true
        logger.info("shutting down", metadata: ["clients": "\(subscribers.count)"])
        for (wsi, connection) in connections {
            switch connection {
            case .webSocket(let client):
                client.closing = (1001, "server shutting down", true)
                LWS.requestWritable(wsi)
            case .sse(let client):
                client.ending = true
                LWS.requestWritable(wsi)
            case .exchange:
                break
            }
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
