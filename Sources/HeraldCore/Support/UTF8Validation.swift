/// UTF-8 well-formedness (RFC 3629: no overlongs, no surrogates, nothing past U+10FFFF).
///
/// One table of what may follow each lead byte, used by the JSON scanner (which reports
/// where and why a sequence is malformed) and by the WebSocket reader (text messages).
public enum UTF8Validation {
    /// What a multi-byte sequence led by `lead` must look like: its length and the range
    /// of its second byte (the others are plain continuation bytes); nil when `lead`
    /// cannot start one.
    @inline(__always)
    static func rule(lead: UInt8) -> (length: Int, secondLow: UInt8, secondHigh: UInt8)? {
        switch lead {
        case 0xC2...0xDF: (2, 0x80, 0xBF)
        case 0xE0: (3, 0xA0, 0xBF)
        case 0xE1...0xEC, 0xEE...0xEF: (3, 0x80, 0xBF)
        case 0xED: (3, 0x80, 0x9F)
        case 0xF0: (4, 0x90, 0xBF)
        case 0xF1...0xF3: (4, 0x80, 0xBF)
        case 0xF4: (4, 0x80, 0x8F)
        default: nil
        }
    }

    /// - Complexity: O(n); ASCII runs are checked eight bytes at a time.
    public static func isValid(_ bytes: UnsafeRawBufferPointer) -> Bool {
        var i = 0
        let n = bytes.count
        while i < n {
            if i + 8 <= n, bytes.loadUnaligned(fromByteOffset: i, as: UInt64.self) & 0x8080_8080_8080_8080 == 0 {
                i += 8
                continue
            }
            let lead = bytes[i]
            if lead < 0x80 {
                i += 1
                continue
            }
            guard let rule = rule(lead: lead), i + rule.length <= n,
                bytes[i + 1] >= rule.secondLow, bytes[i + 1] <= rule.secondHigh
            else { return false }
            for k in 2..<rule.length where bytes[i + k] & 0xC0 != 0x80 { return false }
            i += rule.length
        }
        return true
    }
}
