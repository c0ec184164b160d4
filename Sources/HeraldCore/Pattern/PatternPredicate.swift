/// One accepted value or operator of a pattern field, compiled: what a single event leaf
/// (a string, number, boolean or null) must be.
///
/// Why it exists: the parser turns every spelling of a test into one normal form
/// (`["=", 5]` and `5` are the same `.number(5)`, a wildcard without `*` is an exact
/// string, case-insensitive operands are stored case-folded), so equal tests are shared in
/// the automaton and both matchers agree on semantics by construction.
enum PatternPredicate: Sendable, Hashable {
    /// An exact string (decoded UTF-8 bytes).
    case string([UInt8])
    /// An exact number, compared by value as float64 (`-0` is stored as `0`).
    case number(Double)
    case boolean(Bool)
    case null
    /// A string equal to this one after simple case folding (stored folded).
    case equalsIgnoreCase([UInt8])
    case prefix([UInt8])
    /// A string whose case-folded form starts with this (stored folded).
    case prefixIgnoreCase([UInt8])
    case suffix([UInt8])
    /// A string whose case-folded form ends with this (stored folded).
    case suffixIgnoreCase([UInt8])
    /// A number in a closed float64 range (open bounds are stored as the next float64).
    case numeric(NumericRange)
    /// A string that is an IP address inside the block.
    case cidr(CIDRBlock)
    /// A string matching a glob with at least one `*`.
    case wildcard(WildcardGlob)
    /// Any leaf at all (`"exists": true`).
    case exists
    /// Any leaf that is not excluded.
    case anythingBut(AnythingBut)

    /// The leaves `anything-but` excludes. Lists are sorted and free of duplicates.
    enum AnythingBut: Sendable, Hashable {
        /// Strings equal to one of these.
        case strings([[UInt8]])
        /// Numbers equal by value to one of these.
        case numbers([Double])
        /// Strings starting with one of these (none is empty).
        case prefixes([[UInt8]])
        /// Strings ending with one of these (none is empty).
        case suffixes([[UInt8]])
        /// Strings equal to one of these after case folding (stored folded).
        case ignoreCase([[UInt8]])
        /// Strings matching one of these globs.
        case wildcards([WildcardGlob])
    }

    /// Matching rank (see ``PatternCondition/rank``): 0 for hash-looked-up values, 1 for
    /// ordered or trie tests, 2 for tests that match most values.
    var rank: UInt8 {
        switch self {
        case .string, .number, .boolean, .null, .equalsIgnoreCase: 0
        case .prefix, .prefixIgnoreCase, .suffix, .suffixIgnoreCase, .numeric, .cidr: 1
        case .wildcard, .exists, .anythingBut: 2
        }
    }

    /// True when testing a leaf needs its case-folded bytes.
    var needsFolding: Bool {
        switch self {
        case .equalsIgnoreCase, .prefixIgnoreCase, .suffixIgnoreCase: true
        case .anythingBut(.ignoreCase): true
        default: false
        }
    }

    /// Number of `*` in the predicate's globs (the wildcard complexity it costs).
    var wildcardStars: Int {
        switch self {
        case .wildcard(let glob): glob.starCount
        case .anythingBut(.wildcards(let globs)): globs.reduce(0) { $0 + $1.starCount }
        default: 0
        }
    }

    // MARK: - Evaluation on one leaf

    /// True when the leaf satisfies the predicate.
    ///
    /// `leaf.folded` must be set when ``needsFolding`` is true, and `leaf.ip` must have been
    /// parsed for `.cidr`; the callers (the single-pattern matcher and the automaton's
    /// slow paths) compute them once per leaf.
    func matches(_ leaf: LeafScalar) -> Bool {
        switch self {
        case .string(let s): return leaf.kind == .string && ByteString.equal(leaf.bytes, s)
        case .number(let n): return leaf.kind == .number && leaf.number == n
        case .boolean(let b): return leaf.kind == (b ? .true : .false)
        case .null: return leaf.kind == .null
        case .equalsIgnoreCase(let f): return leaf.kind == .string && ByteString.equal(leaf.folded, f)
        case .prefix(let p): return leaf.kind == .string && ByteString.hasPrefix(leaf.bytes, p)
        case .prefixIgnoreCase(let p): return leaf.kind == .string && ByteString.hasPrefix(leaf.folded, p)
        case .suffix(let s): return leaf.kind == .string && ByteString.hasSuffix(leaf.bytes, s)
        case .suffixIgnoreCase(let s): return leaf.kind == .string && ByteString.hasSuffix(leaf.folded, s)
        case .numeric(let range): return leaf.kind == .number && range.contains(leaf.number)
        case .cidr(let block): return leaf.kind == .string && leaf.ip.map(block.contains) == true
        case .wildcard(let glob): return leaf.kind == .string && glob.matches(leaf.bytes)
        case .exists: return true
        case .anythingBut(let excluded): return !excluded.excludes(leaf)
        }
    }

    // MARK: - Canonical bytes

    /// A byte encoding that identifies the predicate: equal predicates, equal bytes.
    var canonicalBytes: [UInt8] {
        var out: [UInt8] = []
        func number(_ d: Double) { withUnsafeBytes(of: d.bitPattern.bigEndian) { out.append(contentsOf: $0) } }
        func list(_ items: [[UInt8]]) { for item in items { Self.appendLengthPrefixed(item, to: &out) } }
        switch self {
        case .string(let s):
            out.append(1)
            out.append(contentsOf: s)
        case .number(let n):
            out.append(2)
            number(n)
        case .boolean(let b): out.append(b ? 3 : 4)
        case .null: out.append(5)
        case .equalsIgnoreCase(let s):
            out.append(6)
            out.append(contentsOf: s)
        case .prefix(let s):
            out.append(7)
            out.append(contentsOf: s)
        case .prefixIgnoreCase(let s):
            out.append(8)
            out.append(contentsOf: s)
        case .suffix(let s):
            out.append(9)
            out.append(contentsOf: s)
        case .suffixIgnoreCase(let s):
            out.append(10)
            out.append(contentsOf: s)
        case .numeric(let r):
            out.append(11)
            number(r.lower)
            number(r.upper)
        case .cidr(let c):
            out.append(12)
            out.append(c.address.isIPv6 ? 6 : 4)
            out.append(c.prefixLength)
            withUnsafeBytes(of: c.address.high.bigEndian) { out.append(contentsOf: $0) }
            withUnsafeBytes(of: c.address.low.bigEndian) { out.append(contentsOf: $0) }
        case .wildcard(let g):
            out.append(13)
            out.append(contentsOf: g.source)
        case .exists: out.append(14)
        case .anythingBut(let a):
            out.append(15)
            switch a {
            case .strings(let items):
                out.append(1)
                list(items)
            case .numbers(let items):
                out.append(2)
                items.forEach(number)
            case .prefixes(let items):
                out.append(3)
                list(items)
            case .suffixes(let items):
                out.append(4)
                list(items)
            case .ignoreCase(let items):
                out.append(5)
                list(items)
            case .wildcards(let globs):
                out.append(6)
                list(globs.map(\.source))
            }
        }
        return out
    }

    static func appendLengthPrefixed(_ bytes: [UInt8], to out: inout [UInt8]) {
        var n = UInt32(bytes.count)
        for _ in 0..<4 {
            out.append(UInt8(truncatingIfNeeded: n))
            n >>= 8
        }
        out.append(contentsOf: bytes)
    }
}

extension PatternPredicate.AnythingBut {
    /// True when `leaf` is one of the excluded values (so `anything-but` does not match it).
    /// Leaves of another type than the excluded ones are never excluded.
    func excludes(_ leaf: LeafScalar) -> Bool {
        switch self {
        case .strings(let items): return leaf.kind == .string && items.contains { ByteString.equal(leaf.bytes, $0) }
        case .numbers(let items): return leaf.kind == .number && items.contains(leaf.number)
        case .prefixes(let items): return leaf.kind == .string && items.contains { ByteString.hasPrefix(leaf.bytes, $0) }
        case .suffixes(let items): return leaf.kind == .string && items.contains { ByteString.hasSuffix(leaf.bytes, $0) }
        case .ignoreCase(let items): return leaf.kind == .string && items.contains { ByteString.equal(leaf.folded, $0) }
        case .wildcards(let globs): return leaf.kind == .string && globs.contains { $0.matches(leaf.bytes) }
        }
    }
}

/// A closed float64 interval `lower...upper` (infinite bounds for one-sided ranges).
struct NumericRange: Sendable, Hashable {
    var lower: Double
    var upper: Double

    /// True when `value` (a leaf's float64, `-0` treated as `0`) lies in the interval.
    func contains(_ value: Double) -> Bool { lower <= value && value <= upper }
}

/// One event leaf as the predicates see it.
///
/// `bytes` is the decoded string content (empty for other kinds), `folded` its simple
/// case folding (set by the caller when a predicate needs it), `number` the float64 value
/// of a number with `-0` normalised to `0`, `ip` the parsed address of a string that is
/// an IP literal.
struct LeafScalar {
    var kind: JSONTape.Kind
    var bytes: UnsafeRawBufferPointer
    var folded: UnsafeRawBufferPointer
    var number: Double
    var ip: IPAddress?

    init(
        kind: JSONTape.Kind, bytes: UnsafeRawBufferPointer = UnsafeRawBufferPointer(start: nil, count: 0),
        folded: UnsafeRawBufferPointer = UnsafeRawBufferPointer(start: nil, count: 0), number: Double = 0,
        ip: IPAddress? = nil
    ) {
        self.kind = kind
        self.bytes = bytes
        self.folded = folded
        self.number = number
        self.ip = ip
    }
}

/// Byte-string comparisons on raw buffers, allocation-free.
enum ByteString {
    static func equal(_ a: UnsafeRawBufferPointer, _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        if a.isEmpty { return true }
        return b.withUnsafeBytes { JSONTape.bytesEqual(a.baseAddress!, $0.baseAddress!, count: a.count) }
    }

    static func equal(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Bool {
        guard a.count == b.count else { return false }
        if a.isEmpty { return true }
        return JSONTape.bytesEqual(a.baseAddress!, b.baseAddress!, count: a.count)
    }

    static func hasPrefix(_ a: UnsafeRawBufferPointer, _ p: [UInt8]) -> Bool {
        guard a.count >= p.count else { return false }
        if p.isEmpty { return true }
        return p.withUnsafeBytes { JSONTape.bytesEqual(a.baseAddress!, $0.baseAddress!, count: p.count) }
    }

    static func hasSuffix(_ a: UnsafeRawBufferPointer, _ s: [UInt8]) -> Bool {
        guard a.count >= s.count else { return false }
        if s.isEmpty { return true }
        return s.withUnsafeBytes {
            JSONTape.bytesEqual(a.baseAddress! + (a.count - s.count), $0.baseAddress!, count: s.count)
        }
    }
}
