import COpenSSL
import HeraldCore

/// The publisher keys a gateway accepts, held only as SHA-256 digests.
///
/// Keys travel as `Authorization: Bearer <key>`; config stores their SHA-256 so that a
/// leaked config file does not leak a key. Comparison is constant-time.
struct PublisherKeys: Sendable {
    private let keys: [HeraldConfig.PublisherKey]

    init(_ keys: [HeraldConfig.PublisherKey]) { self.keys = keys }

    var isEmpty: Bool { keys.isEmpty }

    /// SHA-256 of a key's text.
    static func digest(of key: String) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 32)
        let bytes = Array(key.utf8)
        bytes.withUnsafeBufferPointer { input in
            out.withUnsafeMutableBufferPointer { herald_sha256(input.baseAddress, input.count, $0.baseAddress) }
        }
        return out
    }

    /// The configured key this is, or nil.
    func publisher(forKey key: String) -> HeraldConfig.PublisherKey? {
        let digest = Self.digest(of: key)
        var found: HeraldConfig.PublisherKey?
        for candidate in keys {
            let equal = digest.withUnsafeBufferPointer { a in
                candidate.sha256.withUnsafeBufferPointer { b in herald_digest_equal(a.baseAddress, b.baseAddress) }
            }
            if equal != 0, found == nil { found = candidate }
        }
        return found
    }

    /// The bearer token of an `Authorization` header value, or nil when it is not one.
    static func bearerToken(_ header: String?) -> String? {
        guard let header else { return nil }
        let parts = header.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else { return nil }
        let token = parts[1].trimmingSpaces()
        return token.isEmpty ? nil : token
    }
}
