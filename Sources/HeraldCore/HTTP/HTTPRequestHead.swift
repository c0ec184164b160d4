/// An HTTP request method. The methods Herald serves are cases; anything else is kept by
/// name so that it can be answered with 405 and an `Allow` header.
public enum HTTPMethod: Hashable, Sendable, CustomStringConvertible {
    case get, head, post, put, delete, options, patch, trace, connect
    case other(String)

    public init(_ name: String) {
        switch name {
        case "GET": self = .get
        case "HEAD": self = .head
        case "POST": self = .post
        case "PUT": self = .put
        case "DELETE": self = .delete
        case "OPTIONS": self = .options
        case "PATCH": self = .patch
        case "TRACE": self = .trace
        case "CONNECT": self = .connect
        default: self = .other(name)
        }
    }

    public var description: String {
        switch self {
        case .get: "GET"
        case .head: "HEAD"
        case .post: "POST"
        case .put: "PUT"
        case .delete: "DELETE"
        case .options: "OPTIONS"
        case .patch: "PATCH"
        case .trace: "TRACE"
        case .connect: "CONNECT"
        case .other(let name): name
        }
    }
}

/// How the body of a request is delimited (RFC 9112 §6.3).
public enum HTTPBodyFraming: Equatable, Sendable {
    /// No body.
    case none
    /// `Content-Length` bytes.
    case length(Int)
    /// `Transfer-Encoding: chunked`.
    case chunked

    /// The number of bytes the request announced, when it announced one.
    public var declaredLength: Int? {
        switch self {
        case .none: 0
        case .length(let length): length
        case .chunked: nil
        }
    }
}

/// A request line and its header fields, validated by `HTTPRequestDecoder`.
///
/// Names are lowercased and values trimmed, so lookups need no case folding. The path is
/// percent-decoded (never holding NUL); the query is kept raw and decoded per argument.
public struct HTTPRequestHead: Sendable {
    public var method: HTTPMethod
    /// The request-target as sent.
    public var target: String
    /// The decoded path of the target (`*` for `OPTIONS *`).
    public var path: String
    /// The raw query, without the `?` (empty when there is none).
    public var query: String
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    public var minorVersion: Int
    public var fields: [(name: String, value: String)]
    /// Whether the connection stays open after the response (version and `Connection`).
    public var keepAlive: Bool
    public var bodyFraming: HTTPBodyFraming

    public init(
        method: HTTPMethod, target: String, path: String, query: String, minorVersion: Int,
        fields: [(name: String, value: String)], keepAlive: Bool, bodyFraming: HTTPBodyFraming
    ) {
        self.method = method
        self.target = target
        self.path = path
        self.query = query
        self.minorVersion = minorVersion
        self.fields = fields
        self.keepAlive = keepAlive
        self.bodyFraming = bodyFraming
    }

    /// The first value of the field `name` (lowercase), or nil.
    public func field(_ name: String) -> String? {
        for field in fields where field.name == name { return field.value }
        return nil
    }

    /// Every value of the field `name`, split at commas, trimmed and lowercased.
    public func tokens(_ name: String) -> [String] {
        var out: [String] = []
        for field in fields where field.name == name {
            for part in field.value.split(separator: ",") {
                let token = part.trimmingSpaces().lowercased()
                if !token.isEmpty { out.append(token) }
            }
        }
        return out
    }

    /// The decoded value of query argument `name` (the first occurrence), or nil.
    /// - Throws: `bad_request` when the argument's percent-encoding is malformed.
    public func queryArgument(_ name: String) throws(HeraldError) -> String? {
        for pair in query.utf8.split(separator: UInt8(ascii: "&"), omittingEmptySubsequences: true) {
            let equals = pair.firstIndex(of: UInt8(ascii: "="))
            let key = pair[pair.startIndex..<(equals ?? pair.endIndex)]
            guard try PercentEncoding.decode(key, plusIsSpace: true) == Array(name.utf8) else { continue }
            guard let equals else { return "" }
            let value = try PercentEncoding.decode(pair[pair.index(after: equals)...], plusIsSpace: true)
            return String(decoding: value, as: UTF8.self)
        }
        return nil
    }

    /// Whether the client waits for `100 Continue` before it sends the body.
    public var expectsContinue: Bool { minorVersion >= 1 && field("expect")?.lowercased() == "100-continue" }
}

/// `%XX` decoding for request paths and query arguments (RFC 3986 §2.1).
public enum PercentEncoding {
    /// Decodes `bytes`; with `plusIsSpace` (form-encoded queries) `+` becomes a space.
    /// - Throws: `bad_request` for `%` not followed by two hex digits.
    public static func decode(_ bytes: some Collection<UInt8>, plusIsSpace: Bool) throws(HeraldError) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var iterator = bytes.makeIterator()
        while let byte = iterator.next() {
            switch byte {
            case UInt8(ascii: "%"):
                guard let high = iterator.next().flatMap(hexValue), let low = iterator.next().flatMap(hexValue) else {
                    throw HeraldError(.badRequest, "malformed percent-encoding (% must be followed by two hex digits)")
                }
                out.append(high << 4 | low)
            case UInt8(ascii: "+") where plusIsSpace:
                out.append(UInt8(ascii: " "))
            default:
                out.append(byte)
            }
        }
        return out
    }

    static func hexValue(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): c - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}
