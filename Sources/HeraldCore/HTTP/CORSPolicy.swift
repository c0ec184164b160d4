/// Which web pages may use the API from a browser (`cors.allowedOrigins`).
///
/// A browser names the page a request comes from in `Origin`; other clients send none
/// and are not concerned. Without a policy any page on the web could open streams from
/// its visitors' browsers and read the API's answers: the policy says which pages may. The gateway's own pages (an `Origin` whose
/// host and port are the request's `Host`) always may, so the demo and dashboard work on
/// any address, also behind a TLS-terminating proxy (the scheme is not compared).
public struct CORSPolicy: Sendable, Equatable {
    /// `*`: every origin (the demo's config.json). No credentials are ever allowed with
    /// it, nor at all: Herald's credentials are bearer tokens, not cookies.
    public var allowsAnyOrigin: Bool
    /// Origins other than the gateway's own, normalized (`scheme://host[:port]`, lower
    /// case, default port left out).
    public var origins: Set<String>

    public init(allowedOrigins: [String] = []) {
        allowsAnyOrigin = allowedOrigins.contains("*")
        origins = Set(allowedOrigins.compactMap(Self.normalized))
    }

    /// What a request with `origin` (its `Origin` field) and `host` (its `Host`) may do.
    public enum Decision: Equatable, Sendable {
        /// No `Origin`: not a browser's cross-origin request; nothing to say.
        case noOrigin
        /// Allowed: answers carry `Access-Control-Allow-Origin: <value>` (`*` or the origin).
        case allowed(String)
        /// A page this gateway does not serve: WebSocket, SSE and API requests get 403.
        case refused(String)
    }

    public func decide(origin: String?, host: String?) -> Decision {
        guard let origin else { return .noOrigin }
        if allowsAnyOrigin { return .allowed("*") }
        guard let normalized = Self.normalized(origin) else { return .refused(origin) }
        if origins.contains(normalized) || isSameOrigin(normalized, host: host) { return .allowed(origin) }
        return .refused(origin)
    }

    /// Whether `origin` (normalized) names the authority the request was sent to.
    private func isSameOrigin(_ origin: String, host: String?) -> Bool {
        guard let host, let separator = origin.firstRange(of: "://") else { return false }
        let scheme = origin[..<separator.lowerBound]
        let authority = origin[separator.upperBound...]
        var requested = host.lowercased()
        let defaultPort = scheme == "https" ? ":443" : ":80"
        if requested.hasSuffix(defaultPort) { requested.removeLast(defaultPort.count) }
        return authority == requested
    }

    /// `scheme://host[:port]` in lower case without its default port, or nil when `text`
    /// is not an http(s) origin (a path, a query, user information, `null`).
    public static func normalized(_ text: String) -> String? {
        let lowered = text.lowercased()
        let scheme: String
        if lowered.hasPrefix("https://") {
            scheme = "https"
        } else if lowered.hasPrefix("http://") {
            scheme = "http"
        } else {
            return nil
        }
        var authority = Substring(lowered.dropFirst(scheme.count + 3))
        guard !authority.isEmpty,
            authority.utf8.allSatisfy({ byte in
                switch byte {
                case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "."), UInt8(ascii: "-"),
                    UInt8(ascii: ":"), UInt8(ascii: "["), UInt8(ascii: "]"):
                    true
                default: false
                }
            })
        else { return nil }
        let defaultPort = scheme == "https" ? ":443" : ":80"
        if authority.hasSuffix(defaultPort) { authority = authority.dropLast(defaultPort.count) }
        return "\(scheme)://\(authority)"
    }
}
