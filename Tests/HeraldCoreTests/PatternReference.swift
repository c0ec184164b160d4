import HeraldCore
import Synchronization

/// A deliberately simple matcher written from the documented semantics (docs/patterns.md),
/// sharing no code with `Sources/HeraldCore/Pattern`: it reads the pattern's JSON directly,
/// flattens the event `JSONValue` into leaves and tries every assignment of leaves to
/// conditions. Slow and obviously correct, it is what the automaton is checked against.
enum PatternReference {
    /// One scalar of the event with the path of field names leading to it and the array
    /// elements it lies in ((array id, element index) from the root down).
    struct Leaf {
        var path: [String]
        var value: JSONValue
        var trail: [(Int, Int)]
    }

    /// The leaves of `event`. Arrays are crossed (also nested ones); objects inside arrays
    /// keep the array's path; empty arrays and objects give no leaf.
    static func leaves(of event: JSONValue) -> [Leaf] {
        var out: [Leaf] = []
        var nextArray = 0
        func walk(_ value: JSONValue, _ path: [String], _ trail: [(Int, Int)]) {
            switch value {
            case .object(let members):
                for m in members { walk(m.value, path + [m.key], trail) }
            case .array(let elements):
                nextArray += 1
                let id = nextArray
                for (i, e) in elements.enumerated() { walk(e, path, trail + [(id, i)]) }
            default:
                if !path.isEmpty { out.append(Leaf(path: path, value: value, trail: trail)) }
            }
        }
        walk(event, [], [])
        return out
    }

    /// A condition of one alternative: a path and the pattern's list of operands for it.
    struct Condition {
        var path: [String]
        var operands: [JSONValue]
        /// The operands include `"exists": false`.
        var allowsAbsent: Bool

        init(path: [String], operands: [JSONValue]) {
            self.path = path
            self.operands = operands
            allowsAbsent = operands.contains(.object([.init("exists", .bool(false))]))
        }
    }

    /// The alternatives of a pattern object: `$or` branches multiplied out.
    static func alternatives(_ pattern: JSONValue, _ prefix: [String] = []) -> [[Condition]] {
        guard case .object(let members) = pattern else { return [] }
        var result: [[Condition]] = [[]]
        for m in members {
            var options: [[Condition]] = []
            if m.key == "$or", case .array(let branches) = m.value {
                for b in branches { options += alternatives(b, prefix) }
            } else if case .array(let operands) = m.value {
                options = [[Condition(path: prefix + [m.key], operands: operands)]]
            } else {
                options = alternatives(m.value, prefix + [m.key])
            }
            result = result.flatMap { r in options.map { r + $0 } }
        }
        return result
    }

    static func matches(pattern: JSONValue, event: JSONValue) -> Bool {
        guard case .object = event else { return false }
        return matches(alternatives: alternatives(pattern), leaves: leaves(of: event))
    }

    static func matches(alternatives: [[Condition]], leaves: [Leaf]) -> Bool {
        matches(alternatives: alternatives, leaves: Dictionary(grouping: leaves, by: \.path))
    }

    /// The same, with the event's leaves grouped by path (the corpus test groups once per
    /// event and tests many patterns).
    static func matches(alternatives: [[Condition]], leaves: [[String]: [Leaf]]) -> Bool {
        alternatives.contains { satisfiable($0, leaves) }
    }

    static func consistent(_ a: Leaf, _ b: Leaf) -> Bool {
        for (x, i) in a.trail {
            for (y, j) in b.trail where x == y && i != j { return false }
        }
        return true
    }

    /// Some choice, per condition, of a leaf satisfying one operand, or of "absent" when
    /// the operands include `"exists": false`, such that chosen leaves are pairwise
    /// consistent and no "absent" path has a leaf consistent with all chosen leaves.
    static func satisfiable(_ conditions: [Condition], _ leaves: [[String]: [Leaf]]) -> Bool {
        var chosen: [Leaf] = []
        var absent: [[String]] = []
        func search(_ i: Int) -> Bool {
            if i == conditions.count {
                return absent.allSatisfy { path in
                    !(leaves[path] ?? []).contains { leaf in chosen.allSatisfy { consistent($0, leaf) } }
                }
            }
            let c = conditions[i]
            for leaf in leaves[c.path] ?? [] where chosen.allSatisfy({ consistent($0, leaf) }) {
                if c.operands.contains(where: { operand($0, matches: leaf.value) }) {
                    chosen.append(leaf)
                    if search(i + 1) { return true }
                    chosen.removeLast()
                }
            }
            if c.allowsAbsent {
                absent.append(c.path)
                if search(i + 1) { return true }
                absent.removeLast()
            }
            return false
        }
        return search(0)
    }

    // MARK: - Operands

    static func operand(_ op: JSONValue, matches value: JSONValue) -> Bool {
        switch op {
        case .string, .bool, .null: return op == value
        case .number(let n): if case .number(let v) = value { return v == n } else { return false }
        case .array: return false
        case .object(let members):
            let name = members[0].key
            let arg = members[0].value
            let s = value.stringValue
            switch name {
            case "exists": return arg == .bool(true)
            case "prefix":
                guard let s else { return false }
                if case .object(let inner) = arg { return fold(s).starts(with: fold(inner[0].value.stringValue!)) }
                return Array(s.utf8).starts(with: Array(arg.stringValue!.utf8))
            case "suffix":
                guard let s else { return false }
                if case .object(let inner) = arg {
                    return fold(s).reversed().starts(with: fold(inner[0].value.stringValue!).reversed())
                }
                return Array(s.utf8).reversed().starts(with: Array(arg.stringValue!.utf8).reversed())
            case "equals-ignore-case":
                guard let s else { return false }
                return fold(s) == fold(arg.stringValue!)
            case "wildcard":
                guard let s else { return false }
                return glob(tokens(arg.stringValue!), Array(s.utf8))
            case "cidr":
                guard let s, let ip = parseIP(s), let block = parseCIDR(arg.stringValue!) else { return false }
                return ip.count == block.ip.count && samePrefix(ip, block.ip, block.length)
            case "numeric":
                guard case .number(let v) = value, case .array(let terms) = arg else { return false }
                var k = 0
                while k + 1 < terms.count {
                    guard case .string(let o) = terms[k], case .number(let bound) = terms[k + 1] else { return false }
                    let ok: Bool
                    switch o {
                    case "=": ok = v == bound
                    case "<": ok = v < bound
                    case "<=": ok = v <= bound
                    case ">": ok = v > bound
                    default: ok = v >= bound
                    }
                    if !ok { return false }
                    k += 2
                }
                return true
            case "anything-but":
                return !excluded(arg, value)
            default:
                return false
            }
        }
    }

    static func excluded(_ arg: JSONValue, _ value: JSONValue) -> Bool {
        switch arg {
        case .string, .number: return operand(arg, matches: value)
        case .array(let items): return items.contains { operand($0, matches: value) }
        case .object(let members):
            let inner = members[0]
            let list: [JSONValue]
            if case .array(let items) = inner.value { list = items } else { list = [inner.value] }
            return list.contains { operand(.object([.init(inner.key, $0)]), matches: value) }
        default: return false
        }
    }

    /// Simple case folding for the characters the tests use: lowercase, plus the few
    /// scalars whose folding differs from their lowercase.
    static let foldCache = Mutex<[String: [UInt8]]>([:])
    static let ipCache = Mutex<[String: IP?]>([:])

    /// `fold` and `parseIP` are pure; the corpus test calls them millions of times on a few
    /// thousand distinct strings, so their results are remembered.
    static func fold(_ s: String) -> [UInt8] {
        if let cached = foldCache.withLock({ $0[s] }) { return cached }
        let folded = computeFold(s)
        foldCache.withLock { $0[s] = folded }
        return folded
    }

    static func parseIP(_ s: String) -> IP? {
        if let cached = ipCache.withLock({ $0[s] }) { return cached }
        let ip = computeIP(s)
        ipCache.withLock { $0[s] = ip }
        return ip
    }

    static func computeFold(_ s: String) -> [UInt8] {
        var out = ""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "ς": out += "σ"
            case "µ": out += "μ"
            case "ẞ": out += "ß"
            case "İ": out.unicodeScalars.append(scalar)
            default: out += String(scalar).lowercased()
            }
        }
        return Array(out.utf8)
    }

    /// Wildcard tokens: nil is `*`, a byte is a literal.
    static func tokens(_ w: String) -> [UInt8?] {
        var out: [UInt8?] = []
        var bytes = Array(w.utf8)[...]
        while let b = bytes.popFirst() {
            if b == UInt8(ascii: "\\"), let next = bytes.popFirst() {
                out.append(next)
            } else if b == UInt8(ascii: "*") {
                out.append(nil)
            } else {
                out.append(b)
            }
        }
        return out
    }

    static func glob(_ t: [UInt8?], _ s: [UInt8]) -> Bool {
        func from(_ i: Int, _ j: Int) -> Bool {
            guard i < t.count else { return j == s.count }
            if let literal = t[i] { return j < s.count && s[j] == literal && from(i + 1, j + 1) }
            for k in j...s.count where from(i + 1, k) { return true }
            return false
        }
        return from(0, 0)
    }

    // MARK: - IP addresses

    /// An address as its bytes (4 for IPv4, 16 for IPv6).
    typealias IP = [UInt8]

    static func computeIP(_ s: String) -> IP? {
        if !s.contains(":") {
            let parts = s.split(separator: ".", omittingEmptySubsequences: false)
            guard parts.count == 4 else { return nil }
            var bytes: [UInt8] = []
            for p in parts {
                guard !p.isEmpty, p.count <= 3, p.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }),
                    p.count == 1 || p.first != "0", let v = Int(p), v <= 255
                else { return nil }
                bytes.append(UInt8(v))
            }
            return bytes
        }
        func groups(_ text: String) -> [Int]? {
            if text.isEmpty { return [] }
            var out: [Int] = []
            let parts = text.split(separator: ":", omittingEmptySubsequences: false)
            for (i, p) in parts.enumerated() {
                if p.contains("."), i == parts.count - 1, let v4 = parseIP(String(p)) {
                    out += [Int(v4[0]) << 8 | Int(v4[1]), Int(v4[2]) << 8 | Int(v4[3])]
                } else {
                    guard (1...4).contains(p.count), let v = Int(p, radix: 16) else { return nil }
                    out.append(v)
                }
            }
            return out
        }
        let halves = s.components(separatedBy: "::")
        var all: [Int]
        if halves.count == 1 {
            guard let g = groups(s), g.count == 8 else { return nil }
            all = g
        } else if halves.count == 2 {
            guard let a = groups(halves[0]), let b = groups(halves[1]), a.count + b.count < 8 else { return nil }
            all = a + Array(repeating: 0, count: 8 - a.count - b.count) + b
        } else {
            return nil
        }
        var bytes: [UInt8] = []
        for g in all { bytes += [UInt8(g >> 8), UInt8(g & 0xFF)] }
        return bytes
    }

    static let cidrCache = Mutex<[String: (ip: IP, length: Int)]>([:])

    static func parseCIDR(_ s: String) -> (ip: IP, length: Int)? {
        if let cached = cidrCache.withLock({ $0[s] }) { return cached }
        let parts = s.split(separator: "/")
        guard parts.count == 2, let ip = parseIP(String(parts[0])), let n = Int(parts[1]) else { return nil }
        cidrCache.withLock { $0[s] = (ip, n) }
        return (ip, n)
    }

    /// True when the first `n` bits of `a` and `b` are equal.
    static func samePrefix(_ a: IP, _ b: IP, _ n: Int) -> Bool {
        for bit in 0..<n where (a[bit / 8] >> (7 - bit % 8)) & 1 != (b[bit / 8] >> (7 - bit % 8)) & 1 { return false }
        return true
    }
}

extension String {
    /// `components(separatedBy:)` without Foundation.
    func components(separatedBy separator: String) -> [String] {
        var out: [String] = []
        var rest = Substring(self)
        while let r = rest.firstRange(of: separator) {
            out.append(String(rest[..<r.lowerBound]))
            rest = rest[r.upperBound...]
        }
        out.append(String(rest))
        return out
    }
}
