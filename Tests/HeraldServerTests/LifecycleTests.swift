import HeraldClient
import HeraldCore
import HeraldServer
import HeraldTestSupport
import Logging
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Start-up, graceful shutdown and static files.
@Suite struct LifecycleTests {
    @Test func shutdownClosesWebSocketsWith1001AndEndsStreamsWithinTwoSeconds() throws {
        var logger = Logger(label: "test")
        logger.logLevel = .error
        let server = try HeraldServer(config: testConfig(), logger: logger)
        server.start()
        let ws = try WebSocketClient(host: "127.0.0.1", port: server.port, path: "/v1/ws", subprotocols: ["herald.v1"])
        try ws.send(text: #"{"op":"subscribe","id":"s","filter":{}}"#)
        _ = try ws.receive(timeout: .seconds(5))
        let stream = try SSEStream(host: "127.0.0.1", port: server.port, path: "/v1/sse?filter=%7B%7D")
        #expect(stream.status == 200)

        let started = ContinuousClock.now
        server.shutdown()
        let elapsed = ContinuousClock.now - started
        #expect(elapsed < .seconds(2))
        #expect(try ws.receive(timeout: .seconds(2)) == .close(code: 1001, reason: "server shutting down"))
        #expect(try stream.next(timeout: .seconds(2)) == nil, "the SSE stream ends")
        #expect(throws: ClientError.self) {
            try HTTPClient.request(host: "127.0.0.1", port: server.port, path: "/healthz", timeout: .seconds(1))
        }
    }

    @Test func shuttingDownAServerThatNeverRanReturnsAtOnce() throws {
        // It used to spin for ever, waiting for a loop that was never started.
        let server = try HeraldServer(config: testConfig(), logger: Logger(label: "test"))
        let port = server.port
        let started = ContinuousClock.now
        server.shutdown()
        #expect(ContinuousClock.now - started < .milliseconds(500))
        #expect(throws: ClientError.self) { try HTTPClient.request(host: "127.0.0.1", port: port, path: "/healthz", timeout: .seconds(1)) }
        server.shutdown()  // twice is harmless
    }

    @Test func anSSEStreamTheClientClosesIsForgottenAtOnce() throws {
        // heartbeatSeconds 60: no write fails soon; the gateway reads the end of input.
        try withTestServer(testConfig { $0.delivery.heartbeatSeconds = 60 }) { server in
            func sseConnections() throws -> JSONValue? { try server.request("GET", "/v1/stats").json["connections"]?["sse"] }
            var streams: [SSEStream] = []
            for _ in 0..<5 { streams.append(try server.sse(filter: "{}")) }
            #expect(try server.publish(#"{"n":1}"#).status == 202)
            for stream in streams { #expect(try stream.next(timeout: .seconds(5))?.id == "\(server.epoch):1") }
            #expect(try sseConnections() == .number(5))
            streams.forEach { $0.close() }
            let closed = ContinuousClock.now
            while try sseConnections() != .number(0), ContinuousClock.now - closed < .seconds(3) {
                usleep(20_000)
            }
            // Seen when the socket reports the end of input, long before a heartbeat.
            #expect(ContinuousClock.now - closed < .milliseconds(900))
            #expect(try sseConnections() == .number(0))
        }
    }

    @Test func aPortInUseIsAClearError() throws {
        try withTestServer { server in
            var config = testConfig()
            config.listen.port = server.port
            #expect { try HeraldServer(config: config, logger: Logger(label: "test")) } throws: {
                ($0 as? HeraldError)?.code == .io
            }
        }
    }

    @Test(arguments: [1, 3]) func stoppingAGatewayClosesEveryListeningSocket(loops: Int) throws {
        let server = try HeraldServer(config: testConfig { $0.listen.loops = loops }, logger: Logger(label: "test"))
        #expect(server.loopCount == loops)
        let port = server.port
        server.start()
        #expect(try HTTPClient.request(host: "127.0.0.1", port: port, path: "/healthz").status == 200)
        server.shutdown()
        // No socket listens there any more: a plain listener (no SO_REUSEPORT) can bind it.
        let probe = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(probe) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var on: Int32 = 1
        setsockopt(probe, SOL_SOCKET, SO_REUSEADDR, &on, socklen_t(MemoryLayout<Int32>.size))
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(probe, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        #expect(bound == 0 && listen(probe, 1) == 0, "the gateway's listening sockets are closed")
    }

    @Test func servesStaticFilesWithTheirTypes() throws {
        let directory = "/tmp/herald-static-\(getpid())"
        mkdir(directory, 0o755)
        mkdir(directory + "/sub", 0o755)
        for (name, text) in [("index.html", "<h1>hi</h1>"), ("app.js", "export {}"), ("style.css", "a{}"), ("sub/data.json", "{}")] {
            let file = fopen(directory + "/" + name, "w")
            fputs(text, file)
            fclose(file)
        }
        defer { _ = system("rm -rf \(directory)") }
        try withTestServer(testConfig { $0.publicDirectory = directory }) { server in
            let index = try server.request("GET", "/")
            #expect(index.status == 200)
            #expect(index.bodyText == "<h1>hi</h1>")
            #expect(index.header("content-type") == "text/html; charset=utf-8")
            #expect(try server.request("GET", "/app.js").header("content-type") == "text/javascript; charset=utf-8")
            #expect(try server.request("GET", "/style.css").header("content-type") == "text/css; charset=utf-8")
            #expect(try server.request("GET", "/sub/data.json").header("content-type") == "application/json")
            let missing = try server.request("GET", "/nope.html")
            #expect(missing.status == 404)
            #expect(missing.errorCode == "not_found")
            #expect(try server.request("GET", "/../../etc/passwd").status == 404)
            #expect(try server.request("GET", "/%2e%2e/%2e%2e/etc/passwd").status == 404)
            #expect(try server.request("POST", "/index.html", body: []).status == 405)
        }
    }
}
