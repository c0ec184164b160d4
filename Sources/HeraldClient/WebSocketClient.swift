import HeraldCore

/// A blocking RFC 6455 client (no extensions), plain or over TLS. Owned by one thread or task at a
/// time: `receive` and the `send` methods must not be called concurrently.
public final class WebSocketClient {
    public enum Message: Sendable, Equatable {
        case text(String)
        case binary([UInt8])
        /// The server's close frame (`code` nil when it carried no status code).
        case close(code: UInt16?, reason: String)
    }

    public let host: String
    public let port: Int
    public let path: String
    /// The subprotocol the server selected (nil when it selected none).
    public let acceptedSubprotocol: String?
    /// The 101 response's header fields (names lowercased).
    public let responseHeaders: [(name: String, value: String)]
    /// Deadline for each send (and the default for the closing handshake).
    public var timeout: Duration
    /// Larger frames or reassembled messages fail the connection with close code 1009.
    public var maxMessageSize: Int = 64 * 1024 * 1024

    /// Pings received (each was answered with a pong) and pongs received (ignored).
    public private(set) var pingsReceived = 0
    public private(set) var pongsReceived = 0
    /// Whether we have sent a close frame / received the server's.
    public private(set) var closeSent = false
    public private(set) var closeReceived = false
    /// The status code and reason of the server's close frame, once received.
    public private(set) var closeCode: UInt16?
    public private(set) var closeReason: String = ""

    private let socket: ClientSocket
    private var maskGenerator = MaskGenerator()
    private var fragmentOpcode: UInt8?
    private var fragments: [UInt8] = []

    /// Connects and performs the opening handshake.
    ///
    /// Throws `.httpStatus` (with `httpStatus` and `body`) when the server answers
    /// anything but 101, and `.protocolViolation` when the 101 answer is wrong
    /// (Sec-WebSocket-Accept, Upgrade/Connection, an unrequested subprotocol or extension).
    public init(
        host: String, port: Int, tls: TLSClientContext? = nil, path: String, subprotocols: [String] = [],
        headers: [(String, String)] = [], timeout: Duration = .seconds(10)
    ) throws(ClientError) {
        self.host = host
        self.port = port
        self.path = path
        self.timeout = timeout
        let deadline = deadline(after: timeout)
        socket = try ClientSocket(host: host, port: port, tls: tls, deadline: deadline)

        var keyBytes = [UInt8](repeating: 0, count: 16)
        var system = SystemRandomNumberGenerator()
        for i in 0..<16 { keyBytes[i] = system.next() }
        let key = Base64.encode(keyBytes)

        var defaults: [(String, String)] = [
            ("User-Agent", clientUserAgent),
            ("Upgrade", "websocket"),
            ("Connection", "Upgrade"),
            ("Sec-WebSocket-Key", key),
            ("Sec-WebSocket-Version", "13"),
        ]
        if !subprotocols.isEmpty {
            defaults.append(("Sec-WebSocket-Protocol", subprotocols.joined(separator: ", ")))
        }
        let request = try buildRequest(
            method: "GET", target: path, hostHeader: hostHeaderValue(host: host, port: port), headers: headers,
            body: nil, defaultHeaders: defaults)
        do throws(ClientError) {
            try socket.send(request, deadline: deadline)
            var head = try socket.readResponseHead(deadline: deadline)
            while (100..<200).contains(head.status) && head.status != 101 {
                head = try socket.readResponseHead(deadline: deadline)
            }
            guard head.status == 101 else {
                let framing = (try? BodyFraming.of(head, requestMethod: "GET")) ?? .untilClose
                let body = socket.readBodyLeniently(framing, deadline: deadline)
                throw ClientError(
                    .httpStatus, "WebSocket upgrade refused: HTTP \(head.status) \(head.reason)",
                    httpStatus: head.status, body: body)
            }
            guard head.tokens("upgrade").contains("websocket") else {
                throw ClientError(
                    .protocolViolation, "101 response without Upgrade: websocket (got \(head.header("upgrade") ?? "none"))")
            }
            guard head.tokens("connection").contains("upgrade") else {
                throw ClientError(
                    .protocolViolation,
                    "101 response without Connection: Upgrade (got \(head.header("connection") ?? "none"))")
            }
            let expected = WebSocketHandshake.acceptValue(forKey: key)
            guard let accept = head.header("sec-websocket-accept"), accept == expected else {
                throw ClientError(
                    .protocolViolation,
                    "bad Sec-WebSocket-Accept: got \(head.header("sec-websocket-accept") ?? "none"), expected \(expected)")
            }
            if let extensions = head.header("sec-websocket-extensions"), !extensions.isEmpty {
                throw ClientError(.protocolViolation, "server selected an extension that was not offered: \(extensions)")
            }
            if let selected = head.header("sec-websocket-protocol"), !selected.isEmpty {
                guard subprotocols.contains(selected) else {
                    throw ClientError(
                        .protocolViolation,
                        "server selected subprotocol \(quoted(selected)), offered: \(subprotocols.joined(separator: ", "))")
                }
                acceptedSubprotocol = selected
            } else {
                acceptedSubprotocol = nil
            }
            responseHeaders = head.headers
        } catch {
            socket.close()
            throw error
        }
    }

    /// `url` is "ws[s]://host[:port]/path?query" (or http[s]://); wss trusts `tls`, or the
    /// system's authorities when it is nil.
    public convenience init(
        url: String, tls: TLSClientContext? = nil, subprotocols: [String] = [], headers: [(String, String)] = [],
        timeout: Duration = .seconds(10)
    ) throws(ClientError) {
        let endpoint = try EndpointURL(parsing: url)
        try self.init(
            host: endpoint.host, port: endpoint.port, tls: TLSClientContext.forEndpoint(endpoint, given: tls),
            path: endpoint.path, subprotocols: subprotocols,
            headers: headers, timeout: timeout)
    }

    deinit { socket.close() }

    /// The TCP connection is still open (it may still be closing).
    public var isOpen: Bool { socket.isOpen }

    /// The first value of response header `name` (case-insensitive).
    public func header(_ name: String) -> String? {
        let key = name.lowercased()
        return responseHeaders.first(where: { $0.name == key })?.value
    }

    // MARK: - Sending

    public func send(text: String) throws(ClientError) {
        try ensureCanSendData()
        var text = text
        let sent = text.withUTF8 { (utf8) -> Result<Void, ClientError> in
            Result { () throws(ClientError) in try sendFrame(opcode: WebSocketFrame.text, payload: utf8) }
        }
        try sent.get()
    }

    public func send(binary: [UInt8]) throws(ClientError) {
        try ensureCanSendData()
        try sendFrame(opcode: WebSocketFrame.binary, payload: binary)
    }

    public func sendPing(_ payload: [UInt8] = []) throws(ClientError) {
        guard payload.count <= 125 else {
            throw ClientError(.invalidArgument, "ping payload of \(payload.count) bytes (max 125)")
        }
        try sendFrame(opcode: WebSocketFrame.ping, payload: payload)
    }

    /// Sends a close frame (once). `receive` then still returns the server's answer.
    public func sendClose(code: UInt16 = 1000, reason: String = "") throws(ClientError) {
        let payload = WebSocketFrame.closePayload(code: code, reason: reason)
        guard payload.count <= 125 else {
            throw ClientError(.invalidArgument, "close reason too long (\(reason.utf8.count) bytes, max 123)")
        }
        guard !closeSent else { return }
        closeSent = true
        try sendFrame(opcode: WebSocketFrame.close, payload: payload)
    }

    /// Sends one frame exactly as described, bypassing every check (protocol-violation
    /// tests): any opcode, RSV bits, unfragmented control frames of any size, unmasked.
    public func sendRawFrame(
        opcode: UInt8, payload: [UInt8], fin: Bool = true, masked: Bool = true, rsv: UInt8 = 0
    ) throws(ClientError) {
        try sendFrame(opcode: opcode, payload: payload, fin: fin, masked: masked, rsv: rsv)
    }

    /// Sends bytes as-is on the connection (e.g. a truncated frame).
    public func sendRaw(_ bytes: [UInt8]) throws(ClientError) {
        try socket.send(bytes, deadline: deadline(after: timeout))
    }

    private func ensureCanSendData() throws(ClientError) {
        guard socket.isOpen else { throw ClientError(.invalidArgument, "WebSocket connection is closed") }
        guard !closeSent else { throw ClientError(.invalidArgument, "cannot send data after a close frame") }
    }

    private func sendFrame(
        opcode: UInt8, payload: [UInt8], fin: Bool = true, masked: Bool = true, rsv: UInt8 = 0
    ) throws(ClientError) {
        let result = payload.withUnsafeBufferPointer { buffer in
            Result { () throws(ClientError) in
                try sendFrame(opcode: opcode, payload: buffer, fin: fin, masked: masked, rsv: rsv)
            }
        }
        try result.get()
    }

    private func sendFrame(
        opcode: UInt8, payload: UnsafeBufferPointer<UInt8>, fin: Bool = true, masked: Bool = true, rsv: UInt8 = 0
    ) throws(ClientError) {
        guard socket.isOpen else { throw ClientError(.invalidArgument, "WebSocket connection is closed") }
        let key = masked ? maskGenerator.next() : nil
        let frame = WebSocketFrame.encode(opcode: opcode, payload: payload, fin: fin, rsv: rsv, maskKey: key)
        try socket.send(frame, deadline: deadline(after: timeout))
    }

    // MARK: - Receiving

    /// The next message. Reassembles fragmented messages, answers pings with pongs,
    /// skips pongs, and validates UTF-8 of text messages.
    ///
    /// Returns `.close` when the server's close frame arrives (and answers it with a close
    /// frame unless one was already sent). Throws `.timeout` when nothing complete arrives
    /// in time, `.closed` on EOF without a close frame (also mid-frame, with detail), and
    /// `.protocolViolation` for an invalid frame (after sending close 1002/1007/1009 and
    /// closing the connection).
    public func receive(timeout: Duration) throws(ClientError) -> Message {
        guard socket.isOpen else { throw ClientError(.closed, "WebSocket connection is closed") }
        guard !closeReceived else {
            throw ClientError(.closed, "WebSocket close frame already received (code \(closeCode.map(String.init) ?? "none"))")
        }
        let deadline = deadline(after: timeout)
        while true {
            guard let frame = try readFrame(deadline: deadline) else {
                socket.close()
                throw ClientError(.closed, "connection closed by peer without a WebSocket close frame")
            }
            if frame.isMasked {
                try fail(1002, "server sent a masked frame (opcode \(frame.opcode))")
            }
            if frame.rsv != 0 {
                try fail(1002, "server frame has RSV bits \(frame.rsv) set but no extension was negotiated")
            }
            switch frame.opcode {
            case WebSocketFrame.ping:
                pingsReceived += 1
                if !closeSent {
                    try sendFrame(opcode: WebSocketFrame.pong, payload: frame.payload)
                }
            case WebSocketFrame.pong:
                pongsReceived += 1
            case WebSocketFrame.close:
                let parsed: (code: UInt16?, reason: String)
                do throws(WebSocketProtocolError) {
                    parsed = try WebSocketFrame.parseClosePayload(frame.payload)
                } catch {
                    try fail(1002, error.message)
                }
                closeReceived = true
                closeCode = parsed.code
                closeReason = parsed.reason
                if !closeSent {
                    closeSent = true
                    try? sendFrame(
                        opcode: WebSocketFrame.close, payload: WebSocketFrame.closePayload(code: parsed.code))
                }
                return .close(code: parsed.code, reason: parsed.reason)
            case WebSocketFrame.text, WebSocketFrame.binary:
                if fragmentOpcode != nil {
                    try fail(1002, "new data frame (opcode \(frame.opcode)) while a fragmented message is in progress")
                }
                if frame.fin {
                    return try deliver(opcode: frame.opcode, payload: frame.payload)
                }
                fragmentOpcode = frame.opcode
                fragments = frame.payload
            case WebSocketFrame.continuation:
                guard let opcode = fragmentOpcode else {
                    try fail(1002, "continuation frame without a message in progress")
                }
                if fragments.count + frame.payload.count > maxMessageSize {
                    try fail(1009, "fragmented message exceeds \(maxMessageSize) bytes")
                }
                fragments.append(contentsOf: frame.payload)
                if frame.fin {
                    let payload = fragments
                    fragments = []
                    fragmentOpcode = nil
                    return try deliver(opcode: opcode, payload: payload)
                }
            default:
                try fail(1002, "reserved opcode \(frame.opcode)")
            }
        }
    }

    private func deliver(opcode: UInt8, payload: [UInt8]) throws(ClientError) -> Message {
        if opcode == WebSocketFrame.binary { return .binary(payload) }
        guard let text = String(validating: payload, as: UTF8.self) else {
            try fail(1007, "text message is not valid UTF-8")
        }
        return .text(text)
    }

    /// Reads one frame; nil on EOF at a frame boundary.
    private func readFrame(deadline: Deadline) throws(ClientError) -> WebSocketFrame? {
        while true {
            let result: WebSocketFrame.DecodeResult
            do throws(WebSocketProtocolError) {
                let limit = maxMessageSize
                result = try socket.withBuffered { (bytes) throws(WebSocketProtocolError) -> WebSocketFrame.DecodeResult in
                    try WebSocketFrame.decode(bytes, maxPayload: limit)
                }
            } catch {
                try fail(error.closeCode.rawValue, error.message)
            }
            switch result {
            case .frame(let frame, let consumed):
                socket.consume(consumed)
                socket.shrinkIfLarge()
                return frame
            case .needMore(let total):
                while socket.buffered < total {
                    let had = socket.buffered
                    guard try socket.fill(deadline: deadline, what: "waiting for a WebSocket message") else {
                        if had == 0 { return nil }
                        socket.close()
                        throw ClientError(
                            .closed,
                            "connection closed by peer in the middle of a WebSocket frame (\(had) of at least \(total) bytes received)"
                        )
                    }
                }
            }
        }
    }

    /// Fails the connection (RFC 6455 §7.1.7): best-effort close frame, then TCP close.
    private func fail(_ code: UInt16, _ message: String) throws(ClientError) -> Never {
        if !closeSent && socket.isOpen {
            closeSent = true
            try? sendFrame(opcode: WebSocketFrame.close, payload: WebSocketFrame.closePayload(code: code))
        }
        socket.close()
        throw ClientError(.protocolViolation, message + " (sent close \(code))")
    }

    // MARK: - Closing

    /// Closing handshake: sends close (`code`, default 1000) unless already sent, waits up
    /// to `wait` for the server's close frame or EOF (discarding other messages), then
    /// closes the TCP connection. Never throws.
    public func close(code: UInt16 = 1000, reason: String = "", wait: Duration = .seconds(2)) {
        guard socket.isOpen else { return }
        if !closeSent {
            do { try sendClose(code: code, reason: reason) } catch {
                socket.close()
                return
            }
        }
        if !closeReceived {
            let deadline = deadline(after: wait)
            while true {
                guard let frame = try? readFrame(deadline: deadline) else { break }
                if frame.opcode == WebSocketFrame.close {
                    closeReceived = true
                    if let parsed = try? WebSocketFrame.parseClosePayload(frame.payload) {
                        closeCode = parsed.code
                        closeReason = parsed.reason
                    }
                    break
                }
            }
        }
        socket.close()
    }

    /// Drops the TCP connection at once, without a closing handshake.
    public func abort() {
        socket.close()
    }
}

@available(*, unavailable)
extension WebSocketClient: Sendable {}

/// Masking keys: SplitMix64 seeded from the system RNG (one getrandom per connection
/// rather than per frame).
private struct MaskGenerator {
    private var state: UInt64

    init() {
        var system = SystemRandomNumberGenerator()
        state = system.next()
    }

    mutating func next() -> [UInt8] {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        z ^= z >> 31
        return [
            UInt8(truncatingIfNeeded: z), UInt8(truncatingIfNeeded: z >> 8),
            UInt8(truncatingIfNeeded: z >> 16), UInt8(truncatingIfNeeded: z >> 24),
        ]
    }
}
