/// CRC-32C (Castagnoli), the checksum of every durable-log record.
///
/// Why this one: it detects torn and bit-flipped records (all single-, double- and odd
/// bit errors, every burst up to 32 bits) and is what storage formats use (iSCSI, ext4,
/// Kafka). Computed slicing-by-8 in software: eight table lookups per 8 bytes, about
/// 1 GB/s here, so recovering a log is bound by the disk, not the checksum.
public enum CRC32C {
    /// The checksum of `bytes`, continuing from `crc` (0 for a fresh one).
    public static func checksum(_ bytes: UnsafeRawBufferPointer, continuing crc: UInt32 = 0) -> UInt32 {
        var c = ~crc
        guard var p = bytes.baseAddress, bytes.count > 0 else { return crc }
        var n = bytes.count
        let t = tables
        while n >= 8 {
            let lo = UInt32(littleEndian: p.loadUnaligned(as: UInt32.self)) ^ c
            let hi = UInt32(littleEndian: (p + 4).loadUnaligned(as: UInt32.self))
            c =
                t[7 * 256 + Int(lo & 0xFF)] ^ t[6 * 256 + Int((lo >> 8) & 0xFF)]
                ^ t[5 * 256 + Int((lo >> 16) & 0xFF)] ^ t[4 * 256 + Int(lo >> 24)]
                ^ t[3 * 256 + Int(hi & 0xFF)] ^ t[2 * 256 + Int((hi >> 8) & 0xFF)]
                ^ t[1 * 256 + Int((hi >> 16) & 0xFF)] ^ t[Int(hi >> 24)]
            p += 8
            n -= 8
        }
        while n > 0 {
            c = t[Int((c ^ UInt32(p.load(as: UInt8.self))) & 0xFF)] ^ (c >> 8)
            p += 1
            n -= 1
        }
        return ~c
    }

    public static func checksum(_ bytes: [UInt8], continuing crc: UInt32 = 0) -> UInt32 {
        bytes.withUnsafeBytes { checksum($0, continuing: crc) }
    }

    /// Table k maps a byte to its CRC after k further zero bytes (k = 0…7).
    private static let tables: [UInt32] = {
        var t = [UInt32](repeating: 0, count: 8 * 256)
        for i in 0..<256 {
            var c = UInt32(i)
            for _ in 0..<8 { c = c & 1 != 0 ? (c >> 1) ^ 0x82F6_3B78 : c >> 1 }
            t[i] = c
        }
        for i in 0..<256 {
            for k in 1..<8 { t[k * 256 + i] = (t[(k - 1) * 256 + i] >> 8) ^ t[Int(t[(k - 1) * 256 + i] & 0xFF)] }
        }
        return t
    }()
}
