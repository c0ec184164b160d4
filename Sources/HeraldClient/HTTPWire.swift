import HeraldCore

// HTTP/1.1 response parsing shared by HTTPConnection, SSEStream and WebSocketClient.
// The parsing parts are pure functions over bytes so they can be tested without sockets.

private let CR: UInt8 = 13
private let LF: UInt8 = 10
private let SP: UInt8 = 32
private let HT: UInt8 = 9

/// A parsed status line plus header fields (names lowercased, values trimmed).
public struct HTTPResponseHead: Sendable {
    public var version: String
    public var status: Int
    public var reason: String
    public var headers: [(name: String, value: String)]

    /// The first value of `name` (case-insensitive).
    public func header(_ name: String) -> String? {
        let key = name.lowercased()
        return headers.first(where: { $0.name == key })?.value
    }

    /// Comma-separated list tokens of every `name` field, lowercased and trimmed.
    public func tokens(_ name: String) -> [String] {
        let key = name.lowercased()
        return headers.filter { $0.name == key }.flatMap { field in
            field.value.split(separator: ",").map { trimOWS(String($0)).lowercased() }
        }.filter { !$0.isEmpty }
    }

    /// Whether the server will close the connection after this response.
    var closesConnection: Bool {
        let connection = tokens("connection")
        if connection.contains("close") { return true }
        if version == "HTTP/1.0" { return !connection.contains("keep-alive") }
        return false
    }

    /// Index just past the blank line that ends a response head in `bytes`, searching
    /// from `start`. Accepts CRLF CRLF and (leniently) LF LF.
    public static func findEnd(in bytes: UnsafeBufferPointer<UInt8>, from start: Int = 0) -> Int? {
        var i = max(start, 0)
        let n = bytes.count
        while i < n {
            if bytes[i] == LF {
                if i + 1 < n && bytes[i + 1] == LF { return i + 2 }
                if i + 2 < n && bytes[i + 1] == CR && bytes[i + 2] == LF { return i + 3 }
            }
            i += 1
        }
        return nil
    }

    /// Parses a complete head (status line and fields, with or without the final blank line).
    public static func parse(_ bytes: UnsafeBufferPointer<UInt8>) throws(ClientError) -> HTTPResponseHead {
        // Split on LF at the byte level ("\r\n" is a single Character in Swift).
        var lines: [Substring] = []
        for rawLine in bytes.split(separator: LF, omittingEmptySubsequences: false) {
            var line = rawLine
            if line.last == CR { line = line.dropLast() }
            lines.append(Substring(String(decoding: line, as: UTF8.self)))
        }
        while let last = lines.last, last.isEmpty { lines.removeLast() }
        guard let statusLine = lines.first else {
            throw ClientError(.protocolViolation, "empty response head")
        }
        // HTTP-version SP 3DIGIT [SP reason-phrase]
        let parts = statusLine.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count >= 2, parts[0].hasPrefix("HTTP/"), parts[1].count == 3,
            parts[1].allSatisfy({ $0.isASCII && $0.isNumber }), let status = Int(parts[1])
        else {
            throw ClientError(.protocolViolation, "malformed status line: \(quoted(statusLine))")
        }
        var head = HTTPResponseHead(
            version: String(parts[0]), status: status,
            reason: parts.count > 2 ? String(parts[2]) : "", headers: [])
        for line in lines.dropFirst() {
            if line.isEmpty {
                throw ClientError(.protocolViolation, "empty line inside response head")
            }
            if line.first == " " || line.first == "\t" {
                // obs-fold: a continuation of the previous field value (RFC 9112 §5.2).
                guard !head.headers.isEmpty else {
                    throw ClientError(.protocolViolation, "header continuation before any field: \(quoted(line))")
                }
                head.headers[head.headers.count - 1].value += " " + trimOWS(String(line))
                continue
            }
            guard let colon = line.firstIndex(of: ":") else {
                throw ClientError(.protocolViolation, "header line without a colon: \(quoted(line))")
            }
            let name = line[..<colon]
            guard !name.isEmpty, !name.contains(" "), !name.contains("\t") else {
                throw ClientError(.protocolViolation, "invalid header name: \(quoted(line))")
            }
            head.headers.append(
                (name: name.lowercased(), value: trimOWS(String(line[line.index(after: colon)...]))))
        }
        return head
    }
}

/// How the body of a response is delimited.
public enum BodyFraming: Equatable, Sendable {
    case none
    case contentLength(Int)
    case chunked
    case untilClose

    /// RFC 9112 §6.3, for a response to `requestMethod`.
    public static func of(_ head: HTTPResponseHead, requestMethod: String) throws(ClientError) -> BodyFraming {
        if requestMethod.uppercased() == "HEAD" || (100..<200).contains(head.status) || head.status == 204
            || head.status == 304
        {
            return .none
        }
        let codings = head.tokens("transfer-encoding")
        if !codings.isEmpty {
            return codings.last == "chunked" ? .chunked : .untilClose
        }
        let lengths = head.tokens("content-length")
        if let first = lengths.first {
            guard lengths.allSatisfy({ $0 == first }), first.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }),
                first.utf8.count <= 18, let length = Int(first)
            else {
                throw ClientError(
                    .protocolViolation, "invalid Content-Length: \(lengths.joined(separator: ", "))")
            }
            return .contentLength(length)
        }
        return .untilClose
    }
}

// MARK: - Reading from a socket

extension ClientSocket {
    /// Reads one response head. Leading empty lines are skipped (RFC 9112 §2.2).
    func readResponseHead(deadline: Deadline, maxHeadSize: Int = 64 * 1024) throws(ClientError) -> HTTPResponseHead {
        var searchFrom = 0
        while true {
            // Skip stray CR/LF before the status line.
            let skip = withBuffered { bytes in
                var k = 0
                while k < bytes.count && (bytes[k] == CR || bytes[k] == LF) { k += 1 }
                return k
            }
            if skip > 0 {
                consume(skip)
                searchFrom = 0
            }
            if let end = withBuffered({ HTTPResponseHead.findEnd(in: $0, from: searchFrom) }) {
                let head = try withBuffered { (bytes) throws(ClientError) -> HTTPResponseHead in
                    try HTTPResponseHead.parse(UnsafeBufferPointer(rebasing: bytes[0..<end]))
                }
                consume(end)
                return head
            }
            searchFrom = max(0, buffered - 3)
            if buffered > maxHeadSize {
                throw ClientError(.protocolViolation, "response head larger than \(maxHeadSize) bytes")
            }
            let before = buffered
            guard try fill(deadline: deadline, what: "waiting for the response head") else {
                if before == 0 {
                    throw ClientError(.closed, "connection closed by peer before a response was received")
                }
                throw ClientError(.closed, "connection closed by peer in the middle of the response head")
            }
        }
    }

    /// Reads a whole body delimited by `framing`.
    func readBody(_ framing: BodyFraming, deadline: Deadline, maxSize: Int) throws(ClientError) -> [UInt8] {
        var body: [UInt8] = []
        try readBody(framing, into: &body, deadline: deadline, maxSize: maxSize)
        return body
    }

    /// Reads the body of an error response: whatever arrived before EOF, an error or the
    /// deadline (the status matters more than a complete body).
    func readBodyLeniently(_ framing: BodyFraming, deadline: Deadline, maxSize: Int = 16 * 1024 * 1024) -> [UInt8] {
        var body: [UInt8] = []
        do {
            try readBody(framing, into: &body, deadline: deadline, maxSize: maxSize)
        } catch {
            // keep the partial body
        }
        return body
    }

    /// Appends the body delimited by `framing` to `body` (partial on error).
    func readBody(_ framing: BodyFraming, into body: inout [UInt8], deadline: Deadline, maxSize: Int) throws(ClientError) {
        switch framing {
        case .none:
            break
        case .contentLength(let length):
            guard length <= maxSize else {
                throw ClientError(.protocolViolation, "response body of \(length) bytes exceeds the limit of \(maxSize)")
            }
            body.reserveCapacity(length)
            while body.count < length {
                if buffered == 0 {
                    guard try fill(deadline: deadline, what: "reading the response body") else {
                        throw ClientError(
                            .closed, "connection closed by peer after \(body.count) of \(length) body bytes")
                    }
                }
                take(upTo: length - body.count, appendingTo: &body)
            }
        case .chunked:
            var decoder = ChunkedDecoder()
            while true {
                let consumed = try withBuffered { (bytes) throws(ClientError) -> Int in
                    try ClientError.rethrowing { () throws(HeraldError) in try decoder.decode(bytes, into: &body) }
                }
                consume(consumed)
                if decoder.isFinished { break }
                if body.count > maxSize {
                    throw ClientError(.protocolViolation, "chunked response body exceeds the limit of \(maxSize) bytes")
                }
                guard try fill(deadline: deadline, what: "reading the chunked response body") else {
                    throw ClientError(
                        .closed, "connection closed by peer in the middle of a chunked body (\(body.count) bytes decoded)")
                }
            }
        case .untilClose:
            while true {
                take(upTo: .max, appendingTo: &body)
                if body.count > maxSize {
                    throw ClientError(.protocolViolation, "response body exceeds the limit of \(maxSize) bytes")
                }
                guard try fill(deadline: deadline, what: "reading the response body (until close)") else { break }
            }
        }
        shrinkIfLarge()
    }
}

// MARK: - Small helpers

func trimOWS(_ text: String) -> String {
    var scalars = Substring(text)
    while let first = scalars.first, first == " " || first == "\t" { scalars.removeFirst() }
    while let last = scalars.last, last == " " || last == "\t" { scalars.removeLast() }
    return String(scalars)
}

func quoted(_ text: some StringProtocol) -> String {
    let limited = text.count > 200 ? String(text.prefix(200)) + "…" : String(text)
    return "\"" + limited.replacingCRLF() + "\""
}

func quoted(_ bytes: [UInt8]) -> String {
    quoted(String(decoding: bytes, as: UTF8.self))
}

extension String {
    fileprivate func replacingCRLF() -> String {
        var out = ""
        for ch in unicodeScalars {
            switch ch {
            case "\r": out += "\\r"
            case "\n": out += "\\n"
            default: out.unicodeScalars.append(ch)
            }
        }
        return out
    }
}

/// Rejects header names/values, methods and targets that would break the request framing.
func validateRequestPart(_ text: String, what: String) throws(ClientError) {
    if text.utf8.contains(where: { $0 == CR || $0 == LF || $0 == 0 }) {
        throw ClientError(.invalidArgument, "\(what) contains CR, LF or NUL: \(quoted(text))")
    }
}

/// Serializes a request head (and appends `body`).
func buildRequest(
    method: String, target: String, hostHeader: String, headers: [(String, String)],
    body: [UInt8]?, defaultHeaders: [(String, String)] = []
) throws(ClientError) -> [UInt8] {
    guard !method.isEmpty, !method.contains(" ") else {
        throw ClientError(.invalidArgument, "invalid method \(quoted(method))")
    }
    guard !target.isEmpty, !target.contains(" ") else {
        throw ClientError(.invalidArgument, "invalid request target \(quoted(target)) (spaces must be percent-encoded)")
    }
    try validateRequestPart(method, what: "method")
    try validateRequestPart(target, what: "request target")
    var present = Set<String>()
    for (name, value) in headers {
        guard !name.isEmpty, !name.contains(" "), !name.contains(":") else {
            throw ClientError(.invalidArgument, "invalid header name \(quoted(name))")
        }
        try validateRequestPart(name, what: "header name")
        try validateRequestPart(value, what: "header value")
        present.insert(name.lowercased())
    }
    var head = "\(method) \(target) HTTP/1.1\r\n"
    if !present.contains("host") { head += "Host: \(hostHeader)\r\n" }
    for (name, value) in defaultHeaders where !present.contains(name.lowercased()) {
        head += "\(name): \(value)\r\n"
    }
    for (name, value) in headers { head += "\(name): \(value)\r\n" }
    if let body, !present.contains("content-length"), !present.contains("transfer-encoding") {
        head += "Content-Length: \(body.count)\r\n"
    }
    head += "\r\n"
    var bytes = Array(head.utf8)
    if let body { bytes.append(contentsOf: body) }
    return bytes
}

/// `host:port` for a Host header, bracketing IPv6 literals.
func hostHeaderValue(host: String, port: Int) -> String {
    host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
}

let clientUserAgent = "herald-client/1"
