/// What a full client queue does with one event too many (DESIGN §7).
public enum OverflowPolicy: String, Sendable, Equatable, CaseIterable {
    /// Drop the oldest queued events; the client receives a gap notice in their place.
    case dropOldest = "drop-oldest"
    /// Drop the new event; the client receives a gap notice after what was queued.
    case dropNewest = "drop-newest"
    /// Close the client (WebSocket 4000, SSE stream ended); it resumes from history.
    case disconnect
    /// Keep only the newest event per `coalesceKey` value; without an older event of the
    /// same key to replace, drop the oldest (with a gap notice).
    case coalesce
}

/// The bound and policy of one client's send queue (DESIGN §7).
public struct QueueLimits: Sendable, Equatable {
    public var maxMessages: Int
    public var maxBytes: Int
    public var policy: OverflowPolicy
    /// Dotted path of the event field whose value identifies what `coalesce` replaces
    /// (`symbol`, `data.sensorId`).
    public var coalesceKey: String?

    public init(maxMessages: Int = 1000, maxBytes: Int = 1 << 20, policy: OverflowPolicy = .dropOldest, coalesceKey: String? = nil) {
        self.maxMessages = maxMessages
        self.maxBytes = maxBytes
        self.policy = policy
        self.coalesceKey = coalesceKey
    }
}

/// Why a client did not receive some events.
public enum GapReason: String, Sendable, Equatable {
    /// Its queue was full.
    case overflow
    /// They are no longer in history.
    case expired
    /// The client's position belongs to another epoch (e.g. before a restart without
    /// storage): what followed it there is unknown. History of the current epoch follows.
    case reset
}
