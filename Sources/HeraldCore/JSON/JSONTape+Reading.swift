/// Reading values off a scanned tape.
///
/// Every reader takes the same bytes that were scanned (`in bytes:`): the tape holds
/// offsets, not copies. Lookups and comparisons work on those bytes in place and allocate
/// nothing unless a `String` is asked for. Readers trust the tape (it only comes from
/// `JSONScanner`), but stay memory-safe if handed the wrong bytes: offsets are checked
/// against `bytes.count` and escape decoding never reads outside the node's content.
extension JSONTape {
    /// Index of the value of member `key` in the object at `objectIndex`, or nil when the
    /// object has no such member or the node at `objectIndex` is not an object.
    ///
    /// Why: routing and validation read a handful of fields (`source`, `data.sensorId`)
    /// per event; this finds them without building anything. Keys without escapes are
    /// compared as raw bytes; escaped keys are decoded on the fly, still without allocating.
    ///
    /// - Complexity: O(m + k) for m members and a key of k bytes.
    public func member(_ key: StaticString, inObjectAt objectIndex: Int, in bytes: UnsafeRawBufferPointer) -> Int? {
        key.withUTF8Buffer { utf8 in
            member(utf8: UnsafeRawBufferPointer(utf8), inObjectAt: objectIndex, in: bytes)
        }
    }

    /// Index of the value of member `key` in the object at `objectIndex`, or nil.
    ///
    /// The `String` form of `member(_:inObjectAt:in:)`, for keys only
    /// known at run time (pattern field names, configured paths).
    ///
    /// - Complexity: O(m + k) for m members and a key of k bytes.
    public func member(_ key: String, inObjectAt objectIndex: Int, in bytes: UnsafeRawBufferPointer) -> Int? {
        var key = key
        return key.withUTF8 { utf8 in
            member(utf8: UnsafeRawBufferPointer(utf8), inObjectAt: objectIndex, in: bytes)
        }
    }

    /// Index of the value of the member whose decoded key is exactly the UTF-8 bytes
    /// `key`, in the object at `objectIndex`, or nil.
    ///
    /// The primitive behind the `StaticString` and `String` forms, for callers that keep
    /// keys as bytes (a compiled pattern).
    ///
    /// - Complexity: O(m + k) for m members and a key of k bytes.
    public func member(
        utf8 key: UnsafeRawBufferPointer, inObjectAt objectIndex: Int, in bytes: UnsafeRawBufferPointer
    )
        -> Int?
    {
        let object = nodes[objectIndex]
        guard object.kind == .object, object.count > 0 else { return nil }
        precondition(Int(object.end) <= bytes.count, "JSONTape: bytes are not the ones that were scanned")
        let base = bytes.baseAddress!
        var k = objectIndex + 1
        for _ in 0..<Int(object.count) {
            if stringContentEquals(at: k, key, base: base) { return k + 1 }
            k = Int(nodes[k + 1].next)
        }
        return nil
    }

    /// Decoded string value of the string node at `index` (escapes resolved, `\u`
    /// surrogate pairs joined, `\u0000` kept as U+0000).
    ///
    /// Why: the cold paths (error messages, ids in acknowledgements, the CLI) need a real
    /// `String`; the hot paths use ``stringEquals(at:_:in:)`` instead.
    ///
    /// - Complexity: O(k) for k content bytes; one allocation for content over 15 bytes.
    public func string(at index: Int, in bytes: UnsafeRawBufferPointer) -> String {
        let node = nodes[index]
        precondition(node.kind == .string, "JSONTape.string(at:): node \(index) is \(node.kind), not a string")
        precondition(Int(node.end) <= bytes.count, "JSONTape: bytes are not the ones that were scanned")
        return decodedString(at: index, base: bytes.baseAddress!)
    }

    /// True when the string node at `index` decodes to exactly the UTF-8 bytes `utf8`.
    ///
    /// Why: matching an event against pattern values compares many strings and builds
    /// none. No allocation; a node without escapes is a length check and a byte compare.
    ///
    /// - Complexity: O(k) for k content bytes.
    public func stringEquals(at index: Int, _ utf8: UnsafeRawBufferPointer, in bytes: UnsafeRawBufferPointer) -> Bool {
        let node = nodes[index]
        precondition(node.kind == .string, "JSONTape.stringEquals(at:): node \(index) is \(node.kind), not a string")
        precondition(Int(node.end) <= bytes.count, "JSONTape: bytes are not the ones that were scanned")
        return stringContentEquals(at: index, utf8, base: bytes.baseAddress!)
    }

    /// Double value of the number node at `index`, with float64 semantics like
    /// `JSON.parse` (correctly rounded; `1e400` is `+infinity`, `-0.0` keeps its sign).
    ///
    /// Why: `numeric` pattern ranges and exact number matches compare by value. Numbers
    /// with at most 19 significant digits and a small exponent are converted exactly in
    /// place (Clinger's fast path); others go through the standard library's parser.
    ///
    /// - Complexity: O(k) for k bytes of the token.
    public func number(at index: Int, in bytes: UnsafeRawBufferPointer) -> Double {
        let node = nodes[index]
        precondition(node.kind == .number, "JSONTape.number(at:): node \(index) is \(node.kind), not a number")
        precondition(Int(node.end) <= bytes.count, "JSONTape: bytes are not the ones that were scanned")
        let base = bytes.baseAddress!
        let start = Int(node.start)
        let end = Int(node.end)
        if let value = JSONTape.fastNumber(base, start, end) { return value }
        let text = String(decoding: UnsafeRawBufferPointer(start: base + start, count: end - start), as: UTF8.self)
        return Double(text) ?? .nan
    }

    /// Calls `body(keyIndex, valueIndex)` for each member of the object at `objectIndex`,
    /// in document order.
    ///
    /// Why: walking an object without knowing its tape layout (key, value, then the
    /// value's `next`).
    ///
    /// - Complexity: O(m) for m members, plus the cost of `body`.
    public func forEachMember<E: Error>(
        ofObjectAt objectIndex: Int, _ body: (_ keyIndex: Int, _ valueIndex: Int) throws(E) -> Void
    ) throws(E) {
        let object = nodes[objectIndex]
        precondition(object.kind == .object, "JSONTape.forEachMember: node \(objectIndex) is \(object.kind)")
        var k = objectIndex + 1
        for _ in 0..<Int(object.count) {
            try body(k, k + 1)
            k = Int(nodes[k + 1].next)
        }
    }

    /// Calls `body(elementIndex)` for each element of the array at `arrayIndex`, in order.
    ///
    /// Why: a pattern matches an array field if any element matches; this walks the
    /// elements by their `next` links, skipping nested subtrees in O(1) each.
    ///
    /// - Complexity: O(e) for e elements, plus the cost of `body`.
    public func forEachElement<E: Error>(
        ofArrayAt arrayIndex: Int, _ body: (_ elementIndex: Int) throws(E) -> Void
    )
        throws(E)
    {
        let array = nodes[arrayIndex]
        precondition(array.kind == .array, "JSONTape.forEachElement: node \(arrayIndex) is \(array.kind)")
        var e = arrayIndex + 1
        for _ in 0..<Int(array.count) {
            try body(e)
            e = Int(nodes[e].next)
        }
    }
}

// MARK: - Internal helpers shared with the scanner

extension JSONTape {
    /// True when the content of string node `index` decodes to exactly `utf8`.
    func stringContentEquals(at index: Int, _ utf8: UnsafeRawBufferPointer, base: UnsafeRawPointer) -> Bool {
        let node = nodes[index]
        let start = Int(node.start)
        let length = Int(node.end) - start
        if !node.hasEscapes {
            guard length == utf8.count else { return false }
            return length == 0 || JSONTape.bytesEqual(base + start, utf8.baseAddress!, count: length)
        }
        // Decoded content is never longer than the raw content.
        guard utf8.count <= length else { return false }
        var decoder = JSONStringDecoder(base: base, start: start, end: Int(node.end))
        var i = 0
        while let b = decoder.next() {
            guard i < utf8.count, utf8[i] == b else { return false }
            i += 1
        }
        return i == utf8.count
    }

    /// True when string nodes `a` and `b` decode to the same bytes.
    func stringContentEqual(_ a: Int, _ b: Int, base: UnsafeRawPointer) -> Bool {
        JSONTape.stringContentEqual(nodes[a], nodes[b], base: base)
    }

    /// True when string nodes `nodeA` and `nodeB` decode to the same bytes.
    static func stringContentEqual(_ nodeA: Node, _ nodeB: Node, base: UnsafeRawPointer) -> Bool {
        let startA = Int(nodeA.start)
        let startB = Int(nodeB.start)
        let lengthA = Int(nodeA.end) - startA
        let lengthB = Int(nodeB.end) - startB
        if !nodeA.hasEscapes && !nodeB.hasEscapes {
            return lengthA == lengthB && JSONTape.bytesEqual(base + startA, base + startB, count: lengthA)
        }
        var decoderA = JSONStringDecoder(base: base, start: startA, end: Int(nodeA.end))
        var decoderB = JSONStringDecoder(base: base, start: startB, end: Int(nodeB.end))
        while true {
            let x = decoderA.next()
            guard x == decoderB.next() else { return false }
            if x == nil { return true }
        }
    }

    /// A per-process seeded hash of the decoded content of string node `index`: equal
    /// decoded strings hash equally whether or not they were written with escapes.
    func stringContentHash(at index: Int, base: UnsafeRawPointer) -> Int {
        let node = nodes[index]
        let start = Int(node.start)
        let length = Int(node.end) - start
        var hasher = Hasher()
        if !node.hasEscapes {
            hasher.combine(bytes: UnsafeRawBufferPointer(start: base + start, count: length))
        } else {
            JSONStringDecoder.withDecoded(base: base, start: start, end: Int(node.end)) { hasher.combine(bytes: $0) }
        }
        return hasher.finalize()
    }

    /// The decoded content of string node `index` as a `String`.
    func decodedString(at index: Int, base: UnsafeRawPointer) -> String {
        let node = nodes[index]
        let start = Int(node.start)
        let length = Int(node.end) - start
        let raw = UnsafeRawBufferPointer(start: base + start, count: length)
        guard node.hasEscapes else { return String(decoding: raw, as: UTF8.self) }
        return String(unsafeUninitializedCapacity: length) { buffer in
            JSONStringDecoder.decode(base: base, start: start, end: Int(node.end), into: UnsafeMutableRawPointer(buffer.baseAddress!))
        }
    }

    static func bytesEqual(_ a: UnsafeRawPointer, _ b: UnsafeRawPointer, count: Int) -> Bool {
        var i = 0
        while i + 8 <= count {
            if a.loadUnaligned(fromByteOffset: i, as: UInt64.self) != b.loadUnaligned(fromByteOffset: i, as: UInt64.self) {
                return false
            }
            i += 8
        }
        while i < count {
            if a.load(fromByteOffset: i, as: UInt8.self) != b.load(fromByteOffset: i, as: UInt8.self) { return false }
            i += 1
        }
        return true
    }

    /// Exact powers of ten representable in a Double (10^0 ... 10^22).
    static let exactPowersOfTen: [Double] = [
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
        1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
    ]

    /// Clinger's fast path: when the decimal significand fits in 53 bits and the decimal
    /// exponent is within ±22, one exact multiplication or division by an exact power of
    /// ten gives the correctly rounded result. Returns nil when the slow path is needed.
    static func fastNumber(_ base: UnsafeRawPointer, _ start: Int, _ end: Int) -> Double? {
        var i = start
        let negative = base.load(fromByteOffset: i, as: UInt8.self) == UInt8(ascii: "-")
        if negative { i += 1 }
        var significand: UInt64 = 0
        var digits = 0
        var exponent = 0
        var inFraction = false
        while i < end {
            let c = base.load(fromByteOffset: i, as: UInt8.self)
            if c == UInt8(ascii: ".") {
                inFraction = true
            } else if c &- UInt8(ascii: "0") < 10 {
                let digit = UInt64(c &- UInt8(ascii: "0"))
                if significand != 0 || digit != 0 {
                    guard digits < 19 else { return nil }
                    significand = significand &* 10 &+ digit
                    digits += 1
                }
                if inFraction { exponent -= 1 }
            } else {
                break  // 'e' or 'E'
            }
            i += 1
        }
        if i < end {
            i += 1
            var exponentNegative = false
            let sign = base.load(fromByteOffset: i, as: UInt8.self)
            if sign == UInt8(ascii: "-") || sign == UInt8(ascii: "+") {
                exponentNegative = sign == UInt8(ascii: "-")
                i += 1
            }
            var value = 0
            while i < end {
                if value < 100_000 { value = value * 10 + Int(base.load(fromByteOffset: i, as: UInt8.self) &- 48) }
                i += 1
            }
            exponent += exponentNegative ? -value : value
        }
        if significand == 0 { return negative ? -0.0 : 0.0 }
        guard significand <= 1 << 53, exponent >= -22, exponent <= 22 else { return nil }
        var value = Double(significand)
        if exponent < 0 {
            value /= exactPowersOfTen[-exponent]
        } else {
            value *= exactPowersOfTen[exponent]
        }
        return negative ? -value : value
    }
}

/// Decodes the content of a scanned JSON string to UTF-8 one byte at a time, resolving
/// escapes and joining `\u` surrogate pairs, without allocating.
///
/// Reads never leave `start..<end`; malformed input (only possible when the caller
/// passes bytes other than the scanned ones) decodes to U+FFFD instead of trapping.
struct JSONStringDecoder: IteratorProtocol {
    let base: UnsafeRawPointer
    var position: Int
    let end: Int
    /// UTF-8 bytes of the current escape still to be returned, lowest byte first.
    var pending: UInt32 = 0
    var pendingCount = 0

    init(base: UnsafeRawPointer, start: Int, end: Int) {
        self.base = base
        self.position = start
        self.end = end
    }

    /// Decodes the content of `start..<end` into `out`, which must hold `end - start`
    /// bytes (decoded content is never longer than the raw); returns the decoded length.
    static func decode(base: UnsafeRawPointer, start: Int, end: Int, into out: UnsafeMutableRawPointer) -> Int {
        var decoder = JSONStringDecoder(base: base, start: start, end: end)
        var n = 0
        while n < end - start, let b = decoder.next() {
            out.storeBytes(of: b, toByteOffset: n, as: UInt8.self)
            n += 1
        }
        return n
    }

    /// Calls `body` with the decoded content of `start..<end`, held in a temporary buffer.
    static func withDecoded<R>(base: UnsafeRawPointer, start: Int, end: Int, _ body: (UnsafeRawBufferPointer) -> R) -> R {
        withUnsafeTemporaryAllocation(byteCount: max(end - start, 1), alignment: 1) { buffer in
            let n = decode(base: base, start: start, end: end, into: buffer.baseAddress!)
            return body(UnsafeRawBufferPointer(rebasing: buffer[0..<n]))
        }
    }

    func byte(_ offset: Int) -> UInt8 {
        offset < end ? base.load(fromByteOffset: offset, as: UInt8.self) : 0
    }

    mutating func next() -> UInt8? {
        if pendingCount > 0 {
            let b = UInt8(truncatingIfNeeded: pending)
            pending >>= 8
            pendingCount -= 1
            return b
        }
        guard position < end else { return nil }
        let c = byte(position)
        guard c == UInt8(ascii: "\\") else {
            position += 1
            return c
        }
        let escape = byte(position + 1)
        position += 2
        switch escape {
        case UInt8(ascii: "b"): return 0x08
        case UInt8(ascii: "f"): return 0x0C
        case UInt8(ascii: "n"): return 0x0A
        case UInt8(ascii: "r"): return 0x0D
        case UInt8(ascii: "t"): return 0x09
        case UInt8(ascii: "u"): break
        default: return escape  // \" \\ \/
        }
        var scalar = hex4(at: position)
        position += 4
        if scalar & 0xFC00 == 0xD800 {
            if byte(position) == UInt8(ascii: "\\") && byte(position + 1) == UInt8(ascii: "u") {
                let low = hex4(at: position + 2)
                if low & 0xFC00 == 0xDC00 {
                    scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    position += 6
                } else {
                    scalar = 0xFFFD
                }
            } else {
                scalar = 0xFFFD
            }
        } else if scalar & 0xFC00 == 0xDC00 {
            scalar = 0xFFFD
        }
        return emit(scalar)
    }

    private func hex4(at offset: Int) -> UInt32 {
        var unit: UInt32 = 0
        for k in 0..<4 {
            let c = byte(offset + k)
            let digit: UInt32
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = UInt32(c &- UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = UInt32(c &- UInt8(ascii: "a") &+ 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = UInt32(c &- UInt8(ascii: "A") &+ 10)
            default: return 0xFFFD
            }
            unit = unit << 4 | digit
        }
        return unit
    }

    /// Returns the first UTF-8 byte of `scalar` and queues the rest.
    private mutating func emit(_ scalar: UInt32) -> UInt8 {
        switch scalar {
        case 0..<0x80:
            return UInt8(scalar)
        case 0x80..<0x800:
            pending = 0x80 | (scalar & 0x3F)
            pendingCount = 1
            return UInt8(0xC0 | (scalar >> 6))
        case 0x800..<0x10000:
            pending = (0x80 | ((scalar >> 6) & 0x3F)) | (0x80 | (scalar & 0x3F)) << 8
            pendingCount = 2
            return UInt8(0xE0 | (scalar >> 12))
        default:
            pending =
                (0x80 | ((scalar >> 12) & 0x3F)) | (0x80 | ((scalar >> 6) & 0x3F)) << 8 | (0x80 | (scalar & 0x3F)) << 16
            pendingCount = 3
            return UInt8(0xF0 | (scalar >> 18))
        }
    }
}
