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

/// UTF-8 well-formedness (RFC 3629: no overlongs, no surrogates, nothing past U+10FFFF).
public enum UTF8Validation {
    /// - Complexity: O(n); ASCII runs are checked eight bytes at a time.
    public static func isValid(_ bytes: UnsafeRawBufferPointer) -> Bool {
        var i = 0
        let n = bytes.count
        while i < n {
            if i + 8 <= n, bytes.loadUnaligned(fromByteOffset: i, as: UInt64.self) & 0x8080_8080_8080_8080 == 0 {
                i += 8
                continue
            }
            let lead = bytes[i]
            if lead < 0x80 { i += 1; continue }
            let length: Int
            var low: UInt8 = 0x80
            var high: UInt8 = 0xBF
            switch lead {
            case 0xC2...0xDF: length = 2
            case 0xE0: length = 3; low = 0xA0
            case 0xE1...0xEC, 0xEE...0xEF: length = 3
            case 0xED: length = 3; high = 0x9F
            case 0xF0: length = 4; low = 0x90
            case 0xF1...0xF3: length = 4
            case 0xF4: length = 4; high = 0x8F
            default: return false
            }
            guard i + length <= n, bytes[i + 1] >= low, bytes[i + 1] <= high else { return false }
            for k in 2..<length where bytes[i + k] & 0xC0 != 0x80 { return false }
            i += length
        }
        return true
    }
}
