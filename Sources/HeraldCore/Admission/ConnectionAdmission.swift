/// How many connections the gateway holds, in all, per client address and per JWT
/// subject, and whether one more may come in (`limits.maxConnections`,
/// `.maxConnectionsPerAddress`, `.maxConnectionsPerSubject`).
/// A client behind one IPv6 /64 holds as many addresses as it likes, so IPv6 is counted
/// per /64 (`addressKey`). Shared by the loops behind one lock, touched only when a
/// connection opens or closes.
public struct ConnectionAdmission: Sendable {
    public let maxTotal: Int
    public let maxPerAddress: Int
    public let maxPerSubject: Int
    public private(set) var total = 0
    private var perAddress: [String: Int] = [:]
    private var perSubject: [String: Int] = [:]

    public init(maxTotal: Int, maxPerAddress: Int, maxPerSubject: Int = .max) {
        self.maxTotal = maxTotal
        self.maxPerAddress = maxPerAddress
        self.maxPerSubject = maxPerSubject
    }

    /// Why a connection could not come in.
    public enum Refusal: Equatable, Sendable {
        case total(Int)
        case perAddress(String, Int)
        case perSubject(String, Int)

        public var message: String {
            switch self {
            case .total(let limit): "the gateway holds its most connections (\(limit), limits.maxConnections); retry later"
            case .perAddress(let key, let limit):
                "\(key) holds its most connections (\(limit), limits.maxConnectionsPerAddress); close some or retry later"
            case .perSubject(let subject, let limit):
                "the token's subject \(subject.debugDescription) holds its most streams (\(limit), limits.maxConnectionsPerSubject)"
            }
        }
    }

    /// Counts a connection from `peer` in, or says why not (then nothing is counted).
    public mutating func admit(peer: String) -> Refusal? {
        let key = Self.addressKey(peer)
        if total >= maxTotal { return .total(maxTotal) }
        let held = perAddress[key, default: 0]
        if held >= maxPerAddress { return .perAddress(key, maxPerAddress) }
        total += 1
        perAddress[key] = held + 1
        return nil
    }

    /// Counts an admitted connection from `peer` out.
    public mutating func release(peer: String) {
        let key = Self.addressKey(peer)
        guard let held = perAddress[key] else { return }
        total -= 1
        perAddress[key] = held > 1 ? held - 1 : nil
    }

    public func held(by peer: String) -> Int { perAddress[Self.addressKey(peer)] ?? 0 }

    /// Counts a stream of a JWT's `sub` in (WebSocket or SSE), or says why not.
    public mutating func admit(subject: String) -> Refusal? {
        let held = perSubject[subject, default: 0]
        if held >= maxPerSubject { return .perSubject(subject, maxPerSubject) }
        perSubject[subject] = held + 1
        return nil
    }

    public mutating func release(subject: String) {
        guard let held = perSubject[subject] else { return }
        perSubject[subject] = held > 1 ? held - 1 : nil
    }

    /// The unit a client is counted by: an IPv4 address as it is (also when written as
    /// an IPv4-mapped IPv6 address), an IPv6 address by its /64 (`2001:db8:1:2::/64`).
    public static func addressKey(_ peer: String) -> String {
        guard peer.contains(":") else { return peer }
        var text = Substring(peer)
        if let percent = text.firstIndex(of: "%") { text = text[..<percent] }  // zone index
        if text.lowercased().hasPrefix("::ffff:"), text.contains(".") { return String(text.dropFirst(7)) }
        guard let groups = expandIPv6(text) else { return peer }
        return groups.prefix(4).map { String($0, radix: 16) }.joined(separator: ":") + "::/64"
    }

    /// The eight 16-bit groups of an IPv6 address in text, or nil when it is not one.
    static func expandIPv6(_ text: Substring) -> [UInt16]? {
        let halves = text.split(separator: "::", maxSplits: 1, omittingEmptySubsequences: false)
        guard halves.count <= 2 else { return nil }
        func groups(_ part: Substring) -> [UInt16]? {
            if part.isEmpty { return [] }
            var out: [UInt16] = []
            for piece in part.split(separator: ":", omittingEmptySubsequences: false) {
                guard (1...4).contains(piece.count), let value = UInt16(piece, radix: 16) else { return nil }
                out.append(value)
            }
            return out
        }
        guard let head = groups(halves[0]) else { return nil }
        if halves.count == 1 { return head.count == 8 ? head : nil }
        guard let tail = groups(halves[1]), head.count + tail.count < 8 else { return nil }
        return head + Array(repeating: 0, count: 8 - head.count - tail.count) + tail
    }
}
