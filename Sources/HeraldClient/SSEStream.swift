import HeraldCore

/// A `GET` of a `text/event-stream`, read event by event. Blocking; owned by one thread
/// or task at a time.
///
/// `init` sends the request and reads the response head. When `status` is 200, `next`
/// returns events; otherwise the whole response body is in `errorBody` and `next` throws.
public final class SSEStream {
    public typealias Event = SSEEvent

    public let status: Int
    public let reason: String
    /// Response header fields; names lowercased.
    public let responseHeaders: [(name: String, value: String)]
    /// The response body when `status != 200` (nil otherwise).
    public let errorBody: [UInt8]?

    private let socket: ClientSocket
    private var framing: BodyFraming
    private var chunkedDecoder = ChunkedDecoder()
    private var remainingLength = 0
    private var parser = SSEParser()
    private var pending: [SSEEvent] = []
    private var pendingIndex = 0
    private var decoded: [UInt8] = []
    private var ended = false

    /// - Parameters:
    ///   - path: request target including the query, e.g. "/v1/sse?filter=%7B%7D".
    ///   - headers: extra request headers (e.g. `Authorization`, `Last-Event-ID`).
    ///   - timeout: deadline for connecting and receiving the response head.
    public init(
        host: String, port: Int, tls: TLSClientContext? = nil, path: String, headers: [(String, String)] = [],
        timeout: Duration = .seconds(10)
    ) throws(ClientError) {
        let deadline = deadline(after: timeout)
        socket = try ClientSocket(host: host, port: port, tls: tls, deadline: deadline)
        let request = try buildRequest(
            method: "GET", target: path, hostHeader: hostHeaderValue(host: host, port: port), headers: headers,
            body: nil,
            defaultHeaders: [
                ("User-Agent", clientUserAgent), ("Accept", "text/event-stream"), ("Cache-Control", "no-cache"),
            ])
        try socket.send(request, deadline: deadline)
        var head = try socket.readResponseHead(deadline: deadline)
        while (100..<200).contains(head.status) && head.status != 101 {
            head = try socket.readResponseHead(deadline: deadline)
        }
        status = head.status
        reason = head.reason
        responseHeaders = head.headers
        framing = try BodyFraming.of(head, requestMethod: "GET")
        if head.status == 200 {
            errorBody = nil
            switch framing {
            case .contentLength(let length): remainingLength = length
            case .none: ended = true
            default: break
            }
        } else {
            errorBody = socket.readBodyLeniently(framing, deadline: deadline)
            ended = true
            socket.close()
        }
    }

    /// `url` is "http[s]://host[:port]/path?query"; https trusts `tls`, or the system's
    /// authorities when it is nil.
    public convenience init(
        url: String, tls: TLSClientContext? = nil, headers: [(String, String)] = [], timeout: Duration = .seconds(10)
    )
        throws(ClientError)
    {
        let endpoint = try EndpointURL(parsing: url)
        try self.init(
            host: endpoint.host, port: endpoint.port, tls: TLSClientContext.forEndpoint(endpoint, given: tls),
            path: endpoint.path, headers: headers, timeout: timeout)
    }

    deinit { socket.close() }

    /// The first value of response header `name` (case-insensitive).
    public func header(_ name: String) -> String? {
        let key = name.lowercased()
        return responseHeaders.first(where: { $0.name == key })?.value
    }

    public var errorBodyText: String { errorBody.map { String(decoding: $0, as: UTF8.self) } ?? "" }

    /// The last `id:` received (persists across events, as `EventSource.lastEventId`).
    public var lastEventID: String { parser.lastEventID }
    /// The reconnection delay the server advised (`retry:`, milliseconds), once received.
    /// A block that only sets it is not an event (as in `EventSource`): `next` skips it.
    public private(set) var retry: Int?

    /// The next event (blocks). Returns nil when the server ended the stream cleanly
    /// (closed the connection, or sent the last chunk); throws `.timeout` if nothing
    /// arrives in time, `.closed` if the connection ends in the middle of a chunk, and
    /// `.httpStatus` if the stream was refused (status != 200).
    public func next(timeout: Duration) throws(ClientError) -> Event? {
        if status != 200 {
            throw ClientError(
                .httpStatus, "event stream refused: HTTP \(status) \(reason)", httpStatus: status, body: errorBody)
        }
        let deadline = deadline(after: timeout)
        while true {
            if pendingIndex < pending.count {
                let event = pending[pendingIndex]
                pendingIndex += 1
                if pendingIndex == pending.count {
                    pending.removeAll(keepingCapacity: true)
                    pendingIndex = 0
                }
                if let advised = event.retry { retry = advised }
                if event.retry != nil, event.data.isEmpty, event.id == nil, event.event == nil, event.comments.isEmpty { continue }
                return event
            }
            if ended { return nil }
            if socket.buffered > 0 {
                try process()
                continue
            }
            guard socket.isOpen else {
                ended = true
                return nil
            }
            guard try socket.fill(deadline: deadline, what: "waiting for an SSE event") else {
                // EOF: the server closed the connection.
                ended = true
                socket.close()
                switch framing {
                case .chunked where !chunkedDecoder.isAtChunkBoundary:
                    throw ClientError(.closed, "event stream closed by peer in the middle of a chunk")
                case .contentLength where remainingLength > 0:
                    throw ClientError(
                        .closed, "event stream closed by peer with \(remainingLength) bytes of its Content-Length missing")
                default:
                    break
                }
                parser.finish()
                continue
            }
        }
    }

    /// Feeds the buffered bytes through the body framing into the SSE parser.
    private func process() throws(ClientError) {
        switch framing {
        case .chunked:
            decoded.removeAll(keepingCapacity: true)
            let consumed = try socket.withBuffered { (bytes) throws(ClientError) -> Int in
                try ClientError.rethrowing { () throws(HeraldError) in try chunkedDecoder.decode(bytes, into: &decoded) }
            }
            socket.consume(consumed)
            try parser.feed(decoded, into: &pending)
            if chunkedDecoder.isFinished {
                finishBody()
            }
        case .contentLength:
            let take = min(remainingLength, socket.buffered)
            try socket.withBuffered { (bytes) throws(ClientError) in
                try parser.feed(UnsafeBufferPointer(rebasing: bytes[0..<take]), into: &pending)
            }
            socket.consume(take)
            remainingLength -= take
            if remainingLength == 0 { finishBody() }
        case .untilClose:
            try socket.withBuffered { (bytes) throws(ClientError) in
                try parser.feed(bytes, into: &pending)
            }
            socket.consume(socket.buffered)
        case .none:
            finishBody()
        }
    }

    private func finishBody() {
        parser.finish()
        ended = true
        socket.close()
    }

    /// Closes the connection; later `next` calls return nil (after any already-parsed events).
    public func close() {
        ended = true
        socket.close()
    }
}

@available(*, unavailable)
extension SSEStream: Sendable {}
