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
    /// True when the event satisfies every field of the pattern.
    ///
    /// A field whose event value is an array matches when any element does; a nested
    /// pattern level is matched against one array element at a time, so one match never
    /// combines fields taken from different elements.
    /// - Complexity: O(fields × members of the visited event objects).
    public func matches(_ event: EventView) -> Bool {
        guard event.tape.nodes[event.node].kind == .object else { return false }
        return Pattern.matchObject(root, at: event.node, event)
    }

    private static func matchObject(_ fields: [Field], at object: Int, _ event: EventView) -> Bool {
        for field in fields {
            guard let valueIndex = event.tape.member(field.key, inObjectAt: object, in: event.bytes) else { return false }
            guard matchRule(field.rule, at: valueIndex, event) else { return false }
        }
        return true
    }

    private static func matchRule(_ rule: Rule, at index: Int, _ event: EventView) -> Bool {
        let node = event.tape.nodes[index]
        if node.kind == .array {
            var matched = false
            event.tape.forEachElement(ofArrayAt: index) { element in
                if !matched, event.tape.nodes[element].kind != .array, matchRule(rule, at: element, event) { matched = true }
            }
            return matched
        }
        switch rule {
        case .object(let fields):
            return node.kind == .object && matchObject(fields, at: index, event)
        case .anyOf(let values):
            return values.contains { matchValue($0, at: index, event) }
        }
    }

    private static func matchValue(_ value: ExactValue, at index: Int, _ event: EventView) -> Bool {
        let kind = event.tape.nodes[index].kind
        switch value {
        case .string(let utf8):
            return kind == .string && utf8.withUnsafeBytes { event.tape.stringEquals(at: index, $0, in: event.bytes) }
        case .number(let number):
            return kind == .number && event.tape.number(at: index, in: event.bytes) == number
        case .bool(let flag):
            return kind == (flag ? .true : .false)
        case .null:
            return kind == .null
        }
    }
}
