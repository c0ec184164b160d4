/// The next states (or items) one predicate leads to; almost always exactly one, so the
/// first is stored inline and only further ones allocate.
struct Targets: Sendable {
    var first = noID
    var rest: [UInt32] = []

    var isEmpty: Bool { first == noID }
    var count: Int { first == noID ? 0 : 1 + rest.count }

    mutating func insert(_ target: UInt32) {
        if first == noID { first = target } else { rest.append(target) }
    }

    mutating func remove(_ target: UInt32) {
        if first == target {
            first = rest.popLast() ?? noID
        } else if let i = rest.firstIndex(of: target) {
            rest.swapAt(i, rest.count - 1)
            rest.removeLast()
        }
    }

    @inline(__always)
    func forEach(_ body: (UInt32) -> Void) {
        guard first != noID else { return }
        body(first)
        for t in rest { body(t) }
    }
}
