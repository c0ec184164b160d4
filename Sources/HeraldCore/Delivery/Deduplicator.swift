import DequeModule

/// Idempotent ingest: remembers `(source, id)` of recent events (DESIGN §3).
///
/// A publisher that retries a POST must not cause a second delivery. Keys are kept for
/// `windowSeconds` and at most `maxEntries` (oldest forgotten first); a key seen again in
/// that window answers with the original `seq`.
/// - Complexity: `lookup` and `record` amortised O(1).
public struct Deduplicator: Sendable {
    public let windowSeconds: Int
    public let maxEntries: Int
    private var seqs: [Key: UInt64] = [:]
    private var order: Deque<(key: Key, at: UInt64)> = []

    /// An event's identity, hashed once when it is made: the window looks a key up,
    /// stores it and later evicts it, and hashing two strings three times per event was
    /// a tenth of batched ingest.
    public struct Key: Hashable, Sendable {
        public let source: String
        public let id: String
        private let hash: Int

        public init(source: String, id: String) {
            self.source = source
            self.id = id
            var hasher = Hasher()
            hasher.combine(source)
            hasher.combine(id)
            hash = hasher.finalize()
        }

        public func hash(into hasher: inout Hasher) { hasher.combine(hash) }

        public static func == (a: Key, b: Key) -> Bool { a.hash == b.hash && a.id == b.id && a.source == b.source }
    }

    public init(windowSeconds: Int = 300, maxEntries: Int = 100_000) {
        self.windowSeconds = windowSeconds
        self.maxEntries = maxEntries
    }

    public var count: Int { seqs.count }

    /// The seq of an earlier event with this identity, if still remembered.
    public mutating func lookup(source: String, id: String, now: UInt64) -> UInt64? {
        lookup(Key(source: source, id: id), now: now)
    }

    public mutating func lookup(_ key: Key, now: UInt64) -> UInt64? {
        expire(now: now)
        return seqs[key]
    }

    /// Remembers an accepted event's identity.
    public mutating func record(source: String, id: String, seq: UInt64, now: UInt64) {
        record(Key(source: source, id: id), seq: seq, now: now)
    }

    public mutating func record(_ key: Key, seq: UInt64, now: UInt64) {
        guard maxEntries > 0 else { return }
        seqs[key] = seq
        order.append((key, now))
        while seqs.count > maxEntries, let oldest = order.popFirst() {
            seqs[oldest.key] = nil
        }
    }

    private mutating func expire(now: UInt64) {
        let window = UInt64(windowSeconds) * 1_000_000_000
        while let first = order.first, now > first.at, now - first.at > window {
            order.removeFirst()
            seqs[first.key] = nil
        }
    }
}
