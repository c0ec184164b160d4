import CLibWebSockets
import HeraldCore
import Logging
#if canImport(Glibc)
import Glibc
#endif

/// What a request or connection proved with its token (DESIGN §8), and therefore what
/// it may subscribe to and publish.
enum Credentials {
    /// No token, where `auth.anonymous` allows that: may subscribe, may not publish.
    case anonymous
    /// A publisher key from config: may publish anything a client may publish.
    case publisherKey(name: String)
    /// A subscriber JWT: its scope narrows subscriptions, its publish pattern what it sends.
    case token(SubscriberToken)

    /// ANDed with every subscription the holder makes.
    var scope: Pattern? {
        if case .token(let token) = self { return token.scope }
        return nil
    }

    /// How `/v1/clients` and `authenticated` frames name the holder.
    var publisherName: String? {
        if case .publisherKey(let name) = self { return name }
        return nil
    }

    var subject: String? {
        if case .token(let token) = self { return token.subject }
        return nil
    }

    /// When a JWT's `exp` passes (seconds since the epoch); nil for keys and no token.
    var expiresAt: Int64? {
        if case .token(let token) = self { return token.expiresAt }
        return nil
    }

    /// Why the holder may not publish `event`, or nil when it may. Types beginning with
    /// `herald.` (any case) are the gateway's own and never accepted from clients;
    /// `checkReserved` is false for presence changes, which are checked as what they emit.
    /// A JWT's `herald.publish` is a permission (`Pattern.permits`): every value at each
    /// path it constrains must satisfy it, array elements included.
    func publishRefusal(_ event: EventView, reservedType: Bool, checkReserved: Bool = true) -> HeraldError? {
        if checkReserved && reservedType {
            return HeraldError(.forbidden, "event types beginning with \"herald.\" are reserved for events the gateway emits")
        }
        switch self {
        case .anonymous:
            return HeraldError(.forbidden, "publishing and joining presence groups need a publisher key or a token with a herald.publish claim")
        case .publisherKey:
            return nil
        case .token(let token):
            guard let allowed = token.publish else {
                return HeraldError(.forbidden, "this token has no herald.publish claim, so it may not publish")
            }
            return allowed.permits(event)
                ? nil : HeraldError(.forbidden, "the token's herald.publish pattern does not allow this event (every value at each path it names must satisfy it)")
        }
    }
}

/// HMAC-SHA256 through OpenSSL, for subscriber JWTs.
func hmacSHA256(key: [UInt8], message: [UInt8]) -> [UInt8] {
    var out = [UInt8](repeating: 0, count: 32)
    key.withUnsafeBufferPointer { k in
        message.withUnsafeBufferPointer { m in
            out.withUnsafeMutableBufferPointer { herald_hmac_sha256(k.baseAddress, k.count, m.baseAddress, m.count, $0.baseAddress) }
        }
    }
    return out
}

/// Seconds since the Unix epoch (JWT `exp`/`nbf`/`iat`).
func unixSeconds() -> Int64 {
    Int64(time(nil))
}

extension Gateway {
    /// The credentials a token (or its absence) gives.
    /// - Throws: `unauthorized` when the token is missing where anonymous access is off, or
    ///   is neither a valid publisher key nor a valid subscriber JWT.
    func authenticate(_ token: String?) throws(HeraldError) -> Credentials {
        guard let token else {
            guard config.auth.anonymous else {
                throw HeraldError(.unauthorized, "a token is needed (Authorization: Bearer or ?token=)")
            }
            return .anonymous
        }
        if let name = publishers.publisher(forKey: token) { return .publisherKey(name: name) }
        guard SubscriberToken.looksLikeJWT(token) else { throw HeraldError(.unauthorized, "the token is not valid") }
        guard let jwtSecret else {
            throw HeraldError(.unauthorized, "this gateway accepts no JWTs (auth.jwtSecret is not set)")
        }
        return .token(try SubscriberToken(
            verifying: token, secret: jwtSecret, now: unixSeconds(), audience: config.auth.jwtAudience,
            limits: config.limits.pattern, hmac: hmacSHA256))
    }

    /// Why `credentials` may not publish one of `events` (naming its index in a batch), or
    /// nil when every event is allowed. A batch is accepted whole or not at all.
    func publishRefusal(_ events: [IncomingEvent], credentials: Credentials, tape: JSONTape, body: UnsafeRawBufferPointer) -> HeraldError? {
        for (index, event) in events.enumerated() {
            if var refusal = credentials.publishRefusal(EventView(tape: tape, node: event.node, bytes: body), reservedType: event.usesReservedType) {
                if events.count > 1 { refusal.index = index }
                return refusal
            }
        }
        return nil
    }

    /// The token a request carries: `Authorization: Bearer`, else `?token=`.
    func requestToken(_ request: Request) -> String? {
        PublisherKeys.bearerToken(request.head.field("authorization")) ?? request.query("token")
    }

    /// Ends the sessions whose JWT expired (with `SubscriberToken.leewaySeconds`): a
    /// WebSocket gets an error frame `token_expired` and close 4001 unless it renewed its
    /// token with the `auth` op in time; an SSE stream ends (the client reconnects with a
    /// fresh token).
    func expireTokens() {
        let now = unixSeconds()
        for subscriber in subscribers.values {
            guard let expiresAt = subscriber.credentials.expiresAt, now > expiresAt + SubscriberToken.leewaySeconds else { continue }
            subscriber.credentials = .anonymous
            switch subscriber {
            case let client as WebSocketClient:
                send(client, WireFormat.webSocketError(HeraldError(.tokenExpired, "the token expired; renew it with the auth op before it does"), id: nil))
                close(client, code: .tokenExpired, reason: "token expired", immediately: false)
            default:
                disconnect(subscriber, code: .tokenExpired, reason: "token expired")
            }
            logger.debug("token expired", metadata: ["client": "\(subscriber.id)"])
        }
    }
}
