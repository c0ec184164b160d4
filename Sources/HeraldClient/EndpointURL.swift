/// An endpoint: "http[s]://host[:port]/path?query" or "ws[s]://host[:port]/path?query".
///
/// IPv6 literals are written in brackets ("http://[::1]:8080/") and stored without them.
/// The fragment ("#...") is dropped; the path always starts with "/" and keeps the query.
/// https and wss go over TLS (`TLSClientContext`); the port defaults to 443 for them.
public struct EndpointURL: Sendable, Equatable, Hashable, CustomStringConvertible {
    public enum Scheme: String, Sendable, Equatable, Hashable {
        case http
        case https
        case ws
        case wss

        /// Over TLS.
        public var isSecure: Bool { self == .https || self == .wss }
        /// The scheme of a WebSocket on the same server (http → ws, https → wss).
        public var asWebSocket: Scheme { isSecure ? .wss : .ws }
        /// The scheme of plain requests on the same server (ws → http, wss → https).
        public var asHTTP: Scheme { isSecure ? .https : .http }
    }

    public var scheme: Scheme
    public var host: String
    public var port: Int
    /// Path and query, e.g. "/v1/sse?filter=%7B%7D" ("/" when the URL has none).
    public var path: String

    public init(scheme: Scheme, host: String, port: Int, path: String = "/") {
        self.scheme = scheme
        self.host = host
        self.port = port
        self.path = path
    }

    public init(parsing string: String) throws(ClientError) {
        let text = trimOWS(string)
        guard let separator = text.firstRange(of: "://") else {
            throw ClientError(
                .invalidArgument, "invalid URL \(quoted(text)): expected http[s]://host:port/path or ws[s]://host:port/path")
        }
        let schemeText = text[..<separator.lowerBound].lowercased()
        guard let parsedScheme = Scheme(rawValue: schemeText) else {
            throw ClientError(
                .invalidArgument, "unsupported URL scheme \(quoted(schemeText)) in \(quoted(text)); expected http, https, ws or wss")
        }
        scheme = parsedScheme

        var rest = text[separator.upperBound...]
        if let hash = rest.firstIndex(of: "#") { rest = rest[..<hash] }
        let authorityEnd = rest.firstIndex(where: { $0 == "/" || $0 == "?" }) ?? rest.endIndex
        let authority = rest[..<authorityEnd]
        let pathPart = rest[authorityEnd...]

        guard !authority.contains("@") else {
            throw ClientError(.invalidArgument, "user information in URLs is not supported: \(quoted(text))")
        }
        var hostPart: Substring
        var portPart: Substring?
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else {
                throw ClientError(.invalidArgument, "unterminated IPv6 literal in \(quoted(text))")
            }
            hostPart = authority[authority.index(after: authority.startIndex)..<close]
            let after = authority[authority.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else {
                    throw ClientError(.invalidArgument, "unexpected characters after IPv6 literal in \(quoted(text))")
                }
                portPart = after.dropFirst()
            }
        } else if let colon = authority.lastIndex(of: ":") {
            hostPart = authority[..<colon]
            portPart = authority[authority.index(after: colon)...]
        } else {
            hostPart = authority
        }
        guard !hostPart.isEmpty else {
            throw ClientError(.invalidArgument, "missing host in URL \(quoted(text))")
        }
        guard !hostPart.contains(where: { $0 == " " || $0 == "\t" || $0.asciiValue.map { $0 < 32 } ?? false }) else {
            throw ClientError(.invalidArgument, "invalid host in URL \(quoted(text))")
        }
        host = String(hostPart)

        if let portPart {
            guard !portPart.isEmpty, portPart.count <= 5, portPart.allSatisfy({ $0.isASCII && $0.isNumber }),
                let value = Int(portPart), (1...65535).contains(value)
            else {
                throw ClientError(.invalidArgument, "invalid port \(quoted(portPart)) in URL \(quoted(text))")
            }
            port = value
        } else {
            port = scheme.isSecure ? 443 : 80
        }

        var resolvedPath = String(pathPart)
        if resolvedPath.isEmpty {
            resolvedPath = "/"
        } else if resolvedPath.hasPrefix("?") {
            resolvedPath = "/" + resolvedPath
        }
        guard !resolvedPath.contains(where: { $0 == " " || $0.asciiValue.map { $0 < 32 || $0 == 127 } ?? false })
        else {
            throw ClientError(.invalidArgument, "URL path must be percent-encoded (no spaces or control characters): \(quoted(text))")
        }
        path = resolvedPath
    }

    /// "host:port" as sent in a Host header (IPv6 in brackets).
    public var hostAndPort: String { hostHeaderValue(host: host, port: port) }

    public var description: String { "\(scheme.rawValue)://\(hostAndPort)\(path)" }
}
