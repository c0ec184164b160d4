/// Turns the bytes a WebSocket client sends into whole messages, enforcing RFC 6455.
///
/// The gateway reads client frames itself (libwebsockets only moves bytes), so every rule
/// a hostile client could break is checked here, without sockets: frames must be masked
/// (§5.1), carry no RSV bits (no extension is negotiated), use a known opcode, fragment
/// only data messages and in order (§5.4), stay within `maxMessageBytes` (1009), and text
/// must be UTF-8 (1007). A violation is a `WebSocketProtocolError` whose close code
/// answers it.
public struct WebSocketMessageReader: Sendable {
    /// What a client sent.
    public enum Message: Sendable, Equatable {
        /// A complete text message (UTF-8 checked).
        case text([UInt8])
        /// A complete binary message; only its size is kept (Herald speaks JSON text).
        case binary(count: Int)
        case ping([UInt8])
        case pong
        /// The client's close frame: its code (nil when it sent none) and reason.
        case close(code: UInt16?, reason: String)
    }

    /// The largest message accepted; it may change while the connection lives (after
    /// authentication).
    public var maxMessageBytes: Int
    /// The data message being reassembled from fragments.
    private var fragments: [UInt8] = []
    private var fragmentedOpcode: UInt8?

    public init(maxMessageBytes: Int) { self.maxMessageBytes = maxMessageBytes }

    /// Bytes held for a message that is not complete yet.
    public var bufferedBytes: Int { fragments.count }

    /// Reads frames from the start of `input` until one completes a message.
    /// - Returns: that message (nil when `input` ends first) and the bytes consumed; a
    ///   partial frame at the end stays unread.
    public mutating func next(_ input: UnsafeRawBufferPointer) throws(WebSocketProtocolError) -> (message: Message?, consumed: Int) {
        let bytes = input.bindMemory(to: UInt8.self)
        var consumed = 0
        while consumed < bytes.count {
            let rest = UnsafeBufferPointer(rebasing: bytes[consumed...])
            let limit = max(0, maxMessageBytes - fragments.count)
            let decoded: WebSocketFrame.DecodeResult
            do throws(WebSocketProtocolError) {
                decoded = try WebSocketFrame.decode(rest, maxPayload: max(limit, 125))
            } catch {
                throw error.closeCode == .messageTooBig ? tooBig() : error
            }
            guard case .frame(let frame, let length) = decoded else { break }
            consumed += length
            if let message = try assemble(frame) { return (message, consumed) }
        }
        return (nil, consumed)
    }

    private mutating func assemble(_ frame: WebSocketFrame) throws(WebSocketProtocolError) -> Message? {
        guard frame.isMasked else { throw WebSocketProtocolError(.protocolError, "client frames must be masked (RFC 6455 §5.1)") }
        guard frame.rsv == 0 else { throw WebSocketProtocolError(.protocolError, "RSV bits set but no extension was negotiated") }
        switch frame.opcode {
        case WebSocketFrame.ping:
            return .ping(frame.payload)
        case WebSocketFrame.pong:
            return .pong
        case WebSocketFrame.close:
            let (code, reason) = try WebSocketFrame.parseClosePayload(frame.payload)
            return .close(code: code, reason: reason)
        case WebSocketFrame.text, WebSocketFrame.binary:
            guard fragmentedOpcode == nil else {
                throw WebSocketProtocolError(.protocolError, "a new message began before the fragmented one ended")
            }
            guard frame.payload.count <= maxMessageBytes else { throw tooBig() }
            if frame.fin { return try complete(opcode: frame.opcode, frame.payload) }
            fragmentedOpcode = frame.opcode
            fragments = frame.payload
            return nil
        case WebSocketFrame.continuation:
            guard let opcode = fragmentedOpcode else {
                throw WebSocketProtocolError(.protocolError, "a continuation frame without a message to continue")
            }
            guard fragments.count + frame.payload.count <= maxMessageBytes else { throw tooBig() }
            fragments.append(contentsOf: frame.payload)
            guard frame.fin else { return nil }
            let payload = fragments
            fragmentedOpcode = nil
            // A large message's buffer is given back rather than kept for the connection's life.
            fragments = []
            return try complete(opcode: opcode, payload)
        default:
            throw WebSocketProtocolError(.protocolError, "unknown opcode \(frame.opcode)")
        }
    }

    private func complete(opcode: UInt8, _ payload: [UInt8]) throws(WebSocketProtocolError) -> Message {
        guard opcode == WebSocketFrame.text else { return .binary(count: payload.count) }
        let valid = payload.withUnsafeBytes { UTF8Validation.isValid($0) }
        guard valid else { throw WebSocketProtocolError(.invalidPayload, "a text message that is not valid UTF-8") }
        return .text(payload)
    }

    private func tooBig() -> WebSocketProtocolError {
        WebSocketProtocolError(.messageTooBig, "message larger than \(maxMessageBytes) bytes")
    }
}
