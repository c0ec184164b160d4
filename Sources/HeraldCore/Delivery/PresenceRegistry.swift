/// Who is in which presence group (DESIGN §4).
///
/// A member is one connection (a browser tab), so the same person may be in a group
/// several times; `info` is what the connection joined with (a nickname, say). The
/// registry only keeps membership: the gateway turns every change into an ordinary
/// `herald.presence` event so that it is routed, kept in history and resumed.
public struct PresenceRegistry: Sendable {
    /// One connection in one group.
    public struct Member: Sendable {
        public var client: UInt64
        /// The node the connection is on, in a cluster (empty on a single node): client ids
        /// are a node's own, so a cluster names members `<node>.<client>`.
        public var node: String
        /// What the connection joined with, exactly as it sent it.
        public var info: RawJSON
        /// `ws` or `sse`.
        public var transport: String
        /// The event that announced the latest join: a member is listed to a caller only
        /// when this event would be delivered to it (its token's scope).
        public var joinEvent: Event?

        /// The sequence number of the event that announced the latest join.
        public var joinedSeq: UInt64 { joinEvent?.seq ?? 0 }

        /// The member's name in presence events and lists.
        public var id: String { node.isEmpty ? String(client) : "\(node).\(client)" }

        public init(client: UInt64, node: String = "", info: RawJSON, transport: String, joinEvent: Event? = nil) {
            self.client = client
            self.node = node
            self.info = info
            self.transport = transport
            self.joinEvent = joinEvent
        }
    }

    /// Members of each group, in join order.
    private var groups: [String: [Member]] = [:]
    /// The groups of each client, for leaving them all when it disconnects.
    private var memberships: [UInt64: [String]] = [:]

    public init() {}

    public var groupCount: Int { groups.count }
    /// The groups with at least one member.
    public var groupNames: Dictionary<String, [Member]>.Keys { groups.keys }
    public var memberCount: Int { groups.values.reduce(0) { $0 + $1.count } }

    public func members(of group: String) -> [Member] { groups[group] ?? [] }

    /// Every member of every group.
    public var everyMember: [(group: String, member: Member)] {
        groups.flatMap { group, members in members.map { (group, $0) } }
    }

    public func groups(of client: UInt64) -> [String] { memberships[client] ?? [] }

    public func isMember(_ client: UInt64, of group: String) -> Bool {
        memberships[client]?.contains(group) ?? false
    }

    /// Adds `member` to `group`, or replaces its info when it is already there.
    public mutating func join(_ group: String, _ member: Member) {
        if let index = groups[group]?.firstIndex(where: { $0.client == member.client }) {
            groups[group]![index] = member
            return
        }
        groups[group, default: []].append(member)
        memberships[member.client, default: []].append(group)
    }

    /// Removes `client` from `group`; returns the member it was, or nil if it was not one.
    @discardableResult
    public mutating func leave(_ group: String, client: UInt64) -> Member? {
        guard let index = groups[group]?.firstIndex(where: { $0.client == client }) else { return nil }
        let member = groups[group]!.remove(at: index)
        if groups[group]!.isEmpty { groups[group] = nil }
        memberships[client]?.removeAll { $0 == group }
        if memberships[client]?.isEmpty == true { memberships[client] = nil }
        return member
    }
}
