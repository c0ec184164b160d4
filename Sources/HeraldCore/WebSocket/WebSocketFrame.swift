/// RFC 6455 §5.2 framing as pure functions over bytes (no sockets), shared by the
/// gateway (which reads masked client frames) and `HeraldClient` (which writes them).
public struct WebSocketFrame: Sendable, Equatable {
    public static let continuation: UInt8 = 0x0
    public static let text: UInt8 = 0x1
    public static let binary: UInt8 = 0x2
    public static let close: UInt8 = 0x8
    public static let ping: UInt8 = 0x9
    public static let pong: UInt8 = 0xA

    public var fin: Bool
    /// The three RSV bits, as a value 0...7 (RSV1 = 4, RSV2 = 2, RSV3 = 1).
    public var rsv: UInt8
    /// 0...15.
    public var opcode: UInt8
    /// The masking key the frame carried on the wire, if it was masked.
    public var maskKey: [UInt8]?
    /// The payload, already unmasked.
    public var payload: [UInt8]

    public init(fin: Bool = true, rsv: UInt8 = 0, opcode: UInt8, maskKey: [UInt8]? = nil, payload: [UInt8]) {
        self.fin = fin
        self.rsv = rsv
        self.opcode = opcode
        self.maskKey = maskKey
        self.payload = payload
    }

    public var isMasked: Bool { maskKey != nil }

    // MARK: - Encoding

    /// Size of the frame header for a payload of `length` bytes.
    public static func headerSize(payloadLength length: Int, masked: Bool) -> Int {
        let lengthBytes = length < 126 ? 0 : (length <= 0xFFFF ? 2 : 8)
        return 2 + lengthBytes + (masked ? 4 : 0)
    }

    /// Encodes one frame. With a 4-byte `maskKey` the payload is masked (client → server
    /// frames must be); without, it is sent as is (server → client). Always uses the
    /// minimal length encoding (7-bit, 16-bit or 64-bit).
    public static func encode(
        opcode: UInt8, payload: [UInt8], fin: Bool = true, rsv: UInt8 = 0, maskKey: [UInt8]? = nil
    ) -> [UInt8] {
        payload.withUnsafeBufferPointer { encode(opcode: opcode, payload: $0, fin: fin, rsv: rsv, maskKey: maskKey) }
    }

    public static func encode(
        opcode: UInt8, payload: UnsafeBufferPointer<UInt8>, fin: Bool = true, rsv: UInt8 = 0,
        maskKey: [UInt8]? = nil
    ) -> [UInt8] {
        precondition(maskKey == nil || maskKey!.count == 4, "a WebSocket masking key has 4 bytes")
        let length = payload.count
        let headerSize = headerSize(payloadLength: length, masked: maskKey != nil)
        return [UInt8](unsafeUninitializedCapacity: headerSize + length) { buffer, initialized in
            let maskBit: UInt8 = maskKey == nil ? 0 : 0x80
            buffer[0] = (fin ? 0x80 : 0) | (rsv & 0x7) << 4 | (opcode & 0x0F)
            var offset = 2
            if length < 126 {
                buffer[1] = maskBit | UInt8(length)
            } else if length <= 0xFFFF {
                buffer[1] = maskBit | 126
                buffer[2] = UInt8(truncatingIfNeeded: length >> 8)
                buffer[3] = UInt8(truncatingIfNeeded: length)
                offset = 4
            } else {
                buffer[1] = maskBit | 127
                let wide = UInt64(length)
                for i in 0..<8 {
                    buffer[2 + i] = UInt8(truncatingIfNeeded: wide >> UInt64(56 - 8 * i))
                }
                offset = 10
            }
            if let maskKey {
                for i in 0..<4 { buffer[offset + i] = maskKey[i] }
                offset += 4
            }
            if length > 0, let source = payload.baseAddress {
                (buffer.baseAddress! + offset).initialize(from: source, count: length)
                if let maskKey {
                    applyMask(
                        (maskKey[0], maskKey[1], maskKey[2], maskKey[3]),
                        to: UnsafeMutableRawBufferPointer(rebasing: UnsafeMutableRawBufferPointer(buffer)[offset..<(offset + length)]))
                }
            }
            initialized = headerSize + length
        }
    }

    /// XORs `buffer` with the masking key (RFC 6455 §5.3), the key phase starting at 0.
    /// Masking and unmasking are the same operation.
    public static func applyMask(_ key: (UInt8, UInt8, UInt8, UInt8), to buffer: UnsafeMutableRawBufferPointer) {
        let n = buffer.count
        var i = 0
        if n >= 8 {
            // Eight bytes at a time: the key repeated twice, in memory order.
            var pattern: UInt64 = 0
            withUnsafeMutableBytes(of: &pattern) { p in
                p[0] = key.0
                p[1] = key.1
                p[2] = key.2
                p[3] = key.3
                p[4] = key.0
                p[5] = key.1
                p[6] = key.2
                p[7] = key.3
            }
            while i + 8 <= n {
                let word = buffer.loadUnaligned(fromByteOffset: i, as: UInt64.self) ^ pattern
                buffer.storeBytes(of: word, toByteOffset: i, as: UInt64.self)
                i += 8
            }
        }
        while i < n {
            let k: UInt8
            switch i & 3 {
            case 0: k = key.0
            case 1: k = key.1
            case 2: k = key.2
            default: k = key.3
            }
            buffer[i] ^= k
            i += 1
        }
    }

    // MARK: - Decoding

    public enum DecodeResult: Sendable, Equatable {
        /// A whole frame, and how many input bytes it took.
        case frame(WebSocketFrame, consumed: Int)
        /// Not enough input yet; at least `totalNeeded` bytes are required in all.
        case needMore(totalNeeded: Int)
    }

    /// Decodes the frame at the start of `bytes`.
    ///
    /// Throws for: a 64-bit length with the top bit set, a payload longer than
    /// `maxPayload` (close code 1009), a control frame that is fragmented or longer than
    /// 125 bytes (1002). RSV bits, opcodes and masking direction are left for the caller.
    public static func decode(
        _ bytes: UnsafeBufferPointer<UInt8>, maxPayload: Int = Int.max
    ) throws(WebSocketProtocolError)
        -> DecodeResult
    {
        guard bytes.count >= 2 else { return .needMore(totalNeeded: 2) }
        let b0 = bytes[0]
        let b1 = bytes[1]
        let fin = b0 & 0x80 != 0
        let rsv = (b0 >> 4) & 0x7
        let opcode = b0 & 0x0F
        let masked = b1 & 0x80 != 0
        let short = Int(b1 & 0x7F)
        var offset = 2
        var length: Int
        switch short {
        case 126:
            guard bytes.count >= 4 else { return .needMore(totalNeeded: 4) }
            length = Int(bytes[2]) << 8 | Int(bytes[3])
            offset = 4
        case 127:
            guard bytes.count >= 10 else { return .needMore(totalNeeded: 10) }
            var wide: UInt64 = 0
            for i in 2..<10 { wide = wide << 8 | UInt64(bytes[i]) }
            guard wide & (1 << 63) == 0 else {
                throw WebSocketProtocolError(.protocolError, "WebSocket frame: 64-bit payload length has its most significant bit set")
            }
            guard wide <= UInt64(Int.max - 14) else {
                throw WebSocketProtocolError(.protocolError, "WebSocket frame: payload length \(wide) is too large")
            }
            length = Int(wide)
            offset = 10
        default:
            length = short
        }
        if opcode & 0x8 != 0 {
            guard length <= 125 else {
                throw WebSocketProtocolError(
                    .protocolError, "WebSocket frame: control frame (opcode \(opcode)) with \(length)-byte payload (max 125)")
            }
            guard fin else {
                throw WebSocketProtocolError(.protocolError, "WebSocket frame: fragmented control frame (opcode \(opcode))")
            }
        }
        guard length <= maxPayload else {
            throw WebSocketProtocolError(.messageTooBig, "WebSocket frame: payload of \(length) bytes exceeds the limit of \(maxPayload)")
        }
        var maskKey: [UInt8]?
        if masked {
            guard bytes.count >= offset + 4 else { return .needMore(totalNeeded: offset + 4) }
            maskKey = [bytes[offset], bytes[offset + 1], bytes[offset + 2], bytes[offset + 3]]
            offset += 4
        }
        let total = offset + length
        guard bytes.count >= total else { return .needMore(totalNeeded: total) }
        var payload = Array(UnsafeBufferPointer(rebasing: bytes[offset..<total]))
        if let maskKey, length > 0 {
            payload.withUnsafeMutableBytes { raw in
                applyMask((maskKey[0], maskKey[1], maskKey[2], maskKey[3]), to: raw)
            }
        }
        return .frame(
            WebSocketFrame(fin: fin, rsv: rsv, opcode: opcode, maskKey: maskKey, payload: payload), consumed: total)
    }

    public static func decode(_ bytes: [UInt8], maxPayload: Int = Int.max) throws(WebSocketProtocolError) -> DecodeResult {
        let result = bytes.withUnsafeBufferPointer { buffer in
            Result { () throws(WebSocketProtocolError) -> DecodeResult in try decode(buffer, maxPayload: maxPayload) }
        }
        return try result.get()
    }

    // MARK: - Close payloads

    /// A close frame payload: 2-byte status code + UTF-8 reason (empty when `code` is nil).
    public static func closePayload(code: UInt16?, reason: String = "") -> [UInt8] {
        guard let code else { return [] }
        return [UInt8(code >> 8), UInt8(code & 0xFF)] + Array(reason.utf8)
    }

    /// Parses a close payload; throws for a 1-byte payload, a code that may not be sent
    /// on the wire (RFC 6455 §7.4), or a reason that is not UTF-8.
    public static func parseClosePayload(_ payload: [UInt8]) throws(WebSocketProtocolError) -> (code: UInt16?, reason: String) {
        if payload.isEmpty { return (nil, "") }
        guard payload.count >= 2 else {
            throw WebSocketProtocolError(.protocolError, "WebSocket close frame with a 1-byte payload")
        }
        let code = UInt16(payload[0]) << 8 | UInt16(payload[1])
        let allowed: Bool
        switch code {
        case 1000...1003, 1007...1011, 1012...1014: allowed = true
        case 3000...4999: allowed = true
        default: allowed = false
        }
        guard allowed else {
            throw WebSocketProtocolError(.protocolError, "WebSocket close frame with invalid status code \(code)")
        }
        guard let reason = String(validating: payload[2...], as: UTF8.self) else {
            throw WebSocketProtocolError(.invalidPayload, "WebSocket close frame with a reason that is not valid UTF-8")
        }
        return (code, reason)
    }
}

/// A violation of RFC 6455 by the peer, with the close code that answers it (§7.4.1).
public struct WebSocketProtocolError: Error, Sendable, Equatable, CustomStringConvertible {
    public var closeCode: WebSocketCloseCode
    public var message: String

    public init(_ closeCode: WebSocketCloseCode, _ message: String) {
        self.closeCode = closeCode
        self.message = message
    }

    public var description: String { "\(closeCode.rawValue): \(message)" }
}

/// The close codes Herald sends or judges (RFC 6455 §7.4.1, DESIGN §4).
public struct WebSocketCloseCode: RawRepresentable, Hashable, Sendable {
    public let rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }

    public static let normal = WebSocketCloseCode(rawValue: 1000)
    /// The gateway shuts down, or the peer went idle.
    public static let goingAway = WebSocketCloseCode(rawValue: 1001)
    /// A framing rule was broken (mask, RSV bits, opcode, fragmentation, length).
    public static let protocolError = WebSocketCloseCode(rawValue: 1002)
    /// A text message or close reason that is not UTF-8.
    public static let invalidPayload = WebSocketCloseCode(rawValue: 1007)
    /// Authentication failed, or replies piled up unread.
    public static let policyViolation = WebSocketCloseCode(rawValue: 1008)
    /// A message larger than the gateway accepts.
    public static let messageTooBig = WebSocketCloseCode(rawValue: 1009)
    /// The cluster's stream started again under a new epoch: reconnect and resume (the
    /// resume answers with a `reset` gap).
    public static let serviceRestart = WebSocketCloseCode(rawValue: 1012)
    /// The gateway is overloaded (too many bytes of unfinished input); retry later.
    public static let tryAgainLater = WebSocketCloseCode(rawValue: 1013)
    /// The `disconnect` overflow policy: resume from history.
    public static let queueOverflow = WebSocketCloseCode(rawValue: 4000)
    /// The connection's token expired and was not renewed with the `auth` op.
    public static let tokenExpired = WebSocketCloseCode(rawValue: 4001)
}
