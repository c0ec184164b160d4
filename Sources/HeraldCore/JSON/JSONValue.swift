/// A decoded JSON value, for the cold paths: configuration, control messages, patterns.
///
/// The hot ingest path never builds `JSONValue`s; it reads the `JSONTape` in place. Where a
/// whole document must be inspected field by field and kept (a pattern, a config file, a
/// WebSocket `subscribe` message), a `JSONValue` tree is the simpler and safer form.
/// Object members keep their document order.
public enum JSONValue: Sendable, Equatable {
    case object([Member])
    case array([JSONValue])
    case string(String)
    case number(Double)
    case bool(Bool)
    case null

    /// One `"key": value` pair of an object.
    public struct Member: Sendable, Equatable {
        public var key: String
        public var value: JSONValue
        public init(_ key: String, _ value: JSONValue) {
            self.key = key
            self.value = value
        }
    }

    /// Parses one JSON text strictly (see `JSONScanner`).
    public init(parsing bytes: [UInt8], limits: JSONLimits = JSONLimits()) throws(HeraldError) {
        let tape = try JSONScanner.scan(bytes, limits: limits)
        self = bytes.withUnsafeBytes { JSONValue(tape: tape, index: 0, bytes: $0) }
    }

    /// Parses one JSON text given as a Swift string.
    public init(parsing text: String, limits: JSONLimits = JSONLimits()) throws(HeraldError) {
        try self.init(parsing: Array(text.utf8), limits: limits)
    }

    /// Builds the value of the tape node at `index`.
    public init(tape: JSONTape, index: Int, bytes: UnsafeRawBufferPointer) {
        let node = tape.nodes[index]
        switch node.kind {
        case .object:
            var members: [Member] = []
            members.reserveCapacity(Int(node.count))
            tape.forEachMember(ofObjectAt: index) { keyIndex, valueIndex in
                members.append(Member(tape.string(at: keyIndex, in: bytes), JSONValue(tape: tape, index: valueIndex, bytes: bytes)))
            }
            self = .object(members)
        case .array:
            var elements: [JSONValue] = []
            elements.reserveCapacity(Int(node.count))
            tape.forEachElement(ofArrayAt: index) { elementIndex in
                elements.append(JSONValue(tape: tape, index: elementIndex, bytes: bytes))
            }
            self = .array(elements)
        case .string: self = .string(tape.string(at: index, in: bytes))
        case .number: self = .number(tape.number(at: index, in: bytes))
        case .true: self = .bool(true)
        case .false: self = .bool(false)
        case .null: self = .null
        }
    }

    /// The member named `key` of an object, or nil.
    public subscript(key: String) -> JSONValue? {
        guard case .object(let members) = self else { return nil }
        return members.first(where: { $0.key == key })?.value
    }

    /// The element at `index` of an array, or nil.
    public subscript(index: Int) -> JSONValue? {
        guard case .array(let elements) = self, elements.indices.contains(index) else { return nil }
        return elements[index]
    }

    public var stringValue: String? {
        if case .string(let s) = self { return s }
        return nil
    }

    public var objectMembers: [Member]? {
        if case .object(let m) = self { return m }
        return nil
    }

    /// A short name of the value's kind, for error messages.
    public var kindName: String {
        switch self {
        case .object: "an object"
        case .array: "an array"
        case .string: "a string"
        case .number: "a number"
        case .bool: "a boolean"
        case .null: "null"
        }
    }

    /// Compact JSON text of the value.
    public var serialized: String {
        var out: [UInt8] = []
        JSONWriter.write(self, into: &out)
        return String(decoding: out, as: UTF8.self)
    }
}

/// Writes JSON text into a byte buffer: escaping, numbers, values.
public enum JSONWriter {
    /// Appends `value` as compact JSON.
    public static func write(_ value: JSONValue, into out: inout [UInt8]) {
        switch value {
        case .object(let members):
            out.append(UInt8(ascii: "{"))
            for (i, m) in members.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                writeString(m.key, into: &out)
                out.append(UInt8(ascii: ":"))
                write(m.value, into: &out)
            }
            out.append(UInt8(ascii: "}"))
        case .array(let elements):
            out.append(UInt8(ascii: "["))
            for (i, e) in elements.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                write(e, into: &out)
            }
            out.append(UInt8(ascii: "]"))
        case .string(let s): writeString(s, into: &out)
        case .number(let d): writeNumber(d, into: &out)
        case .bool(let b): out.append(contentsOf: (b ? "true" : "false").utf8)
        case .null: out.append(contentsOf: "null".utf8)
        }
    }

    /// Appends `text` as a JSON string literal with the escapes RFC 8259 requires.
    public static func writeString(_ text: String, into out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\""): out.append(contentsOf: [0x5C, 0x22])
            case UInt8(ascii: "\\"): out.append(contentsOf: [0x5C, 0x5C])
            case 0x0A: out.append(contentsOf: [0x5C, UInt8(ascii: "n")])
            case 0x0D: out.append(contentsOf: [0x5C, UInt8(ascii: "r")])
            case 0x09: out.append(contentsOf: [0x5C, UInt8(ascii: "t")])
            case 0..<0x20:
                let hex: [UInt8] = Array("0123456789abcdef".utf8)
                out.append(contentsOf: [
                    0x5C, UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0"), hex[Int(byte >> 4)], hex[Int(byte & 0xF)],
                ])
            default: out.append(byte)
            }
        }
        out.append(UInt8(ascii: "\""))
    }

    /// Appends a number: integers without a fraction, others in Swift's shortest round-trip form.
    public static func writeNumber(_ value: Double, into out: inout [UInt8]) {
        if value.isFinite, value == value.rounded(), abs(value) < 1e15 {
            writeInteger(Int64(value), into: &out)
        } else if value.isFinite {
            out.append(contentsOf: "\(value)".utf8)
        } else {
            out.append(contentsOf: "null".utf8)
        }
    }

    /// Appends a decimal integer without allocating.
    public static func writeInteger<T: BinaryInteger>(_ value: T, into out: inout [UInt8]) {
        if value < 0 { out.append(UInt8(ascii: "-")) }
        var magnitude = UInt64(value.magnitude)
        if magnitude == 0 {
            out.append(UInt8(ascii: "0"))
            return
        }
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)  // 24 bytes of scratch, enough for 20 digits
        var count = 0
        withUnsafeMutableBytes(of: &digits) { scratch in
            while magnitude > 0 {
                scratch[count] = UInt8(ascii: "0") + UInt8(magnitude % 10)
                magnitude /= 10
                count += 1
            }
            for i in stride(from: count - 1, through: 0, by: -1) { out.append(scratch[i]) }
        }
    }
}
