/// A complete HTTP response.
public struct HTTPResponse: Sendable {
    public var status: Int
    public var reason: String
    /// "HTTP/1.1" or "HTTP/1.0".
    public var version: String
    /// Header fields in received order; names are lowercased, values trimmed.
    public var headers: [(name: String, value: String)]
    public var body: [UInt8]

    public init(
        status: Int, reason: String = "", version: String = "HTTP/1.1",
        headers: [(name: String, value: String)] = [], body: [UInt8] = []
    ) {
        self.status = status
        self.reason = reason
        self.version = version
        self.headers = headers
        self.body = body
    }

    /// The first value of the header `name` (case-insensitive), or nil.
    public func header(_ name: String) -> String? {
        let key = name.lowercased()
        return headers.first(where: { $0.name == key })?.value
    }

    /// Every value of the header `name` (case-insensitive), in order.
    public func headers(named name: String) -> [String] {
        let key = name.lowercased()
        return headers.filter { $0.name == key }.map(\.value)
    }

    /// The body decoded as UTF-8 (invalid sequences become U+FFFD).
    public var bodyText: String { String(decoding: body, as: UTF8.self) }
}

extension HTTPResponse: CustomStringConvertible {
    public var description: String {
        let text = bodyText
        let shown = text.count > 300 ? String(text.prefix(300)) + "…" : text
        return "HTTP \(status) \(reason) [\(body.count) bytes] \(shown)"
    }
}

extension HTTPResponse {
    init(head: HTTPResponseHead, body: [UInt8]) {
        self.init(status: head.status, reason: head.reason, version: head.version, headers: head.headers, body: body)
    }
}

/// One keep-alive HTTP/1.1 connection, plain or over TLS (no pipelining). Blocking; use it from one
/// thread or task at a time.
///
/// The TCP connection is opened by `init`. When the server answers `Connection: close`
/// (or closes an idle keep-alive connection), the next `request` transparently opens a
/// new one; `connectionCount` tells how many were opened. Failed requests are never
/// retried.
public final class HTTPConnection {
    public let host: String
    public let port: Int
    /// The trust for https (nil: plain HTTP).
    public let tls: TLSClientContext?
    /// Deadline for each whole request/response exchange (and for connecting).
    public var timeout: Duration
    /// Responses with a larger body are refused with a protocol-violation error.
    public var maxBodySize: Int = 256 * 1024 * 1024

    private var socket: ClientSocket?
    /// How many TCP connections this object has opened so far.
    public private(set) var connectionCount = 0

    public init(host: String, port: Int, tls: TLSClientContext? = nil, timeout: Duration = .seconds(10)) throws(ClientError) {
        self.host = host
        self.port = port
        self.tls = tls
        self.timeout = timeout
        socket = try openSocket(deadline: deadline(after: timeout))
    }

    /// Connects to `http[s]://host:port` (the path of `url` is ignored); https trusts
    /// `tls`, or the system's authorities when it is nil.
    public convenience init(url: String, tls: TLSClientContext? = nil, timeout: Duration = .seconds(10)) throws(ClientError) {
        let endpoint = try EndpointURL(parsing: url)
        try self.init(
            host: endpoint.host, port: endpoint.port, tls: TLSClientContext.forEndpoint(endpoint, given: tls), timeout: timeout)
    }

    deinit { socket?.close() }

    /// Whether a TCP connection is currently open (the server may still have closed it
    /// without us noticing yet).
    public var isOpen: Bool { socket?.isOpen ?? false }

    private func openSocket(deadline: Deadline) throws(ClientError) -> ClientSocket {
        let socket = try ClientSocket(host: host, port: port, tls: tls, deadline: deadline)
        connectionCount += 1
        return socket
    }

    /// Sends one request and reads its response.
    ///
    /// Adds `Host`, `User-Agent` (unless given) and `Content-Length` when `body` is
    /// non-nil (unless `Content-Length` or `Transfer-Encoding` is given). Reads bodies
    /// framed by Content-Length, chunked encoding, or connection close; skips interim
    /// 1xx responses. If the server answers before it has read the whole body (e.g. 413),
    /// that answer is returned and the connection is closed.
    public func request(
        _ method: String, _ path: String, headers: [(String, String)] = [], body: [UInt8]? = nil
    ) throws(ClientError) -> HTTPResponse {
        let bytes = try buildRequest(
            method: method, target: path, hostHeader: hostHeaderValue(host: host, port: port),
            headers: headers, body: body, defaultHeaders: [("User-Agent", clientUserAgent)])
        return try exchange(bytes, method: method)
    }

    /// Sends a UTF-8 string body (convenience for JSON).
    public func request(
        _ method: String, _ path: String, headers: [(String, String)] = [], body: String
    ) throws(ClientError) -> HTTPResponse {
        try request(method, path, headers: headers, body: Array(body.utf8))
    }

    /// Sends `bytes` exactly as given (for malformed-request tests) and reads one response
    /// (framed as for a non-HEAD request). If the server closes the connection without
    /// answering, throws a `.closed` error.
    public func sendRaw(_ bytes: [UInt8]) throws(ClientError) -> HTTPResponse {
        try exchange(bytes, method: "GET")
    }

    public func sendRaw(_ text: String) throws(ClientError) -> HTTPResponse {
        try sendRaw(Array(text.utf8))
    }

    /// Closes the TCP connection. A later `request` opens a new one.
    public func close() {
        socket?.close()
        socket = nil
    }

    private func exchange(_ bytes: [UInt8], method: String) throws(ClientError) -> HTTPResponse {
        let deadline = deadline(after: timeout)
        let socket: ClientSocket
        if let current = self.socket, !current.peerHasClosed() {
            socket = current
        } else {
            // Closed by the server while idle (keep-alive timeout, or after `Connection:
            // close`): reconnect. Anything it sent before closing is discarded.
            close()
            socket = try openSocket(deadline: deadline)
            self.socket = socket
        }
        if socket.buffered > 0 {
            let count = socket.buffered
            close()
            throw ClientError(.protocolViolation, "server sent \(count) unsolicited bytes on an idle connection")
        }

        var sendFailure: ClientError?
        var fullySent = false
        do {
            fullySent = try socket.send(bytes, deadline: deadline, stopWhenReadable: true)
        } catch let failure where failure.kind == .closed {
            // The server may have answered and closed (e.g. 413 before reading the body):
            // try to read that answer below.
            sendFailure = failure
        } catch {
            close()
            throw error
        }

        do {
            var head = try socket.readResponseHead(deadline: deadline)
            while (100..<200).contains(head.status) && head.status != 101 {
                head = try socket.readResponseHead(deadline: deadline)
            }
            let framing = try BodyFraming.of(head, requestMethod: method)
            let body = try socket.readBody(framing, deadline: deadline, maxSize: maxBodySize)
            if !fullySent || head.closesConnection || framing == .untilClose || head.status == 101 {
                close()
            }
            return HTTPResponse(head: head, body: body)
        } catch {
            close()
            if let sendFailure, error.kind == .closed {
                throw ClientError(.closed, "\(sendFailure.message); no response was received")
            }
            throw error
        }
    }
}

@available(*, unavailable)
extension HTTPConnection: Sendable {}

/// One-shot requests (a fresh connection each, sent with `Connection: close`).
public enum HTTPClient {
    public static func request(
        host: String, port: Int, tls: TLSClientContext? = nil, method: String = "GET", path: String,
        headers: [(String, String)] = [], body: [UInt8]? = nil, timeout: Duration = .seconds(10)
    ) throws(ClientError) -> HTTPResponse {
        let connection = try HTTPConnection(host: host, port: port, tls: tls, timeout: timeout)
        defer { connection.close() }
        var headers = headers
        if !headers.contains(where: { $0.0.lowercased() == "connection" }) {
            headers.append(("Connection", "close"))
        }
        return try connection.request(method, path, headers: headers, body: body)
    }

    /// `url` is "http[s]://host[:port]/path?query"; https trusts `tls`, or the system's
    /// authorities when it is nil.
    public static func request(
        url: String, tls: TLSClientContext? = nil, method: String = "GET", headers: [(String, String)] = [],
        body: [UInt8]? = nil, timeout: Duration = .seconds(10)
    ) throws(ClientError) -> HTTPResponse {
        let endpoint = try EndpointURL(parsing: url)
        return try request(
            host: endpoint.host, port: endpoint.port, tls: TLSClientContext.forEndpoint(endpoint, given: tls), method: method,
            path: endpoint.path, headers: headers,
            body: body, timeout: timeout)
    }
}
