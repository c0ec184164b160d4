/// The server side of the WebSocket opening handshake (RFC 6455 §4.2).
public enum WebSocketHandshake {
    /// The GUID RFC 6455 appends to the client's key.
    static let guid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

    /// `Sec-WebSocket-Accept` for a client's `Sec-WebSocket-Key`.
    public static func acceptValue(forKey key: String) -> String {
        Base64.encode(SHA1.hash(Array((key + guid).utf8)))
    }

    /// Whether the request asks to switch to WebSocket (`Upgrade: websocket`).
    public static func isUpgrade(_ head: HTTPRequestHead) -> Bool {
        head.tokens("upgrade").contains("websocket")
    }

    /// What a valid upgrade request agreed on.
    public struct Agreement: Sendable, Equatable {
        /// The `Sec-WebSocket-Accept` value.
        public var accept: String
        /// The subprotocol to confirm, or nil when the client asked for none.
        public var subprotocol: String?

        public init(accept: String, subprotocol: String?) {
            self.accept = accept
            self.subprotocol = subprotocol
        }
    }

    /// Checks an upgrade request (RFC 6455 §4.2.1).
    /// - Parameter subprotocol: the one subprotocol the server speaks; a client that
    ///   offers others but not this one is refused, a client that offers none is accepted.
    /// - Throws: `bad_request` for a malformed upgrade, `upgrade_required` (426) for a
    ///   version other than 13.
    public static func validate(_ head: HTTPRequestHead, subprotocol: String) throws(HeraldError) -> Agreement {
        guard head.method == .get, head.minorVersion >= 1 else {
            throw HeraldError(.badRequest, "a WebSocket upgrade is a GET over HTTP/1.1")
        }
        guard head.tokens("connection").contains("upgrade") else {
            throw HeraldError(.badRequest, "a WebSocket upgrade needs Connection: Upgrade")
        }
        guard head.field("sec-websocket-version") == "13" else {
            throw HeraldError(.upgradeRequired, "Sec-WebSocket-Version must be 13")
        }
        guard let key = head.field("sec-websocket-key"), isValidKey(key) else {
            throw HeraldError(.badRequest, "Sec-WebSocket-Key must be 16 bytes in base64")
        }
        let offered = head.tokens("sec-websocket-protocol")
        if !offered.isEmpty && !offered.contains(subprotocol) {
            throw HeraldError(.badRequest, "unsupported subprotocol \(offered.joined(separator: ", ")); Herald speaks \(subprotocol)")
        }
        return Agreement(accept: acceptValue(forKey: key), subprotocol: offered.isEmpty ? nil : subprotocol)
    }

    /// The `101 Switching Protocols` response.
    public static func response(_ agreement: Agreement) -> [UInt8] {
        var out = Array("HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\nsec-websocket-accept: ".utf8)
        out.append(contentsOf: agreement.accept.utf8)
        if let subprotocol = agreement.subprotocol {
            out.append(contentsOf: "\r\nsec-websocket-protocol: ".utf8)
            out.append(contentsOf: subprotocol.utf8)
        }
        out.append(contentsOf: "\r\n\r\n".utf8)
        return out
    }

    /// 22 base64 characters and `==`: the encoding of 16 bytes.
    static func isValidKey(_ key: String) -> Bool {
        let bytes = Array(key.utf8)
        guard bytes.count == 24, bytes[22] == UInt8(ascii: "="), bytes[23] == UInt8(ascii: "=") else { return false }
        return bytes[0..<22].allSatisfy { c in
            (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) || (c >= 0x30 && c <= 0x39) || c == 0x2B || c == 0x2F
        }
    }
}
