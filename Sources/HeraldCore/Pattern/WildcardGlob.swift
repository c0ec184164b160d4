/// A compiled `wildcard` operand: literal segments separated by `*`.
///
/// Why it exists: EventBridge wildcards are shell-style globs with only `*` (any run of
/// bytes, possibly empty); `\*` is a literal star and `\\` a literal backslash, any other
/// escape and two consecutive `*` are errors. Such a glob matches with one left-to-right
/// pass: the first segment is a prefix, the last a suffix, and each middle segment is
/// taken at its leftmost occurrence (taking it later can only leave less room for the
/// rest), so no backtracking is needed.
///
/// - Complexity: ``matches(_:)`` is O(n × m) in the worst case for a value of n bytes and
///   a glob of m literal bytes (naive substring search per middle segment); O(n) for
///   globs with at most one `*`.
struct WildcardGlob: Sendable, Hashable {
    /// Literal segments; `segments.count == starCount + 1`. The first and last may be empty.
    let segments: [[UInt8]]
    /// The operand as written (unescaped form differs; this one identifies the glob).
    let source: [UInt8]

    var starCount: Int { segments.count - 1 }
    /// Bytes every match must start with.
    var literalPrefix: [UInt8] { segments[0] }
    /// Bytes every match must end with.
    var literalSuffix: [UInt8] { segments[segments.count - 1] }
    /// Minimum length of a matching value.
    var minimumLength: Int { segments.reduce(0) { $0 + $1.count } }

    /// Parses a wildcard operand.
    /// - Throws: a reason (no path; the caller adds it) for `**`, a dangling or unknown escape.
    init(parsing text: [UInt8]) throws(PatternSyntaxError) {
        var segments: [[UInt8]] = [[]]
        var i = 0
        while i < text.count {
            let c = text[i]
            if c == UInt8(ascii: "*") {
                if i + 1 < text.count && text[i + 1] == UInt8(ascii: "*") {
                    throw PatternSyntaxError("consecutive wildcard characters (\"**\") at position \(i) are not allowed")
                }
                segments.append([])
            } else if c == UInt8(ascii: "\\") {
                guard i + 1 < text.count, text[i + 1] == UInt8(ascii: "*") || text[i + 1] == UInt8(ascii: "\\") else {
                    throw PatternSyntaxError(
                        "invalid escape at position \(i): a backslash may only escape \"*\" or \"\\\"")
                }
                segments[segments.count - 1].append(text[i + 1])
                i += 1
            } else {
                segments[segments.count - 1].append(c)
            }
            i += 1
        }
        self.segments = segments
        self.source = text
    }

    /// True when the whole of `value` matches the glob.
    func matches(_ value: UnsafeRawBufferPointer) -> Bool {
        let n = value.count
        guard n >= minimumLength else { return false }
        let first = segments[0]
        if segments.count == 1 { return ByteString.equal(value, first) }
        let last = segments[segments.count - 1]
        guard ByteString.hasPrefix(value, first), ByteString.hasSuffix(value, last) else { return false }
        var position = first.count
        let end = n - last.count
        if segments.count > 2 {
            for k in 1..<(segments.count - 1) {
                guard let found = Self.find(segments[k], in: value, from: position, to: end) else { return false }
                position = found + segments[k].count
            }
        }
        return position <= end
    }

    /// Offset of the first occurrence of `needle` in `value[from..<to]`, or nil.
    private static func find(_ needle: [UInt8], in value: UnsafeRawBufferPointer, from: Int, to: Int) -> Int? {
        let m = needle.count
        if m == 0 { return from }
        guard to - from >= m else { return nil }
        let base = value.baseAddress!
        return needle.withUnsafeBytes { (needleBytes) -> Int? in
            let first = needleBytes[0]
            var i = from
            while i + m <= to {
                if base.load(fromByteOffset: i, as: UInt8.self) == first
                    && JSONTape.bytesEqual(base + i, needleBytes.baseAddress!, count: m)
                {
                    return i
                }
                i += 1
            }
            return nil
        }
    }
}

/// A reason a pattern operand is malformed, before the parser attaches the JSON path.
struct PatternSyntaxError: Error {
    var message: String
    init(_ message: String) { self.message = message }
}
