/// Unicode simple case folding of UTF-8 text, for `equals-ignore-case` and the
/// `prefix` / `suffix` / `anything-but` variants that take it.
///
/// Why it exists: two strings are equal ignoring case when their case foldings are equal.
/// Herald implements *simple* case folding (the C and S mappings of the Unicode
/// CaseFolding data): each scalar maps to one scalar, so `"ẞ"` folds to `"ß"` but `"ß"` is
/// not expanded to `"ss"`, and `"ς"`, `"σ"` and `"Σ"` all fold to `"σ"`. The table is derived
/// once from the Unicode data of the Swift standard library: a scalar that changes when
/// case folded maps to its lowercase mapping when that is one scalar; otherwise (final
/// sigma, micro sign, Greek symbol variants, Cherokee) to the lowercase of its uppercase,
/// or to its uppercase when that lowercases back to itself (Cherokee folds to uppercase);
/// scalars whose only folding is a full (multi-scalar) one, like `"İ"` and `"ß"`, are kept.
///
/// - Complexity: O(n) per string; ASCII takes a fast path, other scalars a binary search
///   in a table of about 1,500 entries.
enum CaseFolding {
    /// Sorted (scalar, folded scalar) pairs for every scalar that simple folding changes.
    static let table: [(UInt32, UInt32)] = buildTable()

    private static func buildTable() -> [(UInt32, UInt32)] {
        // Foldings the properties below do not reveal: S mappings added in Unicode 15, and
        // GREEK PROSGEGRAMMENI, whose canonical decomposition is already its folding (so
        // `changesWhenCaseFolded`, defined on the NFD form, is false for it).
        let explicit: [UInt32: UInt32] = [0x1FD3: 0x0390, 0x1FE3: 0x03B0, 0xFB05: 0xFB06, 0x1FBE: 0x03B9]
        var pairs: [(UInt32, UInt32)] = []
        for value in UInt32(0)...0x10FFFF {
            guard let scalar = Unicode.Scalar(value) else { continue }
            if let target = explicit[value] {
                pairs.append((value, target))
                continue
            }
            guard scalar.properties.changesWhenCaseFolded else { continue }
            if let lower = single(scalar.properties.lowercaseMapping), lower != value {
                pairs.append((value, lower))
                continue
            }
            guard let upper = single(scalar.properties.uppercaseMapping), upper != value,
                let upperScalar = Unicode.Scalar(upper)
            else { continue }
            if let lowerOfUpper = single(upperScalar.properties.lowercaseMapping), lowerOfUpper != value {
                pairs.append((value, lowerOfUpper))
            } else {
                pairs.append((value, upper))
            }
        }
        return pairs
    }

    private static func single(_ mapping: String) -> UInt32? {
        var iterator = mapping.unicodeScalars.makeIterator()
        guard let first = iterator.next(), iterator.next() == nil else { return nil }
        return first.value
    }

    /// The simple case folding of one scalar.
    static func fold(_ scalar: UInt32) -> UInt32 {
        if scalar < 0x80 {
            return scalar &- 0x41 < 26 ? scalar | 0x20 : scalar
        }
        let table = Self.table
        var lo = 0
        var hi = table.count
        while lo < hi {
            let mid = (lo + hi) >> 1
            if table[mid].0 < scalar { lo = mid + 1 } else { hi = mid }
        }
        return lo < table.count && table[lo].0 == scalar ? table[lo].1 : scalar
    }

    /// Writes the folding of the valid UTF-8 `source` into `destination` and returns the
    /// number of bytes written. `destination` must hold at least `2 * source.count` bytes
    /// (a folded scalar is at most one byte longer than the original, which has ≥ 2).
    static func fold(_ source: UnsafeRawBufferPointer, into destination: UnsafeMutableRawBufferPointer) -> Int {
        var i = 0
        var o = 0
        let n = source.count
        while i < n {
            let b0 = source[i]
            if b0 < 0x80 {
                destination[o] = b0 &- 0x41 < 26 ? b0 | 0x20 : b0
                i += 1
                o += 1
                continue
            }
            var scalar: UInt32
            var length: Int
            if b0 < 0xE0 {
                scalar = UInt32(b0 & 0x1F)
                length = 2
            } else if b0 < 0xF0 {
                scalar = UInt32(b0 & 0x0F)
                length = 3
            } else {
                scalar = UInt32(b0 & 0x07)
                length = 4
            }
            if i + length > n { length = n - i }  // malformed tail: copy as is
            for k in 1..<max(length, 1) { scalar = scalar << 6 | UInt32(source[i + k] & 0x3F) }
            i += length
            o += encode(fold(scalar), into: destination, at: o)
        }
        return o
    }

    /// The folding of `text` as bytes (pattern operands; cold path).
    static func fold(_ text: String) -> [UInt8] {
        let utf8 = Array(text.utf8)
        return utf8.withUnsafeBytes { source in
            [UInt8](unsafeUninitializedCapacity: 2 * source.count + 4) { buffer, count in
                count = fold(source, into: UnsafeMutableRawBufferPointer(buffer))
            }
        }
    }

    private static func encode(_ scalar: UInt32, into out: UnsafeMutableRawBufferPointer, at o: Int) -> Int {
        switch scalar {
        case 0..<0x80:
            out[o] = UInt8(scalar)
            return 1
        case 0x80..<0x800:
            out[o] = UInt8(0xC0 | (scalar >> 6))
            out[o + 1] = UInt8(0x80 | (scalar & 0x3F))
            return 2
        case 0x800..<0x10000:
            out[o] = UInt8(0xE0 | (scalar >> 12))
            out[o + 1] = UInt8(0x80 | ((scalar >> 6) & 0x3F))
            out[o + 2] = UInt8(0x80 | (scalar & 0x3F))
            return 3
        default:
            out[o] = UInt8(0xF0 | (scalar >> 18))
            out[o + 1] = UInt8(0x80 | ((scalar >> 12) & 0x3F))
            out[o + 2] = UInt8(0x80 | ((scalar >> 6) & 0x3F))
            out[o + 3] = UInt8(0x80 | (scalar & 0x3F))
            return 4
        }
    }
}
