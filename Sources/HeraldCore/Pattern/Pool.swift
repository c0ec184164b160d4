/// Values addressed by stable `UInt32` ids, whose freed slots are reused.
///
/// Why it exists: the automaton's structures (states, edges, matchers, trie nodes, …)
/// link to each other by id, so an id must stay valid while other structures hold it —
/// elements are never moved or compacted. Under subscribe / unsubscribe churn, freed
/// slots are handed out again before the storage grows, so memory stays bounded by the
/// peak number of live elements. A released slot keeps its value (or the one given to
/// `release(_:resetTo:)`) until reused; callers must not follow ids they released.
///
/// The accessors are trivial and inlined: indexing a pool costs what indexing an array does.
struct Pool<Element: Sendable>: Sendable, RandomAccessCollection {
    private var slots: [Element]
    private var free: [UInt32] = []

    init(_ elements: [Element] = []) { slots = elements }

    /// Slots, free ones included: every id handed out is below it.
    @inline(__always) var count: Int { slots.count }
    /// Slots in use.
    var liveCount: Int { slots.count - free.count }
    var capacity: Int { slots.capacity }
    var startIndex: Int { 0 }
    @inline(__always) var endIndex: Int { slots.count }

    @inline(__always) subscript(_ id: UInt32) -> Element {
        _read { yield slots[Int(id)] }
        _modify { yield &slots[Int(id)] }
    }

    @inline(__always) subscript(_ index: Int) -> Element {
        _read { yield slots[index] }
        _modify { yield &slots[index] }
    }

    /// Stores `value` in a freed slot (the most recently freed) or a new one; returns its id.
    mutating func insert(_ value: Element) -> UInt32 {
        if let reused = free.popLast() {
            slots[Int(reused)] = value
            return reused
        }
        slots.append(value)
        return UInt32(slots.count - 1)
    }

    /// Frees slot `id` for reuse, leaving its value in place.
    mutating func release(_ id: UInt32) { free.append(id) }

    /// Frees slot `id` for reuse after storing `value` in it (dropping what it held).
    mutating func release(_ id: UInt32, resetTo value: Element) {
        slots[Int(id)] = value
        free.append(id)
    }
}
