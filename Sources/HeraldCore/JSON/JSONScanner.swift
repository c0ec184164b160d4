/// Limits the scanner enforces while it reads, so hostile input is refused early.
public struct JSONLimits: Sendable, Equatable {
    /// Maximum nesting depth of objects and arrays (the root container is depth 1).
    public var maxDepth: Int

    /// Creates scanner limits. The default depth of 64 is far above any real event and
    /// far below anything that would strain a reader that recurses over the tape.
    public init(maxDepth: Int = 64) { self.maxDepth = maxDepth }
}

/// A strict RFC 8259 JSON validator that records what it reads on a `JSONTape`.
///
/// Every event Herald accepts passes through this scanner once, so it is written for the
/// hot path: one pass over raw bytes, no tree of Swift values, no `String` per value, and
/// the only allocation is the growth of the tape's node array (a reused tape has none).
/// It is also the gate against hostile input, so it is strict where JSON parsers are often
/// lenient: UTF-8 is validated, lone surrogates, duplicate keys, leading zeros, comments,
/// trailing commas, trailing garbage and numbers beyond a 64-bit float (`1e400`) are
/// refused, and nesting is bounded by `JSONLimits.maxDepth`.
///
/// Every syntax error is a `HeraldError` with code `.invalidJSON`, a precise message and
/// the byte offset of the fault:
/// - end of input where more was needed: the input length ("unexpected end of input");
///   inside a string: the opening quote ("unterminated string");
/// - a bad escape or lone surrogate: its backslash;
/// - malformed UTF-8: the first byte of the malformed sequence;
/// - a duplicate key: the opening quote of the second occurrence;
/// - a trailing comma: the comma; anything else: the offending byte.
public enum JSONScanner {}

extension JSONScanner {
    /// Validates `bytes` as one complete JSON text (whitespace allowed around it) and
    /// appends its nodes to `tape` (call `tape.removeAll()` first if reusing).
    ///
    /// This is the hot-path entry: reuse one tape per thread and nothing is allocated
    /// once the tape has grown to the size of the usual event. On error the tape is left
    /// as it was before the call.
    ///
    /// - Complexity: O(n) in the length of `bytes`, including duplicate-key detection
    ///   (linear scan for objects of up to 16 members, a hash set above).
    public static func scan(
        _ bytes: UnsafeRawBufferPointer,
        limits: JSONLimits = JSONLimits(),
        into tape: inout JSONTape
    ) throws(HeraldError) {
        guard bytes.count < Int(UInt32.max) else {
            throw HeraldError(.bodyTooLarge, "JSON text larger than 4 GiB", offset: 0)
        }
        guard let base = bytes.baseAddress, bytes.count > 0 else {
            throw HeraldError(.invalidJSON, "unexpected end of input", offset: 0)
        }
        let count = bytes.count
        // A typical event has roughly one node per 16 bytes; the array grows past that.
        // Reserve only when short, and geometrically, so appending many texts stays O(n).
        let expected = tape.nodes.count + count / 16 + 8
        if tape.nodes.capacity < expected {
            tape.nodes.reserveCapacity(max(expected, tape.nodes.capacity * 2))
        }
        let firstNode = tape.nodes.count
        let frameCapacity = max(0, min(limits.maxDepth, count)) + 1
        do {
            try withUnsafeTemporaryAllocation(of: JSONScanFrame.self, capacity: frameCapacity) {
                (frames) throws(HeraldError) in
                var scanner = JSONScanCursor(
                    base: base, count: count, frames: frames.baseAddress!, maxDepth: limits.maxDepth)
                try scanner.run(into: &tape)
            }
        } catch {
            tape.nodes.removeSubrange(firstNode...)
            throw error
        }
    }

    /// Validates `bytes` as one complete JSON text and returns a new tape of its nodes.
    ///
    /// A convenience for tests and cold paths (configuration, the CLI); the ingest path
    /// uses ``scan(_:limits:into:)`` with a reused tape.
    ///
    /// - Complexity: O(n) in the length of `bytes`.
    public static func scan(_ bytes: [UInt8], limits: JSONLimits = JSONLimits()) throws(HeraldError) -> JSONTape {
        var tape = JSONTape()
        var failure: HeraldError?
        bytes.withUnsafeBytes { raw in
            do throws(HeraldError) {
                try scan(raw, limits: limits, into: &tape)
            } catch {
                failure = error
            }
        }
        if let failure { throw failure }
        return tape
    }
}

// MARK: - Scanner state

/// One open container on the scanner's explicit stack.
struct JSONScanFrame {
    /// Tape index of the container node.
    var index: UInt32
    /// Members (objects) or elements (arrays) seen so far.
    var count: UInt32
    var isObject: Bool
    /// True once the object has a key hash set (pushed on `JSONScanCursor.keySets`).
    var hasKeySet: Bool
}

/// The scanner proper: a cursor over the input, the container stack and the key sets of
/// large objects. Only `JSONScanner.scan` creates one.
struct JSONScanCursor {
    /// Objects with more members than this get a hash set for duplicate detection.
    static let linearKeyLimit = 16

    let base: UnsafeRawPointer
    let count: Int
    let frames: UnsafeMutablePointer<JSONScanFrame>
    let maxDepth: Int
    var depth = 0
    /// Hash sets of the open objects that passed `linearKeyLimit`, innermost last.
    var keySets: [JSONKeySet] = []

    init(base: UnsafeRawPointer, count: Int, frames: UnsafeMutablePointer<JSONScanFrame>, maxDepth: Int) {
        self.base = base
        self.count = count
        self.frames = frames
        self.maxDepth = maxDepth
    }

    func byte(_ offset: Int) -> UInt8 { base.load(fromByteOffset: offset, as: UInt8.self) }

    func skipWhitespace(_ start: Int) -> Int {
        var i = start
        while i < count {
            let c = byte(i)
            if c > 0x20 || (c != 0x20 && c != 0x0A && c != 0x0D && c != 0x09) { return i }
            i += 1
        }
        return i
    }

    /// Scans the whole text; iterative, so deep nesting cannot overflow the call stack.
    mutating func run(into tape: inout JSONTape) throws(HeraldError) {
        var pos = skipWhitespace(0)
        valueLoop: while true {
            // A value starts at `pos` (whitespace already skipped).
            guard pos < count else { throw JSONScanCursor.endOfInput(count) }
            switch byte(pos) {
            case UInt8(ascii: "\""):
                pos = try scanStringNode(quote: pos, into: &tape)
            case UInt8(ascii: "{"):
                try open(at: pos, isObject: true, into: &tape)
                pos = skipWhitespace(pos + 1)
                if pos < count && byte(pos) == UInt8(ascii: "}") {
                    close(at: pos, into: &tape)
                    pos += 1
                } else {
                    pos = try scanMemberKey(at: pos, into: &tape)
                    continue valueLoop
                }
            case UInt8(ascii: "["):
                try open(at: pos, isObject: false, into: &tape)
                pos = skipWhitespace(pos + 1)
                if pos < count && byte(pos) == UInt8(ascii: "]") {
                    close(at: pos, into: &tape)
                    pos += 1
                } else {
                    frames[depth - 1].count = 1
                    continue valueLoop
                }
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
                pos = try scanNumber(at: pos, into: &tape)
            case UInt8(ascii: "t"):
                pos = try scanLiteral(at: pos, 0x6575_7274, "true", .true, into: &tape)
            case UInt8(ascii: "f"):
                pos = try scanLiteral(at: pos + 1, 0x6573_6C61, "false", .false, into: &tape, start: pos)
            case UInt8(ascii: "n"):
                pos = try scanLiteral(at: pos, 0x6C6C_756E, "null", .null, into: &tape)
            default:
                throw unexpected(at: pos, expecting: "a JSON value")
            }

            // A value ended just before `pos`: continue its container, or finish.
            while true {
                pos = skipWhitespace(pos)
                guard depth > 0 else {
                    if pos != count {
                        throw HeraldError(.invalidJSON, "trailing characters after JSON value", offset: pos)
                    }
                    return
                }
                guard pos < count else { throw JSONScanCursor.endOfInput(count) }
                let c = byte(pos)
                let isObject = frames[depth - 1].isObject
                if c == UInt8(ascii: ",") {
                    let comma = pos
                    pos = skipWhitespace(pos + 1)
                    if pos < count && byte(pos) == (isObject ? UInt8(ascii: "}") : UInt8(ascii: "]")) {
                        throw HeraldError(
                            .invalidJSON, isObject ? "trailing comma in object" : "trailing comma in array",
                            offset: comma)
                    }
                    if isObject {
                        pos = try scanMemberKey(at: pos, into: &tape)
                    } else {
                        frames[depth - 1].count &+= 1
                    }
                    continue valueLoop
                }
                if c == (isObject ? UInt8(ascii: "}") : UInt8(ascii: "]")) {
                    close(at: pos, into: &tape)
                    pos += 1
                    continue
                }
                throw unexpected(
                    at: pos,
                    expecting: isObject ? "',' or '}' after object member" : "',' or ']' after array element")
            }
        }
    }

    // MARK: Containers

    // The benchmark showed it helps: callgrind on the vibration-event scan loop counts
    // 9,244 -> 9,148 instructions per event (-1%) with this inlined.
    @inline(__always)
    mutating func open(at pos: Int, isObject: Bool, into tape: inout JSONTape) throws(HeraldError) {
        guard depth < maxDepth else {
            throw HeraldError(.invalidJSON, "nesting deeper than \(maxDepth)", offset: pos)
        }
        let index = UInt32(truncatingIfNeeded: tape.nodes.count)
        tape.nodes.append(
            JSONTape.Node(kind: isObject ? .object : .array, start: UInt32(truncatingIfNeeded: pos), end: 0, next: 0))
        frames[depth] = JSONScanFrame(index: index, count: 0, isObject: isObject, hasKeySet: false)
        depth += 1
    }

    mutating func close(at pos: Int, into tape: inout JSONTape) {
        depth -= 1
        let frame = frames[depth]
        let next = UInt32(truncatingIfNeeded: tape.nodes.count)
        tape.nodes.withUnsafeMutableBufferPointer { nodes in
            let i = Int(frame.index)
            nodes[i].end = UInt32(truncatingIfNeeded: pos + 1)
            nodes[i].next = next
            nodes[i].count = frame.count
        }
        if frame.hasKeySet { keySets.removeLast() }
    }

    /// Scans `"key"` `:` at `pos` for the innermost object, checks it is not a duplicate,
    /// and returns the position of the member's value.
    mutating func scanMemberKey(at start: Int, into tape: inout JSONTape) throws(HeraldError) -> Int {
        guard start < count else { throw JSONScanCursor.endOfInput(count) }
        guard byte(start) == UInt8(ascii: "\"") else {
            throw unexpected(at: start, expecting: "a string key")
        }
        let keyIndex = tape.nodes.count
        var pos = try scanStringNode(quote: start, into: &tape)
        let previous = Int(frames[depth - 1].count)
        if previous > 0 {
            try checkDuplicate(keyIndex: keyIndex, previousMembers: previous, tape: tape)
        }
        frames[depth - 1].count &+= 1
        pos = skipWhitespace(pos)
        guard pos < count else { throw JSONScanCursor.endOfInput(count) }
        guard byte(pos) == UInt8(ascii: ":") else {
            throw unexpected(at: pos, expecting: "':' after object key")
        }
        return skipWhitespace(pos + 1)
    }

    // MARK: Strings

    // The benchmark showed it helps: callgrind on the vibration-event scan loop counts
    // 9,666 -> 9,148 instructions per event (-5%) with this inlined into `run` and
    // `scanMemberKey`; the optimizer does not do it by itself.
    @inline(__always)
    mutating func scanStringNode(quote: Int, into tape: inout JSONTape) throws(HeraldError) -> Int {
        let (end, hasEscapes) = try scanString(quote: quote)
        tape.nodes.append(
            JSONTape.Node(
                kind: .string, hasEscapes: hasEscapes, start: UInt32(truncatingIfNeeded: quote + 1),
                end: UInt32(truncatingIfNeeded: end), next: UInt32(truncatingIfNeeded: tape.nodes.count + 1)))
        return end + 1
    }

    /// Validates the string whose opening quote is at `quote`; returns the offset of the
    /// closing quote and whether the content holds escapes.
    func scanString(quote: Int) throws(HeraldError) -> (end: Int, hasEscapes: Bool) {
        var i = quote + 1
        var hasEscapes = false
        while true {
            // Eight bytes at a time while none of them is special (quote, backslash,
            // control character or non-ASCII); stop exactly at the first special byte.
            while i &+ 8 <= count {
                let word = UInt64(littleEndian: base.loadUnaligned(fromByteOffset: i, as: UInt64.self))
                let special = JSONScanCursor.specialByteMask(word)
                if special != 0 {
                    i &+= special.trailingZeroBitCount &>> 3
                    break
                }
                i &+= 8
            }
            guard i < count else {
                throw HeraldError(.invalidJSON, "unterminated string", offset: quote)
            }
            let c = byte(i)
            if c == UInt8(ascii: "\"") { return (i, hasEscapes) }
            if c == UInt8(ascii: "\\") {
                hasEscapes = true
                i = try scanEscape(at: i)
                if i >= count { throw HeraldError(.invalidJSON, "unterminated string", offset: quote) }
            } else if c >= 0x80 {
                i = try scanUTF8(at: i)
            } else if c < 0x20 {
                throw HeraldError(
                    .invalidJSON, "unescaped control character \(JSONScanCursor.hexByte(c)) in string", offset: i)
            } else {
                i &+= 1
            }
        }
    }

    /// High bit set in each byte lane of `word` that holds `"`, `\`, a byte < 0x20 or a
    /// byte >= 0x80. Lanes above the first flagged one may be flagged spuriously (borrow),
    /// never lanes below it, so the lowest flag is exact.
    static func specialByteMask(_ word: UInt64) -> UInt64 {
        let ones: UInt64 = 0x0101_0101_0101_0101
        let high: UInt64 = 0x8080_8080_8080_8080
        let quotes = word ^ (ones &* 0x22)
        let backslashes = word ^ (ones &* 0x5C)
        let hasQuote = (quotes &- ones) & ~quotes
        let hasBackslash = (backslashes &- ones) & ~backslashes
        let hasControl = (word &- ones &* 0x20) & ~word
        return (hasQuote | hasBackslash | hasControl | word) & high
    }

    /// Validates the escape whose backslash is at `i`; returns the offset after it, or
    /// `count` when the input ends inside it.
    func scanEscape(at i: Int) throws(HeraldError) -> Int {
        guard i + 1 < count else { return count }
        switch byte(i + 1) {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"), UInt8(ascii: "f"),
            UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
            return i + 2
        case UInt8(ascii: "u"):
            guard let unit = try hex4(escapeAt: i) else { return count }
            if unit & 0xFC00 == 0xDC00 { throw JSONScanCursor.loneSurrogate(unit, at: i) }
            guard unit & 0xFC00 == 0xD800 else { return i + 6 }
            // A high surrogate must be followed at once by a `\u` low surrogate.
            let low = i + 6
            guard low < count else { return count }
            guard byte(low) == UInt8(ascii: "\\") else { throw JSONScanCursor.loneSurrogate(unit, at: i) }
            guard low + 1 < count else { return count }
            guard byte(low + 1) == UInt8(ascii: "u") else { throw JSONScanCursor.loneSurrogate(unit, at: i) }
            guard let lowUnit = try hex4(escapeAt: low) else { return count }
            guard lowUnit & 0xFC00 == 0xDC00 else { throw JSONScanCursor.loneSurrogate(unit, at: i) }
            return low + 6
        default:
            throw JSONScanCursor.invalidEscape(byte(i + 1), at: i)
        }
    }

    /// The code unit of the `\uXXXX` escape at `i`, or nil when the input ends inside it.
    func hex4(escapeAt i: Int) throws(HeraldError) -> UInt32? {
        var unit: UInt32 = 0
        for k in 2..<6 {
            guard i + k < count else { return nil }
            let c = byte(i + k)
            let digit: UInt8
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = c &- UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = c &- UInt8(ascii: "a") &+ 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = c &- UInt8(ascii: "A") &+ 10
            default:
                throw HeraldError(.invalidJSON, "invalid \\u escape: expected 4 hex digits", offset: i)
            }
            unit = unit << 4 | UInt32(digit)
        }
        return unit
    }

    /// Validates the multi-byte UTF-8 sequence whose lead byte is at `i` (RFC 3629:
    /// no overlong forms, no surrogates, nothing above U+10FFFF); returns the offset after it.
    func scanUTF8(at i: Int) throws(HeraldError) -> Int {
        let lead = byte(i)
        guard let (length, secondLow, secondHigh) = UTF8Validation.rule(lead: lead) else {
            throw HeraldError(.invalidJSON, "invalid UTF-8 byte \(JSONScanCursor.hexByte(lead))", offset: i)
        }
        guard i + 1 < count, byte(i + 1) & 0xC0 == 0x80 else {
            throw HeraldError(.invalidJSON, "truncated UTF-8 sequence", offset: i)
        }
        let second = byte(i + 1)
        if second < secondLow {
            throw HeraldError(.invalidJSON, "overlong UTF-8 encoding", offset: i)
        }
        if second > secondHigh {
            let message = lead == 0xED ? "UTF-8 encoded surrogate" : "UTF-8 code point above U+10FFFF"
            throw HeraldError(.invalidJSON, message, offset: i)
        }
        var k = 2
        while k < length {
            guard i + k < count, byte(i + k) & 0xC0 == 0x80 else {
                throw HeraldError(.invalidJSON, "truncated UTF-8 sequence", offset: i)
            }
            k += 1
        }
        return i + length
    }

    // MARK: Numbers and literals

    /// Scans `-? (0 | [1-9][0-9]*) (\.[0-9]+)? ([eE][+-]?[0-9]+)?` at `start`.
    mutating func scanNumber(at start: Int, into tape: inout JSONTape) throws(HeraldError) -> Int {
        var i = start
        if byte(i) == UInt8(ascii: "-") {
            i += 1
            guard i < count else { throw JSONScanCursor.endOfInput(count) }
            guard JSONScanCursor.isDigit(byte(i)) else { throw unexpected(at: i, expecting: "a digit after '-'") }
        }
        if byte(i) == UInt8(ascii: "0") {
            i += 1
            if i < count && JSONScanCursor.isDigit(byte(i)) {
                throw HeraldError(.invalidJSON, "leading zero in number", offset: i - 1)
            }
        } else {
            i += 1
            while i < count && JSONScanCursor.isDigit(byte(i)) { i += 1 }
        }
        if i < count && byte(i) == UInt8(ascii: ".") {
            i += 1
            guard i < count else { throw JSONScanCursor.endOfInput(count) }
            guard JSONScanCursor.isDigit(byte(i)) else {
                throw unexpected(at: i, expecting: "a digit after the decimal point")
            }
            while i < count && JSONScanCursor.isDigit(byte(i)) { i += 1 }
        }
        if i < count && byte(i) | 0x20 == UInt8(ascii: "e") {
            i += 1
            if i < count && (byte(i) == UInt8(ascii: "+") || byte(i) == UInt8(ascii: "-")) { i += 1 }
            guard i < count else { throw JSONScanCursor.endOfInput(count) }
            guard JSONScanCursor.isDigit(byte(i)) else { throw unexpected(at: i, expecting: "a digit in the exponent") }
            while i < count && JSONScanCursor.isDigit(byte(i)) { i += 1 }
        }
        // A number no 64-bit float can hold (1e400) would become infinity or null in
        // every reader downstream; refuse it here, so every path treats it alike.
        if JSONTape.fastNumber(base, start, i) == nil {
            let text = String(decoding: UnsafeRawBufferPointer(start: base + start, count: i - start), as: UTF8.self)
            if let value = Double(text), !value.isFinite {
                throw HeraldError(.invalidJSON, "number out of range (beyond a 64-bit float)", offset: start)
            }
        }
        tape.nodes.append(
            JSONTape.Node(
                kind: .number, start: UInt32(truncatingIfNeeded: start), end: UInt32(truncatingIfNeeded: i),
                next: UInt32(truncatingIfNeeded: tape.nodes.count + 1)))
        return i
    }

    /// Scans a literal whose four bytes at `pos` must equal `word` (little-endian); for
    /// `false` the caller passes `pos` just past the `f` and the token's `start`.
    mutating func scanLiteral(
        at pos: Int, _ word: UInt32, _ name: StaticString, _ kind: JSONTape.Kind,
        into tape: inout JSONTape, start: Int? = nil
    ) throws(HeraldError) -> Int {
        let end = pos + 4
        if end > count || UInt32(littleEndian: base.loadUnaligned(fromByteOffset: pos, as: UInt32.self)) != word {
            // Find the first byte that differs, for the message and offset.
            let tokenStart = start ?? pos
            var i = tokenStart
            name.withUTF8Buffer { expected in
                for e in expected {
                    guard i < count, byte(i) == e else { break }
                    i += 1
                }
            }
            if i >= count { throw JSONScanCursor.endOfInput(count) }
            throw HeraldError(.invalidJSON, "invalid literal (expected \(name))", offset: i)
        }
        tape.nodes.append(
            JSONTape.Node(
                kind: kind, start: UInt32(truncatingIfNeeded: start ?? pos), end: UInt32(truncatingIfNeeded: end),
                next: UInt32(truncatingIfNeeded: tape.nodes.count + 1)))
        return end
    }

    static func isDigit(_ c: UInt8) -> Bool { c &- UInt8(ascii: "0") < 10 }

    // MARK: Errors (cold)

    @inline(never)
    static func endOfInput(_ offset: Int) -> HeraldError {
        HeraldError(.invalidJSON, "unexpected end of input", offset: offset)
    }

    @inline(never)
    static func loneSurrogate(_ unit: UInt32, at offset: Int) -> HeraldError {
        let hex = String(unit, radix: 16)
        return HeraldError(.invalidJSON, "lone surrogate \\u\(hex)", offset: offset)
    }

    @inline(never)
    static func invalidEscape(_ c: UInt8, at offset: Int) -> HeraldError {
        let shown = c >= 0x21 && c < 0x7F ? String(UnicodeScalar(c)) : " followed by byte \(hexByte(c))"
        return HeraldError(.invalidJSON, "invalid escape \\\(shown)", offset: offset)
    }

    /// `0xC0` style rendering of a byte for messages.
    static func hexByte(_ c: UInt8) -> String {
        let digits = Array("0123456789ABCDEF".utf8)
        return "0x" + String(decoding: [digits[Int(c >> 4)], digits[Int(c & 0xF)]], as: UTF8.self)
    }

    /// The error for an unexpected byte at `offset` where `expecting` was needed, with
    /// hints for the usual non-JSON habits (single quotes, comments, NaN, `+1`, `.5`).
    @inline(never)
    func unexpected(at offset: Int, expecting: String) -> HeraldError {
        let c = byte(offset)
        let found: String
        switch c {
        case UInt8(ascii: "'"): found = "single quote (JSON strings use double quotes)"
        case UInt8(ascii: "/"): found = "'/' (comments are not allowed in JSON)"
        case 0x21..<0x7F: found = "'\(String(UnicodeScalar(c)))'"
        case 0x80...: found = "byte \(JSONScanCursor.hexByte(c))"
        default: found = "control character \(JSONScanCursor.hexByte(c))"
        }
        return HeraldError(.invalidJSON, "expected \(expecting), found \(found)", offset: offset)
    }
}

// MARK: - Duplicate keys

extension JSONScanCursor {
    /// Throws when the key at `keyIndex` equals (decoded) one of the `previousMembers`
    /// keys of the innermost object. Small objects are scanned linearly (no allocation);
    /// from `linearKeyLimit` members on, the object gets a hash set so the check stays O(1).
    mutating func checkDuplicate(keyIndex: Int, previousMembers: Int, tape: JSONTape) throws(HeraldError) {
        let frame = frames[depth - 1]
        guard frame.hasKeySet || previousMembers >= JSONScanCursor.linearKeyLimit else {
            let found = tape.nodes.withUnsafeBufferPointer { nodes in
                JSONScanCursor.linearKeySearch(
                    nodes, object: Int(frame.index), members: previousMembers, key: keyIndex, base: base)
            }
            if found { throw duplicateKey(keyIndex, tape: tape) }
            return
        }
        try checkDuplicateHashed(keyIndex: keyIndex, previousMembers: previousMembers, tape: tape)
    }

    /// The hash-set half of `checkDuplicate`, kept out of line so the common small-object
    /// path stays a short function.
    @inline(never)
    mutating func checkDuplicateHashed(keyIndex: Int, previousMembers: Int, tape: JSONTape) throws(HeraldError) {
        let frame = frames[depth - 1]
        if !frame.hasKeySet {
            var set = JSONKeySet(minimumCapacity: previousMembers * 4)
            var k = Int(frame.index) + 1
            for _ in 0..<previousMembers {
                _ = set.insert(UInt32(k), hash: tape.stringContentHash(at: k, base: base)) { _ in false }
                k = Int(tape.nodes[k + 1].next)
            }
            keySets.append(set)
            frames[depth - 1].hasKeySet = true
        }
        var set = keySets.removeLast()
        let duplicate = set.insert(UInt32(keyIndex), hash: tape.stringContentHash(at: keyIndex, base: base)) {
            tape.stringContentEqual(Int($0), keyIndex, base: base)
        }
        keySets.append(set)
        if duplicate { throw duplicateKey(keyIndex, tape: tape) }
    }

    /// True when one of the first `members` keys of the object at `object` decodes like
    /// the key at `key`. Unescaped keys of another length are rejected without a call.
    static func linearKeySearch(
        _ nodes: UnsafeBufferPointer<JSONTape.Node>, object: Int, members: Int, key: Int, base: UnsafeRawPointer
    ) -> Bool {
        let newKey = nodes[key]
        let length = newKey.end &- newKey.start
        var k = object + 1
        for _ in 0..<members {
            let old = nodes[k]
            if old.hasEscapes || newKey.hasEscapes {
                if JSONTape.stringContentEqual(old, newKey, base: base) { return true }
            } else if old.end &- old.start == length
                && JSONTape.bytesEqual(base + Int(old.start), base + Int(newKey.start), count: Int(length))
            {
                return true
            }
            k = Int(nodes[k + 1].next)
        }
        return false
    }

    @inline(never)
    func duplicateKey(_ keyIndex: Int, tape: JSONTape) -> HeraldError {
        var key = tape.decodedString(at: keyIndex, base: base)
        if key.utf8.count > 64 { key = String(key.prefix(60)) + "…" }
        let offset = Int(tape.nodes[keyIndex].start) - 1
        return HeraldError(.invalidJSON, "duplicate key \"\(key)\"", offset: offset)
    }
}

/// An open-addressing hash set of key node indices, used for objects with many members.
/// Each slot packs the key's 32-bit hash and its tape index + 1 (0 marks an empty slot).
struct JSONKeySet {
    private var slots: [UInt64]
    private var count = 0

    init(minimumCapacity: Int) {
        var capacity = 32
        while capacity < minimumCapacity { capacity <<= 1 }
        slots = Array(repeating: 0, count: capacity)
    }

    /// Inserts `index` unless a slot with the same hash holds a key for which `isEqual`
    /// is true; returns true when such a duplicate was found (nothing is inserted then).
    ///
    /// - Complexity: O(1) expected; the set grows at half load.
    mutating func insert(_ index: UInt32, hash: Int, isEqual: (UInt32) -> Bool) -> Bool {
        if (count + 1) * 2 > slots.count { grow() }
        let hash32 = UInt32(truncatingIfNeeded: hash)
        let mask = slots.count - 1
        var slot = Int(hash32) & mask
        while true {
            let entry = slots[slot]
            if entry == 0 {
                slots[slot] = UInt64(hash32) << 32 | UInt64(index + 1)
                count += 1
                return false
            }
            if UInt32(truncatingIfNeeded: entry >> 32) == hash32 && isEqual(UInt32(truncatingIfNeeded: entry) - 1) {
                return true
            }
            slot = (slot + 1) & mask
        }
    }

    private mutating func grow() {
        let old = slots
        slots = Array(repeating: 0, count: old.count * 2)
        let mask = slots.count - 1
        for entry in old where entry != 0 {
            var slot = Int(UInt32(truncatingIfNeeded: entry >> 32)) & mask
            while slots[slot] != 0 { slot = (slot + 1) & mask }
            slots[slot] = entry
        }
    }
}
