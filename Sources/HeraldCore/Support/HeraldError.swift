/// The one error type that crosses Herald's module boundaries.
///
/// Every failure a client can see (an HTTP error body, a WebSocket error frame, a CLI
/// message) is built from a `HeraldError`, so the wire code, the human message and the
/// location of the fault (JSON path or byte offset) travel together from where the fault
/// was found to where it is reported.
public struct HeraldError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A stable, machine-readable error code. Its `rawValue` goes on the wire unchanged.
    public struct Code: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
        public let rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }
        public var description: String { rawValue }

        public static let invalidJSON = Code(rawValue: "invalid_json")
        public static let notAnObject = Code(rawValue: "not_an_object")
        public static let invalidEvent = Code(rawValue: "invalid_event")
        public static let invalidCloudEvent = Code(rawValue: "invalid_cloudevent")
        public static let emptyBatch = Code(rawValue: "empty_batch")
        public static let batchTooLarge = Code(rawValue: "batch_too_large")
        public static let eventTooLarge = Code(rawValue: "event_too_large")
        public static let bodyTooLarge = Code(rawValue: "body_too_large")
        public static let lengthRequired = Code(rawValue: "length_required")
        public static let unsupportedMediaType = Code(rawValue: "unsupported_media_type")
        public static let methodNotAllowed = Code(rawValue: "method_not_allowed")
        public static let notFound = Code(rawValue: "not_found")
        public static let unauthorized = Code(rawValue: "unauthorized")
        public static let forbidden = Code(rawValue: "forbidden")
        public static let invalidPattern = Code(rawValue: "invalid_pattern")
        public static let unknownRoute = Code(rawValue: "unknown_route")
        public static let invalidMessage = Code(rawValue: "invalid_message")
        public static let unknownOp = Code(rawValue: "unknown_op")
        public static let duplicateSubscription = Code(rawValue: "duplicate_subscription")
        public static let unknownSubscription = Code(rawValue: "unknown_subscription")
        public static let tooManySubscriptions = Code(rawValue: "too_many_subscriptions")
        public static let tooManyGroups = Code(rawValue: "too_many_groups")
        public static let notAMember = Code(rawValue: "not_a_member")
        public static let invalidConfig = Code(rawValue: "invalid_config")
        public static let shuttingDown = Code(rawValue: "shutting_down")
        public static let io = Code(rawValue: "io_error")
        /// A request that breaks HTTP/1.1 framing (request line, header syntax, body length).
        public static let badRequest = Code(rawValue: "bad_request")
        /// A request-target longer than the gateway reads.
        public static let uriTooLong = Code(rawValue: "uri_too_long")
        /// A request head, or one header field, larger than the gateway reads.
        public static let headersTooLarge = Code(rawValue: "headers_too_large")
        /// A transfer coding other than `chunked`.
        public static let notImplemented = Code(rawValue: "not_implemented")
        /// An HTTP version other than 1.0 and 1.1.
        public static let versionNotSupported = Code(rawValue: "http_version_not_supported")
        /// The request head or body did not arrive in time.
        public static let requestTimeout = Code(rawValue: "request_timeout")
        /// The gateway holds as much unfinished input as it allows; retry later.
        public static let overloaded = Code(rawValue: "overloaded")
        /// The durable log cannot store events (disk full, an I/O error): nothing is
        /// accepted that is not stored; retry later.
        public static let storageUnavailable = Code(rawValue: "storage_unavailable")
        /// The connection's token expired.
        public static let tokenExpired = Code(rawValue: "token_expired")
        /// A browser request from a page `cors.allowedOrigins` does not name.
        public static let originNotAllowed = Code(rawValue: "origin_not_allowed")
        /// A client sends faster than `limits` allow (ingest events, WebSocket messages);
        /// `retryAfterMs` / `Retry-After` say when it may go on.
        public static let rateLimited = Code(rawValue: "rate_limited")
        /// The gateway, or the client's address, holds as many connections as allowed.
        public static let tooManyConnections = Code(rawValue: "too_many_connections")
        /// A WebSocket upgrade that does not follow RFC 6455 §4.2.1.
        public static let upgradeRequired = Code(rawValue: "upgrade_required")

        /// The HTTP status that answers this error: one table, so every endpoint agrees.
        public var httpStatus: Int {
            switch self {
            case .unauthorized, .tokenExpired: 401
            case .forbidden, .originNotAllowed: 403
            case .notFound, .unknownSubscription, .notAMember: 404
            case .methodNotAllowed: 405
            case .requestTimeout: 408
            case .lengthRequired: 411
            case .bodyTooLarge, .batchTooLarge, .eventTooLarge: 413
            case .uriTooLong: 414
            case .unsupportedMediaType: 415
            case .upgradeRequired: 426
            case .rateLimited: 429
            case .headersTooLarge: 431
            case .io: 500
            case .notImplemented: 501
            case .shuttingDown, .overloaded, .storageUnavailable, .tooManyConnections: 503
            case .versionNotSupported: 505
            default: 400
            }
        }
    }

    public var code: Code
    public var message: String
    /// Byte offset into the input that was being read, where that is known.
    public var offset: Int?
    /// Index of the event in a batch, where that is known.
    public var index: Int?
    /// A JSON path (`$.data.level`) naming the faulty element, where that is known.
    public var path: String?
    /// When the client may try again, in milliseconds (rate limits, admission).
    public var retryAfterMs: Int?

    public init(_ code: Code, _ message: String, offset: Int? = nil, index: Int? = nil, path: String? = nil) {
        self.code = code
        self.message = message
        self.offset = offset
        self.index = index
        self.path = path
    }

    public var description: String {
        var text = "\(code): \(message)"
        if let path { text += " at \(path)" }
        if let index { text += " (event \(index))" }
        if let offset { text += " (byte \(offset))" }
        return text
    }
}
