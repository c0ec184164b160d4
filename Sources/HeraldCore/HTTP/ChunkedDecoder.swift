private let CR: UInt8 = 13
private let LF: UInt8 = 10
private let SP: UInt8 = 32
private let HT: UInt8 = 9

/// Incremental decoder for `Transfer-Encoding: chunked` (RFC 9112 §7.1). Strict: every
/// line ends in CRLF and holds no control byte; chunk extensions are skipped.
public struct ChunkedDecoder: Sendable {
    private enum State: Equatable, Sendable {
        case sizeLine
        case data(remaining: Int)
        case dataEnd  // expecting the CRLF after chunk data
        case dataEndLF  // saw CR after chunk data, expecting LF
        case trailer
        case done
    }

    private var state: State = .sizeLine
    private var line: [UInt8] = []
    public var maxLineLength = 8 * 1024

    public init() {}

    /// The last chunk and the trailer section have been read.
    public var isFinished: Bool { state == .done }

    /// Between chunks (nothing of the next size line read yet) — an EOF here is "clean-ish".
    public var isAtChunkBoundary: Bool { state == .sizeLine && line.isEmpty }

    /// Decodes as much of `input` as possible, appending chunk data to `output`.
    /// Returns the number of bytes consumed; stops right after the end of the body.
    public mutating func decode(_ input: UnsafeBufferPointer<UInt8>, into output: inout [UInt8]) throws(HeraldError) -> Int {
        try decode(input) { output.append(contentsOf: $0) }
    }

    /// Decodes as much of `input` as possible, handing each piece of chunk data to `sink`
    /// (which may drop it). Returns the number of bytes consumed.
    public mutating func decode(_ input: UnsafeBufferPointer<UInt8>, sink: (UnsafeBufferPointer<UInt8>) -> Void) throws(HeraldError) -> Int
    {
        var i = 0
        let n = input.count
        while i < n {
            switch state {
            case .done:
                return i
            case .data(let remaining):
                let take = min(remaining, n - i)
                sink(UnsafeBufferPointer(rebasing: input[i..<(i + take)]))
                i += take
                state = remaining == take ? .dataEnd : .data(remaining: remaining - take)
            case .dataEnd:
                guard input[i] == CR else {
                    throw HeraldError(.badRequest, "chunked body: missing CRLF after chunk data")
                }
                i += 1
                state = .dataEndLF
            case .dataEndLF:
                guard input[i] == LF else {
                    throw HeraldError(.badRequest, "chunked body: missing LF after chunk data")
                }
                i += 1
                state = .sizeLine
            case .sizeLine, .trailer:
                var j = i
                while j < n && input[j] != LF { j += 1 }
                line.append(contentsOf: UnsafeBufferPointer(rebasing: input[i..<j]))
                if line.count > maxLineLength {
                    throw HeraldError(.badRequest, "chunked body: chunk-size or trailer line too long")
                }
                if j == n { return n }
                i = j + 1
                // Only CRLF ends a line, and no other control byte is in one: a parser in
                // front that reads the body differently is how requests get smuggled.
                guard line.last == CR else {
                    throw HeraldError(.badRequest, "chunked body: a line ends in a bare LF (CRLF is required)")
                }
                line.removeLast()
                guard !line.contains(where: { $0 < SP && $0 != HT || $0 == 0x7F }) else {
                    throw HeraldError(.badRequest, "chunked body: a control character in a chunk-size or trailer line")
                }
                if state == .trailer {
                    if line.isEmpty { state = .done }
                } else {
                    let size = try ChunkedDecoder.parseSize(line)
                    state = size == 0 ? .trailer : .data(remaining: size)
                }
                line.removeAll(keepingCapacity: true)
            }
        }
        return i
    }

    private static func parseSize(_ line: [UInt8]) throws(HeraldError) -> Int {
        var size = 0
        var digits = 0
        for byte in line {
            let value: Int
            switch byte {
            case 48...57: value = Int(byte) - 48
            case 65...70: value = Int(byte) - 55
            case 97...102: value = Int(byte) - 87
            case SP, HT, UInt8(ascii: ";"):
                // chunk extensions (and BWS before them) are ignored
                guard digits > 0 else {
                    throw HeraldError(
                        .badRequest, "chunked body: invalid chunk size line \"\(String(decoding: line.prefix(40), as: UTF8.self))\"")
                }
                return size
            default:
                throw HeraldError(
                    .badRequest, "chunked body: invalid chunk size line \"\(String(decoding: line.prefix(40), as: UTF8.self))\"")
            }
            digits += 1
            guard digits <= 15 else {
                throw HeraldError(.badRequest, "chunked body: chunk size too large")
            }
            size = size * 16 + value
        }
        guard digits > 0 else {
            throw HeraldError(.badRequest, "chunked body: empty chunk size line")
        }
        return size
    }
}
