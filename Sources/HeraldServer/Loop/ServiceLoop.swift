import CLibWebSockets
import HeraldCore
import Logging
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

let lwsLogger = Logger(label: "herald.lws")

/// One libwebsockets context and the thread that services it.
///
/// The loop thread is the only thread that touches a connection. Other threads talk to it
/// through `requestShutdown()`, which sets an atomic flag and wakes the loop with
/// `lws_cancel_service`; the loop reacts in `LWS_CALLBACK_EVENT_WAIT_CANCELLED`.
///
/// - Note: `@unchecked Sendable`: `gateway` and the C structures are touched only by the
///   loop thread (and by `init` before the loop starts); the cross-thread state is atomic.
final class ServiceLoop: @unchecked Sendable {
    let gateway: Gateway
    private var context: OpaquePointer?
    private let protocols: UnsafeMutablePointer<lws_protocols>
    private let retainedStrings: [UnsafeMutablePointer<CChar>]
    /// Calls `Gateway.tick()` once a second on the loop thread.
    private let ticker: UnsafeMutablePointer<herald_ticker>
    private let shutdownRequested = Atomic<Bool>(false)
    private let stopped = Atomic<Bool>(false)
    /// Guards waking the context against its destruction.
    private let contextLock = Mutex<Void>(())
    private var drainDeadline: UInt64 = 0
    /// The port the listener is bound to (the kernel's choice when config asked for 0).
    private(set) var port: Int

    init(config: HeraldConfig, logger: Logger, publicDirectory: String?) throws(HeraldError) {
        gateway = Gateway(config: config, logger: logger, publicDirectory: publicDirectory)
        lws_set_log_level(LWS.logMask(config.log.lwsLevel), heraldLWSLog)

        let httpName = strdup("http")!
        let wsName = strdup("herald.v1")!
        let host = strdup(config.listen.host)!
        let vhostName = strdup("herald")!
        retainedStrings = [httpName, wsName, host, vhostName]

        ticker = .allocate(capacity: 1)
        ticker.initialize(to: herald_ticker())
        protocols = .allocate(capacity: 3)
        protocols.initialize(repeating: lws_protocols(), count: 3)
        protocols[0].name = UnsafePointer(httpName)
        protocols[0].callback = heraldCallback
        protocols[1].name = UnsafePointer(wsName)
        protocols[1].callback = heraldCallback
        protocols[1].rx_buffer_size = 65536

        var info = lws_context_creation_info()
        info.port = Int32(config.listen.port)
        info.iface = config.listen.host == "0.0.0.0" || config.listen.host == "*" ? nil : UnsafePointer(host)
        info.protocols = UnsafePointer(protocols)
        info.vhost_name = UnsafePointer(vhostName)
        info.max_http_header_data = 16384
        info.timeout_secs = 30
        info.pt_serv_buf_size = 65536
        info.options = herald_opt_validate_utf8
        if config.listen.host.contains(".") && config.listen.host != "::" { info.options |= herald_opt_disable_ipv6 }
        port = config.listen.port
        // The context keeps this pointer as its user data; the loop outlives the context.
        info.user = Unmanaged.passUnretained(self).toOpaque()
        guard let created = lws_create_context(&info) else {
            // `deinit` runs for a fully initialised object and frees the C structures.
            throw HeraldError(.io, "could not listen on \(config.listen.host):\(config.listen.port) (address in use or not available)")
        }
        context = created
        ticker.pointee.context = created
        ticker.pointee.period_us = 1_000_000
        ticker.pointee.owner = Unmanaged.passUnretained(self).toOpaque()
        ticker.pointee.fire = { owner in
            guard let owner else { return }
            Unmanaged<ServiceLoop>.fromOpaque(owner).takeUnretainedValue().gateway.tick()
        }
        herald_ticker_start(ticker)
        let vhost = lws_get_vhost_by_name(created, "herald")
        if let vhost { port = Int(lws_get_vhost_listen_port(vhost)) }
    }

    deinit {
        if let context {
            herald_ticker_stop(ticker)
            lws_context_destroy(context)
        }
        ticker.deallocate()
        protocols.deallocate()
        retainedStrings.forEach { free($0) }
    }

    /// Services the context until a requested shutdown has drained. Call from one thread.
    func run() {
        guard let context else { return }
        while !stopped.load(ordering: .acquiring) {
            let handled = gateway.callbacksHandled
            if lws_service(context, 0) < 0 { break }
            gateway.serviced(handledCallbacks: gateway.callbacksHandled != handled)
            if gateway.draining && (gateway.isDrained || MonotonicClock.nanoseconds() > drainDeadline) {
                break
            }
        }
        contextLock.withLock { _ in
            stopped.store(true, ordering: .releasing)
            herald_ticker_stop(ticker)
            lws_context_destroy(context)
            self.context = nil
        }
    }

    var isStopped: Bool { stopped.load(ordering: .acquiring) }

    /// Asks the loop to shut down gracefully. Safe from any thread.
    func requestShutdown() {
        shutdownRequested.store(true, ordering: .releasing)
        contextLock.withLock { _ in
            if let context, !stopped.load(ordering: .acquiring) { lws_cancel_service(context) }
        }
    }

    /// Called on the loop thread when another thread woke it.
    func wakeUp() {
        if shutdownRequested.load(ordering: .acquiring) && !gateway.draining {
            drainDeadline = MonotonicClock.nanoseconds() + 1_500_000_000
            gateway.beginDraining()
        }
    }
}
