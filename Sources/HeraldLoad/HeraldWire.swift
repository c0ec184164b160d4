/// The few fields of Herald's wire a reconnect storm reads, found by byte scans (no JSON
/// parse, no String per event): an event's seq and number, the position a `subscribed`
/// answer or an SSE id gives, and the wait a refusal asks for.
enum HeraldWire {
    private static let seqMarker = Array(#""seq":"#.utf8)
    private static let positionMarker = Array(#""position":"#.utf8)
    private static let epochMarker = Array(#""epoch":""#.utf8)
    private static let retryMarker = Array("retryAfterMs".utf8)

    /// The seq of a WebSocket event message, `{"type":"event","subs":[…],"seq":N,"event":…}`:
    /// it comes before the event, so the scan from the start is short.
    static func webSocketSeq(in message: UnsafeRawBufferPointer) -> UInt64? {
        guard let at = find(seqMarker, in: message) else { return nil }
        return unsignedInteger(in: message, at: at + seqMarker.count)?.value
    }

    /// The seq and the epoch (a byte range, empty for a bare seq) of an SSE event block's
    /// `id: <epoch>:<seq>` line, which Herald writes before `event:` and `data:`.
    static func sseID(in block: UnsafeRawBufferPointer) -> (epoch: Range<Int>, seq: UInt64)? {
        var start = 0
        while start < block.count {
            var end = start
            while end < block.count, block[end] != 10, block[end] != 13 { end += 1 }
            if end - start >= 3, block[start] == UInt8(ascii: "i"), block[start + 1] == UInt8(ascii: "d"),
                block[start + 2] == UInt8(ascii: ":")
            {
                var from = start + 3
                if from < end, block[from] == 0x20 { from += 1 }
                var colon = end - 1
                while colon >= from, block[colon] != UInt8(ascii: ":") { colon -= 1 }
                let digits = colon >= from ? colon + 1 : from
                guard let (seq, stop) = unsignedInteger(in: block, at: digits), stop == end else { return nil }
                return (from..<max(from, colon), seq)
            }
            if UnsafeRawBufferPointer(rebasing: block[start..<end]).starts(with: "data:".utf8) { return nil }  // the id comes first
            start = end + 1
        }
        return nil
    }

    /// The event number `"n":<n>` of an event, looked for from the end: the bench's
    /// template puts it just before `sentAt`, the last field.
    static func eventNumber(in message: UnsafeRawBufferPointer) -> Int? {
        var i = message.count - 4
        while i >= 0 {
            if message[i] == UInt8(ascii: "\""), message[i + 1] == UInt8(ascii: "n"), message[i + 2] == UInt8(ascii: "\""),
                message[i + 3] == UInt8(ascii: ":")
            {
                return unsignedInteger(in: message, at: i + 4).map { Int(clamping: $0.value) }
            }
            i -= 1
        }
        return nil
    }

    /// The `position` and `epoch` of a `subscribed` answer (cold: once per connection).
    static func subscribed(_ message: UnsafeRawBufferPointer) -> (position: UInt64?, epoch: [UInt8]?) {
        let position = find(positionMarker, in: message).flatMap { unsignedInteger(in: message, at: $0 + positionMarker.count)?.value }
        var epoch: [UInt8]?
        if let at = find(epochMarker, in: message) {
            let from = at + epochMarker.count
            var end = from
            while end < message.count, message[end] != UInt8(ascii: "\"") { end += 1 }
            if end < message.count { epoch = Array(message[from..<end]) }
        }
        return (position, epoch)
    }

    /// The wait a refusal asks for, in milliseconds: `"retryAfterMs":N` in a JSON body or
    /// error message, `retryAfterMs=N` in a close reason.
    static func retryAfterMilliseconds(in bytes: UnsafeRawBufferPointer) -> Int? {
        guard let at = find(retryMarker, in: bytes) else { return nil }
        var i = at + retryMarker.count
        while i < bytes.count, [UInt8(ascii: "\""), UInt8(ascii: ":"), UInt8(ascii: "="), 0x20].contains(bytes[i]) { i += 1 }
        return unsignedInteger(in: bytes, at: i).map { Int(clamping: $0.value) }
    }

    /// The decimal integer at `start` (after spaces) and where it ends; nil without digits.
    static func unsignedInteger(in bytes: UnsafeRawBufferPointer, at start: Int) -> (value: UInt64, end: Int)? {
        var i = start
        while i < bytes.count, bytes[i] == 0x20 { i += 1 }
        let digits = i
        var value: UInt64 = 0
        while i < bytes.count, bytes[i] >= 0x30, bytes[i] <= 0x39 {
            value = value &* 10 &+ UInt64(bytes[i] - 0x30)
            i += 1
        }
        return i > digits ? (value, i) : nil
    }
}
