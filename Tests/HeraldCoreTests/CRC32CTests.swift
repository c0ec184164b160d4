import HeraldCore
import HeraldPatternCorpus
import Testing

@Suite struct CRC32CTests {
    /// Bit by bit, as the definition says: the reference the table-driven one must equal.
    static func reference(_ bytes: [UInt8]) -> UInt32 {
        var c: UInt32 = 0xFFFF_FFFF
        for byte in bytes {
            c ^= UInt32(byte)
            for _ in 0..<8 { c = c & 1 != 0 ? (c >> 1) ^ 0x82F6_3B78 : c >> 1 }
        }
        return ~c
    }

    @Test func knownVectors() {
        #expect(CRC32C.checksum(Array("123456789".utf8)) == 0xE306_9283)
        #expect(CRC32C.checksum([]) == 0)
        #expect(CRC32C.checksum([UInt8](repeating: 0, count: 32)) == 0x8A91_36AA)
        #expect(CRC32C.checksum([UInt8](repeating: 0xFF, count: 32)) == 0x62A8_AB43)
    }

    @Test func equalsTheBitwiseDefinitionAtEveryLengthAndSplit() {
        var generator = SeededGenerator(seed: 7)
        for length in 0..<200 {
            let bytes = (0..<length).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
            let whole = CRC32C.checksum(bytes)
            #expect(whole == Self.reference(bytes), "length \(length)")
            let split = length / 3
            let continued = CRC32C.checksum(Array(bytes[split...]), continuing: CRC32C.checksum(Array(bytes[..<split])))
            #expect(continued == whole, "split at \(split) of \(length)")
        }
    }

    @Test func everySingleBitFlipIsDetected() {
        let bytes = Array(#"{"type":"chat.message","room":"lobby","text":"hi"}"#.utf8)
        let good = CRC32C.checksum(bytes)
        for bit in 0..<(bytes.count * 8) {
            var flipped = bytes
            flipped[bit / 8] ^= UInt8(1 << (bit % 8))
            #expect(CRC32C.checksum(flipped) != good)
        }
    }
}
