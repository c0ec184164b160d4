/// All compiled subscriptions as one shared automaton, in the manner of event-ruler and
/// quamina (see `docs/patterns.md`, "How matching works").
///
/// Why it exists: matching an event must cost the same whether 1,000 or 1,000,000
/// subscriptions are live (for deterministic tests). So subscriptions are not tested one
/// by one; their conditions are merged into a graph that the event walks once:
///
/// - **States** are points in a walk. A *join* state is where a whole pattern has been
///   matched (the root join is "nothing matched yet"); from a join, each alternative of
///   the next pattern is a chain of **edges**, one per condition, in matching order. Equal
///   chain prefixes are shared: an edge is keyed by (from state, path, predicate set).
/// - Each state has one **value matcher** per path it tests. The matcher holds the
///   predicates of all edges leaving the state on that path — exact values in a hash
///   table, prefixes and suffixes in byte tries, numeric ranges in an interval tree, CIDR
///   blocks by prefix length, wildcards indexed by their literal prefix — and maps a leaf
///   to the next states in one lookup, however many edges share it.
/// - The end state of an alternative links to the pattern's join; a subscription's
///   terminal (owner, slot) sits on the join of its last pattern. A subscription with a
///   route and a filter is the chain root → route join → filter join: each pattern keeps
///   its own array-consistency context, and the route part is shared by every
///   subscription of the route.
///
/// The whole structure is flat arrays of plain structs indexed by `UInt32`, so it is a
/// `Sendable` value; a copy is a read-only snapshot.
struct MatchAutomaton: Sendable {
    struct State: Sendable {
        var firstMatcher = noID
        var matcherCount: UInt32 = 0
        /// `exists: false` edges leaving this state (linked through `Edge.next`).
        var firstAbsence = noID
        /// The join reached when this state ends an alternative (inline, as almost every
        /// state has at most one), then further ones as linked `JoinLink`s.
        var join = noID
        var firstJoin = noID
        /// A subscription complete here (joins only): inline, then further ones as linked
        /// `Terminal`s. Inline saves a cache miss per match on the hot path.
        var terminalOwner = noID
        var terminalSlot: UInt32 = 0
        var terminalOwnerID: UInt64 = 0
        var firstTerminal = noID
        /// The edge that created this state; `noID` for joins.
        var parentEdge = noID
        var isJoin = false
        var inUse = true
    }

    struct Edge: Sendable {
        var from: UInt32
        var path: UInt32
        var predicateSet: UInt32
        var child: UInt32
        var hash: UInt64
        var references: UInt32 = 1
        /// Neighbours in the state's absence list (absence edges only).
        var previous = noID
        var next = noID
    }

    struct JoinLink: Sendable {
        var join: UInt32
        var previous = noID
        var next = noID
    }

    struct Terminal: Sendable {
        /// Owner index (dense, for per-event marks) and the owner's id (for results).
        var owner: UInt32
        var ownerID: UInt64
        var slot: UInt32
        var state: UInt32
        var previous = noID
        var next = noID
    }

    /// The predicates of one value matcher (see `MatchAutomaton+Values.swift`).
    struct ValueMatcher: Sendable {
        var state: UInt32
        var path: UInt32
        var previous = noID
        var next = noID
        /// Entries in `exactTable` for string / number / boolean / null values.
        var exactCount: UInt32 = 0
        /// Entries in `exactTable` for case-folded strings.
        var foldedCount: UInt32 = 0
        var prefixRoot = noID
        var suffixRoot = noID
        var prefixFoldedRoot = noID
        var suffixFoldedRoot = noID
        var ranges = noID
        var cidrs = noID
        var wildcards = noID
        var anythingButs = noID
        /// `exists: true` targets: an index in `targetLists`, or `noID`.
        var exists = noID
        /// Registered (predicate, target) pairs; the matcher is freed at zero.
        var registrations: UInt32 = 0
    }

    /// One distinct `anyOf` list of predicates, shared by the edges testing it.
    struct PredicateSet: Sendable {
        var predicates: [PatternPredicate]
        var hash: UInt64
        var references: UInt32
    }

    /// A pattern compiled from one join: its alternatives' chains and the join they reach.
    struct Instance: Sendable {
        var from: UInt32
        var key: [UInt8]
        var hash: UInt64
        var join: UInt32
        var references: UInt32
        /// (end state, join link) per alternative.
        var ends: [(UInt32, UInt32)]
    }

    let seed: UInt64
    var states: Pool<State>
    var edges = Pool<Edge>()
    private var edgeTable: IDTable
    var joinLinks = Pool<JoinLink>()
    var terminals = Pool<Terminal>()
    var matchers = Pool<ValueMatcher>()
    /// (state << 32 | path) → matcher.
    var matcherTable: IDTable
    var paths: PathTrie
    var values: ValueInterner
    var predicateSets: Pool<PredicateSet>
    /// Hash of a predicate set's canonical bytes → predicate set (verified on lookup).
    /// An `IDTable` rather than a `Dictionary`: growing it moves integers and never
    /// rehashes the sets, which keeps the longest `add` short.
    private var predicateSetIndex: IDTable
    private var instances = Pool<Instance>()
    /// Hash of (from join, canonical pattern key) → instance (verified on lookup).
    private var instanceIndex: IDTable

    // Value structures (MatchAutomaton+Values.swift).
    /// (matcher << 32 | value id) → the next state, or `listFlag | i` for the several
    /// next states in `targetLists[i]`.
    var exactTable: IDTable
    /// Shared pool of target lists (exact values with several targets, `exists`).
    var targetLists = Pool<Targets>()
    /// Marks an `exactTable` value as an index in `targetLists`.
    static let listFlag: UInt32 = 0x8000_0000
    var trieNodes = Pool<TrieNode>()
    /// (node << 8 | byte) → child node.
    var trieEdges: IDTable
    var intervalSets = Pool<IntervalSet>()
    var cidrSets = Pool<CIDRSet>()
    var cidrEntries = Pool<CIDREntry>()
    var cidrTable: IDTable
    var wildcardSets = Pool<WildcardSet>()
    var anythingButSets = Pool<AnythingButSet>()

    /// The root join: where every walk starts.
    static let root: UInt32 = 0
    /// The predicate set id that means "absent" (`exists: false`).
    static let absentSet: UInt32 = 0

    init(seed: UInt64) {
        self.seed = seed
        edgeTable = IDTable(seed: seed &+ 1)
        matcherTable = IDTable(seed: seed &+ 2)
        exactTable = IDTable(seed: seed &+ 3)
        trieEdges = IDTable(seed: seed &+ 4)
        cidrTable = IDTable(seed: seed &+ 5)
        paths = PathTrie(seed: seed &+ 6)
        values = ValueInterner(seed: seed &+ 7)
        predicateSetIndex = IDTable(seed: seed &+ 8)
        instanceIndex = IDTable(seed: seed &+ 9)
        var root = State()
        root.isJoin = true
        states = Pool([root])
        predicateSets = Pool([PredicateSet(predicates: [], hash: 0, references: UInt32.max / 2)])
    }

    // MARK: - Patterns

    /// Compiles `pattern` as the next pattern after join `from` (sharing an existing copy)
    /// and returns the instance; its `join` is where the pattern counts as matched.
    /// - Complexity: O(conditions of the pattern) hash operations when new; O(1) when shared.
    mutating func retainInstance(from: UInt32, pattern: Pattern) -> UInt32 {
        let key = pattern.canonicalKey
        let hash = ByteHash.hash(key, seed: seed ^ UInt64(from) &* 0x9E37_79B9_7F4A_7C15)
        if let existing = instanceIndex.find(hash, where: { instances[Int($0)].from == from && instances[Int($0)].key == key }) {
            instances[Int(existing)].references += 1
            return existing
        }
        let join = newState(isJoin: true, parentEdge: noID)
        var ends: [(UInt32, UInt32)] = []
        ends.reserveCapacity(pattern.alternatives.count)
        for alternative in pattern.alternatives {
            var state = from
            for condition in alternative { state = retainEdge(from: state, condition) }
            ends.append((state, addJoinLink(state, join)))
        }
        let id = instances.insert(Instance(from: from, key: key, hash: hash, join: join, references: 1, ends: ends))
        instanceIndex.insert(hash, id)
        return id
    }

    func join(of instance: UInt32) -> UInt32 { instances[Int(instance)].join }

    /// Drops one reference to an instance; the last one removes its chains and join.
    mutating func releaseInstance(_ id: UInt32) {
        instances[Int(id)].references -= 1
        guard instances[Int(id)].references == 0 else { return }
        let instance = instances[Int(id)]
        for (end, link) in instance.ends {
            removeJoinLink(end, link)
            var chain: [UInt32] = []
            var state = end
            while state != instance.from {
                let edge = states[Int(state)].parentEdge
                chain.append(edge)
                state = edges[Int(edge)].from
            }
            for edge in chain { releaseEdge(edge) }
        }
        freeState(instance.join)
        instanceIndex.remove(instance.hash, id)
        instances.release(id, resetTo: Instance(from: noID, key: [], hash: 0, join: noID, references: 0, ends: []))
    }

    // MARK: - Edges

    private func edgeHash(_ from: UInt32, _ path: UInt32, _ set: UInt32) -> UInt64 {
        ByteHash.finalize(UInt64(from) &* 0x9E37_79B9_7F4A_7C15 ^ UInt64(path) << 32 ^ UInt64(set) &* 0xC2B2_AE3D_27D4_EB4F)
    }

    /// Follows (creating if needed) the edge for `condition` out of `from`; returns its child.
    private mutating func retainEdge(from: UInt32, _ condition: PatternCondition) -> UInt32 {
        let path = paths.retain(condition.path)
        let set: UInt32
        switch condition.test {
        case .absent: set = Self.absentSet
        case .anyOf(let predicates): set = retainPredicateSet(predicates)
        }
        let hash = edgeHash(from, path, set)
        if let existing = edgeTable.find(
            hash,
            where: { e in
                let edge = edges[Int(e)]
                return edge.from == from && edge.path == path && edge.predicateSet == set
            })
        {
            edges[Int(existing)].references += 1
            paths.release(path)
            if set != Self.absentSet { releasePredicateSet(set) }
            return edges[Int(existing)].child
        }
        let id = edges.insert(Edge(from: from, path: path, predicateSet: set, child: noID, hash: hash))
        let child = newState(isJoin: false, parentEdge: id)
        edges[Int(id)].child = child
        edgeTable.insert(hash, id)
        if set == Self.absentSet {
            let first = states[Int(from)].firstAbsence
            edges[Int(id)].next = first
            if first != noID { edges[Int(first)].previous = id }
            states[Int(from)].firstAbsence = id
        } else {
            let matcher = retainMatcher(state: from, path: path)
            for predicate in predicateSets[Int(set)].predicates { addPredicate(predicate, matcher: matcher, target: child) }
        }
        return child
    }

    private mutating func releaseEdge(_ id: UInt32) {
        edges[Int(id)].references -= 1
        guard edges[Int(id)].references == 0 else { return }
        let edge = edges[Int(id)]
        if edge.predicateSet == Self.absentSet {
            if edge.previous != noID {
                edges[Int(edge.previous)].next = edge.next
            } else {
                states[Int(edge.from)].firstAbsence = edge.next
            }
            if edge.next != noID { edges[Int(edge.next)].previous = edge.previous }
        } else {
            let matcher = matcherTable.first(UInt64(edge.from) << 32 | UInt64(edge.path))!
            for predicate in predicateSets[Int(edge.predicateSet)].predicates {
                removePredicate(predicate, matcher: matcher, target: edge.child)
            }
            releasePredicateSet(edge.predicateSet)
        }
        edgeTable.remove(edge.hash, id)
        paths.release(edge.path)
        freeState(edge.child)
        edges.release(id, resetTo: Edge(from: noID, path: noID, predicateSet: noID, child: noID, hash: 0, references: 0))
    }

    // MARK: - States, links, terminals

    private mutating func newState(isJoin: Bool, parentEdge: UInt32) -> UInt32 {
        var state = State()
        state.isJoin = isJoin
        state.parentEdge = parentEdge
        let id = states.insert(state)
        precondition(states.count < Int(Self.inlineFlag), "more than 2^31 automaton states")
        return id
    }

    private mutating func freeState(_ id: UInt32) {
        let s = states[Int(id)]
        assert(s.firstMatcher == noID && s.firstAbsence == noID && s.firstJoin == noID && s.firstTerminal == noID)
        assert(s.join == noID && s.terminalOwner == noID)
        states.release(id, resetTo: State(inUse: false))
    }

    /// Handles of inline links and terminals: the state id with this bit set.
    static let inlineFlag: UInt32 = 0x8000_0000

    private mutating func addJoinLink(_ state: UInt32, _ join: UInt32) -> UInt32 {
        if states[Int(state)].join == noID {
            states[Int(state)].join = join
            return Self.inlineFlag | state
        }
        let first = states[Int(state)].firstJoin
        let id = joinLinks.insert(JoinLink(join: join, previous: noID, next: first))
        if first != noID { joinLinks[Int(first)].previous = id }
        states[Int(state)].firstJoin = id
        return id
    }

    private mutating func removeJoinLink(_ state: UInt32, _ id: UInt32) {
        if id & Self.inlineFlag != 0 {
            states[Int(state)].join = noID
            return
        }
        let link = joinLinks[Int(id)]
        if link.previous != noID {
            joinLinks[Int(link.previous)].next = link.next
        } else {
            states[Int(state)].firstJoin = link.next
        }
        if link.next != noID { joinLinks[Int(link.next)].previous = link.previous }
        joinLinks.release(id)
    }

    /// Puts the subscription (owner index, slot) on `join`; returns the terminal handle.
    mutating func addTerminal(join: UInt32, owner: UInt32, ownerID: UInt64, slot: UInt32) -> UInt32 {
        if states[Int(join)].terminalOwner == noID {
            states[Int(join)].terminalOwner = owner
            states[Int(join)].terminalOwnerID = ownerID
            states[Int(join)].terminalSlot = slot
            return Self.inlineFlag | join
        }
        let first = states[Int(join)].firstTerminal
        let id = terminals.insert(Terminal(owner: owner, ownerID: ownerID, slot: slot, state: join, previous: noID, next: first))
        if first != noID { terminals[Int(first)].previous = id }
        states[Int(join)].firstTerminal = id
        return id
    }

    mutating func removeTerminal(_ id: UInt32) {
        if id & Self.inlineFlag != 0 {
            let state = Int(id & ~Self.inlineFlag)
            states[state].terminalOwner = noID
            states[state].terminalOwnerID = 0
            states[state].terminalSlot = 0
            return
        }
        let t = terminals[Int(id)]
        if t.previous != noID {
            terminals[Int(t.previous)].next = t.next
        } else {
            states[Int(t.state)].firstTerminal = t.next
        }
        if t.next != noID { terminals[Int(t.next)].previous = t.previous }
        terminals.release(id)
    }

    // MARK: - Matchers

    private mutating func retainMatcher(state: UInt32, path: UInt32) -> UInt32 {
        let key = UInt64(state) << 32 | UInt64(path)
        if let existing = matcherTable.first(key) { return existing }
        let first = states[Int(state)].firstMatcher
        let id = matchers.insert(ValueMatcher(state: state, path: path, next: first))
        if first != noID { matchers[Int(first)].previous = id }
        states[Int(state)].firstMatcher = id
        states[Int(state)].matcherCount += 1
        matcherTable.insert(key, id)
        return id
    }

    /// Frees matcher `id` once it holds no predicate.
    mutating func releaseMatcherIfEmpty(_ id: UInt32) {
        let m = matchers[Int(id)]
        guard m.registrations == 0 else { return }
        if m.previous != noID {
            matchers[Int(m.previous)].next = m.next
        } else {
            states[Int(m.state)].firstMatcher = m.next
        }
        if m.next != noID { matchers[Int(m.next)].previous = m.previous }
        states[Int(m.state)].matcherCount -= 1
        matcherTable.remove(UInt64(m.state) << 32 | UInt64(m.path), id)
        matchers.release(id, resetTo: ValueMatcher(state: noID, path: noID))
    }

    // MARK: - Predicate sets

    private mutating func retainPredicateSet(_ predicates: [PatternPredicate]) -> UInt32 {
        var bytes: [UInt8] = []
        for p in predicates { PatternPredicate.appendLengthPrefixed(p.canonicalBytes, to: &bytes) }
        let hash = ByteHash.hash(bytes, seed: seed)
        if let existing = predicateSetIndex.find(hash, where: { predicateSets[Int($0)].predicates == predicates }) {
            predicateSets[Int(existing)].references += 1
            return existing
        }
        let id = predicateSets.insert(PredicateSet(predicates: predicates, hash: hash, references: 1))
        predicateSetIndex.insert(hash, id)
        return id
    }

    private mutating func releasePredicateSet(_ id: UInt32) {
        predicateSets[Int(id)].references -= 1
        guard predicateSets[Int(id)].references == 0 else { return }
        predicateSetIndex.remove(predicateSets[Int(id)].hash, id)
        predicateSets.release(id, resetTo: PredicateSet(predicates: [], hash: 0, references: 0))
    }

    // MARK: - Statistics

    /// Counts for tests and reports.
    var statistics: (states: Int, edges: Int, matchers: Int, paths: Int, values: Int) {
        (states.liveCount, edges.liveCount, matchers.liveCount, paths.count, values.count)
    }

    /// Approximate bytes held by the automaton's storage.
    var byteCount: Int {
        var total = states.capacity * MemoryLayout<State>.stride + edges.capacity * MemoryLayout<Edge>.stride
        total += joinLinks.capacity * MemoryLayout<JoinLink>.stride + terminals.capacity * MemoryLayout<Terminal>.stride
        total += matchers.capacity * MemoryLayout<ValueMatcher>.stride
        total += edgeTable.byteCount + matcherTable.byteCount + exactTable.byteCount + trieEdges.byteCount
        total += cidrTable.byteCount + paths.byteCount + values.byteCount
        total += targetLists.capacity * MemoryLayout<Targets>.stride + trieNodes.capacity * MemoryLayout<TrieNode>.stride
        total += predicateSets.capacity * MemoryLayout<PredicateSet>.stride + predicateSetIndex.byteCount
        for i in instances where i.join != noID { total += MemoryLayout<Instance>.stride + i.key.capacity + i.ends.capacity * 8 }
        total += instanceIndex.byteCount
        for set in intervalSets { total += set.byteCount }
        return total
    }
}
