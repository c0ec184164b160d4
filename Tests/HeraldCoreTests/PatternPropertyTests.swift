import HeraldCore
import HeraldPatternCorpus
import Testing

/// Random patterns against random events: the automaton (a `SubscriptionIndex` holding
/// every pattern) and `Pattern.matches` must agree with the reference matcher on every
/// (pattern, event) pair, also after half of the patterns are removed again.
@Suite struct PatternPropertyTests {
    static let strings = [
        "x", "y", "X", "xy", "xyz", "Xy", "XYZ", "10.0.0.1", "10.0.1.9", "192.168.1.1", "::1", "2001:db8::7",
        "é", "É", "ab*c", "a\\b", "", "ς", "Σ", "x.png", "img.PNG",
    ]
    static let numbers: [Double] = [0, 1, -1, 2.5, 35, 100, 1e9, -0.0, 3.5e1, 0.1]
    static let keys = ["a", "b", "c"]

    // MARK: Events

    static func scalar(_ g: inout SeededGenerator) -> JSONValue {
        switch Int.random(in: 0..<10, using: &g) {
        case 0..<5: .string(g.pick(strings))
        case 5..<8: .number(g.pick(numbers))
        case 8: .bool(g.chance(0.5))
        default: .null
        }
    }

    static func eventObject(_ g: inout SeededGenerator, depth: Int) -> JSONValue {
        var members: [JSONValue.Member] = []
        for key in keys + (depth < 2 ? ["o", "p"] : []) where g.chance(0.6) {
            let nested = key == "o" || key == "p"
            let value: JSONValue
            switch Int.random(in: 0..<10, using: &g) {
            case 0..<4: value = nested ? eventObject(&g, depth: depth + 1) : scalar(&g)
            case 4..<8:
                let count = Int.random(in: 0...3, using: &g)
                value = .array(
                    (0..<count).map { _ in
                        nested && g.chance(0.7)
                            ? eventObject(&g, depth: depth + 1)
                            : g.chance(0.15) ? .array([scalar(&g), scalar(&g)]) : scalar(&g)
                    })
            default: value = nested ? .array([eventObject(&g, depth: depth + 1)]) : scalar(&g)
            }
            members.append(.init(key, value))
        }
        return .object(members)
    }

    // MARK: Patterns

    static func str(_ s: String) -> JSONValue { .string(s) }
    static func op(_ name: String, _ value: JSONValue) -> JSONValue { .object([.init(name, value)]) }

    static func operand(_ g: inout SeededGenerator) -> JSONValue {
        let prefixes = ["", "x", "X", "1", "10.", "é", "ab", "img", "Σ"]
        let suffixes = ["", "y", "Z", "1", ".png", "É", "c", "ς"]
        switch Int.random(in: 0..<22, using: &g) {
        case 0..<4: return scalar(&g)
        case 4: return op("prefix", str(g.pick(prefixes)))
        case 5: return op("suffix", str(g.pick(suffixes)))
        case 6: return op("prefix", op("equals-ignore-case", str(g.pick(prefixes))))
        case 7: return op("suffix", op("equals-ignore-case", str(g.pick(suffixes))))
        case 8: return op("equals-ignore-case", str(g.pick(strings)))
        case 9: return op("anything-but", g.chance(0.5) ? str(g.pick(strings)) : .number(g.pick(numbers)))
        case 10:
            return op(
                "anything-but",
                g.chance(0.5)
                    ? .array([str(g.pick(strings)), str(g.pick(strings))]) : .array([.number(g.pick(numbers)), .number(g.pick(numbers))]))
        case 11:
            let kind = g.pick(["prefix", "suffix", "equals-ignore-case", "wildcard"])
            let values =
                kind == "prefix"
                ? ["x", "10.", "é", "ab"]
                : kind == "suffix"
                    ? ["y", ".png", "1"]
                    : kind == "wildcard" ? ["x*", "*.png", "*", "a*c"] : ["X", "XY", "É", "σ"]
            return op("anything-but", op(kind, g.chance(0.5) ? str(g.pick(values)) : .array([str(g.pick(values)), str(g.pick(values))])))
        case 12, 13:
            var bounds = [g.pick(numbers), g.pick(numbers)].sorted()
            if bounds[0] == bounds[1] { bounds[1] += 1 }
            switch Int.random(in: 0..<6, using: &g) {
            case 0: return op("numeric", .array([str("="), .number(bounds[0])]))
            case 1: return op("numeric", .array([str(g.pick(["<", "<="])), .number(bounds[0])]))
            case 2: return op("numeric", .array([str(g.pick([">", ">="])), .number(bounds[0])]))
            default:
                return op(
                    "numeric", .array([str(g.pick([">", ">="])), .number(bounds[0]), str(g.pick(["<", "<="])), .number(bounds[1])]))
            }
        case 14, 15: return op("exists", .bool(g.chance(0.5)))
        case 16, 17:
            return op(
                "cidr", str(g.pick(["10.0.0.0/24", "10.0.0.0/8", "0.0.0.0/0", "2001:db8::/32", "::/0", "192.168.0.0/16", "::1/128"])))
        default:
            return op("wildcard", str(g.pick(["x*", "*y", "*", "x*y*z", "*.1", "1*", "a\\\\b", "ab\\*c", "*.png", "*X*", "É*"])))
        }
    }

    static func patternObject(_ g: inout SeededGenerator, depth: Int) -> JSONValue {
        var members: [JSONValue.Member] = []
        var used = Set<String>()
        let fields = Int.random(in: 1...3, using: &g)
        for _ in 0..<fields {
            let key = g.pick(keys + (depth < 2 ? ["o", "p"] : []))
            guard used.insert(key).inserted else { continue }
            if key == "o" || key == "p" {
                members.append(.init(key, patternObject(&g, depth: depth + 1)))
            } else {
                let count = Int.random(in: 1...3, using: &g)
                members.append(.init(key, .array((0..<count).map { _ in operand(&g) })))
            }
        }
        if g.chance(0.15) {
            let branches = Int.random(in: 2...3, using: &g)
            members.append(.init("$or", .array((0..<branches).map { _ in patternObject(&g, depth: depth + 1 < 3 ? depth + 1 : depth) })))
        }
        return .object(members)
    }

    static func run(seed: UInt64, patterns patternCount: Int, events eventCount: Int) throws {
        var g = SeededGenerator(seed: seed)
        var patterns: [(value: JSONValue, compiled: Pattern, alternatives: [[PatternReference.Condition]])] = []
        while patterns.count < patternCount {
            let value = patternObject(&g, depth: 0)
            guard let compiled = try? Pattern(value) else { continue }
            patterns.append((value, compiled, PatternReference.alternatives(value)))
        }
        var index = SubscriptionIndex()
        for (i, p) in patterns.enumerated() { index.add(owner: UInt64(i), slot: 0, patterns: [p.compiled]) }
        var live = Set(patterns.indices)

        var results: [SubscriptionIndex.Match] = []
        var compared = 0
        var matched = 0
        for round in 0..<2 {
            for _ in 0..<eventCount {
                let event = eventObject(&g, depth: 0)
                let bytes = Array(event.serialized.utf8)
                let tape = try JSONScanner.scan(bytes)
                let leaves = Dictionary(grouping: PatternReference.leaves(of: event), by: \.path)
                results.removeAll()
                bytes.withUnsafeBytes { index.match(EventView(tape: tape, node: 0, bytes: $0), into: &results) }
                let automaton = Set(results.map { Int($0.owner) })
                var expected = Set<Int>()
                for i in live where PatternReference.matches(alternatives: patterns[i].alternatives, leaves: leaves) {
                    expected.insert(i)
                }
                compared += live.count
                matched += expected.count
                if automaton != expected {
                    let missing = expected.subtracting(automaton).sorted().prefix(3).map { patterns[$0].value.serialized }
                    let extra = automaton.subtracting(expected).sorted().prefix(3).map { patterns[$0].value.serialized }
                    Issue.record("seed \(seed) round \(round): event \(event.serialized)\n missing: \(missing)\n extra: \(extra)")
                    return
                }
                for i in live {
                    let single = bytes.withUnsafeBytes { patterns[i].compiled.matches(EventView(tape: tape, node: 0, bytes: $0)) }
                    if single != expected.contains(i) {
                        Issue.record("seed \(seed): Pattern.matches(\(patterns[i].value.serialized)) on \(event.serialized) is \(single)")
                        return
                    }
                }
            }
            // Second round: remove half of the patterns (and re-add a few) and check again.
            for i in patterns.indices where g.chance(0.5) {
                index.removeAll(owner: UInt64(i))
                live.remove(i)
            }
            for i in patterns.indices where !live.contains(i) && g.chance(0.2) {
                index.add(owner: UInt64(i), slot: 0, patterns: [patterns[i].compiled])
                live.insert(i)
            }
        }
        #expect(index.count == live.count)
        // Some pairs must match and some must not, or the test proves little.
        #expect(matched > compared / 50 && matched < compared / 2, "seed \(seed): \(matched) of \(compared) pairs matched")
        for i in live { index.removeAll(owner: UInt64(i)) }
        #expect(index.statistics.states == 1 && index.statistics.values == 0 && index.statistics.paths == 0)
    }

    @Test(arguments: Array(UInt64(1)...12))
    func automatonAgreesWithTheReference(seed: UInt64) throws {
        try Self.run(seed: seed, patterns: 60, events: 150)
    }

    /// Many subscriptions on the same fields: shared states and matchers with many entries.
    @Test func sharedStructureUnderLoad() throws {
        try Self.run(seed: 4242, patterns: 600, events: 120)
    }
}
