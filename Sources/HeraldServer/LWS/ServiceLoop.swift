import CLibWebSockets
import HeraldCluster
import HeraldCore
import HeraldStorage
import Logging
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

let lwsLogger = Logger(label: "herald.lws")

/// What other threads hand a loop: work for its Hub, or the request to shut down.
enum LoopMessage: Sendable {
    case hub(HubMessage)
    case shutdown
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
    private let retainedStrings: [UnsafeMutablePointer<CChar>]
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
    private(set) var port: Int

    init(config: HeraldConfig, logger: Logger, publicDirectory: String?) throws(HeraldError) {
        let inbox = Inbox<LoopMessage>(wake: { [waker] in waker.wake() })
        self.inbox = inbox
        var log: (any EventLog)?
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
        var broker: RedisStreamBroker?
        if config.cluster.redis != nil {
            let joined = try Self.joinCluster(config: config, inbox: inbox, logger: logger)
            broker = joined.broker
            log = joined.log
        }
        self.broker = broker
        gateway = Gateway(config: config, logger: logger, publicDirectory: publicDirectory, log: log, broker: broker)
        lws_set_log_level(Socket.logMask(config.log.lwsLevel), heraldLWSLog)

        let protocolName = strdup("herald")!
        let host = strdup(config.listen.host)!
        let vhostName = strdup("herald")!
        retainedStrings = [protocolName, host, vhostName]

        ticker = .allocate(capacity: 1)
        ticker.initialize(to: herald_ticker())
        protocols = .allocate(capacity: 2)
        protocols.initialize(repeating: lws_protocols(), count: 2)
        protocols[0].name = UnsafePointer(protocolName)
        protocols[0].callback = heraldCallback

        var info = lws_context_creation_info()
        info.port = Int32(config.listen.port)
        info.iface = config.listen.host == "0.0.0.0" || config.listen.host == "*" ? nil : UnsafePointer(host)
        info.protocols = UnsafePointer(protocols)
        info.vhost_name = UnsafePointer(vhostName)
        info.pt_serv_buf_size = 65536
        info.options = herald_opt_only_raw
        eventLoopHandle = .allocate(capacity: 1)
        eventLoopHandle.initialize(to: nil)
        if config.listen.eventLibrary == .libev {
            guard let loop = herald_ev_loop_new() else { throw HeraldError(.io, "libev could not make an event loop") }
            eventLoop = loop
            eventLoopHandle.pointee = loop
            info.options |= herald_opt_libev
            info.foreign_loops = eventLoopHandle
        }
        if config.listen.host.contains(".") && config.listen.host != "::" { info.options |= herald_opt_disable_ipv6 }
        port = config.listen.port
        // The context keeps this pointer as its user data; the loop outlives the context.
        info.user = Unmanaged.passUnretained(self).toOpaque()
        guard let created = lws_create_context(&info) else {
            // `deinit` runs for a fully initialised object and frees the C structures.
            throw HeraldError(.io, "could not listen on \(config.listen.host):\(config.listen.port) (address in use or not available)")
        }
        context = created
        waker.context.withLock { $0 = ContextWaker.Handle(pointer: created) }
        ticker.pointee.context = created
        ticker.pointee.period_us = 1_000_000
        ticker.pointee.owner = Unmanaged.passUnretained(self).toOpaque()
        ticker.pointee.fire = { owner in
            guard let owner else { return }
            Unmanaged<ServiceLoop>.fromOpaque(owner).takeUnretainedValue().gateway.tick()
        }
        herald_ticker_start(ticker)
        if let vhost = lws_get_vhost_by_name(created, "herald") { port = Int(lws_get_vhost_listen_port(vhost)) }
        broker?.start()  // what it posts waits in the inbox until the loop runs
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
        retainedStrings.forEach { free($0) }
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
        destroyContext()
        broker?.stop()
        gateway.hub.closeLog()
    }

    /// Stops the ticker and destroys the context (closing every connection), once.
    private func destroyContext() {
        waker.context.withLock { wakeable in
            stopped.store(true, ordering: .releasing)
            wakeable = nil
            guard let context else { return }
            herald_ticker_stop(ticker)
            lws_context_destroy(context)
            self.context = nil
            if let eventLoop {
                herald_ev_run_nowait(eventLoop)  // lws closes its watchers' handles
                herald_ev_loop_destroy(eventLoop)
                self.eventLoop = nil
            }
        }
    }

    var isStopped: Bool { stopped.load(ordering: .acquiring) }

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
            case .shutdown where !gateway.draining:
                drainDeadline = MonotonicClock.nanoseconds() + 1_500_000_000
                gateway.beginDraining()
            case .shutdown:
                break
            }
        }
        gateway.answerRequestsAwaitingCommit()  // the callback applies the Hub's wakes after this
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
