public import HeraldCore
public import Logging
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A running Herald gateway: the public face of the server module.
///
/// `HeraldServer` binds the listener when it is created (so a bad address fails at once and
/// port 0 yields a known port), then serves on a loop thread of its own. `shutdown()` is
/// graceful: new requests get 503, WebSockets close with 1001, SSE streams end, and the
/// loop exits within two seconds.
///
/// - Note: `@unchecked Sendable`: the loop is only driven by its own thread; the methods
///   callable from other threads post to its inbox.
public final class HeraldServer: @unchecked Sendable {
    private let loop: ServiceLoop
    private var thread: pthread_t?
    /// Set once `run()` or `start()` began serving.
    private let serving = Atomic<Bool>(false)

    /// The TCP port the gateway listens on.
    public var port: Int { loop.port }
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
        loop = try ServiceLoop(config: config, logger: logger, publicDirectory: directory)
        epoch = loop.gateway.hub.epoch
    }

    /// Serves on the calling thread until `shutdown()` completes.
    public func run() {
        serving.store(true, ordering: .releasing)
        loop.run()
    }

    /// Serves on a new thread; returns at once.
    public func start() {
        serving.store(true, ordering: .releasing)
        let box = Unmanaged.passRetained(loop)
        var handle = pthread_t()
        let result = pthread_create(
            &handle, nil,
            { argument in
                let loop = Unmanaged<ServiceLoop>.fromOpaque(argument!).takeRetainedValue()
                loop.run()
                return nil
            }, box.toOpaque())
        precondition(result == 0, "could not start the loop thread")
        thread = handle
    }

    /// Shuts down gracefully and waits until the loop has stopped. Safe from any thread.
    public func shutdown() {
        guard serving.load(ordering: .acquiring) else {
            loop.stopUnstarted()
            return
        }
        loop.inbox.post(.shutdown)
        while !loop.isStopped { usleep(10_000) }
        if let thread {
            pthread_join(thread, nil)
            self.thread = nil
        }
    }

    /// Hands work to the loop's Hub from any thread: what a log's writer thread or a
    /// broker's reader thread reports (see docs/architecture.md, "Seams").
    public func post(_ message: HubMessage) {
        loop.inbox.post(.hub(message))
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
