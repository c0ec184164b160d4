public import HeraldClient
public import HeraldCore
public import HeraldServer
import Logging

/// A gateway started for one test on 127.0.0.1 and an ephemeral port, with helpers to
/// talk to it over real sockets.
public struct TestServer: Sendable {
    public let server: HeraldServer
    public var host: String { "127.0.0.1" }
    public var port: Int { server.port }
    /// The epoch its positions count in (the `<epoch>` of SSE ids, WS `subscribed` and gaps).
    public var epoch: String { server.epoch.text }
    /// The publisher key every test server accepts.
    public static let publisherKey = "test-publisher-key"

    /// POSTs `body` to `/v1/events` with the test key (or `key`, or none when nil).
    public func publish(
        _ body: String, key: String? = TestServer.publisherKey, contentType: String = "application/json",
        headers: [(String, String)] = []
    ) throws -> HTTPResponse {
        var all = headers
        if let key { all.append(("Authorization", "Bearer \(key)")) }
        all.append(("Content-Type", contentType))
        return try HTTPClient.request(host: host, port: port, method: "POST", path: "/v1/events", headers: all, body: Array(body.utf8))
    }

    /// A plain request.
    public func request(_ method: String, _ path: String, headers: [(String, String)] = [], body: [UInt8]? = nil) throws -> HTTPResponse {
        try HTTPClient.request(host: host, port: port, method: method, path: path, headers: headers, body: body)
    }

    /// Opens a WebSocket on `/v1/ws` with subprotocol `herald.v1`.
    public func webSocket(query: String = "", headers: [(String, String)] = []) throws -> WebSocketClient {
        try WebSocketClient(
            host: host, port: port, path: "/v1/ws" + query, subprotocols: ["herald.v1"], headers: headers, timeout: .seconds(5))
    }

    /// Opens an SSE stream on `/v1/sse` with the given (unencoded) filter and query.
    public func sse(filter: String? = nil, query: [(String, String)] = [], headers: [(String, String)] = []) throws -> SSEStream {
        var items = query
        if let filter { items.insert(("filter", filter), at: 0) }
        let text = items.map { "\($0.0)=\(percentEncode($0.1))" }.joined(separator: "&")
        return try SSEStream(
            host: host, port: port, path: "/v1/sse" + (text.isEmpty ? "" : "?" + text), headers: headers, timeout: .seconds(5))
    }
}

/// Percent-encodes a query value.
public func percentEncode(_ text: String) -> String {
    let unreserved = Set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~".utf8)
    let hex = Array("0123456789ABCDEF".utf8)
    var out: [UInt8] = []
    for byte in text.utf8 {
        if unreserved.contains(byte) { out.append(byte) } else { out += [UInt8(ascii: "%"), hex[Int(byte >> 4)], hex[Int(byte & 15)]] }
    }
    return String(decoding: out, as: UTF8.self)
}

/// The configuration tests start from: loopback, port 0, one known publisher key.
public func testConfig(_ customize: (inout HeraldConfig) -> Void = { _ in }) -> HeraldConfig {
    var config = HeraldConfig()
    config.listen.host = "127.0.0.1"
    config.listen.port = 0
    config.publicDirectory = nil
    config.auth.publisherKeys = [.init(name: "test", sha256: HeraldServer.sha256(of: TestServer.publisherKey))]
    config.log.lwsLevel = "none"
    customize(&config)
    return config
}

/// Runs `body` against a real gateway listening on an ephemeral port, and always shuts
/// the gateway down afterwards (gracefully, as SIGTERM would).
public func withTestServer<T>(_ config: HeraldConfig = testConfig(), _ body: (TestServer) throws -> T) throws -> T {
    var logger = Logger(label: "herald.test")
    logger.logLevel = .error
    let server = try HeraldServer(config: config, logger: logger)
    server.start()
    defer { server.shutdown() }
    return try body(TestServer(server: server))
}

extension WebSocketClient {
    /// The next text message as JSON; fails on anything else.
    public func receiveJSON(timeout: Duration = .seconds(5)) throws -> JSONValue {
        switch try receive(timeout: timeout) {
        case .text(let text): return try JSONValue(parsing: text)
        case .binary: throw TestFailure("expected a text frame, got binary")
        case .close(let code, let reason): throw TestFailure("expected a text frame, got close \(code.map(String.init) ?? "-") \(reason)")
        }
    }

    /// Sends a JSON message given as text.
    public func send(json: String) throws { try send(text: json) }
}

extension HTTPResponse {
    /// The body parsed as JSON.
    public var json: JSONValue {
        get throws { try JSONValue(parsing: body) }
    }

    /// `error.code` of a Herald error body, or nil.
    public var errorCode: String? { (try? json)?["error"]?["code"]?.stringValue }
}

/// A test expectation that failed outside `#expect`.
public struct TestFailure: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// JSON text known to be valid in a test, as a value.
public func json(_ text: String) -> JSONValue {
    do { return try JSONValue(parsing: text) } catch { fatalError("invalid JSON in a test: \(error)") }
}
