import Synchronization

/// Every live subscription of the gateway, compiled into one automaton and matched once
/// per event.
///
/// The index answers one question on the hot path: which connections want this event,
/// and through which of their subscriptions. A subscription is a list of patterns that
/// must all match (a route's pattern, the client's filter, a token scope); each pattern is
/// matched on its own (its own array-consistency context). All subscriptions share one
/// ``MatchAutomaton``: equal patterns are compiled once, equal leading conditions share
/// states, and every value test on a path is one lookup whatever the number of
/// subscriptions using it. Results go into a caller-owned buffer so matching allocates
/// nothing.
///
/// `SubscriptionIndex` is a value: a copy is an independent snapshot that can be handed to
/// another thread. `add` and `remove` are incremental (no rebuild), meant to run between
/// events on the thread that owns the index.
///
/// - Complexity: `match` is O(leaves of the event on tested paths + states reached +
///   results) for deterministic operators — independent of the number of subscriptions;
///   `anything-but` and wildcards add O(their predicates on a reached state). `add` is
///   O(conditions of its patterns) (amortised: hash tables grow by doubling and interval
///   trees are rebuilt when a quarter of their ranges is new, which is when one `add`
///   takes longer — tens of milliseconds at 100K subscriptions); `remove` likewise;
///   `removeAll(owner:)` is that per subscription of the owner.
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
        var instances: [UInt32]
        var terminal: UInt32
    }

    private struct Owner: Sendable {
        var id: UInt64
        /// (slot, subscription) pairs.
        var subscriptions: [(slot: Int, subscription: Subscription)] = []
    }

    private var automaton: MatchAutomaton
    private var owners = Pool<Owner>()
    private var ownerIndex: [UInt64: UInt32] = [:]
    private let scratch = ScratchBox()

    /// Number of live subscriptions.
    public private(set) var count = 0

    public init() {
        automaton = MatchAutomaton(seed: UInt64.random(in: .min ... .max))
    }

    /// Adds (or replaces) the subscription in `slot` of `owner`; it matches an event when
    /// every one of `patterns` does (an empty list matches every event).
    ///
    /// - Complexity: O(total conditions of `patterns`) when they are new to the index,
    ///   O(number of patterns) when equal patterns are already compiled after the same
    ///   preceding patterns.
    public mutating func add(owner: UInt64, slot: Int, patterns: [Pattern]) {
        precondition(slot >= 0 && slot < SubscriptionSet.capacity, "subscription slot out of range")
        remove(owner: owner, slot: slot)
        let o: UInt32
        if let existing = ownerIndex[owner] {
            o = existing
        } else {
            o = owners.insert(Owner(id: owner))
            ownerIndex[owner] = o
        }
        var join = MatchAutomaton.root
        var instances: [UInt32] = []
        instances.reserveCapacity(patterns.count)
        for pattern in patterns {
            let instance = automaton.retainInstance(from: join, pattern: pattern)
            instances.append(instance)
            join = automaton.join(of: instance)
        }
        let terminal = automaton.addTerminal(join: join, owner: o, ownerID: owner, slot: UInt32(slot))
        owners[Int(o)].subscriptions.append((slot, Subscription(instances: instances, terminal: terminal)))
        count += 1
    }

    /// Removes the subscription in `slot` of `owner`, if any.
    public mutating func remove(owner: UInt64, slot: Int) {
        guard let o = ownerIndex[owner],
            let i = owners[Int(o)].subscriptions.firstIndex(where: { $0.slot == slot })
        else { return }
        let subscription = owners[Int(o)].subscriptions[i].subscription
        owners[Int(o)].subscriptions.remove(at: i)
        release(subscription)
        if owners[Int(o)].subscriptions.isEmpty { removeOwner(o) }
    }

    /// Removes every subscription of `owner`.
    public mutating func removeAll(owner: UInt64) {
        guard let o = ownerIndex[owner] else { return }
        for (_, subscription) in owners[Int(o)].subscriptions { release(subscription) }
        owners[Int(o)].subscriptions.removeAll()
        removeOwner(o)
    }

    private mutating func release(_ subscription: Subscription) {
        automaton.removeTerminal(subscription.terminal)
        for instance in subscription.instances.reversed() { automaton.releaseInstance(instance) }
        count -= 1
    }

    private mutating func removeOwner(_ o: UInt32) {
        ownerIndex[owners[Int(o)].id] = nil
        owners.release(o, resetTo: Owner(id: 0))
    }

    /// Appends to `results` one entry per owner with at least one matching subscription
    /// (in no particular order).
    ///
    /// - Complexity: see the type; no allocation once the scratch buffers have grown to
    ///   the largest event seen.
    public func match(_ event: EventView, into results: inout [Match]) {
        if scratch.busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged {
            automaton.match(event, owners: owners.count, scratch: &scratch.scratch, into: &results)
            scratch.busy.store(false, ordering: .releasing)
        } else {
            // Another thread is matching on a copy of this index: use private buffers.
            let own = ScratchBox()
            automaton.match(event, owners: owners.count, scratch: &own.scratch, into: &results)
        }
    }

    // MARK: - Introspection

    /// Sizes of the compiled automaton (for reports and tests).
    public var statistics: Statistics {
        let s = automaton.statistics
        return Statistics(
            subscriptions: count, states: s.states, edges: s.edges, valueMatchers: s.matchers, paths: s.paths,
            values: s.values, bytes: automaton.byteCount + owners.capacity * MemoryLayout<Owner>.stride)
    }

    /// Sizes of the compiled automaton.
    public struct Statistics: Sendable, Equatable {
        public var subscriptions: Int
        public var states: Int
        public var edges: Int
        public var valueMatchers: Int
        public var paths: Int
        public var values: Int
        /// Approximate bytes held by the index (excluding the `Pattern` values callers keep).
        public var bytes: Int
    }
}

/// The reusable match buffers of one index.
///
/// - Note: `@unchecked Sendable`: `scratch` is only touched by the thread that won `busy`.
final class ScratchBox: @unchecked Sendable {
    let busy = Atomic<Bool>(false)
    var scratch = MatchScratch()

    deinit { scratch.deallocate() }
}
