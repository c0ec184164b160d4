/// Per-event working memory of ``MatchAutomaton/match(_:owners:scratch:into:)``,
/// reused from event to event so matching allocates nothing in the steady state.
struct MatchScratch {
    struct Leaf {
        var node: UInt32
        var path: UInt32
        /// Next leaf on the same path, or -1.
        var next: Int32
        var trailStart: UInt32
        var trailCount: UInt32
        var kind: JSONTape.Kind
        /// Which lazily computed fields are set (`Known`).
        var known: UInt8 = 0
        var exact = noID
        var folded = noID
        var bytesStart: UInt32 = 0
        var bytesCount: UInt32 = 0
        var bytesInArena = false
        var foldStart: UInt32 = 0
        var foldCount: UInt32 = 0
        var number: Double = 0
        var ip: IPAddress?
    }

    enum Known {
        static let bytes: UInt8 = 1
        static let exact: UInt8 = 2
        static let folded: UInt8 = 4
        static let foldedValue: UInt8 = 8
        static let number: UInt8 = 16
        static let ip: UInt8 = 32
    }

    var generation: UInt32 = 0
    var leaves: [Leaf] = []
    /// Array choices of every leaf (each leaf owns a slice).
    var trails: [ArrayChoice] = []
    /// Array choices on the way down while flattening.
    var walkTrail: [ArrayChoice] = []
    /// Per path id: head of its leaf list, valid when the stamp is this generation.
    var pathHead = UnsafeMutableBufferPointer<Int32>(start: nil, count: 0)
    var pathStamp = UnsafeMutableBufferPointer<UInt32>(start: nil, count: 0)
    var presentPaths: [UInt32] = []
    /// Joins entered this event: a short list, or per-state stamps once it grows.
    var visitedJoins: [UInt32] = []
    var joinStampMode = false
    var joinStamp = UnsafeMutableBufferPointer<UInt32>(start: nil, count: 0)
    /// Owners recorded this event: found by a scan of the results while few, by per-owner
    /// stamps once many.
    var resultsStart = 0
    var recordedOwners: [UInt32] = []
    var ownerStampMode = false
    var ownerStamp = UnsafeMutableBufferPointer<UInt32>(start: nil, count: 0)
    var ownerResult = UnsafeMutableBufferPointer<Int32>(start: nil, count: 0)
    /// Array choices of the leaves chosen on the current walk.
    var context: [ArrayChoice] = []
    var frontier: [UInt32] = []
    /// Decoded and case-folded strings of this event.
    var arena = UnsafeMutableRawBufferPointer(start: nil, count: 0)
    var arenaUsed = 0

    /// Below this many entries the join and owner marks are kept in short lists.
    static let shortList = 16

    /// Frees the raw buffers (called by the owner of the scratch).
    func deallocate() {
        pathHead.deallocate()
        pathStamp.deallocate()
        joinStamp.deallocate()
        ownerStamp.deallocate()
        ownerResult.deallocate()
        arena.deallocate()
    }

    private static func grow<T>(_ buffer: inout UnsafeMutableBufferPointer<T>, to count: Int, fill: T) {
        guard buffer.count < count else { return }
        let bigger = UnsafeMutableBufferPointer<T>.allocate(capacity: max(count, 2 * buffer.count))
        _ = bigger.initialize(from: buffer)
        bigger[buffer.count...].initialize(repeating: fill)
        buffer.deallocate()
        buffer = bigger
    }

    /// Sizes the buffers for the automaton and the event and starts a new generation.
    mutating func prepare(paths: Int, states: Int, owners: Int, eventBytes: Int) {
        generation &+= 1
        if generation == 0 {
            pathStamp.update(repeating: 0)
            joinStamp.update(repeating: 0)
            ownerStamp.update(repeating: 0)
            generation = 1
        }
        Self.grow(&pathStamp, to: paths, fill: 0)
        Self.grow(&pathHead, to: paths, fill: -1)
        Self.grow(&joinStamp, to: states, fill: 0)
        Self.grow(&ownerStamp, to: owners, fill: 0)
        Self.grow(&ownerResult, to: owners, fill: -1)
        let arenaNeeded = 3 * eventBytes + 16
        if arena.count < arenaNeeded {
            arena.deallocate()
            arena = .allocate(byteCount: max(arenaNeeded, 2 * arena.count), alignment: 8)
        }
        arenaUsed = 0
        leaves.removeAll(keepingCapacity: true)
        trails.removeAll(keepingCapacity: true)
        presentPaths.removeAll(keepingCapacity: true)
        context.removeAll(keepingCapacity: true)
        frontier.removeAll(keepingCapacity: true)
        walkTrail.removeAll(keepingCapacity: true)
        visitedJoins.removeAll(keepingCapacity: true)
        recordedOwners.removeAll(keepingCapacity: true)
        joinStampMode = false
        ownerStampMode = false
    }

    /// True the first time `join` is entered in this event.
    @inline(__always)
    mutating func firstVisit(join: UInt32) -> Bool {
        if !joinStampMode {
            for j in visitedJoins where j == join { return false }
            if visitedJoins.count < Self.shortList {
                visitedJoins.append(join)
                return true
            }
            joinStampMode = true
            for j in visitedJoins { joinStamp[Int(j)] = generation }
        }
        if joinStamp[Int(join)] == generation { return false }
        joinStamp[Int(join)] = generation
        return true
    }

    /// Adds the terminal's subscription to its owner's result.
    @inline(__always)
    mutating func record(owner: UInt32, ownerID: UInt64, slot: UInt32, into results: inout [SubscriptionIndex.Match]) {
        let o = Int(owner)
        if !ownerStampMode {
            var i = resultsStart
            while i < results.count {
                if results[i].owner == ownerID {
                    results[i].subscriptions.insert(Int(slot))
                    return
                }
                i += 1
            }
            if recordedOwners.count < Self.shortList {
                recordedOwners.append(owner)
                results.append(SubscriptionIndex.Match(owner: ownerID, subscriptions: SubscriptionSet(slot: Int(slot))))
                return
            }
            ownerStampMode = true
            for (k, owner) in recordedOwners.enumerated() {
                ownerStamp[Int(owner)] = generation
                ownerResult[Int(owner)] = Int32(resultsStart + k)
            }
        }
        if ownerStamp[o] == generation {
            results[Int(ownerResult[o])].subscriptions.insert(Int(slot))
        } else {
            ownerStamp[o] = generation
            ownerResult[o] = Int32(results.count)
            results.append(SubscriptionIndex.Match(owner: ownerID, subscriptions: SubscriptionSet(slot: Int(slot))))
        }
    }

    mutating func addLeaf(node: Int, kind: JSONTape.Kind, path: UInt32) {
        let index = Int32(leaves.count)
        let p = Int(path)
        if pathStamp[p] != generation {
            pathStamp[p] = generation
            pathHead[p] = -1
            presentPaths.append(path)
        }
        leaves.append(
            Leaf(
                node: UInt32(node), path: path, next: pathHead[p], trailStart: UInt32(trails.count),
                trailCount: UInt32(walkTrail.count), kind: kind))
        trails.append(contentsOf: walkTrail)
        pathHead[p] = index
    }

    // MARK: Array consistency

    /// True when leaf `i` lies in no other element of an array than one already chosen in
    /// `context[window...]`.
    func isConsistent(leaf i: Int, window: Int) -> Bool {
        let leaf = leaves[i]
        if leaf.trailCount == 0 || context.count == window { return true }
        let start = Int(leaf.trailStart)
        for t in start..<(start + Int(leaf.trailCount)) {
            let choice = trails[t]
            var c = window
            while c < context.count {
                if context[c].array == choice.array && context[c].element != choice.element { return false }
                c += 1
            }
        }
        return true
    }

    /// Adds leaf `i`'s array choices to the context.
    mutating func pushContext(leaf i: Int, window: Int) {
        let leaf = leaves[i]
        let start = Int(leaf.trailStart)
        for t in start..<(start + Int(leaf.trailCount)) {
            let choice = trails[t]
            var present = false
            var c = window
            while c < context.count {
                if context[c].array == choice.array {
                    present = true
                    break
                }
                c += 1
            }
            if !present { context.append(choice) }
        }
    }

    func hasConsistentLeaf(path: UInt32, window: Int) -> Bool {
        guard pathStamp[Int(path)] == generation else { return false }
        var leaf = pathHead[Int(path)]
        while leaf >= 0 {
            if isConsistent(leaf: Int(leaf), window: window) { return true }
            leaf = leaves[Int(leaf)].next
        }
        return false
    }

    /// Removes repeated states from `frontier[mark...]` (a state reached through two
    /// predicates of one leaf is walked once).
    mutating func dedupeFrontier(from mark: Int) {
        let n = frontier.count - mark
        guard n > 1 else { return }
        if n <= 16 {
            var write = mark + 1
            for read in (mark + 1)..<frontier.count {
                let s = frontier[read]
                var seen = false
                for k in mark..<write where frontier[k] == s {
                    seen = true
                    break
                }
                if !seen {
                    frontier[write] = s
                    write += 1
                }
            }
            frontier.removeSubrange(write...)
        } else {
            frontier[mark...].sort()
            var write = mark + 1
            for read in (mark + 1)..<frontier.count where frontier[read] != frontier[write - 1] {
                frontier[write] = frontier[read]
                write += 1
            }
            frontier.removeSubrange(write...)
        }
    }

    // MARK: Leaf values (computed once per leaf, when first needed)

    mutating func leafBytes(_ i: Int, _ input: MatchAutomaton.Input) -> UnsafeRawBufferPointer {
        if leaves[i].known & Known.bytes == 0 {
            let node = input.nodes[Int(leaves[i].node)]
            let start = Int(node.start)
            let length = Int(node.end) - start
            if !node.hasEscapes {
                leaves[i].bytesStart = UInt32(start)
                leaves[i].bytesCount = UInt32(length)
            } else {
                let n = JSONStringDecoder.decode(base: input.bytes, start: start, end: Int(node.end), into: arena.baseAddress! + arenaUsed)
                leaves[i].bytesStart = UInt32(arenaUsed)
                leaves[i].bytesCount = UInt32(n)
                leaves[i].bytesInArena = true
                arenaUsed += n
            }
            leaves[i].known |= Known.bytes
        }
        let leaf = leaves[i]
        let base = leaf.bytesInArena ? UnsafeRawPointer(arena.baseAddress!) : input.bytes
        return UnsafeRawBufferPointer(start: base + Int(leaf.bytesStart), count: Int(leaf.bytesCount))
    }

    mutating func leafFolded(_ i: Int, _ input: MatchAutomaton.Input) -> UnsafeRawBufferPointer {
        if leaves[i].known & Known.folded == 0 {
            let bytes = leafBytes(i, input)
            let destination = UnsafeMutableRawBufferPointer(rebasing: arena[arenaUsed..<(arenaUsed + 2 * bytes.count)])
            let n = CaseFolding.fold(bytes, into: destination)
            leaves[i].foldStart = UInt32(arenaUsed)
            leaves[i].foldCount = UInt32(n)
            arenaUsed += n
            leaves[i].known |= Known.folded
        }
        return UnsafeRawBufferPointer(
            start: arena.baseAddress! + Int(leaves[i].foldStart), count: Int(leaves[i].foldCount))
    }

    mutating func leafNumber(_ i: Int, _ input: MatchAutomaton.Input) -> Double {
        if leaves[i].known & Known.number == 0 {
            let node = input.nodes[Int(leaves[i].node)]
            let start = Int(node.start)
            let end = Int(node.end)
            let value =
                JSONTape.fastNumber(input.bytes, start, end)
                ?? Double(String(decoding: UnsafeRawBufferPointer(start: input.bytes + start, count: end - start), as: UTF8.self))
                ?? .nan
            leaves[i].number = value + 0.0
            leaves[i].known |= Known.number
        }
        return leaves[i].number
    }

    mutating func leafIP(_ i: Int, _ input: MatchAutomaton.Input) -> IPAddress? {
        if leaves[i].known & Known.ip == 0 {
            leaves[i].ip = IPAddress.parse(leafBytes(i, input))
            leaves[i].known |= Known.ip
        }
        return leaves[i].ip
    }

    /// The interned id of the leaf's value (`noID` when no pattern uses it).
    mutating func exactValue(_ i: Int, _ input: MatchAutomaton.Input, _ values: ValueInterner) -> UInt32 {
        if leaves[i].known & Known.exact == 0 {
            let id: UInt32
            switch leaves[i].kind {
            case .string:
                let bytes = leafBytes(i, input)
                id = values.lookup(.string, bytes.baseAddress, bytes.count, pool: input.valuePool)
            case .number:
                var bits = leafNumber(i, input).bitPattern
                id = withUnsafeBytes(of: &bits) { values.lookup(.number, $0.baseAddress, 8, pool: input.valuePool) }
            case .true: id = values.lookup(.true, nil, 0, pool: input.valuePool)
            case .false: id = values.lookup(.false, nil, 0, pool: input.valuePool)
            case .null: id = values.lookup(.null, nil, 0, pool: input.valuePool)
            default: id = noID
            }
            leaves[i].exact = id
            leaves[i].known |= Known.exact
        }
        return leaves[i].exact
    }

    /// The interned id of the leaf's case-folded string (`noID` when no pattern uses it).
    mutating func foldedValue(_ i: Int, _ input: MatchAutomaton.Input, _ values: ValueInterner) -> UInt32 {
        if leaves[i].known & Known.foldedValue == 0 {
            let folded = leafFolded(i, input)
            leaves[i].folded = values.lookup(.folded, folded.baseAddress, folded.count, pool: input.valuePool)
            leaves[i].known |= Known.foldedValue
        }
        return leaves[i].folded
    }

    /// The leaf as the predicates see it (for `anything-but`).
    mutating func scalar(_ i: Int, _ input: MatchAutomaton.Input, folding: Bool) -> LeafScalar {
        switch leaves[i].kind {
        case .string:
            var leaf = LeafScalar(kind: .string, bytes: leafBytes(i, input))
            if folding { leaf.folded = leafFolded(i, input) }
            return leaf
        case .number:
            return LeafScalar(kind: .number, number: leafNumber(i, input))
        default:
            return LeafScalar(kind: leaves[i].kind)
        }
    }
}
