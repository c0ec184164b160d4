/// A read-only view of one event on a scanned tape: what patterns are matched against.
public struct EventView {
    public let tape: JSONTape
    /// Tape index of the event object.
    public let node: Int
    public let bytes: UnsafeRawBufferPointer

    public init(tape: JSONTape, node: Int, bytes: UnsafeRawBufferPointer) {
        self.tape = tape
        self.node = node
        self.bytes = bytes
    }
}

extension Pattern {
    /// True when the event matches the pattern (any alternative; see `docs/patterns.md`).
    ///
    /// Why it exists: a single pattern (a publisher key's `publish` rule, a pattern test)
    /// is checked without building an index. The semantics are the index's: the event is
    /// seen as leaves (path, scalar) with arrays crushed out of paths; an alternative
    /// matches when each of its value conditions is met by some leaf, the chosen leaves
    /// never come from different elements of one array, and no `exists: false` path has a
    /// leaf consistent with them.
    ///
    /// - Complexity: O(conditions × leaves on their paths) for usual patterns; the search
    ///   backtracks over array elements, so O(product of matching leaves per condition) at
    ///   worst. Allocation only for escaped strings and the search stacks.
    public func matches(_ event: EventView) -> Bool {
        guard event.tape.nodes[event.node].kind == .object else { return false }
        var evaluator = SinglePatternEvaluator(event: event)
        for alternative in alternatives where evaluator.search(alternative, 0) {
            return true
        }
        return false
    }
}

/// The backtracking search behind ``Pattern/matches(_:)``.
private struct SinglePatternEvaluator {
    let event: EventView
    /// Array choices of the leaves chosen so far: (array node, element ordinal).
    var context: [ArrayChoice] = []
    /// Array choices on the way from the root to the node being walked.
    var trail: [ArrayChoice] = []

    init(event: EventView) { self.event = event }

    /// True when conditions `i...` of `alternative` can be met given `context`.
    mutating func search(_ alternative: [PatternCondition], _ i: Int) -> Bool {
        guard i < alternative.count else { return true }
        let condition = alternative[i]
        switch condition.test {
        case .absent:
            return !walk(alternative, i, segment: 0, node: event.node, trailBase: trail.count, predicates: nil)
                && search(alternative, i + 1)
        case .anyOf(let predicates):
            return walk(alternative, i, segment: 0, node: event.node, trailBase: trail.count, predicates: predicates)
        }
    }

    /// Walks to the leaves at the path of condition `i`. With predicates: true when a leaf
    /// satisfies one and the rest of the alternative can then be met. Without (an absence
    /// check): true when any leaf consistent with the context exists.
    mutating func walk(
        _ alternative: [PatternCondition], _ i: Int, segment: Int, node: Int, trailBase: Int,
        predicates: [PatternPredicate]?
    ) -> Bool {
        let tape = event.tape
        let kind = tape.nodes[node].kind
        if kind == .array {
            var ordinal: UInt32 = 0
            var found = false
            tape.forEachElement(ofArrayAt: node) { element in
                guard !found else { return }
                trail.append(ArrayChoice(array: UInt32(node), element: ordinal))
                found = walk(alternative, i, segment: segment, node: element, trailBase: trailBase, predicates: predicates)
                trail.removeLast()
                ordinal += 1
            }
            return found
        }
        let path = alternative[i].path
        if segment < path.count {
            guard kind == .object, let value = tape.member(path[segment], inObjectAt: node, in: event.bytes) else {
                return false
            }
            return walk(alternative, i, segment: segment + 1, node: value, trailBase: trailBase, predicates: predicates)
        }
        guard kind != .object else { return false }  // exists and values only see leaves
        let leafTrail = trail[trailBase...]
        guard ArrayChoice.consistent(leafTrail, context[...]) else { return false }
        guard let predicates else { return true }
        guard LeafReader.matchesAny(predicates, node: node, event: event) else { return false }
        let mark = context.count
        for choice in leafTrail where !context.contains(choice) { context.append(choice) }
        let result = search(alternative, i + 1)
        context.removeSubrange(mark...)
        return result
    }
}

/// Which element of which array a leaf lies in.
struct ArrayChoice: Sendable, Equatable {
    /// Tape index of the array.
    var array: UInt32
    /// Position of the element in the array.
    var element: UInt32

    /// True when no array appears in both lists with different elements.
    static func consistent(_ a: ArraySlice<ArrayChoice>, _ b: ArraySlice<ArrayChoice>) -> Bool {
        for x in a {
            for y in b where x.array == y.array && x.element != y.element { return false }
        }
        return true
    }
}

/// Reads one event leaf into a ``LeafScalar`` for the predicates, on the cold path.
enum LeafReader {
    /// True when the leaf at tape `node` satisfies one of `predicates`.
    static func matchesAny(_ predicates: [PatternPredicate], node: Int, event: EventView) -> Bool {
        let tapeNode = event.tape.nodes[node]
        switch tapeNode.kind {
        case .string:
            let needsFolding = predicates.contains { $0.needsFolding }
            let needsIP = predicates.contains { if case .cidr = $0 { true } else { false } }
            return withStringBytes(node: node, event: event) { bytes in
                var leaf = LeafScalar(kind: .string, bytes: bytes)
                if needsIP { leaf.ip = IPAddress.parse(bytes) }
                if !needsFolding { return predicates.contains { $0.matches(leaf) } }
                return withUnsafeTemporaryAllocation(byteCount: 2 * bytes.count + 4, alignment: 1) { buffer in
                    let n = CaseFolding.fold(bytes, into: buffer)
                    leaf.folded = UnsafeRawBufferPointer(rebasing: buffer[0..<n])
                    return predicates.contains { $0.matches(leaf) }
                }
            }
        case .number:
            let leaf = LeafScalar(kind: .number, number: event.tape.number(at: node, in: event.bytes) + 0.0)
            return predicates.contains { $0.matches(leaf) }
        default:
            let leaf = LeafScalar(kind: tapeNode.kind)
            return predicates.contains { $0.matches(leaf) }
        }
    }

    /// Calls `body` with the decoded content of the string node at `node`.
    static func withStringBytes<R>(node: Int, event: EventView, _ body: (UnsafeRawBufferPointer) -> R) -> R {
        let tapeNode = event.tape.nodes[node]
        let start = Int(tapeNode.start)
        let length = Int(tapeNode.end) - start
        let base = event.bytes.baseAddress!
        guard tapeNode.hasEscapes else {
            return body(UnsafeRawBufferPointer(start: base + start, count: length))
        }
        return JSONStringDecoder.withDecoded(base: base, start: start, end: Int(tapeNode.end), body)
    }
}
