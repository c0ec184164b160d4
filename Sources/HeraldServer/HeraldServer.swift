import COpenSSL
public import HeraldCore
public import Logging
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A running Herald gateway: the public face of the server module.
///
/// `HeraldServer` binds the listeners when it is created (so a bad address fails at once
/// and port 0 yields a known port), then serves on its loops' threads: `listen.loops`
/// loops (one per core by default), each with its own listening socket on the port
/// (`SO_REUSEPORT`: the kernel spreads new connections over them), its own connections and
/// its own Hub, clustered on one `LoopSequencer`. `shutdown()` is graceful: new requests
/// get 503, WebSockets close with 1001, SSE streams end, and the loops exit within two
/// seconds.
///
/// - Note: `@unchecked Sendable`: each loop is only driven by its own thread; the methods
///   callable from other threads post to the inboxes.
public final class HeraldServer: @unchecked Sendable {
    private let loops: [ServiceLoop]
    /// The loop threads not joined yet (`run()` and `shutdown()` may both join).
    private let threads = Mutex<[pthread_t]>([])
    /// Set once `run()` or `start()` began serving.
    private let serving = Atomic<Bool>(false)

    /// The TCP port the gateway listens on.
    public var port: Int { loops[0].port }
    /// The number of loops serving.
    public var loopCount: Int { loops.count }
    /// The epoch of this gateway's positions (fixed once created: its log's).
    public let epoch: StreamEpoch

    /// Creates the gateway and binds its listener.
    /// - Parameter publicDirectory: the static files directory; relative paths are taken
    ///   from the working directory.
    public init(config: HeraldConfig, logger: Logger) throws(HeraldError) {
        var directory = config.publicDirectory
        if let relative = directory, !relative.hasPrefix("/") {
            var buffer = [CChar](repeating: 0, count: 4096)
            if getcwd(&buffer, buffer.count) != nil {
                let cwd = buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }
                directory = String(decoding: cwd, as: UTF8.self) + "/" + relative
            }
        }
        while directory?.hasSuffix("/") == true { directory?.removeLast() }
        let count = config.loopCount(cores: Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
        if count > 1, config.needsSingleLoop {
            throw HeraldError(.invalidConfig, "listen.loops must be 1 with storage.path or cluster.redis")
        }
        loops = try Self.makeLoops(count, config: config, logger: logger, publicDirectory: directory)
        epoch = loops[0].gateway.hub.epoch
    }

    /// Makes `count` loops, each with its listening socket on the port (the kernel's choice
    /// for port 0). Several loops split the gateway-wide totals of `limits` evenly.
    private static func makeLoops(
        _ count: Int, config: HeraldConfig, logger: Logger, publicDirectory: String?
    ) throws(HeraldError)
        -> [ServiceLoop]
    {
        if let tls = config.tls { try checkCertificate(tls) }
        let secret = Gateway.subscriberSecret(for: config)
        let jwtKeys = try JWTKeyring(config: config, secret: secret)
        let (sockets, port) = try ListeningSockets.open(host: config.listen.host, port: config.listen.port, count: count)
        var redirectSockets: [Int32] = []
        if let redirectPort = config.tls?.redirectPort {
            do throws(HeraldError) {
                redirectSockets = try ListeningSockets.open(host: config.listen.host, port: redirectPort, count: count).sockets
            } catch {
                sockets.forEach { close($0) }
                throw error
            }
        }
        var perLoop = config
        perLoop.listen.port = port
        perLoop.limits.maxQueuedBytesTotal = max(1, config.limits.maxQueuedBytesTotal / count)
        perLoop.limits.maxPendingInputBytesTotal = max(1, config.limits.maxPendingInputBytesTotal / count)
        let sequencer = count > 1 ? LoopSequencer(loopCount: count, clock: Gateway.clock, dedup: config.dedup) : nil
        var loops: [ServiceLoop] = []
        let admission = Admission(limits: config.limits)
        do throws(HeraldError) {
            for (index, socket) in sockets.enumerated() {
                let setup = LoopSetup(
                    index: index, count: count, subscriberSecret: secret, sequencer: sequencer, listener: socket,
                    redirectListener: redirectSockets.isEmpty ? nil : redirectSockets[index], admission: admission,
                    jwtKeys: jwtKeys)
                loops.append(try ServiceLoop(config: perLoop, logger: logger, publicDirectory: publicDirectory, setup: setup))
            }
        } catch {
            for loop in loops { loop.stopUnstarted() }
            // The failed loop closed its own.
            (sockets.dropFirst(loops.count + 1) + redirectSockets.dropFirst(loops.count + 1)).forEach { close($0) }
            throw error
        }
        let inboxes = loops.map(\.inbox)
        for (index, loop) in loops.enumerated() {
            loop.gateway.loops = LoopGroup(index: index, inboxes: inboxes)
            // A loop that stops on its own (its event library failed) takes the others down
            // rather than leave a gateway whose figures and events half its loops miss.
            loop.onStoppedAlone = { for inbox in inboxes { inbox.post(.shutdown) } }
        }
        return loops
    }

    /// Serves on the calling thread (and one more thread per further loop) until
    /// `shutdown()` completes.
    public func run() {
        serving.store(true, ordering: .releasing)
        startThreads(for: loops.dropFirst())
        loops[0].run()
        joinThreads()
    }

    /// Serves on threads of its own; returns at once.
    public func start() {
        serving.store(true, ordering: .releasing)
        startThreads(for: loops[...])
    }

    private func startThreads(for loops: ArraySlice<ServiceLoop>) {
        for loop in loops {
            let box = Unmanaged.passRetained(loop)
            var handle = pthread_t()
            let result = pthread_create(
                &handle, nil,
                { argument in
                    let loop = Unmanaged<ServiceLoop>.fromOpaque(argument!).takeRetainedValue()
                    loop.run()
                    return nil
                }, box.toOpaque())
            precondition(result == 0, "could not start a loop thread")
            threads.withLock { $0.append(handle) }
        }
    }

    /// Joins the loop threads, once whoever calls first.
    private func joinThreads() {
        let unjoined = threads.withLock { threads in
            defer { threads = [] }
            return threads
        }
        for thread in unjoined { pthread_join(thread, nil) }
    }

    /// Shuts down gracefully and waits until every loop has stopped. Safe from any thread.
    public func shutdown() {
        guard serving.load(ordering: .acquiring) else {
            for loop in loops { loop.stopUnstarted() }
            return
        }
        for loop in loops { loop.inbox.post(.shutdown) }
        while !loops.allSatisfy(\.isStopped) { usleep(10_000) }
        joinThreads()
    }

    /// Reads `tls.cert` and `tls.key` again for new connections (SIGHUP); open ones keep
    /// theirs. A pair that cannot be loaded is logged and the one in use stays.
    public func reloadCertificate() {
        for loop in loops { loop.inbox.post(.reloadCertificate) }
    }

    /// Refuses a certificate or key that cannot be read or that do not belong together,
    /// with OpenSSL's reason, before anything listens.
    private static func checkCertificate(_ tls: HeraldConfig.TLS) throws(HeraldError) {
        if let reason = loadCertificate(tls, into: nil) { throw HeraldError(.invalidConfig, reason) }
    }

    /// Loads `tls.cert` and `tls.key` into an SSL_CTX (nil: a scratch one, only to check
    /// them); nil when they loaded, else OpenSSL's reason.
    static func loadCertificate(_ tls: HeraldConfig.TLS, into sslContext: UnsafeMutableRawPointer?) -> String? {
        var reason = [CChar](repeating: 0, count: 512)
        guard herald_tls_load_certificate(sslContext, tls.cert, tls.key, &reason, reason.count) != 1 else { return nil }
        return openSSLReason(reason)
    }

    /// The NUL-terminated text a COpenSSL helper wrote into `buffer`.
    static func openSSLReason(_ buffer: [CChar]) -> String {
        String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Hands work to the first loop's Hub from any thread: what a log's writer thread or a
    /// broker's reader thread reports (see docs/architecture.md, "Seams"; a gateway with a
    /// log or a broker has one loop).
    public func post(_ message: HubMessage) {
        loops[0].inbox.post(.hub(message))
    }
}

extension HeraldServer {
    /// SHA-256 of a publisher key, as config stores it.
    public static func sha256(of key: String) -> [UInt8] { PublisherKeys.digest(of: key) }
}

extension HeraldServer {
    /// Signs `claims` as an HS256 subscriber JWT under `secret` (backends, `herald token`, tests).
    public static func signToken(claims: JSONValue, secret: String) -> String {
        SubscriberToken.sign(claims: claims, secret: Array(secret.utf8), hmac: hmacSHA256)
    }
}
