/// Every live subscription of the gateway, matched once per event.
///
/// The index answers one question on the hot path: which connections want this event,
/// and through which of their subscriptions. Results are written into a caller-owned
/// buffer so matching allocates nothing.
///
/// This version tests each subscription's patterns in turn; the routing work replaces the
/// inside with one compiled automaton without changing this API.
/// - Complexity: `match` is O(subscriptions × pattern fields); `add` and `remove` are
///   O(subscriptions of the owner).
public struct SubscriptionIndex: Sendable {
    /// One connection that wants an event, and which of its subscriptions matched.
    public struct Match: Sendable, Equatable {
        public var owner: UInt64
        public var subscriptions: SubscriptionSet
        public init(owner: UInt64, subscriptions: SubscriptionSet) {
            self.owner = owner
            self.subscriptions = subscriptions
        }
    }

    private struct Subscription: Sendable {
        var slot: Int
        /// All must match (a route's pattern, the client's filter, a token scope).
        var patterns: [Pattern]
    }

    private struct Owner: Sendable {
        var id: UInt64
        var subscriptions: [Subscription]
    }

    private var owners: [Owner] = []
    private var positions: [UInt64: Int] = [:]
    /// Number of live subscriptions.
    public private(set) var count = 0

    public init() {}

    /// Adds (or replaces) the subscription in `slot` of `owner`; it matches an event when
    /// every one of `patterns` does (an empty list matches every event).
    public mutating func add(owner: UInt64, slot: Int, patterns: [Pattern]) {
        let position: Int
        if let existing = positions[owner] {
            position = existing
        } else {
            position = owners.count
            owners.append(Owner(id: owner, subscriptions: []))
            positions[owner] = position
        }
        if let i = owners[position].subscriptions.firstIndex(where: { $0.slot == slot }) {
            owners[position].subscriptions[i].patterns = patterns
        } else {
            owners[position].subscriptions.append(Subscription(slot: slot, patterns: patterns))
            count += 1
        }
    }

    /// Removes the subscription in `slot` of `owner`, if any.
    public mutating func remove(owner: UInt64, slot: Int) {
        guard let position = positions[owner],
              let i = owners[position].subscriptions.firstIndex(where: { $0.slot == slot }) else { return }
        owners[position].subscriptions.remove(at: i)
        count -= 1
        if owners[position].subscriptions.isEmpty { removeOwner(at: position) }
    }

    /// Removes every subscription of `owner`.
    public mutating func removeAll(owner: UInt64) {
        guard let position = positions[owner] else { return }
        count -= owners[position].subscriptions.count
        removeOwner(at: position)
    }

    private mutating func removeOwner(at position: Int) {
        positions[owners[position].id] = nil
        let last = owners.count - 1
        if position != last {
            owners[position] = owners[last]
            positions[owners[position].id] = position
        }
        owners.removeLast()
    }

    /// Appends to `results` one entry per owner with at least one matching subscription.
    public func match(_ event: EventView, into results: inout [Match]) {
        for owner in owners {
            var matched = SubscriptionSet()
            for subscription in owner.subscriptions where subscription.patterns.allSatisfy({ $0.matches(event) }) {
                matched.insert(subscription.slot)
            }
            if !matched.isEmpty { results.append(Match(owner: owner.id, subscriptions: matched)) }
        }
    }
}
