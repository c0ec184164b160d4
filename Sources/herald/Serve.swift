import ArgumentParser
import Dispatch
import Foundation
import HeraldCore
import HeraldServer
import Logging

/// `herald serve`: run the gateway until SIGINT or SIGTERM.
struct Serve: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the gateway.",
        discussion: """
            Reads the configuration file (default ./config.json; built-in defaults if it is \
            absent), then serves HTTP ingest (POST /v1/events), SSE (/v1/sse), WebSocket \
            (/v1/ws, subprotocol herald.v1) and the static files of publicDirectory. \
            SIGINT or SIGTERM shut down gracefully; with tls in the configuration, SIGHUP \
            reloads tls.cert and tls.key for new connections. The environment variable \
            HERALD_PUBLISHER_KEY adds a publisher key without editing the file.
            """
    )

    @Option(name: .shortAndLong, help: "Configuration file.")
    var config: String = "config.json"

    @Option(help: "Listen address (overrides listen.host).")
    var host: String?

    @Option(help: "Listen port, 0 for any free port (overrides listen.port).")
    var port: Int?

    @Option(help: "Directory of static files (overrides publicDirectory).")
    var publicDir: String?

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical (overrides log.level).")
    var logLevel: String?

    @Option(help: "Write the bound port to this file once listening (for scripts and tests).")
    var portFile: String?

    func run() throws {
        var settings = try ConfigLoading.load(path: config, required: config != "config.json")
        if let host { settings.listen.host = host }
        if let port {
            guard (0...65535).contains(port) else { throw ValidationError("--port must be in 0...65535") }
            settings.listen.port = port
        }
        if let publicDir { settings.publicDirectory = publicDir }
        if let logLevel { settings.log.level = logLevel }
        guard let level = Logger.Level(rawValue: settings.log.level) else {
            throw ValidationError("unknown log level \(settings.log.level)")
        }

        let json = settings.log.format == "json"
        LoggingSystem.bootstrap { label in
            if json { return JSONLinesLogHandler(label: label, level: level) }
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        var logger = Logger(label: "herald")
        logger.logLevel = level

        signal(SIGPIPE, SIG_IGN)
        let openFiles = raiseOpenFileLimit()

        let server: HeraldServer
        do {
            server = try HeraldServer(config: settings, logger: logger)
        } catch {
            throw CLIError("cannot start: \(error.message)")
        }
        logger.info(
            "herald listening",
            metadata: [
                "address": "\(settings.tls == nil ? "http" : "https")://\(settings.listen.host):\(server.port)",
                "redirect": "\(settings.tls?.redirectPort.map { "http://\(settings.listen.host):\($0) → https" } ?? "-")",
                "loops": "\(server.loopCount)",
                "epoch": "\(server.epoch)",
                "routes": "\(settings.routes.map(\.name))",
                "publicDirectory": "\(settings.publicDirectory ?? "-")",
                "publisherKeys": "\(settings.auth.publisherKeys.count)",
                "anonymous": "\(settings.auth.anonymous)",
                "adminKeys": "\(settings.auth.adminKeys.count)",
                "limits":
                    "body=\(settings.limits.maxBodyBytes) event=\(settings.limits.maxEventBytes) batch=\(settings.limits.maxBatchEvents) subscriptions=\(settings.limits.maxSubscriptionsPerConnection)",
                "queue":
                    "\(settings.delivery.queue.maxMessages) messages, \(settings.delivery.queue.maxBytes) bytes, \(settings.delivery.queue.policy.rawValue)",
                "history": "\(settings.history.maxEvents) events",
                "jwt": settings.auth.jwtSecret != nil ? "on" : settings.auth.demo ? "demo tokens only (random secret)" : "off",
                "openFiles": "\(openFiles)",
            ])
        if settings.auth.demo {
            logger.warning("auth.demo is on: anyone can get a token at /v1/demo/token; turn it off in production")
        }
        if let portFile {
            try "\(server.port)\n".write(toFile: portFile, atomically: true, encoding: .utf8)
        }
        // SIGINT and SIGTERM are delivered to a dispatch source, never to a handler that
        // could run on the loop thread: the source asks the loop to drain and stop.
        var sources: [any DispatchSourceSignal] = []
        for number in [SIGINT, SIGTERM] {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler {
                logger.info("signal received, shutting down", metadata: ["signal": "\(number)"])
                Thread.detachNewThread { server.shutdown() }
            }
            source.resume()
            sources.append(source)
        }
        if settings.tls != nil {
            signal(SIGHUP, SIG_IGN)
            let reload = DispatchSource.makeSignalSource(signal: SIGHUP, queue: .global())
            reload.setEventHandler { server.reloadCertificate() }
            reload.resume()
            sources.append(reload)
        }
        server.run()
        sources.forEach { $0.cancel() }
        logger.info("herald stopped")
    }
}

/// Raises the soft limit on open files to the hard limit: every connection is a file
/// descriptor, and the usual soft default (1,024) would cap a gateway far below what the
/// system allows. Returns the limit now in force.
func raiseOpenFileLimit() -> UInt64 {
    var limit = rlimit()
    guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return 0 }
    if limit.rlim_cur < limit.rlim_max {
        var raised = limit
        raised.rlim_cur = limit.rlim_max
        if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &raised) == 0 { limit = raised }
    }
    return UInt64(limit.rlim_cur)
}
