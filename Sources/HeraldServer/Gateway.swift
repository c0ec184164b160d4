import COpenSSL
import HeraldCore
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// The server side of one loop: connections, HTTP, the two streaming transports and
/// credentials, around the socket-free `Hub` that decides delivery.
///
/// libwebsockets calls `heraldCallback` for every socket event; the callback hands it to
/// this object. Everything here runs on the loop thread that services the context, so
/// nothing is locked. After every callback the loop asks the Hub which sessions have
/// something new to write (`applyWakes`) and requests a WRITEABLE callback for each.
final class Gateway {
    let config: HeraldConfig
    let logger: Logger
    let hub: Hub
    let publishers: PublisherKeys
    let admins: PublisherKeys
    /// The HS256 secret for subscriber JWTs: `auth.jwtSecret`, or a random one per process
    /// when only demo tokens need it; nil when JWTs are not accepted.
    let jwtSecret: [UInt8]?
    /// Canonical absolute path of the static files directory, if serving one.
    let publicRoot: String?
    let router: Router
    /// Which web pages may use the API (`cors.allowedOrigins`).
    let cors: CORSPolicy
    /// Connection counts and ingest rates, shared with the other loops.
    let admission: Admission
    /// The keys subscriber JWTs are verified with (`jwtSecret` among them).
    let jwtKeys: JWTKeyring
    var statsWindow = StatsWindow()
    /// Which changes of the routes' deadline states to log (the first loop watches the
    /// whole gateway), and whether its question to the other loops is out.
    var deadlineWatch: DeadlineWatch
    var watchingDeadlines = false
    let startedAt = MonotonicClock.nanoseconds()

    /// Every open socket, by connection id.
    var connections: [UInt64: Connection] = [:]
    var nextConnectionID: UInt64 = 1
    /// The connections that carry a session, by `Session.index` (an array access per wake).
    var streams: [Connection?] = []
    /// Bytes of unfinished input held by all connections together (bounded by
    /// `limits.maxPendingInputBytesTotal`); changed only in `chargeInput`.
    var pendingInputBytes = 0
    /// Reused for every ingest body and every HTTP response.
    var ingestTape = JSONTape()
    var responseScratch: [UInt8] = []
    /// Where streams that keep up encode their writes (see `writeStaged`): one buffer for
    /// the loop instead of one per connection.
    let streamStaging = WriteBuffer(capacity: writeBudget + 4096)
    /// Connections closed since free memory was last given back, and when the last closed.
    var closedSinceTrim = 0
    var lastClosedAt: UInt64 = 0
    /// The Hub's shedding rounds when they were last logged, and when.
    var loggedShedRounds = 0
    var lastShedWarning: UInt64 = 0
    /// Publishes refused for rights or rates, logged by key at a bounded pace.
    var refusalLog = RefusalLog()
    /// Shutting down: refuse new work, close clients.
    var draining = false
    /// Connections holding an answer until the log stores what it acknowledges (or other
    /// loops answer).
    var connectionsAwaitingCommit: [Connection] = []
    /// Every loop of the process (set before the loops start; one loop alone by default).
    var loops = LoopGroup.single
    /// Requests waiting for other loops' answers, by query token.
    var pendingQueries: [UInt64: PendingQuery] = [:]
    var nextQueryToken: UInt64 = 1

    init(
        config: HeraldConfig, logger: Logger, publicDirectory: String?, log: (any EventLog)? = nil, broker: (any EventBroker)? = nil,
        clientIDs: Hub.ClientIDs = Hub.ClientIDs(), subscriberSecret: [UInt8]?, admission: Admission? = nil,
        jwtKeys: JWTKeyring? = nil
    ) {
        self.config = config
        self.logger = logger
        self.hub = Hub(config: config, clock: Self.clock, log: log, broker: broker, clientIDs: clientIDs)
        self.publishers = PublisherKeys(config.auth.publisherKeys)
        self.admins = PublisherKeys(config.auth.adminKeys)
        self.publicRoot = publicDirectory.flatMap { Self.realPath($0) }
        self.router = Router.herald
        self.cors = config.cors.policy
        self.admission = admission ?? Admission(limits: config.limits)
        self.jwtKeys = jwtKeys ?? JWTKeyring(secret: subscriberSecret)
        self.jwtSecret = subscriberSecret
        self.deadlineWatch = DeadlineWatch(routes: config.routes.count + 1)
        // Windows younger than the gateway reach back to its start, not to its first scrape.
        statsWindow.record(&hub.metrics, now: startedAt)
    }

    /// The HS256 secret for subscriber JWTs: `auth.jwtSecret`, or a random one per process
    /// when only demo tokens need it; nil when JWTs are not accepted.
    static func subscriberSecret(for config: HeraldConfig) -> [UInt8]? {
        if let secret = config.auth.jwtSecret { return Array(secret.utf8) }
        guard config.auth.demo else { return nil }
        var random = [UInt8](repeating: 0, count: 32)
        let ok = random.withUnsafeMutableBufferPointer { herald_random_bytes($0.baseAddress, 32) }
        precondition(ok == 1, "OpenSSL could not produce random bytes for the demo token secret")
        return random
    }

    /// Requests a WRITEABLE callback for every session the Hub woke. Runs after every
    /// callback and every tick, so a wake costs one array access and one lws call.
    func applyWakes() {
        hub.drainWakes { session in wakeStream(of: session) }
    }

    /// After the log reported progress (or failure): answers the requests that waited for
    /// it, in each connection's order, and lets their connections read on.
    func answerRequestsAwaitingCommit() {
        guard !connectionsAwaitingCommit.isEmpty else { return }
        let waiting = connectionsAwaitingCommit
        connectionsAwaitingCommit.removeAll(keepingCapacity: true)
        for connection in waiting where connections[connection.id] === connection {
            connection.http.listedAwaitingCommit = false
            serveHTTP(connection)  // lists itself again while its answer still waits
            chargeInput(of: connection)
        }
    }

    /// Once a second: the Hub's checks, late, idle or stalled connections, memory after a wave of
    /// disconnects, and a warning when queues were shed.
    func tick() {
        let now = MonotonicClock.nanoseconds()
        hub.tick()
        statsWindow.record(&hub.metrics, now: now)  // every loop's windows, busy or not
        expireConnections(now: now)
        releaseMemoryAfterDisconnects(now: now)
        watchDeadlines()
        if hub.shedRounds != loggedShedRounds, now - lastShedWarning > 10_000_000_000 {
            lastShedWarning = now
            logger.warning(
                "queued bytes reached limits.maxQueuedBytesTotal; the largest queues shed events",
                metadata: [
                    "queuedBytes": "\(hub.queuedBytesTotal)", "limit": "\(config.limits.maxQueuedBytesTotal)",
                    "sheddingRounds": "\(hub.shedRounds)",
                ])
            loggedShedRounds = hub.shedRounds
        }
        applyWakes()
    }

    /// Once a wave of at least 256 disconnects has settled (a second without one), gives
    /// the allocator's free pages back, so the process shrinks with its load instead of
    /// keeping its peak for ever.
    private func releaseMemoryAfterDisconnects(now: UInt64) {
        guard closedSinceTrim >= 256, now - lastClosedAt > 1_000_000_000 else { return }
        closedSinceTrim = 0
        Socket.releaseFreeMemory()
    }

    // MARK: - Shutdown

    /// Starts a graceful shutdown: new requests get 503, idle connections close,
    /// WebSockets close with 1001, SSE streams end.
    func beginDraining() {
        guard !draining else { return }
        draining = true
        if loops.index == 0 { logger.info("shutting down", metadata: ["clients": "\(hub.sessionCount)"]) }
        hub.beginDraining()
        refusePendingQueries()
        for connection in connections.values {
            if case .http = connection.mode, case .awaitingHead = connection.http.phase, !connection.http.headStarted,
                connection.output.isEmpty
            {
                connection.closeAfterOutput = true
                connection.socket.requestWritable()
            }
        }
        applyWakes()
    }

    /// True when every streaming client has gone.
    /// True when every streaming client has gone and no answer waits for the log.
    var isDrained: Bool { hub.sessionCount == 0 && connectionsAwaitingCommit.isEmpty }
}

extension Gateway {
    /// The Hub's time: monotonic nanoseconds, Unix seconds.
    static let clock = HubClock(now: MonotonicClock.nanoseconds, unixSeconds: unixSeconds)
}

/// Monotonic time for latency measurements.
enum MonotonicClock {
    @Sendable static func nanoseconds() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }
}
