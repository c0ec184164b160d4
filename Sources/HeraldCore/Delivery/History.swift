import DequeModule

/// The bounds of the in-memory history (DESIGN §5).
public struct HistoryLimits: Sendable, Equatable {
    public var maxEvents: Int
    public var maxBytes: Int
    public var maxAgeSeconds: Int
    public init(maxEvents: Int = 10_000, maxBytes: Int = 64 << 20, maxAgeSeconds: Int = 3600) {
        self.maxEvents = maxEvents
        self.maxBytes = maxBytes
        self.maxAgeSeconds = maxAgeSeconds
    }
}

/// The recent events, in `seq` order, for resume (`since`, `Last-Event-ID`).
///
/// A ring of shared `Event` references bounded by count, bytes and age. Because every
/// accepted event is appended (matching or not), the ring holds a contiguous run of
/// sequence numbers and an event is found by arithmetic, not search.
/// - Complexity: `append` amortised O(1) (plus O(evicted)); `event(seq:)` O(1).
public struct History: Sendable {
    public let limits: HistoryLimits
    private var events: Deque<Event> = []
    public private(set) var byteCount = 0

    public init(limits: HistoryLimits) { self.limits = limits }

    public var count: Int { events.count }
    /// The oldest retained sequence number, or nil when empty.
    public var firstSeq: UInt64? { events.first?.seq }
    public var lastSeq: UInt64? { events.last?.seq }

    /// Appends an accepted event (in `seq` order) and evicts what the bounds no longer allow.
    public mutating func append(_ event: Event, now: UInt64) {
        guard limits.maxEvents > 0 else { return }
        assert(events.last.map { $0.seq + 1 == event.seq } ?? true, "history must stay contiguous")
        events.append(event)
        byteCount += event.byteCount
        while events.count > limits.maxEvents || byteCount > limits.maxBytes {
            evictOldest()
        }
        expire(now: now)
    }

    /// Evicts events older than `maxAgeSeconds`.
    public mutating func expire(now: UInt64) {
        let maxAge = UInt64(limits.maxAgeSeconds) * 1_000_000_000
        while let first = events.first, now > first.acceptedAt, now - first.acceptedAt > maxAge {
            evictOldest()
        }
    }

    private mutating func evictOldest() {
        if let old = events.popFirst() { byteCount -= old.byteCount }
    }

    /// The event with sequence number `seq`, if retained.
    public func event(seq: UInt64) -> Event? {
        guard let first = events.first?.seq, seq >= first else { return nil }
        let offset = seq - first
        return offset < UInt64(events.count) ? events[Int(offset)] : nil
    }
}
