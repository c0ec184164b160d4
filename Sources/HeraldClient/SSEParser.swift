public import HeraldCore

/// One Server-Sent Events block (the lines up to a blank line).
public struct SSEEvent: Sendable, Equatable, CustomStringConvertible {
    /// The `id:` field of this block, if it had one (see `SSEParser.lastEventID` for the
    /// spec's persistent "last event ID").
    public var id: String?
    /// The `event:` field, if present (a browser would report "message" when absent).
    public var event: String?
    /// The `data:` lines joined with "\n" ("" when the block had none).
    public var data: String
    /// Comment lines (those starting with ":"), without the colon and one following
    /// space: the heartbeat line ": hb" is collected as "hb".
    public var comments: [String]

    /// A Herald `id:` read as a position (`<epoch>:<seq>`); nil without a valid one.
    public var position: ResumePosition? { id.flatMap { try? ResumePosition(lastEventID: $0) } }
    /// The `retry:` field when it was a valid integer.
    public var retry: Int?

    public init(id: String? = nil, event: String? = nil, data: String = "", comments: [String] = [], retry: Int? = nil) {
        self.id = id
        self.event = event
        self.data = data
        self.comments = comments
        self.retry = retry
    }

    /// The block had only comments (e.g. a heartbeat), no fields.
    public var isCommentOnly: Bool { id == nil && event == nil && data.isEmpty && retry == nil && !comments.isEmpty }

    public var description: String {
        var parts: [String] = []
        if let id { parts.append("id=\(id)") }
        if let event { parts.append("event=\(event)") }
        if !data.isEmpty { parts.append("data=\(data)") }
        if !comments.isEmpty { parts.append("comments=\(comments)") }
        if let retry { parts.append("retry=\(retry)") }
        return "SSEEvent(" + parts.joined(separator: ", ") + ")"
    }
}

/// Incremental `text/event-stream` parser (WHATWG HTML §9.2.6), fed with arbitrary
/// slices of the stream.
///
/// - Lines end with CRLF, LF or CR (a CRLF split across two feeds counts once).
/// - A leading UTF-8 BOM is skipped. Text is decoded as UTF-8 with replacement.
/// - "field: value" (one optional space after the colon is removed); a line without a
///   colon is a field with an empty value; unknown fields are ignored.
/// - `data` lines are joined with "\n"; `id` values containing NUL are ignored.
/// - A blank line dispatches the block. Unlike a browser, a block with no `data` but
///   with comments, `id`, `event` or `retry` is dispatched too, so that tests can see
///   heartbeats; a blank line after nothing dispatches nothing.
/// - At end of stream, an unterminated block is discarded (`finish()`).
public struct SSEParser: Sendable {
    public init(maxLineLength: Int = 16 * 1024 * 1024) {
        self.maxLineLength = maxLineLength
    }

    public let maxLineLength: Int
    /// The most recent `id:` value seen (persists across blocks, as in the spec).
    public private(set) var lastEventID: String = ""

    private var line: [UInt8] = []
    private var pendingCR = false
    private var atStreamStart = true

    private var dataLines: [String] = []
    private var eventType: String?
    private var id: String?
    private var comments: [String] = []
    private var retry: Int?
    private var hasContent = false

    /// Parses `bytes`, appending every completed event to `events`.
    public mutating func feed(_ bytes: UnsafeBufferPointer<UInt8>, into events: inout [SSEEvent]) throws(ClientError) {
        let n = bytes.count
        var i = 0
        if pendingCR {
            pendingCR = false
            if n > 0 && bytes[0] == 10 { i = 1 }
        }
        while i < n {
            var j = i
            while j < n {
                let byte = bytes[j]
                if byte == 10 || byte == 13 { break }
                j += 1
            }
            if j == n {
                line.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[i..<n]))
                if line.count > maxLineLength {
                    throw ClientError(.protocolViolation, "SSE line longer than \(maxLineLength) bytes")
                }
                return
            }
            if line.isEmpty {
                processLine(UnsafeBufferPointer(rebasing: bytes[i..<j]), into: &events)
            } else {
                line.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[i..<j]))
                if line.count > maxLineLength {
                    throw ClientError(.protocolViolation, "SSE line longer than \(maxLineLength) bytes")
                }
                var completed: [UInt8] = []
                swap(&completed, &line)
                completed.withUnsafeBufferPointer { processLine($0, into: &events) }
                completed.removeAll(keepingCapacity: true)
                swap(&completed, &line)
            }
            if bytes[j] == 13 {
                if j + 1 < n {
                    i = bytes[j + 1] == 10 ? j + 2 : j + 1
                } else {
                    pendingCR = true
                    i = n
                }
            } else {
                i = j + 1
            }
        }
    }

    public mutating func feed(_ bytes: [UInt8], into events: inout [SSEEvent]) throws(ClientError) {
        let result = bytes.withUnsafeBufferPointer { buffer in
            var produced: [SSEEvent] = []
            return Result { () throws(ClientError) -> [SSEEvent] in
                try feed(buffer, into: &produced)
                return produced
            }
        }
        events.append(contentsOf: try result.get())
    }

    /// Parses `bytes` and returns the events they completed.
    public mutating func feed(_ bytes: [UInt8]) throws(ClientError) -> [SSEEvent] {
        var events: [SSEEvent] = []
        try feed(bytes, into: &events)
        return events
    }

    /// End of stream: drops a partial line and an undispatched block.
    public mutating func finish() {
        line.removeAll()
        pendingCR = false
        resetBlock()
    }

    private mutating func resetBlock() {
        dataLines.removeAll(keepingCapacity: true)
        eventType = nil
        id = nil
        comments.removeAll(keepingCapacity: true)
        retry = nil
        hasContent = false
    }

    private mutating func processLine(_ rawLine: UnsafeBufferPointer<UInt8>, into events: inout [SSEEvent]) {
        var lineBytes = rawLine
        if atStreamStart {
            atStreamStart = false
            if lineBytes.count >= 3 && lineBytes[0] == 0xEF && lineBytes[1] == 0xBB && lineBytes[2] == 0xBF {
                lineBytes = UnsafeBufferPointer(rebasing: lineBytes[3...])
            }
        }
        if lineBytes.isEmpty {
            if hasContent {
                events.append(
                    SSEEvent(
                        id: id, event: eventType, data: dataLines.joined(separator: "\n"), comments: comments,
                        retry: retry))
            }
            resetBlock()
            return
        }
        let colon = lineBytes.firstIndex(of: UInt8(ascii: ":"))
        if colon == 0 {
            comments.append(Self.text(afterColonIn: lineBytes, at: 0))
            hasContent = true
            return
        }
        let nameBytes = UnsafeBufferPointer(rebasing: lineBytes[0..<(colon ?? lineBytes.count)])
        let value = colon.map { Self.text(afterColonIn: lineBytes, at: $0) } ?? ""
        switch String(decoding: nameBytes, as: UTF8.self) {
        case "data":
            dataLines.append(value)
            hasContent = true
        case "event":
            eventType = value
            hasContent = true
        case "id":
            if !value.utf8.contains(0) {
                id = value
                lastEventID = value
                hasContent = true
            }
        case "retry":
            if !value.isEmpty, value.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }), let number = Int(value) {
                retry = number
                hasContent = true
            }
        default:
            break
        }
    }

    /// The text after the colon at `colon`, minus one leading space.
    private static func text(afterColonIn line: UnsafeBufferPointer<UInt8>, at colon: Int) -> String {
        var start = colon + 1
        if start < line.count && line[start] == 32 { start += 1 }
        return String(decoding: UnsafeBufferPointer(rebasing: line[start...]), as: UTF8.self)
    }
}
