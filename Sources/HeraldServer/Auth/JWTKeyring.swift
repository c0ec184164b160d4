import COpenSSL
import HeraldCore

/// The keys subscriber JWTs may be signed with: `auth.jwtSecret` (or the demo's random
/// secret) and `auth.jwtKeys` — HS256 secrets, RS256 and ES256 public keys, several at
/// once while keys rotate. A token's `kid` picks its key; without one, every key of the
/// token's `alg` is tried. Signatures are checked through OpenSSL. Immutable once made
/// and shared by the loops (OpenSSL verifies with one EVP_PKEY from several threads).
final class JWTKeyring: @unchecked Sendable {
    private struct Key {
        let keyID: String?
        let algorithm: HeraldConfig.JWTKey.Algorithm
        let secret: [UInt8]?
        let publicKey: UnsafeMutableRawPointer?
    }

    private let keys: [Key]

    /// Loads every key of `config` (PEM files are read now), plus `secret` as a `kid`-less
    /// HS256 key. Throws `invalid_config` naming the key that cannot be used.
    init(config: HeraldConfig, secret: [UInt8]?) throws(HeraldError) {
        var keys = Self.secretKeys(secret)
        for (index, key) in config.auth.jwtKeys.enumerated() {
            let path = "$.auth.jwtKeys[\(index)]"
            if key.algorithm == .hs256 {
                keys.append(Key(keyID: key.keyID, algorithm: .hs256, secret: Array((key.secret ?? "").utf8), publicKey: nil))
                continue
            }
            do throws(HeraldError) {
                keys.append(
                    Key(keyID: key.keyID, algorithm: key.algorithm, secret: nil, publicKey: try Self.loadPublicKey(key, at: path)))
            } catch {
                keys.forEach { if let publicKey = $0.publicKey { herald_public_key_free(publicKey) } }
                throw error
            }
        }
        self.keys = keys
    }

    /// Only `secret` (tests, and gateways made without a server).
    init(secret: [UInt8]?) { keys = Self.secretKeys(secret) }

    /// `secret` as a `kid`-less HS256 key (none without one).
    private static func secretKeys(_ secret: [UInt8]?) -> [Key] {
        secret.map { [Key(keyID: nil, algorithm: .hs256, secret: $0, publicKey: nil)] } ?? []
    }

    deinit { keys.forEach { if let publicKey = $0.publicKey { herald_public_key_free(publicKey) } } }

    var isEmpty: Bool { keys.isEmpty }

    private static func loadPublicKey(_ key: HeraldConfig.JWTKey, at path: String) throws(HeraldError) -> UnsafeMutableRawPointer {
        var reason = [CChar](repeating: 0, count: 512)
        var kind: Int32 = 0
        var bits: Int32 = 0
        guard let loaded = herald_public_key_load(key.publicKeyPath ?? "", &kind, &bits, &reason, reason.count) else {
            throw HeraldError(.invalidConfig, "\(path).publicKey: \(HeraldServer.openSSLReason(reason))")
        }
        let fits = key.algorithm == .rs256 ? kind == 1 && bits >= 2048 : kind == 2
        guard fits else {
            herald_public_key_free(loaded)
            let wanted = key.algorithm == .rs256 ? "an RSA key of 2048 bits or more" : "an EC key on P-256"
            throw HeraldError(.invalidConfig, "\(path).publicKey: \(key.algorithm.rawValue) needs \(wanted)")
        }
        return loaded
    }

    /// Checks a token's signature with the key its header names (`SubscriberToken.Verifier`).
    func verify(_ header: SubscriberToken.Header, _ signed: [UInt8], _ signature: [UInt8]) -> HeraldError? {
        let named = keys.filter { header.keyID == nil || $0.keyID == header.keyID }
        guard !named.isEmpty else {
            return HeraldError(.unauthorized, "no key has the token's kid \"\(header.keyID ?? "")\" (auth.jwtKeys)")
        }
        let usable = named.filter { $0.algorithm.rawValue == header.algorithm }
        guard !usable.isEmpty else {
            let accepted = Set(named.map(\.algorithm.rawValue)).sorted().joined(separator: ", ")
            return HeraldError(.unauthorized, "the token is signed with \"\(header.algorithm)\"; its key takes \(accepted)")
        }
        for key in usable where Self.isValid(signature, of: signed, by: key) { return nil }
        return HeraldError(.unauthorized, "the token's signature is not valid")
    }

    private static func isValid(_ signature: [UInt8], of signed: [UInt8], by key: Key) -> Bool {
        if let secret = key.secret { return SubscriberToken.constantTimeEqual(hmacSHA256(key: secret, message: signed), signature) }
        guard let publicKey = key.publicKey else { return false }
        return signed.withUnsafeBufferPointer { data in
            signature.withUnsafeBufferPointer { sig in
                herald_verify_sha256(publicKey, data.baseAddress, data.count, sig.baseAddress, sig.count) == 1
            }
        }
    }
}
