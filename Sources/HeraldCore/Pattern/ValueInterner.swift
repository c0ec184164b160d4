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

    /// One interned value: its bytes are `pool[offset..<offset + length]`; `kind` is 0 when free.
    private struct Entry: Sendable {
        var hash: UInt64
        var offset: UInt32
        var length: UInt32
        var references: UInt32
        var kind: UInt8
    }

    private var table: IDTable
    private var entries = Pool<Entry>()
    private(set) var pool: [UInt8] = []
    private var garbageBytes = 0
    let seed: UInt64

    init(seed: UInt64) {
        self.seed = seed
        table = IDTable(seed: seed)
    }

    var count: Int { entries.liveCount }

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
            let e = entries[id]
            return e.kind == kind.rawValue && Int(e.length) == count
                && (count == 0 || JSONTape.bytesEqual(pool! + Int(e.offset), base!, count: count))
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
            entries[existing].references += 1
            return existing
        }
        let offset = UInt32(pool.count)
        pool.append(contentsOf: bytes)
        let h = bytes.withUnsafeBytes { hash(kind, $0.baseAddress, $0.count) }
        let id = entries.insert(Entry(hash: h, offset: offset, length: UInt32(bytes.count), references: 1, kind: kind.rawValue))
        table.insert(h, id)
        return id
    }

    mutating func release(_ id: UInt32) {
        entries[id].references -= 1
        let e = entries[id]
        guard e.references == 0 else { return }
        table.remove(e.hash, id)
        garbageBytes += Int(e.length)
        entries.release(id, resetTo: Entry(hash: e.hash, offset: e.offset, length: 0, references: 0, kind: 0))
        if garbageBytes > 65536 && garbageBytes * 2 > pool.count { compact() }
    }

    private mutating func compact() {
        var newPool: [UInt8] = []
        newPool.reserveCapacity(pool.count - garbageBytes)
        for i in entries.indices where entries[i].kind != 0 {
            let start = Int(entries[i].offset)
            entries[i].offset = UInt32(newPool.count)
            newPool.append(contentsOf: pool[start..<(start + Int(entries[i].length))])
        }
        pool = newPool
        garbageBytes = 0
    }

    /// Key bytes of a number: its float64 bits, `-0` as `0`.
    static func numberKey(_ value: Double) -> [UInt8] {
        withUnsafeBytes(of: (value + 0.0).bitPattern) { Array($0) }
    }

    var byteCount: Int {
        table.byteCount + pool.capacity + entries.capacity * MemoryLayout<Entry>.stride
    }
}
