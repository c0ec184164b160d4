/// A dotted path to a field of an event (`data.sensorId`), resolved on a scanned tape.
///
/// Used where configuration names a field (the `coalesce` policy's key); patterns have
/// their own, richer addressing.
public struct FieldPath: Sendable, Hashable, CustomStringConvertible {
    public let components: [String]

    /// Parses `a.b.c`; nil when a component is empty.
    public init?(_ text: String) {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        guard !parts.isEmpty, !parts.contains(where: \.isEmpty) else { return nil }
        components = parts
    }

    public var description: String { components.joined(separator: ".") }

    /// Tape index of the value at this path below the object at `node`, or nil.
    public func resolve(in tape: JSONTape, node: Int, bytes: UnsafeRawBufferPointer) -> Int? {
        var current = node
        for component in components {
            guard tape.nodes[current].kind == .object, let next = tape.member(component, inObjectAt: current, in: bytes) else { return nil }
            current = next
        }
        return current
    }

    /// A 64-bit FNV-1a hash of the raw JSON text of the value at this path, or nil.
    public func valueHash(in tape: JSONTape, node: Int, bytes: UnsafeRawBufferPointer) -> UInt64? {
        guard let index = resolve(in: tape, node: node, bytes: bytes) else { return nil }
        let value = tape.nodes[index]
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        hash = (hash ^ UInt64(value.kind.rawValue)) &* 0x0000_0100_0000_01B3
        for offset in Int(value.start)..<Int(value.end) {
            hash = (hash ^ UInt64(bytes[offset])) &* 0x0000_0100_0000_01B3
        }
        return hash
    }
}
