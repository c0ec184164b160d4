/// The value side of the automaton: how one matcher stores the predicates of the edges
/// leaving its state, so that a leaf finds its next states without testing them one by one.
///
/// | predicate | structure | cost per leaf |
/// |---|---|---|
/// | exact string / number / boolean / null, `equals-ignore-case` | `exactTable[(matcher, value id)]` | 1 lookup (value id computed once per leaf) |
/// | `prefix`, `suffix` (also ignoring case) | byte trie per matcher (suffixes reversed) | O(length) |
/// | `numeric` | ``IntervalSet`` | O(log n + hits) |
/// | `cidr` | `cidrTable[(matcher, family, length, masked address)]` | 1 lookup per distinct prefix length |
/// | `wildcard` | globs indexed by literal prefix (else suffix) in tries; verified | O(length + candidates) |
/// | `anything-but` | list, tested in turn | O(anything-but predicates) |
/// | `exists` | target list | O(1) |
extension MatchAutomaton {
    /// One node of a byte trie. Payloads are next states (prefix / suffix tries) or
    /// wildcard item indices (wildcard tries).
    struct TrieNode: Sendable {
        var parent: UInt32
        var byte: UInt8
        var childCount: UInt32 = 0
        var payload = Targets()
    }

    /// The prefix lengths of one matcher's CIDR blocks, with how many blocks use each.
    struct CIDRSet: Sendable {
        /// (isIPv6 << 8 | prefix length, count).
        var lengths: [(UInt16, UInt32)] = []
    }

    struct CIDREntry: Sendable {
        var matcher: UInt32
        var block: CIDRBlock
        var hash: UInt64
        var targets = Targets()
    }

    struct WildcardSet: Sendable {
        struct Item: Sendable {
            var glob: WildcardGlob
            var targets = Targets()
        }
        var items = Pool<Item>()
        var index: [WildcardGlob: UInt32] = [:]
        /// Trie of literal prefixes (globs not starting with `*`).
        var prefixRoot = noID
        /// Trie of reversed literal suffixes (globs starting with `*`, not ending with one).
        var suffixRoot = noID
        /// Globs that both start and end with `*`: tested for every leaf.
        var floating: [UInt32] = []
    }

    struct AnythingButSet: Sendable {
        struct Item: Sendable {
            var excluded: PatternPredicate.AnythingBut
            var targets = Targets()
        }
        var items: [Item] = []
        var needsFolding = false
    }

    // MARK: - Registering predicates

    /// Makes `matcher` lead to `target` for leaves satisfying `predicate`.
    mutating func addPredicate(_ predicate: PatternPredicate, matcher m: UInt32, target: UInt32) {
        matchers[Int(m)].registrations += 1
        switch predicate {
        case .string(let s): addExact(.string, s, m, target)
        case .number(let d): addExact(.number, ValueInterner.numberKey(d), m, target)
        case .boolean(let b): addExact(b ? .true : .false, [], m, target)
        case .null: addExact(.null, [], m, target)
        case .equalsIgnoreCase(let f): addExact(.folded, f, m, target)
        case .prefix(let p): matchers[Int(m)].prefixRoot = trieInsert(matchers[Int(m)].prefixRoot, p, target)
        case .suffix(let s): matchers[Int(m)].suffixRoot = trieInsert(matchers[Int(m)].suffixRoot, s.reversed(), target)
        case .prefixIgnoreCase(let p):
            matchers[Int(m)].prefixFoldedRoot = trieInsert(matchers[Int(m)].prefixFoldedRoot, p, target)
        case .suffixIgnoreCase(let s):
            matchers[Int(m)].suffixFoldedRoot = trieInsert(matchers[Int(m)].suffixFoldedRoot, s.reversed(), target)
        case .numeric(let range):
            if matchers[Int(m)].ranges == noID {
                matchers[Int(m)].ranges = intervalSets.insert(IntervalSet())
            }
            intervalSets[Int(matchers[Int(m)].ranges)].add(range, target: target)
        case .cidr(let block): addCIDR(block, m, target)
        case .wildcard(let glob): addWildcard(glob, m, target)
        case .exists:
            if matchers[Int(m)].exists == noID {
                matchers[Int(m)].exists = targetLists.insert(Targets())
            }
            targetLists[Int(matchers[Int(m)].exists)].insert(target)
        case .anythingBut(let excluded):
            if matchers[Int(m)].anythingButs == noID {
                matchers[Int(m)].anythingButs = anythingButSets.insert(AnythingButSet())
            }
            let s = Int(matchers[Int(m)].anythingButs)
            if let i = anythingButSets[s].items.firstIndex(where: { $0.excluded == excluded }) {
                anythingButSets[s].items[i].targets.insert(target)
            } else {
                var item = AnythingButSet.Item(excluded: excluded)
                item.targets.insert(target)
                anythingButSets[s].items.append(item)
                anythingButSets[s].needsFolding = anythingButSets[s].needsFolding || predicate.needsFolding
            }
        }
    }

    /// Undoes one `addPredicate`.
    mutating func removePredicate(_ predicate: PatternPredicate, matcher m: UInt32, target: UInt32) {
        switch predicate {
        case .string(let s): removeExact(.string, s, m, target)
        case .number(let d): removeExact(.number, ValueInterner.numberKey(d), m, target)
        case .boolean(let b): removeExact(b ? .true : .false, [], m, target)
        case .null: removeExact(.null, [], m, target)
        case .equalsIgnoreCase(let f): removeExact(.folded, f, m, target)
        case .prefix(let p): matchers[Int(m)].prefixRoot = trieRemove(matchers[Int(m)].prefixRoot, p, target)
        case .suffix(let s): matchers[Int(m)].suffixRoot = trieRemove(matchers[Int(m)].suffixRoot, s.reversed(), target)
        case .prefixIgnoreCase(let p):
            matchers[Int(m)].prefixFoldedRoot = trieRemove(matchers[Int(m)].prefixFoldedRoot, p, target)
        case .suffixIgnoreCase(let s):
            matchers[Int(m)].suffixFoldedRoot = trieRemove(matchers[Int(m)].suffixFoldedRoot, s.reversed(), target)
        case .numeric(let range):
            let s = Int(matchers[Int(m)].ranges)
            intervalSets[s].remove(range, target: target)
            if intervalSets[s].isEmpty {
                intervalSets.release(UInt32(s), resetTo: IntervalSet())
                matchers[Int(m)].ranges = noID
            }
        case .cidr(let block): removeCIDR(block, m, target)
        case .wildcard(let glob): removeWildcard(glob, m, target)
        case .exists:
            let list = Int(matchers[Int(m)].exists)
            targetLists[list].remove(target)
            if targetLists[list].isEmpty {
                targetLists.release(UInt32(list))
                matchers[Int(m)].exists = noID
            }
        case .anythingBut(let excluded):
            let s = Int(matchers[Int(m)].anythingButs)
            if let i = anythingButSets[s].items.firstIndex(where: { $0.excluded == excluded }) {
                anythingButSets[s].items[i].targets.remove(target)
                if anythingButSets[s].items[i].targets.isEmpty { anythingButSets[s].items.remove(at: i) }
            }
            if anythingButSets[s].items.isEmpty {
                anythingButSets.release(UInt32(s), resetTo: AnythingButSet())
                matchers[Int(m)].anythingButs = noID
            } else {
                anythingButSets[s].needsFolding = anythingButSets[s].items.contains {
                    if case .ignoreCase = $0.excluded { true } else { false }
                }
            }
        }
        matchers[Int(m)].registrations -= 1
        releaseMatcherIfEmpty(m)
    }

    // MARK: - Exact values

    private mutating func addExact(_ kind: ValueInterner.Kind, _ bytes: [UInt8], _ m: UInt32, _ target: UInt32) {
        let value = values.retain(kind, bytes)
        let key = UInt64(m) << 32 | UInt64(value)
        if let entry = exactTable.first(key) {
            values.release(value)  // the entry already holds a reference
            if entry & Self.listFlag != 0 {
                targetLists[Int(entry & ~Self.listFlag)].insert(target)
            } else {
                var list = Targets()
                list.insert(entry)
                list.insert(target)
                let i = targetLists.insert(list)
                exactTable.replace(key, entry, with: Self.listFlag | i)
            }
            return
        }
        exactTable.insert(key, target)
        if kind == .folded { matchers[Int(m)].foldedCount += 1 } else { matchers[Int(m)].exactCount += 1 }
    }

    private mutating func removeExact(_ kind: ValueInterner.Kind, _ bytes: [UInt8], _ m: UInt32, _ target: UInt32) {
        let value = values.lookup(kind, bytes)
        let key = UInt64(m) << 32 | UInt64(value)
        guard value != noID, let entry = exactTable.first(key) else { return }
        if entry & Self.listFlag != 0 {
            let i = Int(entry & ~Self.listFlag)
            targetLists[i].remove(target)
            if targetLists[i].count == 1 {
                exactTable.replace(key, entry, with: targetLists[i].first)
                targetLists.release(UInt32(i), resetTo: Targets())
            }
            return
        }
        guard entry == target else { return }
        exactTable.remove(key, entry)
        values.release(value)
        if kind == .folded { matchers[Int(m)].foldedCount -= 1 } else { matchers[Int(m)].exactCount -= 1 }
    }

    /// Calls `body` with the next states of an `exactTable` value.
    @inline(__always)
    func forEachExactTarget(_ entry: UInt32, _ body: (UInt32) -> Void) {
        if entry & Self.listFlag == 0 {
            body(entry)
        } else {
            targetLists[Int(entry & ~Self.listFlag)].forEach(body)
        }
    }

    // MARK: - Tries

    /// Adds `payload` at the node for `bytes` under `root` (created when `noID`); returns the root.
    mutating func trieInsert(_ root: UInt32, _ bytes: some Sequence<UInt8>, _ payload: UInt32) -> UInt32 {
        let r = root != noID ? root : trieNodes.insert(TrieNode(parent: noID, byte: 0))
        var node = r
        for byte in bytes {
            let key = UInt64(node) << 8 | UInt64(byte)
            if let child = trieEdges.first(key) {
                node = child
            } else {
                let child = trieNodes.insert(TrieNode(parent: node, byte: byte))
                trieEdges.insert(key, child)
                trieNodes[Int(node)].childCount += 1
                node = child
            }
        }
        trieNodes[Int(node)].payload.insert(payload)
        return r
    }

    /// Removes `payload` from the node for `bytes`, pruning empty nodes; returns the root
    /// (`noID` when the trie became empty).
    mutating func trieRemove(_ root: UInt32, _ bytes: some Sequence<UInt8>, _ payload: UInt32) -> UInt32 {
        guard root != noID else { return noID }
        var node = root
        for byte in bytes {
            guard let child = trieEdges.first(UInt64(node) << 8 | UInt64(byte)) else { return root }
            node = child
        }
        trieNodes[Int(node)].payload.remove(payload)
        while trieNodes[Int(node)].payload.isEmpty && trieNodes[Int(node)].childCount == 0 {
            let n = trieNodes[Int(node)]
            trieNodes.release(node, resetTo: TrieNode(parent: noID, byte: 0))
            if n.parent == noID { return noID }
            trieEdges.remove(UInt64(n.parent) << 8 | UInt64(n.byte), node)
            trieNodes[Int(n.parent)].childCount -= 1
            node = n.parent
        }
        return root
    }

    // MARK: - CIDR

    private func cidrHash(_ m: UInt32, _ block: CIDRBlock) -> UInt64 {
        var h = UInt64(m) &* 0x9E37_79B9_7F4A_7C15 ^ UInt64(block.prefixLength) << 1 ^ (block.address.isIPv6 ? 1 : 0)
        h = ByteHash.mix(h ^ block.address.high)
        h = ByteHash.mix(h ^ block.address.low)
        return ByteHash.finalize(h)
    }

    private mutating func addCIDR(_ block: CIDRBlock, _ m: UInt32, _ target: UInt32) {
        let hash = cidrHash(m, block)
        if let entry = cidrTable.find(hash, where: { cidrEntries[Int($0)].matcher == m && cidrEntries[Int($0)].block == block }) {
            cidrEntries[Int(entry)].targets.insert(target)
            return
        }
        var entry = CIDREntry(matcher: m, block: block, hash: hash)
        entry.targets.insert(target)
        let id = cidrEntries.insert(entry)
        cidrTable.insert(hash, id)
        if matchers[Int(m)].cidrs == noID { matchers[Int(m)].cidrs = cidrSets.insert(CIDRSet()) }
        let s = Int(matchers[Int(m)].cidrs)
        let code = UInt16(block.address.isIPv6 ? 1 : 0) << 8 | UInt16(block.prefixLength)
        if let i = cidrSets[s].lengths.firstIndex(where: { $0.0 == code }) {
            cidrSets[s].lengths[i].1 += 1
        } else {
            cidrSets[s].lengths.append((code, 1))
        }
    }

    private mutating func removeCIDR(_ block: CIDRBlock, _ m: UInt32, _ target: UInt32) {
        let hash = cidrHash(m, block)
        guard let entry = cidrTable.find(hash, where: { cidrEntries[Int($0)].matcher == m && cidrEntries[Int($0)].block == block })
        else { return }
        cidrEntries[Int(entry)].targets.remove(target)
        guard cidrEntries[Int(entry)].targets.isEmpty else { return }
        cidrTable.remove(hash, entry)
        cidrEntries.release(entry)
        let s = Int(matchers[Int(m)].cidrs)
        let code = UInt16(block.address.isIPv6 ? 1 : 0) << 8 | UInt16(block.prefixLength)
        if let i = cidrSets[s].lengths.firstIndex(where: { $0.0 == code }) {
            cidrSets[s].lengths[i].1 -= 1
            if cidrSets[s].lengths[i].1 == 0 { cidrSets[s].lengths.remove(at: i) }
        }
        if cidrSets[s].lengths.isEmpty {
            cidrSets.release(UInt32(s))
            matchers[Int(m)].cidrs = noID
        }
    }

    /// Calls `body` with the targets of every block of matcher `m` containing `ip`.
    @inline(__always)
    func forEachCIDRTarget(_ m: UInt32, _ ip: IPAddress, _ body: (UInt32) -> Void) {
        let set = cidrSets[Int(matchers[Int(m)].cidrs)]
        for (code, _) in set.lengths where (code >> 8 == 1) == ip.isIPv6 {
            let block = CIDRBlock(address: ip.masked(Int(code & 0xFF)), prefixLength: UInt8(code & 0xFF))
            let hash = cidrHash(m, block)
            if let entry = cidrTable.find(hash, where: { cidrEntries[Int($0)].matcher == m && cidrEntries[Int($0)].block == block }) {
                cidrEntries[Int(entry)].targets.forEach(body)
            }
        }
    }

    // MARK: - Wildcards

    private mutating func addWildcard(_ glob: WildcardGlob, _ m: UInt32, _ target: UInt32) {
        if matchers[Int(m)].wildcards == noID {
            matchers[Int(m)].wildcards = wildcardSets.insert(WildcardSet())
        }
        let s = Int(matchers[Int(m)].wildcards)
        if let i = wildcardSets[s].index[glob] {
            wildcardSets[s].items[Int(i)].targets.insert(target)
            return
        }
        var item = WildcardSet.Item(glob: glob)
        item.targets.insert(target)
        let i = wildcardSets[s].items.insert(item)
        wildcardSets[s].index[glob] = i
        if !glob.literalPrefix.isEmpty {
            wildcardSets[s].prefixRoot = trieInsert(wildcardSets[s].prefixRoot, glob.literalPrefix, i)
        } else if !glob.literalSuffix.isEmpty {
            wildcardSets[s].suffixRoot = trieInsert(wildcardSets[s].suffixRoot, glob.literalSuffix.reversed(), i)
        } else {
            wildcardSets[s].floating.append(i)
        }
    }

    private mutating func removeWildcard(_ glob: WildcardGlob, _ m: UInt32, _ target: UInt32) {
        let s = Int(matchers[Int(m)].wildcards)
        guard let i = wildcardSets[s].index[glob] else { return }
        wildcardSets[s].items[Int(i)].targets.remove(target)
        guard wildcardSets[s].items[Int(i)].targets.isEmpty else { return }
        wildcardSets[s].index[glob] = nil
        wildcardSets[s].items.release(i)
        if !glob.literalPrefix.isEmpty {
            wildcardSets[s].prefixRoot = trieRemove(wildcardSets[s].prefixRoot, glob.literalPrefix, i)
        } else if !glob.literalSuffix.isEmpty {
            wildcardSets[s].suffixRoot = trieRemove(wildcardSets[s].suffixRoot, glob.literalSuffix.reversed(), i)
        } else if let k = wildcardSets[s].floating.firstIndex(of: i) {
            wildcardSets[s].floating.remove(at: k)
        }
        if wildcardSets[s].items.liveCount == 0 {
            wildcardSets.release(UInt32(s), resetTo: WildcardSet())
            matchers[Int(m)].wildcards = noID
        }
    }
}
