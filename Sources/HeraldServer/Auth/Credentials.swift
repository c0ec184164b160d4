import COpenSSL
import HeraldCore
import Logging

#if canImport(Glibc)
import Glibc
#endif

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
        if let key = publishers.publisher(forKey: token) { return .publisherKey(name: key.name, publish: key.publish) }
        guard SubscriberToken.looksLikeJWT(token) else { throw HeraldError(.unauthorized, "the token is not valid") }
        guard !jwtKeys.isEmpty else {
            throw HeraldError(.unauthorized, "this gateway accepts no JWTs (neither auth.jwtSecret nor auth.jwtKeys is set)")
        }
        return .token(
            try SubscriberToken(
                verifying: token, now: unixSeconds(), audience: config.auth.jwtAudience, issuer: config.auth.jwtIssuer,
                limits: config.limits.pattern, verify: jwtKeys.verify))
    }

    /// The token a request carries: `Authorization: Bearer`, else `?token=`.
    func requestToken(_ request: Request) -> String? {
        PublisherKeys.bearerToken(request.head.field("authorization")) ?? request.query("token")
    }
}
