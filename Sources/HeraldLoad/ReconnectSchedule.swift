/// Subscribers waiting for their moment to reconnect, soonest first: a storm schedules
/// thousands at once and refusals add more, so the loop that polls every few
/// milliseconds pops what is due instead of scanning every subscriber. A binary heap.
struct ReconnectSchedule {
    private var heap: [(at: UInt64, token: Int)] = []

    var count: Int { heap.count }

    /// Schedules `token` for monotonic time `at`.
    ///
    /// - Complexity: O(log n).
    mutating func add(_ token: Int, at: UInt64) {
        heap.append((at, token))
        var child = heap.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard heap[child].at < heap[parent].at else { break }
            heap.swapAt(child, parent)
            child = parent
        }
    }

    /// The soonest token due at or before `now`, removed; nil when none is due.
    ///
    /// - Complexity: O(log n).
    mutating func popDue(_ now: UInt64) -> Int? {
        guard let first = heap.first, first.at <= now else { return nil }
        let last = heap.removeLast()
        if heap.isEmpty { return first.token }
        heap[0] = last
        var parent = 0
        while true {
            let left = 2 * parent + 1
            let right = left + 1
            var smallest = parent
            if left < heap.count, heap[left].at < heap[smallest].at { smallest = left }
            if right < heap.count, heap[right].at < heap[smallest].at { smallest = right }
            if smallest == parent { break }
            heap.swapAt(parent, smallest)
            parent = smallest
        }
        return first.token
    }
}
