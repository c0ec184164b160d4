/// A verified subscriber JWT (DESIGN §8): who the client is and what it may see and send.
///
/// Backends mint these for browsers so that a page can subscribe and publish without
/// holding a publisher key. The signature is checked by the caller's `Verifier` (the
/// server's keyring: HS256 secrets, RS256 and ES256 public keys, chosen by `kid`, all
/// through OpenSSL), which keeps this module free of crypto and testable.
public struct SubscriberToken: Sendable, Equatable {
    /// `sub`: the subject (a user name, the nickname of a demo token).
    public var subject: String?
    /// `exp` / `nbf` in seconds since the epoch.
    public var expiresAt: Int64?
    public var notBefore: Int64?
    /// `herald.scope`: ANDed with every subscription the holder makes.
    public var scope: Pattern?
    /// `herald.publish`: every event the holder publishes (and every presence change it
    /// causes) must match it; without it the holder may not publish at all.
    public var publish: Pattern?

    /// HMAC-SHA256 of a message under a key, supplied by the caller.
    public typealias HMAC = (_ key: [UInt8], _ message: [UInt8]) -> [UInt8]

    /// What a token's protected header says about its signature.
    public struct Header: Sendable, Equatable {
        /// `alg`: HS256, RS256, ES256 (anything else is refused by the verifier).
        public var algorithm: String
        /// `kid`: which of the gateway's keys signed it, when the issuer says.
        public var keyID: String?
        public init(algorithm: String, keyID: String?) {
            self.algorithm = algorithm
            self.keyID = keyID
        }
    }

    /// Checks `signature` over `signed` (the token's `header.claims` bytes) for the key and
    /// algorithm `header` names; nil when it is valid, else why not (`unauthorized`).
    public typealias Verifier = (_ header: Header, _ signed: [UInt8], _ signature: [UInt8]) -> HeraldError?

    /// The verifier of one HS256 secret (no `kid` needed).
    public static func hs256(secret: [UInt8], hmac: @escaping HMAC) -> Verifier {
        { header, signed, signature in
            guard header.algorithm == "HS256" else { return HeraldError(.unauthorized, "the token must be signed with HS256") }
            return constantTimeEqual(hmac(secret, signed), signature)
                ? nil : HeraldError(.unauthorized, "the token's signature is not valid")
        }
    }

    /// Clock skew tolerated on `exp` and `nbf`.
    public static let leewaySeconds: Int64 = 30

    /// Verifies `text` (compact JWS) and reads its claims.
    /// - Parameters:
    ///   - now: the current time in seconds since the epoch.
    ///   - audience: when set, `aud` (a string or an array of strings) must contain it.
    /// - Throws: `unauthorized` with the reason (malformed, wrong algorithm, bad signature,
    ///   expired, not yet valid, wrong audience, an invalid `herald.*` pattern).
    public init(
        verifying text: String, secret: [UInt8], now: Int64, audience: String?,
        limits: PatternLimits, hmac: @escaping HMAC
    ) throws(HeraldError) {
        try self.init(
            verifying: text, now: now, audience: audience, issuer: nil, limits: limits, verify: Self.hs256(secret: secret, hmac: hmac))
    }

    /// Verifies `text` with `verify` and reads its claims; with `issuer`, `iss` must equal it.
    public init(
        verifying text: String, now: Int64, audience: String?, issuer: String?, limits: PatternLimits, verify: Verifier
    ) throws(HeraldError) {
        let parts = text.utf8.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)
        guard parts.count == 3,
            let headerBytes = Base64URL.decode(parts[0]),
            let claimBytes = Base64URL.decode(parts[1]),
            let signature = Base64URL.decode(parts[2])
        else {
            throw HeraldError(.unauthorized, "the token is not a JWT (header.claims.signature in base64url)")
        }
        guard let header = try? JSONValue(parsing: headerBytes), let algorithm = header["alg"]?.stringValue else {
            throw HeraldError(.unauthorized, "the token's header must be a JSON object naming its \"alg\"")
        }
        if let kid = header["kid"], kid.stringValue == nil {
            throw HeraldError(.unauthorized, "the token's \"kid\" must be a string")
        }
        let signed = Array(text.utf8.prefix(parts[0].count + 1 + parts[1].count))
        if let refusal = verify(Header(algorithm: algorithm, keyID: header["kid"]?.stringValue), signed, signature) { throw refusal }
        guard let claims = try? JSONValue(parsing: claimBytes), case .object = claims else {
            throw HeraldError(.unauthorized, "the token's claims are not a JSON object")
        }
        func seconds(_ name: String) throws(HeraldError) -> Int64? {
            guard let value = claims[name] else { return nil }
            guard case .number(let n) = value, n.isFinite, abs(n) < 1e15 else {
                throw HeraldError(.unauthorized, "the token's \"\(name)\" must be a number of seconds")
            }
            return Int64(n)
        }
        expiresAt = try seconds("exp")
        notBefore = try seconds("nbf")
        if let expiresAt, now > expiresAt + Self.leewaySeconds {
            throw HeraldError(.tokenExpired, "the token expired")
        }
        if let notBefore, now + Self.leewaySeconds < notBefore {
            throw HeraldError(.unauthorized, "the token is not valid yet")
        }
        if let audience {
            let audiences: [String]
            switch claims["aud"] {
            case .string(let single)?: audiences = [single]
            case .array(let list)?: audiences = list.compactMap(\.stringValue)
            default: audiences = []
            }
            guard audiences.contains(audience) else {
                throw HeraldError(.unauthorized, "the token is not meant for this gateway (aud must include \"\(audience)\")")
            }
        }
        if let issuer, claims["iss"]?.stringValue != issuer {
            throw HeraldError(.unauthorized, "the token was not issued by \"\(issuer)\" (iss)")
        }
        subject = claims["sub"]?.stringValue
        func pattern(_ name: String) throws(HeraldError) -> Pattern? {
            guard let value = claims[name] else { return nil }
            do throws(HeraldError) {
                return try Pattern(value, limits: limits)
            } catch {
                throw HeraldError(.unauthorized, "the token's \"\(name)\" is not a valid pattern: \(error.message)")
            }
        }
        scope = try pattern("herald.scope")
        publish = try pattern("herald.publish")
    }

    /// Signs `claims` (a JSON object) as an HS256 JWT.
    public static func sign(claims: JSONValue, secret: [UInt8], hmac: HMAC) -> String {
        var claimBytes: [UInt8] = []
        JSONWriter.write(claims, into: &claimBytes)
        var text = Base64URL.encode(Array(#"{"alg":"HS256","typ":"JWT"}"#.utf8)) + "." + Base64URL.encode(claimBytes)
        text += "." + Base64URL.encode(hmac(secret, Array(text.utf8)))
        return text
    }

    /// True when `text` has the shape of a JWT (two dots), as opposed to an opaque key.
    public static func looksLikeJWT(_ text: String) -> Bool {
        text.utf8.count(where: { $0 == UInt8(ascii: ".") }) == 2
    }

    /// Compares two byte strings in time that depends only on their lengths.
    public static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        var difference: UInt8 = 0
        for i in a.indices { difference |= a[i] ^ b[i] }
        return difference == 0
    }
}

/// Unpadded base64url (RFC 4648 §5), as JWTs use it.
public enum Base64URL {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)

    public static func encode(_ bytes: [UInt8]) -> String {
        var out: [UInt8] = []
        out.reserveCapacity((bytes.count * 4 + 2) / 3)
        var i = 0
        while i < bytes.count {
            let chunk = min(3, bytes.count - i)
            var n = UInt32(bytes[i]) << 16
            if chunk > 1 { n |= UInt32(bytes[i + 1]) << 8 }
            if chunk > 2 { n |= UInt32(bytes[i + 2]) }
            for k in 0...chunk { out.append(alphabet[Int((n >> UInt32(18 - 6 * k)) & 63)]) }
            i += 3
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// The bytes of `text`, or nil when it holds a character outside the alphabet or has
    /// an impossible length.
    public static func decode<S: Collection>(_ text: S) -> [UInt8]? where S.Element == UInt8 {
        guard text.count % 4 != 1 else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(text.count * 3 / 4)
        var buffer: UInt32 = 0
        var bits = 0
        for c in text {
            let v: UInt32
            switch c {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"): v = UInt32(c - UInt8(ascii: "A"))
            case UInt8(ascii: "a")...UInt8(ascii: "z"): v = UInt32(c - UInt8(ascii: "a")) + 26
            case UInt8(ascii: "0")...UInt8(ascii: "9"): v = UInt32(c - UInt8(ascii: "0")) + 52
            case UInt8(ascii: "-"): v = 62
            case UInt8(ascii: "_"): v = 63
            default: return nil
            }
            buffer = (buffer << 6) | v
            bits += 6
            if bits >= 8 {
                bits -= 8
                out.append(UInt8((buffer >> UInt32(bits)) & 0xFF))
            }
        }
        return out
    }
}
