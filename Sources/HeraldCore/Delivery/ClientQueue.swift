import DequeModule

/// What a client is sent next: an event (shared, never copied), a control message of its
/// own, or the notice that events were dropped.
public enum Outgoing: Sendable {
    /// An event and the subscriptions of this client that matched it.
    case event(Event, SubscriptionSet)
    /// A transport-encoded control message (acknowledgement, error, heartbeat).
    case control([UInt8])
    /// Events `from...to` were dropped for this client; `subscriptions` had matched them.
    case gap(from: UInt64, to: UInt64, subscriptions: SubscriptionSet)
}

/// The bound of one client's send queue (DESIGN §7).
public struct QueueLimits: Sendable, Equatable {
    public var maxMessages: Int
    public var maxBytes: Int
    public init(maxMessages: Int = 1000, maxBytes: Int = 1 << 20) {
        self.maxMessages = maxMessages
        self.maxBytes = maxBytes
    }
}

/// One client's bounded send queue.
///
/// A slow client can only hurt itself: when its queue is full the oldest queued events are
/// dropped (the `drop-oldest` policy) and remembered as a gap, which the client is told
/// about before the next event it receives. Entries reference the shared `Event`; the
/// queue never copies an event body. Control messages are never dropped, but a client
/// that lets them pile up past the bound is reported as overflowing so it can be closed.
///
/// Owned by the loop thread that owns the client; not thread-safe.
/// - Complexity: `enqueue` and `next` are amortised O(1); dropping is O(dropped entries).
public struct ClientQueue: Sendable {
    public let limits: QueueLimits
    private var entries: Deque<Outgoing> = []
    private var pendingGap: (from: UInt64, to: UInt64, subscriptions: SubscriptionSet)?
    private var controlCount = 0

    /// Bytes charged for the queued entries.
    public private(set) var byteCount = 0
    /// Events dropped from this queue since the client connected.
    public private(set) var droppedCount: UInt64 = 0

    public init(limits: QueueLimits) { self.limits = limits }

    /// Number of entries waiting (a pending gap notice counts as one).
    public var count: Int { entries.count + (pendingGap == nil ? 0 : 1) }
    public var isEmpty: Bool { entries.isEmpty && pendingGap == nil }

    /// The result of an enqueue.
    public enum EnqueueResult: Sendable, Equatable {
        case queued
        /// Queued after dropping this many older events.
        case queuedAfterDropping(Int)
        /// The queue holds more control messages than its bound: close the client.
        case overflow
    }

    /// Queues an event; drops the oldest events when the bound is exceeded.
    public mutating func enqueue(_ event: Event, subscriptions: SubscriptionSet) -> EnqueueResult {
        entries.append(.event(event, subscriptions))
        byteCount += event.byteCount
        var dropped = 0
        while entries.count > limits.maxMessages || byteCount > limits.maxBytes {
            guard let index = entries.firstIndex(where: { if case .event = $0 { true } else { false } }),
                  case .event(let old, let subs) = entries[index],
                  old !== event else { break }
            entries.remove(at: index)
            byteCount -= old.byteCount
            droppedCount += 1
            dropped += 1
            if var gap = pendingGap {
                gap.from = min(gap.from, old.seq)
                gap.to = max(gap.to, old.seq)
                gap.subscriptions.formUnion(subs)
                pendingGap = gap
            } else {
                pendingGap = (old.seq, old.seq, subs)
            }
        }
        return dropped == 0 ? .queued : .queuedAfterDropping(dropped)
    }

    /// Queues a control message; control messages are never dropped.
    public mutating func enqueue(control bytes: [UInt8]) -> EnqueueResult {
        entries.append(.control(bytes))
        byteCount += bytes.count
        controlCount += 1
        return controlCount > limits.maxMessages ? .overflow : .queued
    }

    /// Takes the next entry to send: a pending gap notice comes before any queued event.
    public mutating func next() -> Outgoing? {
        if let gap = pendingGap, let first = entries.first, case .event = first {
            pendingGap = nil
            return .gap(from: gap.from, to: gap.to, subscriptions: gap.subscriptions)
        }
        guard let entry = entries.popFirst() else {
            if let gap = pendingGap {
                pendingGap = nil
                return .gap(from: gap.from, to: gap.to, subscriptions: gap.subscriptions)
            }
            return nil
        }
        switch entry {
        case .event(let event, _): byteCount -= event.byteCount
        case .control(let bytes): byteCount -= bytes.count; controlCount -= 1
        case .gap: break
        }
        return entry
    }

    /// Forgets `slot` in queued events (after an unsubscribe); events left with no
    /// subscription are removed.
    public mutating func removeSubscription(_ slot: Int) {
        var kept: Deque<Outgoing> = []
        for entry in entries {
            if case .event(let event, var subs) = entry {
                subs.remove(slot)
                if subs.isEmpty { byteCount -= event.byteCount; continue }
                kept.append(.event(event, subs))
            } else {
                kept.append(entry)
            }
        }
        entries = kept
        if var gap = pendingGap {
            gap.subscriptions.remove(slot)
            pendingGap = gap.subscriptions.isEmpty ? nil : gap
        }
    }
}
