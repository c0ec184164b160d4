/// Matching one event against the automaton.
///
/// 1. **Flatten**: walk the event's tape from the root object, following only members
///    whose path some pattern mentions (``PathTrie``); every scalar reached at a tested
///    path becomes a leaf (path id, tape node, array choices), linked into a per-path list.
///    Arrays are crossed element by element, recording (array, element) choices.
/// 2. **Walk**: from the root join, each state offers its matchers the leaves of their
///    paths that are consistent with the array choices made so far; a matcher maps a leaf
///    to next states in one lookup (exact values) or one short walk (tries, ranges). A
///    state's `exists: false` edges are taken when no consistent leaf has the path. Joins
///    are entered at most once per event with a fresh array context; their terminals are
///    the matching subscriptions.
///
/// Nothing is allocated per event once the scratch buffers have grown to the largest
/// event seen: leaves, trails and the frontier reuse their storage, string decoding and
/// case folding use a preallocated arena, and per-path / per-state marks are stamped with
/// a generation number instead of being cleared.
extension MatchAutomaton {
    /// Raw views of the event and of the automaton's byte pools, taken once per match.
    struct Input {
        let nodes: UnsafeBufferPointer<JSONTape.Node>
        let bytes: UnsafeRawPointer
        let keyPool: UnsafeRawPointer?
        let valuePool: UnsafeRawPointer?
    }

    /// Matches the event object at `event.node`; appends one result per owner.
    /// `owners` is the number of owner indices in use (to size the marks).
    func match(_ event: EventView, owners: Int, scratch x: inout MatchScratch, into results: inout [SubscriptionIndex.Match]) {
        guard let eventBase = event.bytes.baseAddress, event.tape.nodes[event.node].kind == .object else {
            // Not an object: only subscriptions without conditions could match; there are
            // none that match non-objects by the language's definition.
            return
        }
        x.prepare(paths: paths.nodes.count, states: states.count, owners: owners, eventBytes: event.bytes.count)
        _ = x.firstVisit(join: Self.root)
        event.tape.nodes.withUnsafeBufferPointer { nodes in
            paths.keyPool.withUnsafeBytes { keyPool in
                values.pool.withUnsafeBytes { valuePool in
                    let input = Input(nodes: nodes, bytes: eventBase, keyPool: keyPool.baseAddress, valuePool: valuePool.baseAddress)
                    flatten(object: event.node, path: PathTrie.root, input, &x)
                    x.resultsStart = results.count
                    visit(Self.root, window: 0, input, &x, &results)
                }
            }
        }
    }

    // MARK: - Flattening

    private func flatten(object: Int, path: UInt32, _ input: Input, _ x: inout MatchScratch) {
        let count = Int(input.nodes[object].count)
        var k = object + 1
        for _ in 0..<count {
            let key = input.nodes[k]
            if let child = paths.child(of: path, key: key, event: input.bytes, keyPool: input.keyPool) {
                flattenValue(k + 1, path: child, input, &x)
            }
            k = Int(input.nodes[k + 1].next)
        }
    }

    private func flattenValue(_ index: Int, path: UInt32, _ input: Input, _ x: inout MatchScratch) {
        let node = input.nodes[index]
        switch node.kind {
        case .object:
            if paths.nodes[Int(path)].childCount > 0 { flatten(object: index, path: path, input, &x) }
        case .array:
            var element = index + 1
            for ordinal in 0..<node.count {
                x.walkTrail.append(ArrayChoice(array: UInt32(index), element: ordinal))
                flattenValue(element, path: path, input, &x)
                x.walkTrail.removeLast()
                element = Int(input.nodes[element].next)
            }
        default:
            if paths.nodes[Int(path)].leafReferences > 0 { x.addLeaf(node: index, kind: node.kind, path: path) }
        }
    }

    // MARK: - Walking

    private func visit(
        _ s: UInt32, window: Int, _ input: Input, _ x: inout MatchScratch,
        _ results: inout [SubscriptionIndex.Match]
    ) {
        let state = states[Int(s)]
        if state.terminalOwner != noID {
            x.record(owner: state.terminalOwner, ownerID: state.terminalOwnerID, slot: state.terminalSlot, into: &results)
        }
        var t = state.firstTerminal
        while t != noID {
            let terminal = terminals[Int(t)]
            x.record(owner: terminal.owner, ownerID: terminal.ownerID, slot: terminal.slot, into: &results)
            t = terminal.next
        }
        if state.join != noID && x.firstVisit(join: state.join) {
            visit(state.join, window: x.context.count, input, &x, &results)
        }
        var l = state.firstJoin
        while l != noID {
            let link = joinLinks[Int(l)]
            if x.firstVisit(join: link.join) {
                visit(link.join, window: x.context.count, input, &x, &results)
            }
            l = link.next
        }
        if state.matcherCount > 0 {
            if Int(state.matcherCount) <= x.presentPaths.count {
                var m = state.firstMatcher
                while m != noID {
                    step(m, window: window, input, &x, &results)
                    m = matchers[Int(m)].next
                }
            } else {
                var i = 0
                while i < x.presentPaths.count {
                    if let m = matcherTable.first(UInt64(s) << 32 | UInt64(x.presentPaths[i])) {
                        step(m, window: window, input, &x, &results)
                    }
                    i += 1
                }
            }
        }
        var e = state.firstAbsence
        while e != noID {
            let edge = edges[Int(e)]
            if !x.hasConsistentLeaf(path: edge.path, window: window) {
                visit(edge.child, window: window, input, &x, &results)
            }
            e = edge.next
        }
    }

    /// Offers matcher `m` every leaf of its path consistent with the context.
    private func step(
        _ m: UInt32, window: Int, _ input: Input, _ x: inout MatchScratch,
        _ results: inout [SubscriptionIndex.Match]
    ) {
        let path = matchers[Int(m)].path
        guard x.pathStamp[Int(path)] == x.generation else { return }
        var leaf = x.pathHead[Int(path)]
        while leaf >= 0 {
            if x.isConsistent(leaf: Int(leaf), window: window) {
                let mark = x.frontier.count
                collect(m, leaf: Int(leaf), input, &x)
                let end = x.frontier.count
                if end > mark {
                    x.dedupeFrontier(from: mark)
                    let contextMark = x.context.count
                    x.pushContext(leaf: Int(leaf), window: window)
                    var k = mark
                    while k < x.frontier.count {
                        visit(x.frontier[k], window: window, input, &x, &results)
                        k += 1
                    }
                    x.context.removeSubrange(contextMark...)
                    x.frontier.removeSubrange(mark...)
                }
            }
            leaf = x.leaves[Int(leaf)].next
        }
    }

    /// Appends to `x.frontier` the next states matcher `m` leads to for leaf `i`.
    private func collect(_ m: UInt32, leaf i: Int, _ input: Input, _ x: inout MatchScratch) {
        let matcher = matchers[Int(m)]
        if matcher.exists != noID { targetLists[Int(matcher.exists)].forEach { x.frontier.append($0) } }
        let kind = x.leaves[i].kind
        if matcher.exactCount > 0 {
            let value = x.exactValue(i, input, values)
            if value != noID, let entry = exactTable.first(UInt64(m) << 32 | UInt64(value)) {
                forEachExactTarget(entry) { x.frontier.append($0) }
            }
        }
        switch kind {
        case .string:
            if matcher.foldedCount > 0 {
                let value = x.foldedValue(i, input, values)
                if value != noID, let entry = exactTable.first(UInt64(m) << 32 | UInt64(value)) {
                    forEachExactTarget(entry) { x.frontier.append($0) }
                }
            }
            if matcher.prefixRoot != noID || matcher.suffixRoot != noID {
                let bytes = x.leafBytes(i, input)
                if matcher.prefixRoot != noID { walkTrie(matcher.prefixRoot, bytes, reversed: false) { x.frontier.append($0) } }
                if matcher.suffixRoot != noID { walkTrie(matcher.suffixRoot, bytes, reversed: true) { x.frontier.append($0) } }
            }
            if matcher.prefixFoldedRoot != noID || matcher.suffixFoldedRoot != noID {
                let folded = x.leafFolded(i, input)
                if matcher.prefixFoldedRoot != noID {
                    walkTrie(matcher.prefixFoldedRoot, folded, reversed: false) { x.frontier.append($0) }
                }
                if matcher.suffixFoldedRoot != noID {
                    walkTrie(matcher.suffixFoldedRoot, folded, reversed: true) { x.frontier.append($0) }
                }
            }
            if matcher.cidrs != noID, let ip = x.leafIP(i, input) {
                forEachCIDRTarget(m, ip) { x.frontier.append($0) }
            }
            if matcher.wildcards != noID { collectWildcards(matcher.wildcards, leaf: i, input, &x) }
        case .number:
            if matcher.ranges != noID {
                let set = intervalSets[Int(matcher.ranges)]
                set.query(x.leafNumber(i, input)) { item in set.items[item].targets.forEach { x.frontier.append($0) } }
            }
        default:
            break
        }
        if matcher.anythingButs != noID {
            let set = anythingButSets[Int(matcher.anythingButs)]
            let leaf = x.scalar(i, input, folding: set.needsFolding)
            for item in set.items where !item.excluded.excludes(leaf) {
                item.targets.forEach { x.frontier.append($0) }
            }
        }
    }

    /// Walks the trie under `root` along `bytes` (from the end when `reversed`), calling
    /// `body` with the payload of every node passed, the root included.
    @inline(__always)
    private func walkTrie(_ root: UInt32, _ bytes: UnsafeRawBufferPointer, reversed: Bool, _ body: (UInt32) -> Void) {
        var node = root
        trieNodes[Int(node)].payload.forEach(body)
        let n = bytes.count
        var i = 0
        while i < n {
            let byte = bytes[reversed ? n - 1 - i : i]
            guard let child = trieEdges.first(UInt64(node) << 8 | UInt64(byte)) else { return }
            node = child
            trieNodes[Int(node)].payload.forEach(body)
            i += 1
        }
    }

    private func collectWildcards(_ s: UInt32, leaf i: Int, _ input: Input, _ x: inout MatchScratch) {
        let set = wildcardSets[Int(s)]
        let bytes = x.leafBytes(i, input)
        func test(_ item: UInt32) {
            let entry = set.items[Int(item)]
            if entry.glob.matches(bytes) { entry.targets.forEach { x.frontier.append($0) } }
        }
        if set.prefixRoot != noID { walkTrie(set.prefixRoot, bytes, reversed: false, test) }
        if set.suffixRoot != noID { walkTrie(set.suffixRoot, bytes, reversed: true, test) }
        for item in set.floating { test(item) }
    }
}
