/// What a request or connection proved with its token (DESIGN §8), and therefore what
/// it may subscribe to and publish.
public enum Credentials: Sendable {
    /// No token, where `auth.anonymous` allows that: may subscribe, may not publish.
    case anonymous
    /// A publisher key from config: may publish what its `publish` pattern permits, or
    /// anything a client may publish when it has none. (Boxed, as a token is.)
    indirect case publisherKey(name: String, publish: Pattern? = nil)
    /// A subscriber JWT: its scope narrows subscriptions, its publish pattern what it sends.
    /// Boxed (`indirect`): a token is large (its patterns), and every session holds its
    /// credentials, most of them anonymous; one allocation per authentication keeps them
    /// a word.
    indirect case token(SubscriberToken)

    /// ANDed with every subscription the holder makes.
    public var scope: Pattern? {
        if case .token(let token) = self { return token.scope }
        return nil
    }

    /// How `/v1/clients` and `authenticated` frames name the holder.
    public var publisherName: String? {
        if case .publisherKey(let name, _) = self { return name }
        return nil
    }

    public var subject: String? {
        if case .token(let token) = self { return token.subject }
        return nil
    }

    /// When a JWT's `exp` passes (seconds since the epoch); nil for keys and no token.
    public var expiresAt: Int64? {
        if case .token(let token) = self { return token.expiresAt }
        return nil
    }

    /// Why the holder may not publish `event`, or nil when it may. Types beginning with
    /// `herald.` (any case) are the gateway's own and never accepted from clients;
    /// `checkReserved` is false for presence changes, which are checked as what they emit.
    /// A JWT's `herald.publish` and a publisher key's `publish` are permissions
    /// (`Pattern.permits`): every value at each path they constrain must satisfy them,
    /// array elements included.
    public func publishRefusal(_ event: EventView, reservedType: Bool, checkReserved: Bool = true) -> HeraldError? {
        if checkReserved && reservedType {
            return HeraldError(.forbidden, "event types beginning with \"herald.\" are reserved for events the gateway emits")
        }
        switch self {
        case .anonymous:
            return HeraldError(
                .forbidden, "publishing and joining presence groups need a publisher key or a token with a herald.publish claim")
        case .publisherKey(let name, let publish):
            guard let publish, !publish.permits(event) else { return nil }
            return HeraldError(
                .forbidden,
                "the publisher key \(name.debugDescription) may not publish this event: its publish pattern does not allow it (every value at each path it names must satisfy it)"
            )
        case .token(let token):
            guard let allowed = token.publish else {
                return HeraldError(.forbidden, "this token has no herald.publish claim, so it may not publish")
            }
            return allowed.permits(event)
                ? nil
                : HeraldError(
                    .forbidden,
                    "the token's herald.publish pattern does not allow this event (every value at each path it names must satisfy it)")
        }
    }

    /// Why the holder may not publish one of `events` (naming its index in a batch), or
    /// nil when every event is allowed: a batch is accepted whole or not at all.
    public func publishRefusal(_ events: [IncomingEvent], tape: JSONTape, body: UnsafeRawBufferPointer) -> HeraldError? {
        for (index, event) in events.enumerated() {
            if var refusal = publishRefusal(EventView(tape: tape, node: event.node, bytes: body), reservedType: event.usesReservedType) {
                if events.count > 1 { refusal.index = index }
                return refusal
            }
        }
        return nil
    }
}
