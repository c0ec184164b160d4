import HeapModule

/// Subscribers waiting for their moment to reconnect, soonest first: a storm schedules
/// thousands at once and refusals add more, so the loop that polls every few
/// milliseconds pops what is due instead of scanning every subscriber.
struct ReconnectSchedule {
    private struct Due: Comparable {
        var at: UInt64
        var token: Int
        static func < (a: Due, b: Due) -> Bool { a.at < b.at }
        static func == (a: Due, b: Due) -> Bool { a.at == b.at }
    }

    private var heap = Heap<Due>()

    var count: Int { heap.count }

    /// Schedules `token` for monotonic time `at`.
    ///
    /// - Complexity: O(log n).
    mutating func add(_ token: Int, at: UInt64) { heap.insert(Due(at: at, token: token)) }

    /// The soonest token due at or before `now`, removed; nil when none is due.
    ///
    /// - Complexity: O(log n).
    mutating func popDue(_ now: UInt64) -> Int? {
        guard let first = heap.min, first.at <= now else { return nil }
        return heap.removeMin().token
    }
}
