import HeraldCore
import Testing

/// `equals-ignore-case` folds with Unicode simple case folding. The expected pairs are
/// entries of the Unicode Character Database's CaseFolding.txt (status C or S), the
/// non-folding cases entries that only have F or T mappings (or none).
@Suite struct PatternCaseFoldingTests {
    static func equalIgnoringCase(_ a: String, _ b: String) throws -> Bool {
        var pattern: [UInt8] = []
        JSONWriter.write(.object([.init("s", .array([.object([.init("equals-ignore-case", .string(a))])]))]), into: &pattern)
        var event: [UInt8] = []
        JSONWriter.write(.object([.init("s", .string(b))]), into: &event)
        let compiled = try Pattern(parsing: pattern)
        let tape = try JSONScanner.scan(event)
        var index = SubscriptionIndex()
        index.add(owner: 1, slot: 0, patterns: [compiled])
        var results: [SubscriptionIndex.Match] = []
        let single = event.withUnsafeBytes { compiled.matches(EventView(tape: tape, node: 0, bytes: $0)) }
        event.withUnsafeBytes { index.match(EventView(tape: tape, node: 0, bytes: $0), into: &results) }
        #expect(single == !results.isEmpty)
        return single
    }

    /// (code point, its simple case folding) from CaseFolding.txt.
    @Test(arguments: [
        (0x0041, 0x0061), (0x00C0, 0x00E0), (0x0100, 0x0101), (0x0178, 0x00FF), (0x017F, 0x0073),
        (0x01C5, 0x01C6), (0x0345, 0x03B9), (0x0391, 0x03B1), (0x03C2, 0x03C3), (0x03D0, 0x03B2),
        (0x03F4, 0x03B8), (0x0410, 0x0430), (0x1E9B, 0x1E61), (0x1E9E, 0x00DF), (0x1F88, 0x1F80),
        (0x1FBE, 0x03B9), (0x1FD3, 0x0390), (0x2126, 0x03C9), (0x212A, 0x006B), (0x212B, 0x00E5),
        (0x2C00, 0x2C30), (0x13F8, 0x13F0), (0xAB70, 0x13A0), (0xFB05, 0xFB06), (0xFF21, 0xFF41),
        (0x10400, 0x10428), (0x1E900, 0x1E922), (0x00B5, 0x03BC),
    ])
    func simpleFoldingsMatch(from: Int, to: Int) throws {
        let a = String(Unicode.Scalar(UInt32(from))!)
        let b = String(Unicode.Scalar(UInt32(to))!)
        #expect(try Self.equalIgnoringCase(a, b), "U+\(String(from, radix: 16)) ~ U+\(String(to, radix: 16))")
        #expect(try Self.equalIgnoringCase(b, a))
        #expect(try Self.equalIgnoringCase("x" + a + "y", "X" + b + "Y"))
    }

    /// Characters whose only foldings are full (F) or Turkic (T): kept as they are.
    @Test(arguments: [
        (0x0130, 0x0069),  // İ: F → i̇, T → i
        (0x0049, 0x0131),  // I and dotless ı: only T maps I to ı
        (0x00DF, 0x0073),  // ß: F → ss
        (0x13A0, 0xAB70),  // Cherokee folds to upper case, so the upper letter stays
    ])
    func otherFoldingsDoNotApply(from: Int, to: Int) throws {
        let a = String(Unicode.Scalar(UInt32(from))!)
        let b = String(Unicode.Scalar(UInt32(to))!)
        if from == 0x13A0 {
            #expect(try Self.equalIgnoringCase(a, b), "AB70 folds to 13A0")
        } else {
            #expect(try !Self.equalIgnoringCase(a, b))
        }
    }

    @Test func foldingIsConsistentOverTheBasicPlanes() throws {
        // For every letter whose lower and upper case are single scalars that map back to it,
        // both cases must compare equal (a scan of the whole table, through the matcher).
        var pairs = 0
        for value in UInt32(0x41)...0x1FFFF {
            guard let scalar = Unicode.Scalar(value), scalar.properties.isUppercase else { continue }
            let lower = scalar.properties.lowercaseMapping.unicodeScalars
            guard lower.count == 1, let l = lower.first, l != scalar,
                String(l).uppercased().unicodeScalars.elementsEqual([scalar])
            else { continue }
            #expect(try Self.equalIgnoringCase(String(scalar), String(l)), "U+\(String(value, radix: 16))")
            pairs += 1
        }
        #expect(pairs > 1000)
    }
}
