import HeraldCore
import HeraldPatternCorpus
import Testing

/// A large seeded corpus of realistic events (GeoJSON features, IoT readings shaped like
/// shared/examples/vibration-recorded.json, chat messages) against patterns of every
/// operator family. Per pattern, the automaton's match count must equal the reference
/// matcher's, and both must equal the count recorded here, so a change of semantics or a
/// regression shows as a diff of numbers.
@Suite struct PatternCorpusTests {
    /// 200,000 events. The whole corpus runs in debug builds too (about 20 s on one core
    /// of the CI machine kind; it is split over the available cores).
    static let eventCount = 200_000

    /// Match counts per pattern over events `range`: (automaton, reference).
    static func counts(
        _ range: Range<Int>, _ compiled: [Pattern], _ alternatives: [[[PatternReference.Condition]]]
    ) throws
        -> ([Int], [Int])
    {
        var index = SubscriptionIndex()
        for (i, p) in compiled.enumerated() { index.add(owner: UInt64(i), slot: 0, patterns: [p]) }
        let paths = Set(alternatives.joined().joined().map(\.path))
        var automaton = [Int](repeating: 0, count: compiled.count)
        var reference = [Int](repeating: 0, count: compiled.count)
        var tape = JSONTape()
        var results: [SubscriptionIndex.Match] = []
        for i in range {
            let event = PatternCorpus.event(i)
            var bytes: [UInt8] = []
            JSONWriter.write(event, into: &bytes)
            results.removeAll(keepingCapacity: true)
            try bytes.withUnsafeBytes { raw in
                tape.removeAll()
                try JSONScanner.scan(raw, into: &tape)
                index.match(EventView(tape: tape, node: 0, bytes: raw), into: &results)
            }
            for r in results { automaton[Int(r.owner)] += 1 }
            // Only leaves on paths some pattern mentions can matter; grouping them by path once
            // per event keeps the reference affordable in debug builds.
            var leaves: [[String]: [PatternReference.Leaf]] = [:]
            for leaf in PatternReference.leaves(of: event) where paths.contains(leaf.path) {
                leaves[leaf.path, default: []].append(leaf)
            }
            for (p, alts) in alternatives.enumerated() where PatternReference.matches(alternatives: alts, leaves: leaves) {
                reference[p] += 1
            }
        }
        return (automaton, reference)
    }

    @Test func automatonCountsEqualTheReferenceAndTheRecordedCounts() async throws {
        let compiled = try PatternCorpus.patterns.map { try Pattern(parsing: Array($0.pattern.utf8)) }
        let alternatives = try PatternCorpus.patterns.map { PatternReference.alternatives(try JSONValue(parsing: $0.pattern)) }
        let families = Set(PatternCorpus.patterns.map(\.family))
        for family in families { #expect(PatternCorpus.patterns.filter { $0.family == family }.count >= 5, "\(family)") }

        let chunks = 8
        let size = (Self.eventCount + chunks - 1) / chunks
        let partial = try await withThrowingTaskGroup(of: ([Int], [Int]).self) { group in
            for c in 0..<chunks {
                let range = (c * size)..<min(Self.eventCount, (c + 1) * size)
                group.addTask { try Self.counts(range, compiled, alternatives) }
            }
            var sums = ([Int](repeating: 0, count: compiled.count), [Int](repeating: 0, count: compiled.count))
            for try await (a, r) in group {
                for k in a.indices {
                    sums.0[k] += a[k]
                    sums.1[k] += r[k]
                }
            }
            return sums
        }
        var report: [String] = []
        for (k, row) in PatternCorpus.patterns.enumerated() {
            #expect(partial.0[k] == partial.1[k], "automaton vs reference: \(row.pattern)")
            #expect(partial.1[k] == row.expected, "recorded count: \(row.pattern)")
            if partial.1[k] != row.expected { report.append("(\(row.family), \(row.pattern), \(partial.1[k]))") }
        }
        if !report.isEmpty { print("corpus counts:\n" + report.joined(separator: "\n")) }
    }
}
