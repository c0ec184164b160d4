import DequeModule

/// What a client is sent next: an event (shared, never copied), a control message of its
/// own, or the notice that events are missing.
public enum Outgoing: Sendable {
    /// An event and the subscriptions of this client that matched it; `replayed` when it
    /// was read from history for a resuming client (not a live delivery).
    case event(Event, SubscriptionSet, replayed: Bool)
    /// A transport-encoded control message (acknowledgement, error, heartbeat).
    case control([UInt8])
    /// Events `from...to` were not delivered; `subscriptions` had matched them.
    case gap(from: UInt64, to: UInt64, subscriptions: SubscriptionSet, reason: GapReason)
}

/// One client's bounded send queue with its overflow policy.
///
/// A slow client can only hurt itself: when its queue exceeds `maxMessages` or `maxBytes`
/// its policy decides what goes (see `OverflowPolicy`). Dropped events leave a gap notice
/// exactly where they were, so the client learns of the loss before the next event it
/// receives. Entries reference the shared `Event`: a queue never copies an event body.
/// Control messages count towards the bound but are never dropped; a client that lets
/// them pile up past `maxMessages` is reported as overflowing so it can be closed.
///
/// A queue charges each event the bytes its transport sends for it (the WebSocket or the
/// SSE encoding, not both), so `byteCount` is what the client has yet to receive.
///
/// Owned by the loop thread that owns the client; not thread-safe.
/// - Complexity: `enqueue` and `next` are amortised O(1) when nothing is dropped;
///   dropping is O(position of the dropped entry), which is small for the oldest.
public struct ClientQueue: Sendable {
    public let limits: QueueLimits
    /// Index into `Event.coalesceKeys` for the `coalesce` policy.
    public let coalesceSlot: Int?
    /// Whose encoding the queue charges for.
    public let transport: TransportKind
    private var entries: Deque<Outgoing> = []
    private var messageCount = 0
    private var controlCount = 0

    /// Bytes charged for the queued entries.
    public private(set) var byteCount = 0
    /// Events dropped by the policy since the client connected.
    public private(set) var droppedCount: UInt64 = 0
    /// Events replaced by a newer one of the same coalesce key.
    public private(set) var coalescedCount: UInt64 = 0

    public init(limits: QueueLimits, coalesceSlot: Int? = nil, transport: TransportKind = .webSocket) {
        self.limits = limits
        self.coalesceSlot = coalesceSlot
        self.transport = transport
    }

    /// Queued events and control messages (gap notices are not counted).
    public var count: Int { messageCount }
    public var isEmpty: Bool { entries.isEmpty }
    /// True when another event would exceed the bound.
    public var isFull: Bool { messageCount >= limits.maxMessages || byteCount >= limits.maxBytes }

    /// The result of an enqueue.
    public enum EnqueueResult: Sendable, Equatable {
        /// Queued; the policy may have dropped or replaced events to stay in bounds (see
        /// `droppedCount` and `coalescedCount`).
        case queued
        /// The bound was exceeded under the `disconnect` policy, or by control messages:
        /// close the client.
        case overflow
    }

    /// Queues an event and applies the policy when the bound is exceeded.
    public mutating func enqueue(_ event: Event, subscriptions: SubscriptionSet, replayed: Bool = false) -> EnqueueResult {
        entries.append(.event(event, subscriptions, replayed: replayed))
        messageCount += 1
        byteCount += event.wireBytes(for: transport)
        guard messageCount > limits.maxMessages || byteCount > limits.maxBytes else { return .queued }
        switch limits.policy {
        case .disconnect:
            return .overflow
        case .dropNewest:
            removeEvent(at: entries.count - 1)
        case .coalesce:
            if let slot = coalesceSlot, let key = event.coalesceKeys[slot],
                let older = indexOfEvent(withKey: key, slot: slot, before: entries.count - 1)
            {
                removeEvent(at: older, leavingGap: false)
                coalescedCount += 1
            }
            dropOldest(keeping: event)
        case .dropOldest:
            dropOldest(keeping: event)
        }
        return .queued
    }

    /// Queues a control message; control messages are never dropped.
    public mutating func enqueue(control bytes: [UInt8]) -> EnqueueResult {
        entries.append(.control(bytes))
        messageCount += 1
        controlCount += 1
        byteCount += bytes.count
        return controlCount > limits.maxMessages ? .overflow : .queued
    }

    /// Queues a gap notice (events the client will never receive, e.g. expired history).
    public mutating func enqueueGap(from: UInt64, to: UInt64, subscriptions: SubscriptionSet, reason: GapReason) {
        entries.append(.gap(from: from, to: to, subscriptions: subscriptions, reason: reason))
    }

    /// Takes the next entry to send.
    public mutating func next() -> Outgoing? {
        guard let entry = entries.popFirst() else { return nil }
        switch entry {
        case .event(let event, _, _):
            messageCount -= 1
            byteCount -= event.wireBytes(for: transport)
        case .control(let bytes):
            messageCount -= 1
            controlCount -= 1
            byteCount -= bytes.count
        case .gap:
            break
        }
        return entry
    }

    /// Drops queued events, oldest first, until at most `targetBytes` remain (for the
    /// gateway-wide memory bound). Returns the number of events dropped.
    public mutating func shed(toBytes targetBytes: Int) -> Int {
        var dropped = 0
        while byteCount > targetBytes, let index = entries.firstIndex(where: { if case .event = $0 { true } else { false } }) {
            removeEvent(at: index)
            dropped += 1
        }
        return dropped
    }

    /// Forgets `slot` in queued entries (after an unsubscribe); events left with no
    /// subscription are removed without a gap notice.
    public mutating func removeSubscription(_ slot: Int) {
        var kept: Deque<Outgoing> = []
        for entry in entries {
            switch entry {
            case .event(let event, var subs, let replayed):
                subs.remove(slot)
                if subs.isEmpty {
                    messageCount -= 1
                    byteCount -= event.wireBytes(for: transport)
                } else {
                    kept.append(.event(event, subs, replayed: replayed))
                }
            case .gap(let from, let to, var subs, let reason):
                subs.remove(slot)
                if !subs.isEmpty { kept.append(.gap(from: from, to: to, subscriptions: subs, reason: reason)) }
            case .control:
                kept.append(entry)
            }
        }
        entries = kept
    }

    // MARK: - Dropping

    private mutating func dropOldest(keeping newest: Event) {
        while messageCount > limits.maxMessages || byteCount > limits.maxBytes,
            let index = entries.firstIndex(where: { if case .event(let e, _, _) = $0 { e !== newest } else { false } })
        {
            removeEvent(at: index)
        }
    }

    /// Removes the event at `index`; unless told otherwise, a gap notice takes its place
    /// (merged into an adjacent overflow gap).
    private mutating func removeEvent(at index: Int, leavingGap: Bool = true) {
        guard case .event(let event, let subs, _) = entries[index] else { return }
        messageCount -= 1
        byteCount -= event.wireBytes(for: transport)
        guard leavingGap else {
            entries.remove(at: index)
            return
        }
        droppedCount += 1
        if index > 0, case .gap(let from, let to, var gapSubs, .overflow) = entries[index - 1] {
            gapSubs.formUnion(subs)
            entries[index - 1] = .gap(from: min(from, event.seq), to: max(to, event.seq), subscriptions: gapSubs, reason: .overflow)
            entries.remove(at: index)
        } else if index + 1 < entries.count, case .gap(let from, let to, var gapSubs, .overflow) = entries[index + 1] {
            gapSubs.formUnion(subs)
            entries[index + 1] = .gap(from: min(from, event.seq), to: max(to, event.seq), subscriptions: gapSubs, reason: .overflow)
            entries.remove(at: index)
        } else {
            entries[index] = .gap(from: event.seq, to: event.seq, subscriptions: subs, reason: .overflow)
        }
    }

    private func indexOfEvent(withKey key: UInt64, slot: Int, before end: Int) -> Int? {
        for index in 0..<end {
            if case .event(let event, _, _) = entries[index], event.coalesceKeys[slot] == key { return index }
        }
        return nil
    }
}
