/// The `numeric` ranges of one matcher, with a stabbing query: which ranges hold x?
///
/// Why it exists: thousands of subscriptions can put ranges on the same field
/// (`data.vibrationLevel > t` for many t). Testing each is O(ranges) per event; a centered
/// interval tree answers in O(log n + k) for k hits. The tree is static, so ranges added
/// since the last build wait in a short pending list (scanned linearly), and removed ones
/// are marked dead; the tree is rebuilt when either list passes a fraction of its size, so
/// the rebuild cost is amortised to O(log n) per change.
///
/// - Complexity: `query` O(log n + k + pending); `add` / `remove` amortised O(log n),
///   the occasional rebuild O(n log n) (the longest pause it causes).
struct IntervalSet: Sendable {
    struct Item: Sendable {
        var range: NumericRange
        var targets = Targets()
        var live = true
        /// On the free list (a dead item stays in the tree, unrecycled, until a rebuild).
        var recycled = false
    }

    struct TreeNode: Sendable {
        var center: Double
        /// Slice of `byLower` / `byUpper` holding the ranges that contain `center`.
        var start: UInt32
        var count: UInt32
        var left: Int32
        var right: Int32
    }

    private(set) var items = Pool<Item>()
    private var index: [NumericRange: UInt32] = [:]
    private var nodes: [TreeNode] = []
    /// Per tree node: its ranges by ascending lower bound / descending upper bound.
    private var byLower: [UInt32] = []
    private var byUpper: [UInt32] = []
    private var root: Int32 = -1
    private var pending: [UInt32] = []
    private var inTree = 0
    private var deadInTree = 0
    private(set) var liveCount = 0

    var isEmpty: Bool { liveCount == 0 }

    mutating func add(_ range: NumericRange, target: UInt32) {
        if let i = index[range] {
            items[Int(i)].targets.insert(target)
            return
        }
        var item = Item(range: range)
        item.targets.insert(target)
        let i = items.insert(item)
        index[range] = i
        pending.append(i)
        liveCount += 1
        if pending.count > 16 + inTree / 4 { rebuild() }
    }

    mutating func remove(_ range: NumericRange, target: UInt32) {
        guard let i = index[range] else { return }
        items[Int(i)].targets.remove(target)
        guard items[Int(i)].targets.isEmpty else { return }
        items[Int(i)].live = false
        index[range] = nil
        liveCount -= 1
        if let p = pending.firstIndex(of: i) {
            pending.swapAt(p, pending.count - 1)
            pending.removeLast()
            items[Int(i)].recycled = true
            items.release(i)
        } else {
            deadInTree += 1
            if deadInTree > 16 + inTree / 2 { rebuild() }
        }
    }

    /// Calls `body` with the item index of every live range containing `value`.
    @inline(__always)
    func query(_ value: Double, _ body: (Int) -> Void) {
        var n = root
        while n >= 0 {
            let node = nodes[Int(n)]
            let start = Int(node.start)
            let end = start + Int(node.count)
            if value < node.center {
                var k = start
                while k < end {
                    let i = Int(byLower[k])
                    if items[i].range.lower > value { break }
                    if items[i].live { body(i) }
                    k += 1
                }
                n = node.left
            } else if value > node.center {
                var k = start
                while k < end {
                    let i = Int(byUpper[k])
                    if items[i].range.upper < value { break }
                    if items[i].live { body(i) }
                    k += 1
                }
                n = node.right
            } else {
                for k in start..<end where items[Int(byLower[k])].live { body(Int(byLower[k])) }
                break
            }
        }
        for i in pending where items[Int(i)].range.contains(value) { body(Int(i)) }
    }

    /// Rebuilds the tree from all live ranges and recycles the dead ones.
    private mutating func rebuild() {
        var live: [UInt32] = []
        live.reserveCapacity(liveCount)
        for i in items.indices {
            if items[i].live {
                live.append(UInt32(i))
            } else if !items[i].recycled {
                items[i].recycled = true
                items.release(UInt32(i))
            }
        }
        nodes.removeAll(keepingCapacity: true)
        byLower.removeAll(keepingCapacity: true)
        byUpper.removeAll(keepingCapacity: true)
        byLower.reserveCapacity(live.count)
        byUpper.reserveCapacity(live.count)
        root = build(live)
        pending.removeAll()
        inTree = live.count
        deadInTree = 0
    }

    private mutating func build(_ ids: [UInt32]) -> Int32 {
        guard !ids.isEmpty else { return -1 }
        var endpoints: [Double] = []
        endpoints.reserveCapacity(ids.count * 2)
        for i in ids {
            endpoints.append(items[Int(i)].range.lower)
            endpoints.append(items[Int(i)].range.upper)
        }
        endpoints.sort()
        let center = endpoints[endpoints.count / 2]
        var here: [UInt32] = []
        var left: [UInt32] = []
        var right: [UInt32] = []
        for i in ids {
            let r = items[Int(i)].range
            if r.upper < center {
                left.append(i)
            } else if r.lower > center {
                right.append(i)
            } else {
                here.append(i)
            }
        }
        let nodeIndex = nodes.count
        nodes.append(TreeNode(center: center, start: UInt32(byLower.count), count: UInt32(here.count), left: -1, right: -1))
        byLower.append(contentsOf: here.sorted { items[Int($0)].range.lower < items[Int($1)].range.lower })
        byUpper.append(contentsOf: here.sorted { items[Int($0)].range.upper > items[Int($1)].range.upper })
        let l = build(left)
        let r = build(right)
        nodes[nodeIndex].left = l
        nodes[nodeIndex].right = r
        return Int32(nodeIndex)
    }

    var byteCount: Int {
        items.capacity * MemoryLayout<Item>.stride + nodes.capacity * MemoryLayout<TreeNode>.stride
            + (byLower.capacity + byUpper.capacity + pending.capacity) * 4 + index.capacity * 24
    }
}
