import HeraldCore

/// `GET /v1/demo/token?nick=&room=`: short-lived subscriber JWTs for the chat demo.
///
/// Only served when `auth.demo` is true: anyone may ask, so the token allows exactly what
/// the demo needs and nothing a backend would rely on — publishing `chat.message` events
/// whose `from` is the nickname (in `room`, when given) and joining the presence group
/// `chat:<room>` under that nickname.
struct DemoTokenEndpoint: Endpoint {
    func plan(_ request: Request, connection: Connection, gateway: Gateway) -> RequestPlan {
        .respond(gateway.issueDemoToken(request))
    }
}

extension Gateway {
    /// How long a demo token is valid.
    static let demoTokenSeconds: Int64 = 24 * 3600

    func issueDemoToken(_ request: Request) -> HTTPServerResponse {
        guard config.auth.demo, let jwtSecret else {
            return errorResponse(HeraldError(.notFound, "demo tokens are off (auth.demo is false)"))
        }
        guard let nick = request.query("nick"), Self.isDemoName(nick, maxLength: 32) else {
            return errorResponse(HeraldError(.invalidMessage, "nick must be 1 to 32 letters, digits, '_', '-' or '.'", path: "nick"))
        }
        let room = request.query("room")
        if let room, !Self.isDemoName(room, maxLength: 64) {
            return errorResponse(HeraldError(.invalidMessage, "room must be 1 to 64 letters, digits, '_', '-' or '.'", path: "room"))
        }
        let publish = Self.demoPublishPattern(nick: nick, room: room)
        let now = unixSeconds()
        let claims = JSONValue.object([
            .init("sub", .string(nick)),
            .init("iat", .number(Double(now))),
            .init("exp", .number(Double(now + Self.demoTokenSeconds))),
            .init("herald.publish", publish),
        ])
        let token = SubscriberToken.sign(claims: claims, secret: jwtSecret, hmac: hmacSHA256)
        var out: [UInt8] = []
        JSONWriter.write(
            .object([
                .init("token", .string(token)),
                .init("nick", .string(nick)),
                .init("room", room.map(JSONValue.string) ?? .null),
                .init("expiresAt", .number(Double(now + Self.demoTokenSeconds))),
                .init("publish", publish),
            ]), into: &out)
        return json(200, out)
    }

    /// Chat messages from `nick` (in `room`), and presence joins of `chat:<room>` as `nick`.
    static func demoPublishPattern(nick: String, room: String?) -> JSONValue {
        var chat: [JSONValue.Member] = [
            .init("type", .array([.string("chat.message")])),
            .init("from", .array([.string(nick)])),
        ]
        let group: JSONValue
        if let room {
            chat.append(.init("room", .array([.string(room)])))
            group = .string("chat:" + room)
        } else {
            group = .object([.init("prefix", .string("chat:"))])
        }
        let presence: JSONValue = .object([
            .init("type", .array([.string("herald.presence")])),
            .init("group", .array([group])),
            .init("info", .object([.init("nick", .array([.string(nick)]))])),
        ])
        return .object([.init("$or", .array([.object(chat), presence]))])
    }

    /// Names in demo tokens: 1 to `maxLength` ASCII letters, digits, `_`, `-`, `.`.
    static func isDemoName(_ text: String, maxLength: Int) -> Bool {
        !text.isEmpty && text.utf8.count <= maxLength
            && text.utf8.allSatisfy { c in
                (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A)
                    || c == UInt8(ascii: "_") || c == UInt8(ascii: "-") || c == UInt8(ascii: ".")
            }
    }
}
