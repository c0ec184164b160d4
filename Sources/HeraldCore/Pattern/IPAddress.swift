/// An IPv4 or IPv6 address as a 128-bit number, parsed from its text form.
///
/// Why it exists: `cidr` patterns compare event strings that hold IP literals with address
/// blocks. Parsing is strict and allocation-free: IPv4 is four decimal octets without
/// leading zeros (`10.0.0.1`, not `010.0.0.1`); IPv6 is the RFC 4291 text form (hex groups,
/// one `::`, an optional trailing dotted IPv4, case-insensitive), without zone (`%eth0`) or
/// brackets. IPv4 and IPv6 are separate families: `10.0.0.0/8` does not match
/// `::ffff:10.0.0.1`.
struct IPAddress: Sendable, Hashable {
    var high: UInt64
    var low: UInt64
    var isIPv6: Bool

    /// Parses `text`, or returns nil when it is not an IP literal.
    /// - Complexity: O(n) for n bytes; no allocation.
    static func parse(_ text: UnsafeRawBufferPointer) -> IPAddress? {
        guard text.count >= 2, text.count <= 45 else { return nil }
        if !text.contains(UInt8(ascii: ":")) {
            guard let v4 = parseIPv4(text, from: 0, to: text.count) else { return nil }
            return IPAddress(high: 0, low: UInt64(v4), isIPv6: false)
        }
        return parseIPv6(text)
    }

    static func parse(_ bytes: [UInt8]) -> IPAddress? { bytes.withUnsafeBytes { parse($0) } }

    private static func parseIPv4(_ text: UnsafeRawBufferPointer, from: Int, to: Int) -> UInt32? {
        var value: UInt32 = 0
        var octets = 0
        var i = from
        while octets < 4 {
            var octet: UInt32 = 0
            var digits = 0
            let start = i
            while i < to, text[i] &- UInt8(ascii: "0") < 10 {
                octet = octet * 10 + UInt32(text[i] &- UInt8(ascii: "0"))
                digits += 1
                i += 1
                if digits > 3 { return nil }
            }
            guard digits > 0, octet <= 255 else { return nil }
            if digits > 1 && text[start] == UInt8(ascii: "0") { return nil }
            value = value << 8 | octet
            octets += 1
            if octets < 4 {
                guard i < to, text[i] == UInt8(ascii: ".") else { return nil }
                i += 1
            }
        }
        return i == to ? value : nil
    }

    private static func hexValue(_ c: UInt8) -> UInt16? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): UInt16(c &- UInt8(ascii: "0"))
        case UInt8(ascii: "a")...UInt8(ascii: "f"): UInt16(c &- UInt8(ascii: "a") &+ 10)
        case UInt8(ascii: "A")...UInt8(ascii: "F"): UInt16(c &- UInt8(ascii: "A") &+ 10)
        default: nil
        }
    }

    private static func parseIPv6(_ text: UnsafeRawBufferPointer) -> IPAddress? {
        withUnsafeTemporaryAllocation(of: UInt16.self, capacity: 8) { words -> IPAddress? in
            var count = 0  // groups written
            var gap = -1  // index in words where "::" is
            var i = 0
            let n = text.count
            if n >= 2 && text[0] == UInt8(ascii: ":") {
                guard text[1] == UInt8(ascii: ":") else { return nil }
                gap = 0
                i = 2
                if i == n { return IPAddress(high: 0, low: 0, isIPv6: true) }
            }
            while i < n {
                // An embedded IPv4 tail: the rest contains a dot.
                var hasDot = false
                var j = i
                while j < n, text[j] != UInt8(ascii: ":") {
                    if text[j] == UInt8(ascii: ".") { hasDot = true }
                    j += 1
                }
                if hasDot {
                    guard j == n, count <= 6, let v4 = parseIPv4(text, from: i, to: n) else { return nil }
                    words[count] = UInt16(v4 >> 16)
                    words[count + 1] = UInt16(v4 & 0xFFFF)
                    count += 2
                    i = n
                    break
                }
                guard j - i >= 1, j - i <= 4, count < 8 else { return nil }
                var group: UInt16 = 0
                for k in i..<j {
                    guard let h = hexValue(text[k]) else { return nil }
                    group = group << 4 | h
                }
                words[count] = group
                count += 1
                i = j
                if i < n {
                    // at a colon
                    if i + 1 < n && text[i + 1] == UInt8(ascii: ":") {
                        guard gap < 0 else { return nil }
                        gap = count
                        i += 2
                    } else {
                        i += 1
                        guard i < n else { return nil }  // trailing single colon
                    }
                }
            }
            if gap >= 0 {
                guard count < 8 else { return nil }
                let tail = count - gap
                // move the tail to the end, zero-fill the gap
                var k = tail - 1
                while k >= 0 {
                    words[8 - tail + k] = words[gap + k]
                    k -= 1
                }
                for z in gap..<(8 - tail) { words[z] = 0 }
            } else {
                guard count == 8 else { return nil }
            }
            var high: UInt64 = 0
            var low: UInt64 = 0
            for k in 0..<4 { high = high << 16 | UInt64(words[k]) }
            for k in 4..<8 { low = low << 16 | UInt64(words[k]) }
            return IPAddress(high: high, low: low, isIPv6: true)
        }
    }

    /// The address with all but the first `bits` bits cleared.
    func masked(_ bits: Int) -> IPAddress {
        if !isIPv6 {
            let mask: UInt64 = bits == 0 ? 0 : (0xFFFF_FFFF << UInt64(32 - bits)) & 0xFFFF_FFFF
            return IPAddress(high: 0, low: low & mask, isIPv6: false)
        }
        let highMask: UInt64 = bits >= 64 ? .max : (bits == 0 ? 0 : .max << UInt64(64 - bits))
        let lowMask: UInt64 = bits <= 64 ? 0 : (bits >= 128 ? .max : .max << UInt64(128 - bits))
        return IPAddress(high: high & highMask, low: low & lowMask, isIPv6: true)
    }
}

/// A `cidr` operand: an address block (`10.0.0.0/24`, `2001:db8::/32`).
struct CIDRBlock: Sendable, Hashable {
    /// The block's first address (host bits cleared).
    var address: IPAddress
    var prefixLength: UInt8

    init(address: IPAddress, prefixLength: UInt8) {
        self.address = address
        self.prefixLength = prefixLength
    }

    /// Parses `address/length`; host bits in the address are ignored (cleared).
    init(parsing text: [UInt8]) throws(PatternSyntaxError) {
        guard let slash = text.firstIndex(of: UInt8(ascii: "/")) else {
            throw PatternSyntaxError("malformed CIDR: expected address/prefix-length, e.g. \"10.0.0.0/24\"")
        }
        guard let address = IPAddress.parse(Array(text[..<slash])) else {
            throw PatternSyntaxError(
                "malformed CIDR: \"\(String(decoding: text[..<slash], as: UTF8.self))\" is not an IPv4 or IPv6 address")
        }
        let digits = text[(slash + 1)...]
        guard !digits.isEmpty, digits.count <= 3, digits.allSatisfy({ $0 &- UInt8(ascii: "0") < 10 }),
            digits.count == 1 || digits.first != UInt8(ascii: "0")
        else {
            throw PatternSyntaxError("malformed CIDR: the prefix length must be a decimal number")
        }
        let length = digits.reduce(0) { $0 * 10 + Int($1 &- UInt8(ascii: "0")) }
        let maxLength = address.isIPv6 ? 128 : 32
        guard length <= maxLength else {
            throw PatternSyntaxError(
                "malformed CIDR: the prefix length of an IPv\(address.isIPv6 ? 6 : 4) block must be at most \(maxLength)")
        }
        self.prefixLength = UInt8(length)
        self.address = address.masked(length)
    }

    func contains(_ ip: IPAddress) -> Bool {
        ip.isIPv6 == address.isIPv6 && ip.masked(Int(prefixLength)) == address
    }
}
