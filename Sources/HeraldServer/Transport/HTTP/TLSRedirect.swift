import HeraldCore

extension Gateway {
    /// The answer to every request on the plain-HTTP port `tls.redirectPort`: 308 to the
    /// same target over HTTPS on `listen.port`, at the host the client asked for.
    /// (A WebSocket client does not follow it; it says where to go.)
    func tlsRedirect(_ request: Request) -> RequestPlan {
        guard let host = request.head.field("host").flatMap(Self.hostName(ofAuthority:)) else {
            return .respond(errorResponse(HeraldError(.badRequest, "this port redirects to HTTPS, which needs a Host header")))
        }
        let port = config.listen.port == 443 ? "" : ":\(config.listen.port)"
        let location = "https://\(host)\(port)\(request.head.target)"
        var body: [UInt8] = []
        JSONWriter.write(.object([.init("location", .string(location))]), into: &body)
        return .respond(json(308, body, fields: [("location", location)]))
    }

    /// The host of a Host header (`name`, `name:port`, `[v6]`, `[v6]:port`), nil when it
    /// holds anything a host name or address cannot (it is copied into a header).
    static func hostName(ofAuthority authority: String) -> String? {
        var host = Substring(authority)
        if host.hasPrefix("[") {
            guard let close = host.firstIndex(of: "]") else { return nil }
            host = host[...close]
        } else if let colon = host.lastIndex(of: ":") {
            host = host[..<colon]
        }
        let allowed = host.utf8.allSatisfy { byte in
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                UInt8(ascii: "."), UInt8(ascii: "-"), UInt8(ascii: ":"), UInt8(ascii: "["), UInt8(ascii: "]"):
                true
            default: false
            }
        }
        return allowed && !host.isEmpty ? String(host) : nil
    }
}
