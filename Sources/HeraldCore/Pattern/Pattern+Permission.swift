extension Pattern {
    /// True when the pattern, read as a permission, allows publishing `event`.
    ///
    /// Why it differs from ``matches(_:)``: a subscription matches an event when SOME
    /// value at each path fits (`{"room":["lobby"]}` matches `"room":["lobby","secret"]`),
    /// which is right for choosing recipients and wrong for rights — that event would
    /// reach room `secret`. A permission holds when some alternative of the pattern both
    /// matches the event and, at every path it constrains, EVERY value the event holds
    /// there satisfies the condition: each element of an array, each element of an array
    /// of objects along the path; an object (or an empty array) where the condition
    /// expects a value does not satisfy it unless the condition is `exists: true`; an
    /// `exists: false` path must hold nothing at all. See `docs/patterns.md`.
    ///
    /// - Complexity: O(conditions × values on their paths), plus ``matches(_:)``.
    public func permits(_ event: EventView) -> Bool {
        guard event.tape.nodes[event.node].kind == .object else { return false }
        for alternative in alternatives where Pattern(alternatives: [alternative]).matches(event) {
            if alternative.allSatisfy({ Self.everyValue(at: $0, in: event) }) { return true }
        }
        return false
    }

    private init(alternatives: [[PatternCondition]]) {
        self.value = .null
        self.alternatives = alternatives
        self.canonicalKey = []
    }

    /// True when every value at the condition's path satisfies it (and, for a value
    /// condition, there is at least one).
    private static func everyValue(at condition: PatternCondition, in event: EventView) -> Bool {
        var seen = 0
        var allowed = true
        forEachValue(at: condition.path[...], node: event.node, event: event) { node in
            seen += 1
            switch condition.test {
            case .absent:
                allowed = false
            case .anyOf(let predicates):
                if event.tape.nodes[node].kind == .object {
                    if !predicates.contains(.exists) { allowed = false }
                } else if !LeafReader.matchesAny(predicates, node: node, event: event) {
                    allowed = false
                }
            }
            return allowed
        }
        if case .absent = condition.test { return allowed }
        return allowed && seen > 0
    }

    /// Calls `body` with every value at `path` below `node`, looking through arrays at
    /// every level; stops when `body` returns false.
    @discardableResult
    private static func forEachValue(at path: ArraySlice<String>, node: Int, event: EventView, _ body: (Int) -> Bool) -> Bool {
        let tape = event.tape
        if tape.nodes[node].kind == .array {
            var going = true
            tape.forEachElement(ofArrayAt: node) { element in
                if going { going = forEachValue(at: path, node: element, event: event, body) }
            }
            return going
        }
        guard let segment = path.first else { return body(node) }
        guard tape.nodes[node].kind == .object, let value = tape.member(segment, inObjectAt: node, in: event.bytes) else {
            return true
        }
        return forEachValue(at: path.dropFirst(), node: value, event: event, body)
    }
}
