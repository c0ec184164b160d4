/// An open-addressing hash multimap from 64-bit keys to 32-bit ids, for the automaton.
///
/// Why it exists: the matcher looks up `(state, path)`, `(matcher, value)`,
/// `(trie node, byte)` and hashed strings many times per event. Swift's `Dictionary`
/// hashes with SipHash and boxes nothing here, but a flat table of integer pairs with
/// linear probing is several times faster and has no per-entry allocation. Keys may
/// repeat (string hashes can collide); callers verify candidates. Deletion shifts later
/// entries back (no tombstones), so probe lengths stay short under churn.
///
/// - Complexity: expected O(1) per operation at the load factor kept (≤ 1/2); growing
///   rehashes everything once (O(n), the only pause it causes).
struct IDTable: Sendable {
    private var keys: [UInt64]
    private var values: [UInt32]
    private var mask: Int
    private(set) var count = 0
    private let seed: UInt64

    static let empty = UInt32.max

    init(seed: UInt64, capacity: Int = 16) {
        var size = 16
        while size < capacity * 2 { size <<= 1 }
        keys = Array(repeating: 0, count: size)
        values = Array(repeating: Self.empty, count: size)
        mask = size - 1
        self.seed = seed
    }

    @inline(__always)
    private func slot(_ key: UInt64) -> Int {
        // A full 64-bit mix of the seeded key, so low bits depend on every key bit.
        var h = (key ^ seed) &* 0x9E37_79B9_7F4A_7C15
        h ^= h >> 32
        h &*= 0xBF58_476D_1CE4_E5B9
        h ^= h >> 29
        return Int(truncatingIfNeeded: h) & mask
    }

    /// The first id stored under `key`, or nil.
    @inline(__always)
    func first(_ key: UInt64) -> UInt32? {
        var i = slot(key)
        while true {
            let v = values[i]
            if v == Self.empty { return nil }
            if keys[i] == key { return v }
            i = (i + 1) & mask
        }
    }

    /// Calls `body` with each id stored under `key` until it returns true; returns that id.
    @inline(__always)
    func find(_ key: UInt64, where body: (UInt32) -> Bool) -> UInt32? {
        var i = slot(key)
        while true {
            let v = values[i]
            if v == Self.empty { return nil }
            if keys[i] == key && body(v) { return v }
            i = (i + 1) & mask
        }
    }

    /// Stores `value` under `key` (keys may repeat).
    mutating func insert(_ key: UInt64, _ value: UInt32) {
        precondition(value != Self.empty)
        if (count + 1) * 2 > values.count { grow() }
        var i = slot(key)
        while values[i] != Self.empty { i = (i + 1) & mask }
        keys[i] = key
        values[i] = value
        count += 1
    }

    /// Replaces the value of the entry (`key`, `old`) by `new`; returns false when there is none.
    @discardableResult
    mutating func replace(_ key: UInt64, _ old: UInt32, with new: UInt32) -> Bool {
        precondition(new != Self.empty)
        var i = slot(key)
        while true {
            let v = values[i]
            if v == Self.empty { return false }
            if keys[i] == key && v == old {
                values[i] = new
                return true
            }
            i = (i + 1) & mask
        }
    }

    /// Removes the entry (`key`, `value`); returns false when there is none.
    @discardableResult
    mutating func remove(_ key: UInt64, _ value: UInt32) -> Bool {
        var i = slot(key)
        while true {
            let v = values[i]
            if v == Self.empty { return false }
            if keys[i] == key && v == value { break }
            i = (i + 1) & mask
        }
        // Backward-shift deletion: move later entries of the cluster into the hole when
        // their home slot does not lie cyclically in (hole, their position].
        var hole = i
        var j = i
        while true {
            j = (j + 1) & mask
            if values[j] == Self.empty { break }
            let home = slot(keys[j])
            let inRange = hole <= j ? (home > hole && home <= j) : (home > hole || home <= j)
            if !inRange {
                keys[hole] = keys[j]
                values[hole] = values[j]
                hole = j
            }
        }
        values[hole] = Self.empty
        count -= 1
        return true
    }

    private mutating func grow() {
        let oldKeys = keys
        let oldValues = values
        let size = values.count * 2
        keys = Array(repeating: 0, count: size)
        values = Array(repeating: Self.empty, count: size)
        mask = size - 1
        count = 0
        for i in 0..<oldValues.count where oldValues[i] != Self.empty {
            insert(oldKeys[i], oldValues[i])
        }
    }

    /// Bytes of storage held.
    var byteCount: Int { keys.capacity * 8 + values.capacity * 4 }
}

/// A fast seeded 64-bit hash of byte strings (field names and string values).
///
/// Why it exists: event bytes are attacker-controlled, so table positions depend on a
/// per-index random seed; the mixing is Murmur3's 64-bit finaliser over 8-byte words,
/// which is a few nanoseconds for a field name where SipHash costs tens.
enum ByteHash {
    @inline(__always)
    static func hash(_ base: UnsafeRawPointer, _ count: Int, seed: UInt64) -> UInt64 {
        var h = seed ^ (UInt64(truncatingIfNeeded: count) &* 0x9E37_79B9_7F4A_7C15)
        var i = 0
        while i + 8 <= count {
            let word = base.loadUnaligned(fromByteOffset: i, as: UInt64.self)
            h = mix(h ^ word)
            i += 8
        }
        if i < count {
            var word: UInt64 = 0
            var shift: UInt64 = 0
            while i < count {
                word |= UInt64(base.load(fromByteOffset: i, as: UInt8.self)) << shift
                shift += 8
                i += 1
            }
            h = mix(h ^ word ^ 0xFF)
        }
        return finalize(h)
    }

    static func hash(_ bytes: UnsafeRawBufferPointer, seed: UInt64) -> UInt64 {
        guard let base = bytes.baseAddress else { return finalize(seed) }
        return hash(base, bytes.count, seed: seed)
    }

    static func hash(_ bytes: [UInt8], seed: UInt64) -> UInt64 {
        bytes.withUnsafeBytes { hash($0, seed: seed) }
    }

    @inline(__always)
    static func mix(_ x: UInt64) -> UInt64 {
        var k = x &* 0x87C3_7B91_1142_53D5
        k = (k << 31) | (k >> 33)
        return k &* 0x4CF5_AD43_2745_937F
    }

    @inline(__always)
    static func finalize(_ x: UInt64) -> UInt64 {
        var h = x
        h ^= h >> 33
        h &*= 0xFF51_AFD7_ED55_8CCD
        h ^= h >> 33
        h &*= 0xC4CE_B9FE_1A85_EC53
        h ^= h >> 33
        return h
    }
}
