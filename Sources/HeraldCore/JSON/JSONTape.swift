/// The result of scanning one JSON text: a flat, index-addressed list of its values.
///
/// Herald never builds a tree of Swift objects for an event. The scanner validates the
/// raw bytes once and records every value as a `Node` in document order (a "tape", as in
/// simdjson). Readers walk the tape by index and compare bytes in place, so looking up
/// `source` or `data.sensorId` allocates nothing. Containers know where their subtree
/// ends (`next`), so skipping a value is O(1).
///
/// Layout: an object node is followed by its members as (key string node, value node)
/// pairs; an array node by its elements. Offsets are into the scanned bytes.
public struct JSONTape: Sendable {
    /// The kind of a JSON value.
    public enum Kind: UInt8, Sendable {
        case object, array, string, number, `true`, `false`, null
    }

    /// One JSON value on the tape.
    public struct Node: Sendable, Equatable {
        public var kind: Kind
        /// For strings: true when the content holds at least one backslash escape, so it
        /// must be decoded before it is compared with anything.
        public var hasEscapes: Bool
        /// For strings: offset of the first byte after the opening quote.
        /// For containers: offset of `{` / `[`. For scalars: offset of the first byte.
        public var start: UInt32
        /// For strings: offset of the closing quote (content is `start..<end`).
        /// For containers: offset just past `}` / `]`. For scalars: offset just past the token.
        public var end: UInt32
        /// Tape index just past this value's subtree (the next sibling, or the parent's end).
        public var next: UInt32
        /// For objects: the number of members. For arrays: the number of elements. Else 0.
        public var count: UInt32

        public init(kind: Kind, hasEscapes: Bool = false, start: UInt32, end: UInt32, next: UInt32, count: UInt32 = 0) {
            self.kind = kind
            self.hasEscapes = hasEscapes
            self.start = start
            self.end = end
            self.next = next
            self.count = count
        }
    }

    /// The nodes in document order; node 0 is the root value.
    public internal(set) var nodes: [Node]

    public init() { nodes = [] }

    /// Empties the tape but keeps its storage, so one tape can be reused per loop thread.
    public mutating func removeAll() { nodes.removeAll(keepingCapacity: true) }
}
