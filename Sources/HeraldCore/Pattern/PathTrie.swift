/// The event paths that some compiled pattern refers to, as a trie of field names.
///
/// Why it exists: the flattener walks an event's objects and must decide, per member, in
/// O(1) whether any pattern looks at it; members no pattern mentions are skipped with
/// their whole subtree. Each node is one path prefix (`data`, `data.sensorId`) with an id
/// the automaton uses; nodes are reference counted so removing the last pattern that
/// mentions a path removes it.
///
/// - Complexity: `child` is O(k) for a key of k bytes (a short sibling scan, or one hash
///   lookup when a node has many children); `retain` / `release` O(depth × k).
struct PathTrie: Sendable {
    struct Node: Sendable {
        var parent: UInt32
        var keyOffset: UInt32
        var keyLength: UInt32
        var keyHash: UInt64
        var firstChild = noID
        var nextSibling = noID
        var previousSibling = noID
        var childCount: UInt32 = 0
        /// Automaton edges that test the leaves at exactly this path.
        var leafReferences: UInt32 = 0
        /// Leaf references at this node and below (the node lives while this is > 0).
        var references: UInt32 = 0
    }

    /// Children of nodes with more than this many children are found by hashing.
    static let linearScanLimit: UInt32 = 8

    private(set) var nodes: Pool<Node>
    private(set) var keyPool: [UInt8] = []
    private var garbageBytes = 0
    private var children: IDTable
    let seed: UInt64

    init(seed: UInt64) {
        self.seed = seed
        nodes = Pool([Node(parent: noID, keyOffset: 0, keyLength: 0, keyHash: 0)])
        children = IDTable(seed: seed)
    }

    static let root: UInt32 = 0

    /// Number of path nodes in use (excluding the root).
    var count: Int { nodes.liveCount - 1 }

    private func childKey(_ parent: UInt32, _ hash: UInt64) -> UInt64 {
        (UInt64(parent) &* 0x9E37_79B9_7F4A_7C15) ^ hash
    }

    /// The id of `segments`, created if needed, with one more leaf reference.
    mutating func retain(_ segments: [String]) -> UInt32 {
        var node = Self.root
        var chain: [UInt32] = []
        for segment in segments {
            let bytes = Array(segment.utf8)
            let hash = ByteHash.hash(bytes, seed: seed)
            if let existing = lookupChild(node, bytes, hash) {
                node = existing
            } else {
                node = addChild(node, bytes, hash)
            }
            chain.append(node)
        }
        nodes[Int(node)].leafReferences += 1
        nodes[0].references += 1
        for n in chain { nodes[Int(n)].references += 1 }
        return node
    }

    /// Drops one leaf reference of path `id`; nodes left without references are removed.
    mutating func release(_ id: UInt32) {
        nodes[Int(id)].leafReferences -= 1
        nodes[0].references -= 1
        var node = id
        while node != Self.root {
            let parent = nodes[Int(node)].parent
            nodes[Int(node)].references -= 1
            if nodes[Int(node)].references == 0 { removeNode(node) }
            node = parent
        }
    }

    private func lookupChild(_ parent: UInt32, _ bytes: [UInt8], _ hash: UInt64) -> UInt32? {
        children.find(childKey(parent, hash)) { candidate in
            let n = nodes[Int(candidate)]
            return n.parent == parent && n.keyHash == hash && Int(n.keyLength) == bytes.count
                && keyPool[Int(n.keyOffset)..<Int(n.keyOffset + n.keyLength)].elementsEqual(bytes)
        }
    }

    private mutating func addChild(_ parent: UInt32, _ bytes: [UInt8], _ hash: UInt64) -> UInt32 {
        let offset = UInt32(keyPool.count)
        keyPool.append(contentsOf: bytes)
        let first = nodes[Int(parent)].firstChild
        let id = nodes.insert(Node(parent: parent, keyOffset: offset, keyLength: UInt32(bytes.count), keyHash: hash, nextSibling: first))
        if first != noID { nodes[Int(first)].previousSibling = id }
        nodes[Int(parent)].firstChild = id
        nodes[Int(parent)].childCount += 1
        children.insert(childKey(parent, hash), id)
        return id
    }

    private mutating func removeNode(_ id: UInt32) {
        let n = nodes[Int(id)]
        children.remove(childKey(n.parent, n.keyHash), id)
        if n.previousSibling != noID {
            nodes[Int(n.previousSibling)].nextSibling = n.nextSibling
        } else {
            nodes[Int(n.parent)].firstChild = n.nextSibling
        }
        if n.nextSibling != noID { nodes[Int(n.nextSibling)].previousSibling = n.previousSibling }
        nodes[Int(n.parent)].childCount -= 1
        garbageBytes += Int(n.keyLength)
        nodes.release(id, resetTo: Node(parent: noID, keyOffset: 0, keyLength: 0, keyHash: 0))
        if garbageBytes > 4096 && garbageBytes * 2 > keyPool.count { compact() }
    }

    /// Rewrites the key pool without the keys of removed nodes.
    private mutating func compact() {
        var pool: [UInt8] = []
        pool.reserveCapacity(keyPool.count - garbageBytes)
        for i in nodes.indices where i != 0 && nodes[i].parent != noID {
            let n = nodes[i]
            let offset = UInt32(pool.count)
            pool.append(contentsOf: keyPool[Int(n.keyOffset)..<Int(n.keyOffset + n.keyLength)])
            nodes[i].keyOffset = offset
        }
        keyPool = pool
        garbageBytes = 0
    }

    /// The child of `parent` named by the event key at tape node `key`, or nil.
    ///
    /// `keyPool` is the base of ``keyPool``'s bytes, taken once per match.
    @inline(__always)
    func child(of parent: UInt32, key: JSONTape.Node, event: UnsafeRawPointer, keyPool: UnsafeRawPointer?) -> UInt32? {
        let p = nodes[Int(parent)]
        if p.childCount == 0 { return nil }
        let start = Int(key.start)
        let length = Int(key.end) - start
        if !key.hasEscapes {
            if p.childCount <= Self.linearScanLimit {
                var c = p.firstChild
                while c != noID {
                    let n = nodes[Int(c)]
                    if Int(n.keyLength) == length
                        && (length == 0 || JSONTape.bytesEqual(keyPool! + Int(n.keyOffset), event + start, count: length))
                    {
                        return c
                    }
                    c = n.nextSibling
                }
                return nil
            }
            let hash = ByteHash.hash(event + start, length, seed: seed)
            return children.find(childKey(parent, hash)) { candidate in
                let n = nodes[Int(candidate)]
                return n.keyHash == hash && Int(n.keyLength) == length
                    && (length == 0 || JSONTape.bytesEqual(keyPool! + Int(n.keyOffset), event + start, count: length))
            }
        }
        // An escaped key: decode it, then look it up the same way.
        return JSONStringDecoder.withDecoded(base: event, start: start, end: Int(key.end)) { buffer in
            let decoded = buffer.baseAddress!
            let n = buffer.count
            let hash = ByteHash.hash(decoded, n, seed: seed)
            return children.find(childKey(parent, hash)) { candidate in
                let c = nodes[Int(candidate)]
                return c.keyHash == hash && Int(c.keyLength) == n
                    && (n == 0 || JSONTape.bytesEqual(keyPool! + Int(c.keyOffset), decoded, count: n))
            }
        }
    }

    var byteCount: Int { nodes.capacity * MemoryLayout<Node>.stride + keyPool.capacity + children.byteCount }
}

/// The "no id" value of every `UInt32` link in the automaton.
let noID = UInt32.max
