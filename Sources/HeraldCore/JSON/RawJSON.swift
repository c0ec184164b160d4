/// A validated JSON value kept as its compact text, byte for byte as the client sent it.
///
/// Events and presence `info` must reach subscribers exactly as published: a value that
/// went through `JSONValue` would pass numbers through doubles (`12345678901234567`
/// becomes `1.2345678901234568e16`). So what is forwarded is the sent text without its
/// insignificant whitespace, never a re-encoding.
public struct RawJSON: Sendable, Equatable {
    /// Compact JSON text of one value.
    public let bytes: [UInt8]

    /// The value of the tape node at `index` of a scanned text.
    public init(tape: JSONTape, index: Int, bytes: UnsafeRawBufferPointer) {
        let node = tape.nodes[index]
        // Strings are recorded without their quotes; containers and scalars whole.
        let start = Int(node.start) - (node.kind == .string ? 1 : 0)
        let end = Int(node.end) + (node.kind == .string ? 1 : 0)
        self.bytes = IngestParser.compact(UnsafeRawBufferPointer(rebasing: bytes[start..<end]))
    }

    /// Validates `text` as one JSON value and keeps it compact.
    public init(parsing text: [UInt8], limits: JSONLimits = JSONLimits()) throws(HeraldError) {
        let tape = try JSONScanner.scan(text, limits: limits)
        self = text.withUnsafeBytes { RawJSON(tape: tape, index: 0, bytes: $0) }
    }

    /// The value as a tree (cold paths: validation, tests).
    public var value: JSONValue {
        // The bytes were validated when this value was made.
        (try? JSONValue(parsing: bytes)) ?? .null
    }

    private init(compact bytes: [UInt8]) { self.bytes = bytes }

    /// `{}`.
    public static let emptyObject = RawJSON(compact: Array("{}".utf8))

    /// Whether the value is a JSON object.
    public var isObject: Bool { bytes.first == UInt8(ascii: "{") }
}
