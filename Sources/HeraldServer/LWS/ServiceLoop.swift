import CLibWebSockets
import COpenSSL
import HeraldCluster
import HeraldCore
import HeraldStorage
import Logging
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

let lwsLogger = Logger(label: "herald.lws")

/// What other threads hand a loop: work for its Hub, another loop's query or answer, or
/// the request to shut down.
enum LoopMessage: Sendable {
    case hub(HubMessage)
    /// Loop `from` asks for this loop's part of a request (`Gateway.ask`).
    case ask(LoopQuery, token: UInt64, from: Int)
    /// The answer to this loop's query `token`.
    case answered(LoopAnswer, token: UInt64)
    case shutdown
    /// Read `tls.cert` and `tls.key` again (SIGHUP) for the connections made from now on.
    case reloadCertificate
}

/// Where one loop stands among the process's loops, and what the loops share.
struct LoopSetup {
    var index = 0
    var count = 1
    /// The HS256 secret for subscriber JWTs (`Gateway.subscriberSecret`), one for all loops.
    var subscriberSecret: [UInt8]?
    /// The loops' shared sequencer (nil for one loop).
    var sequencer: LoopSequencer?
    /// This loop's listening socket (`ListeningSockets`); the loop's context owns it.
    var listener: Int32
    /// This loop's socket on `tls.redirectPort`, if any.
    var redirectListener: Int32?
    /// Connection counts and ingest rates, shared by the loops.
    var admission: Admission
    /// The keys subscriber JWTs are verified with, loaded once for all loops.
    var jwtKeys: JWTKeyring
}

/// A listening socket of one loop, and lws' handle on it while the context lives.
private struct Listener {
    let socket: Int32
    /// Connections accepted here are plain HTTP told to use HTTPS (`tls.redirectPort`).
    let redirectsToTLS: Bool
    var watch: OpaquePointer?
    /// Whether lws owns the socket (else the loop closes it when it stops).
    var handedOver = false
}

/// One libwebsockets context and the thread that services it.
///
/// The loop thread is the only thread that touches a connection. Other threads talk to it
/// through its `inbox`: a post wakes the loop with `lws_cancel_service`, and the loop
/// drains the inbox in `LWS_CALLBACK_EVENT_WAIT_CANCELLED`.
///
/// - Note: `@unchecked Sendable`: `gateway` and the C structures are touched only by the
///   loop thread (and by `init` before the loop starts); the cross-thread state is atomic,
///   the inbox, or guarded by `waker`.
final class ServiceLoop: @unchecked Sendable {
    let gateway: Gateway
    let inbox: Inbox<LoopMessage>
    private var context: OpaquePointer?
    private let protocols: UnsafeMutablePointer<lws_protocols>
    /// The protocol's and the vhost's names (C strings the context keeps pointers to).
    private let protocolName: UnsafeMutablePointer<CChar>
    private let vhostName: UnsafeMutablePointer<CChar>
    /// Calls `Gateway.tick()` once a second on the loop thread.
    private let ticker: UnsafeMutablePointer<herald_ticker>
    private let stopped = Atomic<Bool>(false)
    /// Wakes the loop from other threads, until the context is destroyed.
    private let waker = ContextWaker()
    private var drainDeadline: UInt64 = 0
    /// The libev loop the context's sockets are watched through (`listen.eventLibrary`
    /// libev), or nil for poll.
    private var eventLoop: UnsafeMutableRawPointer?
    private let eventLoopHandle: UnsafeMutablePointer<UnsafeMutableRawPointer?>
    /// The cluster's stream (`cluster.redis`), or nil for a single node.
    private let broker: RedisStreamBroker?
    /// The port the listener is bound to (the kernel's choice when config asked for 0).
    let port: Int
    private var listeners: [Listener]
    private var vhost: OpaquePointer?
    /// `tls` as config gave it, and the SSL_CTX lws made for it (certificates are
    /// reloaded into it on SIGHUP).
    private let tls: HeraldConfig.TLS?
    private(set) var tlsContext: UnsafeMutableRawPointer?
    /// Set while a connection from the redirect listener is being adopted (lws calls
    /// `RAW_ADOPT` inside the adopting call).
    private(set) var adoptingRedirect = false
    /// Accepting paused because the process ran out of descriptors (resumed at the tick).
    private var acceptingPaused = false
    private var lastAcceptWarning: UInt64 = 0
    /// Called on the loop thread when the loop stopped without being asked to.
    var onStoppedAlone: (@Sendable () -> Void)?

    init(config: HeraldConfig, logger: Logger, publicDirectory: String?, setup: LoopSetup) throws(HeraldError) {
        let inbox = Inbox<LoopMessage>(wake: { [waker] in waker.wake() })
        self.inbox = inbox
        var log: (any EventLog)?
        var broker: (any EventBroker)?
        if let sequencer = setup.sequencer {
            log = InMemoryEventLog(limits: config.history, epoch: sequencer.epoch)
            broker = sequencer.attach(loop: setup.index) { inbox.post(.hub($0)) }
        }
        if config.storage.path != nil {
            let file = try FileEventLog(
                settings: config.storage, history: config.history, dedup: config.dedup,
                onDurable: { inbox.post(.hub(.logged(through: $0))) },
                onFailure: { inbox.post(.hub(.storageFailed($0))) })
            for note in file.recoveryNotes { logger.warning("event log recovery: \(note)") }
            logger.info(
                "event log opened",
                metadata: [
                    "path": "\(config.storage.path ?? "")", "events": "\(file.retainedCount)", "nextSeq": "\(file.nextPosition)",
                    "epoch": "\(file.epoch)", "fsync": "\(config.storage.fsync.rawValue)",
                ])
            log = file
        }
        var cluster: RedisStreamBroker?
        if config.cluster.redis != nil {
            let joined = try Self.joinCluster(config: config, inbox: inbox, logger: logger)
            cluster = joined.broker
            broker = joined.broker
            log = joined.log
        }
        self.broker = cluster
        gateway = Gateway(
            config: config, logger: logger, publicDirectory: publicDirectory, log: log, broker: broker,
            clientIDs: .loop(setup.index, of: setup.count), subscriberSecret: setup.subscriberSecret, admission: setup.admission,
            jwtKeys: setup.jwtKeys)
        lws_set_log_level(Socket.logMask(config.log.lwsLevel), heraldLWSLog)

        protocolName = strdup("herald")!
        vhostName = strdup("herald")!

        ticker = .allocate(capacity: 1)
        ticker.initialize(to: herald_ticker())
        protocols = .allocate(capacity: 2)
        protocols.initialize(repeating: lws_protocols(), count: 2)
        protocols[0].name = UnsafePointer(protocolName)
        protocols[0].callback = heraldCallback

        var info = lws_context_creation_info()
        info.port = herald_port_no_listen_server  // the loop accepts on its own socket
        info.protocols = UnsafePointer(protocols)
        info.vhost_name = UnsafePointer(vhostName)
        info.pt_serv_buf_size = 65536
        info.options = herald_opt_only_raw
        // Slow TLS handshakes are cut off like slow request heads.
        info.timeout_secs = UInt32(clamping: config.limits.headTimeoutSeconds)
        tls = config.tls
        var tlsStrings: [UnsafeMutablePointer<CChar>] = []
        defer { tlsStrings.forEach { free($0) } }  // lws copies them while it makes the context
        if let tls = config.tls {
            tlsStrings = [strdup(tls.cert)!, strdup(tls.key)!]
            info.options |= herald_opt_tls
            info.ssl_cert_filepath = UnsafePointer(tlsStrings[0])
            info.ssl_private_key_filepath = UnsafePointer(tlsStrings[1])
            info.alpn = herald_alpn_http1()
        }
        eventLoopHandle = .allocate(capacity: 1)
        eventLoopHandle.initialize(to: nil)
        if config.listen.eventLibrary == .libev {
            guard let loop = herald_ev_loop_new() else { throw HeraldError(.io, "libev could not make an event loop") }
            eventLoop = loop
            eventLoopHandle.pointee = loop
            info.options |= herald_opt_libev
            info.foreign_loops = eventLoopHandle
        }
        port = config.listen.port
        listeners = [Listener(socket: setup.listener, redirectsToTLS: false)]
        if let redirect = setup.redirectListener { listeners.append(Listener(socket: redirect, redirectsToTLS: true)) }
        // The context keeps this pointer as its user data; the loop outlives the context.
        info.user = Unmanaged.passUnretained(self).toOpaque()
        guard let created = lws_create_context(&info) else {
            // `deinit` runs for a fully initialised object and frees the C structures.
            throw HeraldError(.io, "libwebsockets could not make a context for \(config.listen.host):\(config.listen.port)")
        }
        context = created
        waker.context.withLock { $0 = ContextWaker.Handle(pointer: created) }
        ticker.pointee.context = created
        ticker.pointee.period_us = 1_000_000
        ticker.pointee.owner = Unmanaged.passUnretained(self).toOpaque()
        ticker.pointee.fire = { owner in
            guard let owner else { return }
            let loop = Unmanaged<ServiceLoop>.fromOpaque(owner).takeUnretainedValue()
            loop.resumeAccepting()
            loop.gateway.tick()
        }
        herald_ticker_start(ticker)
        guard let vhost = lws_get_vhost_by_name(created, "herald") else { throw HeraldError(.io, "libwebsockets made no vhost") }
        self.vhost = vhost
        for index in listeners.indices {
            var descriptor = lws_sock_file_fd_type()
            descriptor.filefd = listeners[index].socket
            // Watched like any socket of the context, which closes it; if it cannot be
            // adopted, the loop closes it itself.
            let watch = lws_adopt_descriptor_vhost(vhost, LWS_ADOPT_RAW_FILE_DESC, descriptor, protocolName, nil)
            listeners[index].watch = watch
            listeners[index].handedOver = watch != nil
            guard watch != nil else { throw HeraldError(.io, "libwebsockets could not watch the listening socket") }
        }
        if config.tls != nil, tlsContext == nil { throw HeraldError(.io, "libwebsockets made no TLS context") }
        cluster?.start()  // what it posts waits in the inbox until the loop runs
    }

    /// Connects to the cluster's stream and fills history with its newest events (the
    /// stream's own numbering and epoch; older events are read from the stream on resume).
    private static func joinCluster(
        config: HeraldConfig, inbox: Inbox<LoopMessage>, logger: Logger
    ) throws(HeraldError) -> (broker: RedisStreamBroker, log: InMemoryEventLog) {
        let broker = try RedisStreamBroker(
            settings: config.cluster, dedupSeconds: config.dedup.windowSeconds,
            callbacks: .init(
                sequenced: { inbox.post(.hub(.sequenced(ticket: $0, result: $1))) },
                received: { inbox.post(.hub(.received($0, epoch: $1))) },
                health: { reason in inbox.post(.hub(reason.map { .storageFailed($0) } ?? .storageRecovered)) }))
        let recent = try broker.recentEvents(count: min(config.history.maxEvents, 100_000))
        let log = InMemoryEventLog(
            limits: config.history, epoch: broker.joinedEpoch, nextPosition: recent.first?.seq ?? broker.joinedPosition + 1,
            older: broker)
        for event in recent { log.follow(event, now: event.acceptedAt) }
        logger.info(
            "joined the cluster",
            metadata: [
                "redis": "\(broker.address)", "stream": "\(config.cluster.stream)", "epoch": "\(broker.joinedEpoch)",
                "lastSeq": "\(broker.joinedPosition)", "history": "\(recent.count)",
            ])
        return (broker, log)
    }

    deinit {
        destroyContext()
        eventLoopHandle.deallocate()
        ticker.deallocate()
        protocols.deallocate()
        free(protocolName)
        free(vhostName)
    }

    /// Services the context until a requested shutdown has drained. Call from one thread.
    func run() {
        guard let context else { return }
        while !stopped.load(ordering: .acquiring) {
            if let eventLoop {
                herald_ev_run_once(eventLoop)
            } else if lws_service(context, 0) < 0 {
                break
            }
            if gateway.draining && (gateway.isDrained || MonotonicClock.nanoseconds() > drainDeadline) {
                break
            }
        }
        if !gateway.draining { onStoppedAlone?() }
        destroyContext()
        broker?.stop()
        gateway.hub.closeLog()
    }

    /// Stops the ticker and destroys the context (closing every connection), once; then
    /// the loop counts as stopped.
    ///
    /// Other threads stop waking the context first, and no lock is held while it is
    /// destroyed: closing connections runs callbacks that post to inboxes (this one too)
    /// and take the loops' sequencer lock, whose holder may be waking this loop.
    private func destroyContext() {
        waker.context.withLock { $0 = nil }
        for index in listeners.indices where !listeners[index].handedOver {
            listeners[index].handedOver = true
            close(listeners[index].socket)
        }
        if let context {
            herald_ticker_stop(ticker)
            lws_context_destroy(context)
            self.context = nil
            if let eventLoop {
                herald_ev_run_nowait(eventLoop)  // lws closes its watchers' handles
                herald_ev_loop_destroy(eventLoop)
                self.eventLoop = nil
            }
        }
        stopped.store(true, ordering: .releasing)
    }

    var isStopped: Bool { stopped.load(ordering: .acquiring) }

    /// A listening socket is readable: accepts what waits (at most 256 at a time, so a
    /// connection storm cannot starve the loop) and hands each connection to lws, which
    /// calls `RAW_ADOPT` for it on this thread (after the TLS handshake starts, with TLS).
    func acceptConnections(watchedBy watch: OpaquePointer) {
        guard let vhost, let listener = listeners.first(where: { $0.watch == watch }) else { return }
        let adoption = tls != nil && !listener.redirectsToTLS ? herald_adopt_tls_socket : LWS_ADOPT_SOCKET
        for _ in 0..<256 {
            let socket = herald_accept(listener.socket)
            guard socket >= 0 else {
                switch errno {
                case EINTR, ECONNABORTED, EPROTO: continue
                case EMFILE, ENFILE, ENOBUFS, ENOMEM: pauseAccepting(reason: String(cString: strerror(errno)))
                default: break  // EAGAIN: nothing more waits
                }
                return
            }
            var descriptor = lws_sock_file_fd_type()
            descriptor.sockfd = socket
            adoptingRedirect = listener.redirectsToTLS
            _ = lws_adopt_descriptor_vhost(vhost, adoption, descriptor, protocolName, nil)  // closes it on failure
            adoptingRedirect = false
        }
    }

    /// Out of descriptors: the waiting connection stays in the kernel's backlog and the
    /// socket stays readable, so watching it would spin; it is watched again at the tick.
    private func pauseAccepting(reason: String) {
        guard !acceptingPaused else { return }
        acceptingPaused = true
        for watch in listeners.compactMap(\.watch) { lws_rx_flow_control(watch, 0) }
        let now = MonotonicClock.nanoseconds()
        if now &- lastAcceptWarning > 10_000_000_000 {
            lastAcceptWarning = now
            gateway.logger.warning(
                "cannot accept connections: \(reason); new connections wait until descriptors are free",
                metadata: ["open": "\(gateway.connections.count)"])
        }
    }

    fileprivate func resumeAccepting() {
        guard acceptingPaused else { return }
        acceptingPaused = false
        for watch in listeners.compactMap(\.watch) { lws_rx_flow_control(watch, 1) }
    }

    /// Stops a loop that never ran (nothing is serviced, so nothing needs draining).
    func stopUnstarted() {
        destroyContext()
        broker?.stop()
    }

    /// Called on the loop thread when another thread posted to the inbox.
    func drainInbox() {
        for message in inbox.drain() {
            switch message {
            case .hub(let message):
                let wasFailed = gateway.hub.storageFailure != nil
                gateway.hub.handle(message)
                switch message {
                case .storageFailed(let reason) where !wasFailed:
                    gateway.logger.error(
                        "\(gateway.hub.storageName) cannot store events; ingest answers 503", metadata: ["reason": "\(reason)"])
                case .storageRecovered where wasFailed:
                    gateway.logger.info("the cluster's stream can be reached again; ingest is accepted")
                default:
                    break
                }
            case .ask(let query, let token, let from):
                gateway.loops.inboxes[from].post(.answered(gateway.answer(query), token: token))
            case .answered(let answer, let token):
                gateway.collect(answer, token: token)
            case .shutdown where !gateway.draining:
                drainDeadline = MonotonicClock.nanoseconds() + 1_500_000_000
                gateway.beginDraining()
            case .shutdown:
                break
            case .reloadCertificate:
                reloadCertificate()
            }
        }
        gateway.answerRequestsAwaitingCommit()  // the callback applies the Hub's wakes after this
    }
}

extension ServiceLoop {
    /// lws made the vhost's SSL_CTX (during `lws_create_context`): Herald's TLS policy is
    /// applied to it, and it is kept for certificate reloads. Returns false to fail.
    func adoptTLSContext(_ sslContext: UnsafeMutableRawPointer) -> Bool {
        tlsContext = sslContext
        return herald_tls_harden(sslContext) == 1
    }

    /// Loads `tls.cert` and `tls.key` again, for connections made from now on (those
    /// already open keep theirs). A pair that cannot be read or does not match is
    /// refused and the certificate in use stays.
    fileprivate func reloadCertificate() {
        guard let tls, let tlsContext else { return }
        // Checked on a scratch context first, so that a bad pair never half-replaces the live one.
        if let reason = HeraldServer.loadCertificate(tls, into: nil) ?? HeraldServer.loadCertificate(tls, into: tlsContext) {
            // Every loop reads the same files: the first one counts and logs for all.
            guard gateway.loops.index == 0 else { return }
            gateway.hub.metrics.certificateReloadFailures += 1
            gateway.logger.error("TLS certificate not reloaded; the one in use stays", metadata: ["reason": "\(reason)"])
            return
        }
        guard gateway.loops.index == 0 else { return }
        gateway.hub.metrics.certificateReloads += 1
        gateway.logger.info("TLS certificate reloaded", metadata: ["cert": "\(tls.cert)"])
    }
}

/// `lws_cancel_service` for other threads, never on a destroyed context.
private final class ContextWaker: Sendable {
    /// `lws_cancel_service` is the one lws call that is safe from any thread.
    struct Handle: @unchecked Sendable {
        let pointer: OpaquePointer
    }

    let context = Mutex<Handle?>(nil)

    func wake() {
        context.withLock { handle in
            if let handle { lws_cancel_service(handle.pointer) }
        }
    }
}
