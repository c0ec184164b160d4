/// An event pattern: the filter a subscriber gives and the rule a route names.
///
/// Patterns use the EventBridge event-pattern language (DESIGN §6, `docs/patterns.md`): a
/// JSON object whose leaves are arrays of accepted values or operators (`prefix`,
/// `suffix`, `equals-ignore-case`, `anything-but`, `numeric`, `exists`, `cidr`,
/// `wildcard`), nested objects to reach into the event, and `$or` at any level.
///
/// Why it exists: parsing validates a pattern completely and compiles it into the form
/// both matchers use — a list of alternatives (the `$or` branches multiplied out), each a
/// conjunction of conditions on one event path — so a pattern that exists can always be
/// matched, on its own (``matches(_:)``) or inside a ``SubscriptionIndex``.
///
/// A `Pattern` is immutable and `Sendable`. Two patterns are equal when their JSON values
/// are equal.
public struct Pattern: Sendable, Equatable, CustomStringConvertible {
    /// The pattern as the client wrote it.
    public let value: JSONValue
    /// The alternatives: the pattern matches when any of them does. Each holds its
    /// conditions in matching order (see ``PatternCondition/orderKey``).
    let alternatives: [[PatternCondition]]
    /// A canonical encoding of `alternatives` (order of fields, values and `$or` branches
    /// does not matter), so an index can share one compiled copy between equal patterns.
    let canonicalKey: [UInt8]

    /// Validates and compiles a pattern.
    /// - Throws: `invalid_pattern` naming the JSON path and the reason.
    public init(_ value: JSONValue, limits: PatternLimits = PatternLimits()) throws(HeraldError) {
        guard case .object(let members) = value else {
            throw HeraldError(.invalidPattern, "a pattern must be a JSON object, not \(value.kindName)", path: "$")
        }
        var size: [UInt8] = []
        JSONWriter.write(value, into: &size)
        guard size.count <= limits.maxBytes else {
            throw HeraldError(
                .invalidPattern, "the pattern has \(size.count) bytes; the limit is \(limits.maxBytes)", path: "$")
        }
        var compiler = PatternCompiler(limits: limits)
        let expanded = try compiler.compileObject(members, path: [], jsonPath: "$", depth: 1)
        alternatives = PatternCompiler.canonicalAlternatives(expanded)
        canonicalKey = PatternCompiler.canonicalKey(alternatives)
        self.value = value
    }

    /// Parses and compiles a pattern from JSON text.
    /// - Throws: `invalid_pattern` naming the JSON path (or byte offset) and the reason.
    public init(parsing text: [UInt8], limits: PatternLimits = PatternLimits()) throws(HeraldError) {
        guard text.count <= limits.maxBytes else {
            throw HeraldError(.invalidPattern, "the pattern has \(text.count) bytes; the limit is \(limits.maxBytes)")
        }
        let value: JSONValue
        do throws(HeraldError) {
            // `$or` adds two JSON levels (array, object) per use, so let the text nest deeper
            // than the field depth; the compiler reports the field depth with a path.
            value = try JSONValue(parsing: text, limits: JSONLimits(maxDepth: 3 * limits.maxDepth + 2))
        } catch {
            throw HeraldError(.invalidPattern, "the pattern is not valid JSON: \(error.message)", offset: error.offset)
        }
        try self.init(value, limits: limits)
    }

    public var description: String { value.serialized }

    /// Number of alternatives the pattern expands to (`$or` branches and `exists: false`
    /// choices multiplied out); at most ``PatternLimits/maxOrCombinations``.
    public var combinationCount: Int { alternatives.count }

    public static func == (lhs: Pattern, rhs: Pattern) -> Bool { lhs.value == rhs.value }
}

/// Limits on the size and shape of a pattern (DESIGN §6), enforced by ``Pattern/init(_:limits:)``.
public struct PatternLimits: Sendable, Equatable {
    /// Maximum size of the pattern as compact JSON text.
    public var maxBytes: Int
    /// Maximum number of fields (object members other than `$or`), counted over all branches.
    public var maxFields: Int
    /// Maximum depth of nested field objects (the pattern object itself is depth 1).
    public var maxDepth: Int
    /// Maximum number of alternatives the pattern expands to: the product of the `$or`
    /// branch counts (and of the two choices of a field that mixes `exists: false` with
    /// values), summed over nested branches.
    public var maxOrCombinations: Int
    /// Wildcard complexity budget: the total number of `*` in all `wildcard` and
    /// `anything-but` `wildcard` values of the pattern. Each `*` adds a search step when an
    /// event value is tested, so the budget bounds the per-value cost of one pattern.
    public var maxWildcardComplexity: Int

    public init(
        maxBytes: Int = 4096, maxFields: Int = 64, maxDepth: Int = 16, maxOrCombinations: Int = 1000,
        maxWildcardComplexity: Int = 32
    ) {
        self.maxBytes = maxBytes
        self.maxFields = maxFields
        self.maxDepth = maxDepth
        self.maxOrCombinations = maxOrCombinations
        self.maxWildcardComplexity = maxWildcardComplexity
    }
}

/// One condition of an alternative: what the leaves at one event path must satisfy.
struct PatternCondition: Sendable, Hashable {
    /// Field names from the event root to the leaf (arrays are not part of paths).
    var path: [String]
    var test: Test

    enum Test: Sendable, Hashable {
        /// Some leaf at `path` satisfies one of these predicates (sorted, no duplicates).
        case anyOf([PatternPredicate])
        /// No leaf at `path` (consistent with the leaves the other conditions chose).
        case absent
    }

    /// The path as bytes, segments separated by 0xFF (a byte UTF-8 never contains), so
    /// byte order is a canonical order of paths.
    var pathKey: [UInt8] {
        var key: [UInt8] = []
        for (i, segment) in path.enumerated() {
            if i > 0 { key.append(0xFF) }
            key.append(contentsOf: segment.utf8)
        }
        return key
    }

    /// Canonical bytes of the test.
    var testKey: [UInt8] {
        switch test {
        case .absent: return [0]
        case .anyOf(let predicates):
            var key: [UInt8] = [1]
            for p in predicates { PatternPredicate.appendLengthPrefixed(p.canonicalBytes, to: &key) }
            return key
        }
    }

    /// Matching rank: conditions are tested in the order (rank, path, test). Selective,
    /// hash-looked-up tests come first so the automaton fans out late; `absent` comes last
    /// so it is judged against the array elements the other conditions chose.
    var rank: UInt8 {
        switch test {
        case .absent: return 3
        case .anyOf(let predicates): return predicates.map(\.rank).max() ?? 0
        }
    }

    /// The sort key of the matching order.
    var orderKey: [UInt8] {
        var key: [UInt8] = [rank]
        PatternPredicate.appendLengthPrefixed(pathKey, to: &key)
        key.append(contentsOf: testKey)
        return key
    }
}
