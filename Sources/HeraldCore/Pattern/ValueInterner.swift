/// Every exact value some compiled pattern compares with, each with a small id.
///
/// Why it exists: an exact-value test is "is this leaf one of the values the state's
/// matcher knows". Interning turns it into two integer-keyed lookups: the leaf's bytes
/// are hashed once per event (leaf → value id, or "no pattern uses this value"), then
/// each matcher that sees the leaf looks up (matcher, value id). Values that no pattern
/// uses are rejected by the first lookup. Ids are reference counted by the matchers.
///
/// Kinds keep types apart: the string `"5"`, the number `5` and the case-folded string
/// `"5"` are three values. Numbers are keyed by their float64 bits with `-0` as `0`, so
/// `35`, `35.0` and `3.5e1` are one value.
struct ValueInterner: Sendable {
    enum Kind: UInt8 {
        case string = 1, folded, number, `true`, `false`, null
    }

    private var table: IDTable
    private var offsets: [UInt32] = []
    private var lengths: [UInt32] = []
    private var kinds: [UInt8] = []
    private var hashes: [UInt64] = []
    private var references: [UInt32] = []
    private(set) var pool: [UInt8] = []
    private var free: [UInt32] = []
    private var garbageBytes = 0
    let seed: UInt64

    init(seed: UInt64) {
        self.seed = seed
        table = IDTable(seed: seed)
    }

    var count: Int { offsets.count - free.count }

    @inline(__always)
    func hash(_ kind: Kind, _ base: UnsafeRawPointer?, _ count: Int) -> UInt64 {
        let s = seed ^ (UInt64(kind.rawValue) &* 0xD6E8_FEB8_6659_FD93)
        guard let base, count > 0 else { return ByteHash.finalize(s) }
        return ByteHash.hash(base, count, seed: s)
    }

    /// The id of the value, or `noID` when no pattern uses it. `pool` is the base of
    /// ``pool``'s bytes, taken once per match.
    @inline(__always)
    func lookup(_ kind: Kind, _ base: UnsafeRawPointer?, _ count: Int, pool: UnsafeRawPointer?) -> UInt32 {
        let h = hash(kind, base, count)
        return table.find(h) { id in
            let i = Int(id)
            return kinds[i] == kind.rawValue && Int(lengths[i]) == count
                && (count == 0 || JSONTape.bytesEqual(pool! + Int(offsets[i]), base!, count: count))
        } ?? noID
    }

    /// Lookup on the cold path (building the automaton).
    func lookup(_ kind: Kind, _ bytes: [UInt8]) -> UInt32 {
        bytes.withUnsafeBytes { b in
            pool.withUnsafeBytes { p in lookup(kind, b.baseAddress, b.count, pool: p.baseAddress) }
        }
    }

    /// The id of the value with one more reference, interning it if new.
    mutating func retain(_ kind: Kind, _ bytes: [UInt8]) -> UInt32 {
        let existing = lookup(kind, bytes)
        if existing != noID {
            references[Int(existing)] += 1
            return existing
        }
        let offset = UInt32(pool.count)
        pool.append(contentsOf: bytes)
        let h = bytes.withUnsafeBytes { hash(kind, $0.baseAddress, $0.count) }
        let id: UInt32
        if let reused = free.popLast() {
            id = reused
            offsets[Int(id)] = offset
            lengths[Int(id)] = UInt32(bytes.count)
            kinds[Int(id)] = kind.rawValue
            hashes[Int(id)] = h
            references[Int(id)] = 1
        } else {
            id = UInt32(offsets.count)
            offsets.append(offset)
            lengths.append(UInt32(bytes.count))
            kinds.append(kind.rawValue)
            hashes.append(h)
            references.append(1)
        }
        table.insert(h, id)
        return id
    }

    mutating func release(_ id: UInt32) {
        let i = Int(id)
        references[i] -= 1
        guard references[i] == 0 else { return }
        table.remove(hashes[i], id)
        garbageBytes += Int(lengths[i])
        kinds[i] = 0
        lengths[i] = 0
        free.append(id)
        if garbageBytes > 65536 && garbageBytes * 2 > pool.count { compact() }
    }

    private mutating func compact() {
        var newPool: [UInt8] = []
        newPool.reserveCapacity(pool.count - garbageBytes)
        for i in offsets.indices where kinds[i] != 0 {
            let start = Int(offsets[i])
            offsets[i] = UInt32(newPool.count)
            newPool.append(contentsOf: pool[start..<(start + Int(lengths[i]))])
        }
        pool = newPool
        garbageBytes = 0
    }

    /// Key bytes of a number: its float64 bits, `-0` as `0`.
    static func numberKey(_ value: Double) -> [UInt8] {
        withUnsafeBytes(of: (value + 0.0).bitPattern) { Array($0) }
    }

    var byteCount: Int {
        table.byteCount + pool.capacity + offsets.capacity * 4 + lengths.capacity * 4 + kinds.capacity
            + hashes.capacity * 8 + references.capacity * 4
    }
}
