private let CR: UInt8 = 13
private let LF: UInt8 = 10
private let SP: UInt8 = 32
private let HT: UInt8 = 9

/// How much of a request head the gateway reads before it refuses it (DESIGN §8).
public struct HTTPHeadLimits: Sendable, Equatable {
    /// The whole head: request line and every header field (past it: 431).
    public var maxHeadBytes: Int
    /// The request-target (past it: 414).
    public var maxTargetBytes: Int
    /// One header field line, e.g. a long `Authorization` (past it: 431).
    public var maxFieldBytes: Int
    /// Header fields in one head (past it: 431).
    public var maxFields: Int

    public init(maxHeadBytes: Int = 16 * 1024, maxTargetBytes: Int = 8 * 1024, maxFieldBytes: Int = 8 * 1024, maxFields: Int = 100) {
        self.maxHeadBytes = maxHeadBytes
        self.maxTargetBytes = maxTargetBytes
        self.maxFieldBytes = maxFieldBytes
        self.maxFields = maxFields
    }
}

/// Reads HTTP/1.1 request heads from a connection's input, one at a time (RFC 9112).
///
/// Herald parses HTTP itself because the HTTP/1 server of libwebsockets 4.1 re-delivers
/// buffered pipelined input after a request body (one write could freeze the loop or
/// replay a POST forever). Here a head is consumed exactly once: the caller passes the
/// unread input, gets the head and the number of bytes it took, and reads the body
/// (`HTTPBodyReader`) from what follows. Everything a hostile client controls is bounded
/// by `HTTPHeadLimits`, and every refusal is a `HeraldError` whose code gives the status
/// (400, 414, 431, 501, 505).
///
/// - Complexity: O(n) over the bytes of the head, also when it arrives a byte at a time
///   (the search for its end resumes where it stopped).
public struct HTTPRequestDecoder: Sendable {
    public var limits: HTTPHeadLimits
    /// How far the current head has been searched for its end.
    private var searched = 0
    /// Whether the current head's request line has ended (a line feed was seen).
    private var requestLineEnded = false

    public init(limits: HTTPHeadLimits = HTTPHeadLimits()) { self.limits = limits }

    /// CR and LF bytes accepted before a request line (a client may end a body with an
    /// extra CRLF or two).
    static let maxLeadingEmptyLineBytes = 8

    /// Decodes the request head at the start of `input` once it is complete.
    /// - Returns: the head and the number of bytes it took, or nil when more input is needed.
    /// - Throws: a `HeraldError` whose code maps to 400, 414, 431, 501 or 505.
    public mutating func decodeHead(_ input: UnsafeRawBufferPointer) throws(HeraldError) -> (head: HTTPRequestHead, consumed: Int)? {
        let bytes = input.bindMemory(to: UInt8.self)
        // A few empty lines before a request line are ignored (RFC 9112 §2.2); more are
        // refused, so a stream of them is neither kept nor searched again and again.
        var start = 0
        while start < bytes.count, bytes[start] == CR || bytes[start] == LF { start += 1 }
        guard start <= Self.maxLeadingEmptyLineBytes else {
            throw HeraldError(.badRequest, "more than \(Self.maxLeadingEmptyLineBytes / 2) empty lines before the request line")
        }
        let unsearched = max(start, searched)
        guard let end = findEnd(bytes, from: unsearched) else {
            if !requestLineEnded { requestLineEnded = bytes[unsearched...].contains(LF) }
            searched = max(start, bytes.count - 3)
            if !requestLineEnded, bytes.count - start > limits.maxTargetBytes + 64 {
                throw HeraldError(.uriTooLong, "the request line is longer than \(limits.maxTargetBytes + 64) bytes")
            }
            if bytes.count - start > limits.maxHeadBytes {
                throw HeraldError(.headersTooLarge, "the request head is larger than \(limits.maxHeadBytes) bytes")
            }
            return nil
        }
        searched = 0
        requestLineEnded = false
        guard end - start <= limits.maxHeadBytes else {
            throw HeraldError(.headersTooLarge, "the request head is larger than \(limits.maxHeadBytes) bytes")
        }
        let head = try parse(UnsafeBufferPointer(rebasing: bytes[start..<end]))
        return (head, end)
    }

    /// Index just past the empty line that ends a head (CRLF CRLF, or leniently LF LF).
    private func findEnd(_ bytes: UnsafeBufferPointer<UInt8>, from: Int) -> Int? {
        var i = from
        while i < bytes.count {
            if bytes[i] == LF {
                if i + 1 < bytes.count, bytes[i + 1] == LF { return i + 2 }
                if i + 2 < bytes.count, bytes[i + 1] == CR, bytes[i + 2] == LF { return i + 3 }
            }
            i += 1
        }
        return nil
    }

    private func parse(_ head: UnsafeBufferPointer<UInt8>) throws(HeraldError) -> HTTPRequestHead {
        var lines = LineReader(head)
        guard let requestLine = lines.next() else { throw HeraldError(.badRequest, "empty request") }
        let (method, target, minorVersion) = try parseRequestLine(requestLine)

        var fields: [(name: String, value: String)] = []
        while let line = lines.next(), !line.isEmpty {
            guard line.count <= limits.maxFieldBytes else {
                let name =
                    line.firstIndex(of: UInt8(ascii: ":")).map { String(decoding: line[line.startIndex..<$0].prefix(64), as: UTF8.self) }
                    ?? "?"
                throw HeraldError(.headersTooLarge, "the header field \"\(name)\" is longer than \(limits.maxFieldBytes) bytes")
            }
            guard fields.count < limits.maxFields else {
                throw HeraldError(.headersTooLarge, "the request has more than \(limits.maxFields) header fields")
            }
            fields.append(try parseField(line))
        }
        var head = HTTPRequestHead(
            method: method, target: target, path: "", query: "", minorVersion: minorVersion, fields: fields,
            keepAlive: true, bodyFraming: .none)
        try resolveTarget(&head)
        try resolveFraming(&head)
        return head
    }

    private func parseRequestLine(_ line: Slice<UnsafeBufferPointer<UInt8>>) throws(HeraldError) -> (HTTPMethod, String, Int) {
        guard let firstSpace = line.firstIndex(of: SP) else {
            throw HeraldError(.badRequest, "malformed request line (expected: METHOD target HTTP/1.1)")
        }
        let method = line[..<firstSpace]
        guard (1...32).contains(method.count), method.allSatisfy(Self.isTokenByte) else {
            throw HeraldError(.badRequest, "malformed request method")
        }
        let rest = line[(firstSpace + 1)...]
        guard let secondSpace = rest.lastIndex(of: SP), secondSpace > rest.startIndex else {
            throw HeraldError(.badRequest, "malformed request line (expected: METHOD target HTTP/1.1)")
        }
        let target = line[rest.startIndex..<secondSpace]
        guard target.count <= limits.maxTargetBytes else {
            throw HeraldError(.uriTooLong, "the request-target has \(target.count) bytes; the limit is \(limits.maxTargetBytes)")
        }
        guard target.allSatisfy({ $0 > SP && $0 < 0x7F }) else {
            throw HeraldError(.badRequest, "the request-target holds a space, a control character or a non-ASCII byte")
        }
        let version = line[(secondSpace + 1)...]
        guard version.count == 8, version.starts(with: "HTTP/".utf8), version[version.startIndex + 6] == UInt8(ascii: "."),
            let major = Self.digit(version[version.startIndex + 5]), let minor = Self.digit(version[version.startIndex + 7])
        else {
            throw HeraldError(.badRequest, "malformed HTTP version")
        }
        guard major == 1 else {
            throw HeraldError(.versionNotSupported, "HTTP/\(major).\(minor) is not supported; use HTTP/1.1")
        }
        return (HTTPMethod(String(decoding: method, as: UTF8.self)), String(decoding: target, as: UTF8.self), min(minor, 1))
    }

    private func parseField(_ line: Slice<UnsafeBufferPointer<UInt8>>) throws(HeraldError) -> (name: String, value: String) {
        guard line[line.startIndex] != SP && line[line.startIndex] != HT else {
            throw HeraldError(.badRequest, "folded header lines (obs-fold) are not accepted")
        }
        guard let colon = line.firstIndex(of: UInt8(ascii: ":")), colon > line.startIndex,
            line[..<colon].allSatisfy(Self.isTokenByte)
        else {
            throw HeraldError(.badRequest, "malformed header field (expected name: value)")
        }
        var valueStart = colon + 1
        var valueEnd = line.endIndex
        while valueStart < valueEnd, line[valueStart] == SP || line[valueStart] == HT { valueStart += 1 }
        while valueEnd > valueStart, line[valueEnd - 1] == SP || line[valueEnd - 1] == HT { valueEnd -= 1 }
        let value = line[valueStart..<valueEnd]
        guard value.allSatisfy({ $0 == HT || ($0 >= SP && $0 != 0x7F) }) else {
            throw HeraldError(.badRequest, "a header field value holds a control character")
        }
        let name = String(decoding: line[..<colon], as: UTF8.self).lowercased()
        return (name, String(decoding: value, as: UTF8.self))
    }

    /// Splits the target into a decoded path and the raw query (origin, absolute and
    /// asterisk forms, RFC 9112 §3.2).
    private func resolveTarget(_ head: inout HTTPRequestHead) throws(HeraldError) {
        var target = Substring(head.target)
        if target == "*" {
            guard head.method == .options else { throw HeraldError(.badRequest, "the request-target * is only for OPTIONS") }
            head.path = "*"
            return
        }
        let lower = target.prefix(8).lowercased()
        if lower.hasPrefix("http://") || lower.hasPrefix("https://") {
            let afterScheme = target[target.index(target.startIndex, offsetBy: lower.hasPrefix("http://") ? 7 : 8)...]
            let pathStart = afterScheme.firstIndex { $0 == "/" || $0 == "?" } ?? afterScheme.endIndex
            target = afterScheme[pathStart...]
            if !target.hasPrefix("/") { target = "/" + target }
        }
        guard target.hasPrefix("/") else { throw HeraldError(.badRequest, "the request-target must start with /") }
        let question = target.firstIndex(of: "?")
        let rawPath = target[..<(question ?? target.endIndex)]
        head.query = question.map { String(target[target.index(after: $0)...]) } ?? ""
        let decoded = try PercentEncoding.decode(rawPath.utf8, plusIsSpace: false)
        guard !decoded.contains(0) else { throw HeraldError(.badRequest, "the path holds an encoded NUL (%00)") }
        guard let path = String(validating: decoded, as: UTF8.self) else {
            throw HeraldError(.badRequest, "the decoded path is not valid UTF-8")
        }
        head.path = path
    }

    /// Decides the body framing and keep-alive (RFC 9112 §6.3, §9.3); refuses what a
    /// request-smuggling attempt looks like (Content-Length with Transfer-Encoding,
    /// conflicting lengths).
    private func resolveFraming(_ head: inout HTTPRequestHead) throws(HeraldError) {
        let connection = head.tokens("connection")
        head.keepAlive = head.minorVersion >= 1 ? !connection.contains("close") : connection.contains("keep-alive")
        if head.minorVersion >= 1 {
            let hosts = head.fields.filter { $0.name == "host" }.count
            guard hosts == 1 else {
                throw HeraldError(.badRequest, hosts == 0 ? "an HTTP/1.1 request needs a Host header" : "more than one Host header")
            }
        }
        let codings = head.tokens("transfer-encoding")
        if !codings.isEmpty {
            guard head.minorVersion >= 1 else { throw HeraldError(.badRequest, "Transfer-Encoding is not allowed in HTTP/1.0") }
            guard !head.fields.contains(where: { $0.name == "content-length" }) else {
                throw HeraldError(.badRequest, "a request must not carry both Content-Length and Transfer-Encoding")
            }
            guard codings.allSatisfy({ $0 == "chunked" }) else {
                throw HeraldError(.notImplemented, "only the chunked transfer coding is supported (got \(codings.joined(separator: ", ")))")
            }
            guard codings.count == 1 else { throw HeraldError(.badRequest, "chunked may be applied only once") }
            head.bodyFraming = .chunked
        } else if head.fields.contains(where: { $0.name == "content-length" }) {
            // Every element of every Content-Length field: digits, and all the same
            // (an empty value is no length at all, not zero).
            let elements = head.fields.filter { $0.name == "content-length" }.flatMap {
                $0.value.split(separator: ",", omittingEmptySubsequences: false)
            }
            let first = elements[0].trimmingSpaces()
            guard elements.allSatisfy({ $0.trimmingSpaces() == first }), (1...15).contains(first.utf8.count),
                first.utf8.allSatisfy({ Self.digit($0) != nil }), let length = Int(first)
            else {
                throw HeraldError(.badRequest, "invalid Content-Length")
            }
            head.bodyFraming = length == 0 ? .none : .length(length)
        }
    }

    // MARK: - Bytes

    /// RFC 9110 §5.6.2 `tchar`.
    static func isTokenByte(_ c: UInt8) -> Bool {
        switch c {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            true
        default:
            "!#$%&'*+-.^_`|~".utf8.contains(c)
        }
    }

    static func digit(_ c: UInt8) -> Int? {
        c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9") ? Int(c - UInt8(ascii: "0")) : nil
    }
}

/// The lines of a head, without their CRLF (or LF).
private struct LineReader {
    let bytes: UnsafeBufferPointer<UInt8>
    var position: Int

    init(_ bytes: UnsafeBufferPointer<UInt8>) {
        self.bytes = bytes
        self.position = bytes.startIndex
    }

    mutating func next() -> UnsafeBufferPointer<UInt8>.SubSequence? {
        guard position < bytes.endIndex else { return nil }
        let end = bytes[position...].firstIndex(of: LF) ?? bytes.endIndex
        var lineEnd = end
        if lineEnd > position, bytes[lineEnd - 1] == CR { lineEnd -= 1 }
        let line = bytes[position..<lineEnd]
        position = min(end + 1, bytes.endIndex)
        return line
    }
}

/// Reads one request body after its head: `Content-Length` bytes or a chunked body.
///
/// It consumes exactly the body and nothing of the next pipelined request, and hands the
/// data to a sink that collects it, or drops it when the answer is already known.
public struct HTTPBodyReader: Sendable {
    private enum State: Sendable {
        case length(remaining: Int)
        case chunked(ChunkedDecoder)
        case complete
    }

    private var state: State

    public init(framing: HTTPBodyFraming) {
        switch framing {
        case .none: state = .complete
        case .length(let length): state = length > 0 ? .length(remaining: length) : .complete
        case .chunked: state = .chunked(ChunkedDecoder())
        }
    }

    /// The whole body has been read.
    public var isComplete: Bool {
        if case .complete = state { true } else { false }
    }

    /// Reads body bytes from the start of `input`, handing each piece to `sink`.
    /// - Returns: the number of input bytes consumed.
    /// - Throws: `bad_request` for malformed chunked framing.
    public mutating func read(_ input: UnsafeRawBufferPointer, sink: (UnsafeRawBufferPointer) -> Void) throws(HeraldError) -> Int {
        switch state {
        case .complete:
            return 0
        case .length(let remaining):
            let take = min(remaining, input.count)
            if take > 0 { sink(UnsafeRawBufferPointer(rebasing: input[0..<take])) }
            state = take == remaining ? .complete : .length(remaining: remaining - take)
            return take
        case .chunked(var decoder):
            let consumed = try decoder.decode(input.bindMemory(to: UInt8.self)) { sink(UnsafeRawBufferPointer($0)) }
            state = decoder.isFinished ? .complete : .chunked(decoder)
            return consumed
        }
    }
}
