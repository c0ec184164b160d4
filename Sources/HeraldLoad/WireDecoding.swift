import HeraldClient

/// The pieces of HTTP/1.1, WebSocket and SSE the load tool reads: only what telling
/// messages apart needs, over bytes that may arrive in any split.

/// A response head: its status, how its body is framed, and its length.
struct ResponseHead {
    var status: Int
    var framing: BodyFraming
    /// Bytes of the head, blank line included.
    var length: Int
    /// `Retry-After` in seconds, when it says a number (refusals).
    var retryAfterSeconds: Int?

    /// The head at the start of `bytes` (the answer to a `method` request); nil while it
    /// is incomplete. Throws on bytes that are not an HTTP/1.1 response, or on a head over
    /// 16 KiB.
    static func parse(_ bytes: UnsafeRawBufferPointer, method: String) throws(LoadFailure) -> ResponseHead? {
        let octets = bytes.assumingMemoryBound(to: UInt8.self)
        guard let end = HTTPResponseHead.findEnd(in: octets) else {
            if bytes.count > 16 * 1024 { throw LoadFailure("a response head over 16 KiB") }
            return nil
        }
        do throws(ClientError) {
            let head = try HTTPResponseHead.parse(UnsafeBufferPointer(rebasing: octets[0..<end]))
            return ResponseHead(
                status: head.status, framing: try BodyFraming.of(head, requestMethod: method), length: end,
                retryAfterSeconds: head.header("retry-after").flatMap { Int($0) })
        } catch {
            throw LoadFailure("a malformed response: \(error)")
        }
    }
}

extension BodyFraming {
    /// The body length a Content-Length gave (0 for no body).
    var contentLength: Int {
        if case .contentLength(let length) = self { return length }
        return 0
    }
}

/// The offset of `needle` in `bytes`, or nil.
func find(_ needle: [UInt8], in bytes: UnsafeRawBufferPointer, from start: Int = 0) -> Int? {
    guard bytes.count >= needle.count, start <= bytes.count - needle.count else { return nil }
    var i = start
    let last = bytes.count - needle.count
    while i <= last {
        if bytes[i] == needle[0] {
            var k = 1
            while k < needle.count, bytes[i + k] == needle[k] { k += 1 }
            if k == needle.count { return i }
        }
        i += 1
    }
    return nil
}

/// Undoes `Transfer-Encoding: chunked`, appending the data to a buffer as it arrives.
struct ChunkDecoder {
    private enum State {
        case size(Int, sawDigit: Bool, inExtension: Bool)
        case data(Int)
        case dataEnd(sawCR: Bool)
        case trailer(lineLength: Int)
        case done
    }
    private var state = State.size(0, sawDigit: false, inExtension: false)

    /// True once the last (empty) chunk and the trailers ended.
    var isDone: Bool {
        if case .done = state { return true }
        return false
    }

    /// Decodes `bytes`, appending data to `out`; returns the bytes used (fewer than given
    /// only when the body ended).
    mutating func feed(_ bytes: UnsafeRawBufferPointer, into out: inout [UInt8]) throws(LoadFailure) -> Int {
        var i = 0
        while i < bytes.count {
            switch state {
            case .size(let size, let sawDigit, let inExtension):
                let byte = bytes[i]
                i += 1
                if byte == 10 {
                    guard sawDigit else { throw LoadFailure("a chunk without a size") }
                    state = size == 0 ? .trailer(lineLength: 0) : .data(size)
                } else if byte == 13 || inExtension {
                    continue
                } else if byte == UInt8(ascii: ";") {
                    state = .size(size, sawDigit: sawDigit, inExtension: true)
                } else if let digit = hexValue(byte), size < 1 << 40 {
                    state = .size(size * 16 + digit, sawDigit: true, inExtension: false)
                } else {
                    throw LoadFailure("a malformed chunk size")
                }
            case .data(let remaining):
                let n = min(remaining, bytes.count - i)
                out.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[i..<(i + n)]))
                i += n
                state = remaining == n ? .dataEnd(sawCR: false) : .data(remaining - n)
            case .dataEnd(let sawCR):
                let byte = bytes[i]
                i += 1
                if byte == 13, !sawCR {
                    state = .dataEnd(sawCR: true)
                } else if byte == 10 {
                    state = .size(0, sawDigit: false, inExtension: false)
                } else {
                    throw LoadFailure("a chunk longer than its size")
                }
            case .trailer(let lineLength):
                let byte = bytes[i]
                i += 1
                if byte == 10 {
                    state = lineLength == 0 ? .done : .trailer(lineLength: 0)
                } else if byte != 13 {
                    state = .trailer(lineLength: lineLength + 1)
                }
            case .done:
                return i
            }
        }
        return i
    }

    private func hexValue(_ byte: UInt8) -> Int? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): Int(byte - UInt8(ascii: "0"))
        case UInt8(ascii: "a")...UInt8(ascii: "f"): Int(byte - UInt8(ascii: "a")) + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): Int(byte - UInt8(ascii: "A")) + 10
        default: nil
        }
    }
}

/// One frame a server sent (RFC 6455 §5.2): servers do not mask.
struct ServerFrame: Equatable {
    var fin: Bool
    var opcode: UInt8
    var payload: Range<Int>
    /// Bytes of the whole frame.
    var length: Int

    static let continuation: UInt8 = 0, text: UInt8 = 1, binary: UInt8 = 2, close: UInt8 = 8, ping: UInt8 = 9, pong: UInt8 = 10

    /// The frame at the start of `bytes`, or nil while it is incomplete.
    static func parse(_ bytes: UnsafeRawBufferPointer) throws(LoadFailure) -> ServerFrame? {
        guard bytes.count >= 2 else { return nil }
        guard bytes[1] & 0x80 == 0 else { throw LoadFailure("the server masked a frame") }
        var length = Int(bytes[1] & 0x7F)
        var offset = 2
        if length == 126 {
            guard bytes.count >= 4 else { return nil }
            length = Int(bytes[2]) << 8 | Int(bytes[3])
            offset = 4
        } else if length == 127 {
            guard bytes.count >= 10 else { return nil }
            guard bytes[2] & 0x80 == 0 else { throw LoadFailure("a frame length with the top bit set") }
            length = 0
            for k in 2..<10 { length = length << 8 | Int(bytes[k]) }
            guard length < 1 << 31 else { throw LoadFailure("a frame over 2 GiB") }
            offset = 10
        }
        guard bytes.count >= offset + length else { return nil }
        return ServerFrame(fin: bytes[0] & 0x80 != 0, opcode: bytes[0] & 0x0F, payload: offset..<(offset + length), length: offset + length)
    }

    /// Appends a masked client frame (the mask is fixed: the tool is not a browser that an
    /// attacker could make write chosen bytes, which is what masking is for).
    static func appendClientFrame(opcode: UInt8, payload: UnsafeRawBufferPointer, to out: inout [UInt8]) {
        let mask: [UInt8] = [0x37, 0xFA, 0x21, 0x3D]
        out.append(0x80 | opcode)
        if payload.count < 126 {
            out.append(0x80 | UInt8(payload.count))
        } else if payload.count < 65536 {
            out += [0x80 | 126, UInt8(payload.count >> 8), UInt8(payload.count & 0xFF)]
        } else {
            out.append(0x80 | 127)
            for shift in stride(from: 56, through: 0, by: -8) { out.append(UInt8((UInt64(payload.count) >> UInt64(shift)) & 0xFF)) }
        }
        out += mask
        for (k, byte) in payload.enumerated() { out.append(byte ^ mask[k & 3]) }
    }
}

/// What a received message says to the load tool.
enum MessageKind: Equatable {
    /// An event carrying `"sentAt":<ns>`.
    case event(sentAt: UInt64)
    /// A notice that events were not delivered (Herald's WS `gap`, SSE `herald.gap`).
    case gap
    /// Anything else: replies, comments, keepalives.
    case other

    private static let sentAtMarker = Array(#""sentAt":"#.utf8)
    private static let gapMarkers = [Array(#""type":"gap""#.utf8), Array("event: herald.gap".utf8)]

    /// Reads the kind with byte scans only. `sentAt` is looked for from the end: events
    /// carry it last, so a scan of a 500-byte event touches a few bytes.
    static func of(_ bytes: UnsafeRawBufferPointer) -> MessageKind {
        let marker = sentAtMarker
        var i = bytes.count - marker.count
        while i >= 0 {
            if bytes[i] == UInt8(ascii: "\""), bytes[i + 1] == UInt8(ascii: "s") {
                var k = 2
                while k < marker.count, bytes[i + k] == marker[k] { k += 1 }
                if k == marker.count {
                    var j = i + k
                    while j < bytes.count, bytes[j] == 0x20 { j += 1 }  // "sentAt": 123 (re-serialised)
                    let digits = j
                    var value: UInt64 = 0
                    while j < bytes.count, bytes[j] >= 0x30, bytes[j] <= 0x39 {
                        value = value &* 10 &+ UInt64(bytes[j] - 0x30)
                        j += 1
                    }
                    // Not a plain integer (1.7e15, a string): no latency to take from it.
                    let ended = j == bytes.count || !".eE".utf8.contains(bytes[j])
                    return j > digits && ended ? .event(sentAt: value) : .other
                }
            }
            i -= 1
        }
        for gap in gapMarkers where find(gap, in: bytes) != nil { return .gap }
        return .other
    }
}
