import HeraldCore

/// Every failure of the built-in client: connection, timeout, end of stream, protocol
/// violation, or (for the WebSocket handshake) a non-101 HTTP answer.
public struct ClientError: Error, Sendable, CustomStringConvertible, Equatable {
    public enum Kind: Sendable, Equatable, CustomStringConvertible {
        /// Name resolution or TCP connect failed (refused, unreachable, ...).
        case connect
        /// The operation did not complete before its deadline.
        case timeout
        /// The peer closed the connection (EOF) where more data was required,
        /// e.g. mid-response, mid-frame, or a WebSocket EOF without a close frame.
        case closed
        /// The peer sent something that violates HTTP/1.1, SSE or RFC 6455.
        case protocolViolation
        /// The server answered with an unexpected HTTP status (WebSocket upgrade refused).
        /// `httpStatus` and `body` are set.
        case httpStatus
        /// A send/recv/poll system call failed (reset by peer, ...).
        case io
        /// The TLS handshake failed or the server's certificate was not trusted.
        case tls
        /// The caller passed something unusable (bad URL, header with CR/LF, use after close).
        case invalidArgument

        public var description: String {
            switch self {
            case .connect: "connect"
            case .timeout: "timeout"
            case .closed: "closed"
            case .protocolViolation: "protocol violation"
            case .httpStatus: "http status"
            case .io: "i/o"
            case .tls: "tls"
            case .invalidArgument: "invalid argument"
            }
        }
    }

    public var kind: Kind
    public var message: String
    /// The HTTP status when `kind == .httpStatus` (a refused WebSocket upgrade).
    public var httpStatus: Int?
    /// The response body that came with `httpStatus`, if any.
    public var body: [UInt8]?

    public init(_ kind: Kind, _ message: String, httpStatus: Int? = nil, body: [UInt8]? = nil) {
        self.kind = kind
        self.message = message
        self.httpStatus = httpStatus
        self.body = body
    }

    /// The peer closed the connection without the expected data / close frame.
    public var isEOF: Bool { kind == .closed }
    public var isTimeout: Bool { kind == .timeout }

    /// `body` decoded as UTF-8 (lossy), or "" when there is none.
    public var bodyText: String { body.map { String(decoding: $0, as: UTF8.self) } ?? "" }

    public var description: String {
        var text = "\(kind): \(message)"
        if let body, !body.isEmpty {
            let shown = body.count > 512 ? Array(body.prefix(512)) : body
            text += " — body: " + String(decoding: shown, as: UTF8.self)
            if body.count > 512 { text += "…" }
        }
        return text
    }
}

extension ClientError {
    /// Runs `body`, reporting a core codec's error as a protocol violation by the peer.
    static func rethrowing<R>(_ body: () throws(HeraldError) -> R) throws(ClientError) -> R {
        do throws(HeraldError) {
            return try body()
        } catch {
            throw ClientError(.protocolViolation, error.message)
        }
    }
}
