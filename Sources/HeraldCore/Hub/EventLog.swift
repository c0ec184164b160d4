/// Where accepted events are ordered and kept, so that clients resume from them (DESIGN §5).
///
/// Why a protocol: today history is a ring in memory; the durable-log issue adds a
/// segmented file log whose appends are written and fsynced on another thread. The Hub
/// therefore never assumes an append is durable at once: `append` says whether it is
/// (`.durable`) or will be (`.pending`); a pending event is neither delivered nor
/// acknowledged until the log reports it through `Hub.logged(through:)`, which the log's
/// writer thread reaches through the loop's inbox. A log opened on an existing directory
/// continues its sequence and epoch; `recover()` hands the Hub its newest events so the
/// dedup window survives the restart.
///
/// Owned by one loop; a log that works on another thread keeps that side to itself.
public protocol EventLog: AnyObject {
    /// The epoch of this log's positions: made when the log is created, kept with it.
    var epoch: StreamEpoch { get }
    /// The position the next appended event gets (1 for an empty log).
    var nextPosition: UInt64 { get }
    /// The oldest position still readable, or nil when nothing is retained.
    var oldestPosition: UInt64? { get }
    /// Events and bytes retained (for `/metrics` and `/v1/stats`).
    var retainedCount: Int { get }
    var retainedBytes: Int { get }

    /// Appends an event whose `seq` is `nextPosition`.
    func append(_ event: Event, now: UInt64) -> LogAppend
    /// The retained event at `position`, if any (resume reads from here).
    func event(at position: UInt64) -> Event?
    /// Drops what retention no longer allows (called once a second).
    func expire(now: UInt64)
    /// The newest events the log held when it was opened, oldest first, once (empty for a
    /// memory-only log): the Hub rebuilds its dedup window from them. Opening the log
    /// (its initializer) is where recovery happens and fails.
    func recover() -> [Event]
    /// Stores what was appended and stops any thread of the log (at shutdown).
    func close()

    /// Keeps an event a cluster's stream positioned (`event.seq` ≥ `nextPosition`; past
    /// it when the stream trimmed what this node had not read). Only a log that follows a
    /// stream does this; a durable log is never clustered (the configuration refuses it).
    func follow(_ event: Event, now: UInt64)
    /// The stream started again under `epoch`: what was kept counts in another epoch and
    /// is forgotten.
    func follow(epoch: StreamEpoch)
}

/// Whether an appended event may be delivered and acknowledged now.
public enum LogAppend: Sendable, Equatable {
    /// Stored as durably as the log promises: deliver and acknowledge it.
    case durable
    /// Stored once the log says so (`Hub.logged(through:)`).
    case pending
}

/// The log Herald has without `storage.path`: the history ring in memory. Appends are
/// durable at once in the only sense memory allows (a restart forgets them).
///
/// A node of a cluster keeps the stream's recent events here too (`follow`), starting at
/// the stream's position; what is older than the ring is read from the stream itself
/// through `older` (on the loop thread, like a file log's `pread`).
public final class InMemoryEventLog: EventLog {
    private let limits: HistoryLimits
    private var history: History
    public private(set) var nextPosition: UInt64
    /// A new one per process: what a memory-only log held is gone after a restart. A
    /// cluster's is the stream's.
    public private(set) var epoch: StreamEpoch
    private let older: (any OlderEvents)?

    /// - Parameters:
    ///   - nextPosition: where the log starts (a cluster's stream may be far along).
    ///   - older: where positions the ring no longer (or never) held are read.
    public init(limits: HistoryLimits, epoch: StreamEpoch = .random(), nextPosition: UInt64 = 1, older: (any OlderEvents)? = nil) {
        self.limits = limits
        history = History(limits: limits)
        self.epoch = epoch
        self.nextPosition = nextPosition
        self.older = older
    }

    public var oldestPosition: UInt64? { older?.oldestPosition(epoch: epoch) ?? history.firstSeq }
    public var retainedCount: Int { history.count }
    public var retainedBytes: Int { history.byteCount }

    public func append(_ event: Event, now: UInt64) -> LogAppend {
        precondition(event.seq == nextPosition, "events are appended in sequence")
        nextPosition += 1
        history.append(event, now: now)
        return .durable
    }

    public func event(at position: UInt64) -> Event? {
        if let event = history.event(seq: position) { return event }
        guard position < nextPosition, position < (history.firstSeq ?? nextPosition) else { return nil }
        return older?.event(at: position, epoch: epoch)
    }

    public func expire(now: UInt64) { history.expire(now: now) }

    public func recover() -> [Event] { [] }

    public func close() {}

    public func follow(_ event: Event, now: UInt64) {
        precondition(event.seq >= nextPosition, "a stream's events arrive in order")
        // The ring holds consecutive positions: after a hole it starts again.
        if event.seq != nextPosition { history = History(limits: limits) }
        nextPosition = event.seq + 1
        history.append(event, now: now)
    }

    public func follow(epoch: StreamEpoch) {
        self.epoch = epoch
        history = History(limits: limits)
        nextPosition = 1
    }
}

/// Events older than an in-memory log's ring, kept elsewhere (a cluster's stream).
public protocol OlderEvents: AnyObject {
    /// The event at `position` of `epoch`; nil when it is not kept (or cannot be read now:
    /// the resume then reports an `expired` gap rather than wait).
    func event(at position: UInt64, epoch: StreamEpoch) -> Event?
    /// The oldest position of `epoch` kept (nil: none, or unknown now).
    func oldestPosition(epoch: StreamEpoch) -> UInt64?
}

/// The Hub's sense of time, injected so that tests are deterministic.
public struct HubClock: Sendable {
    /// Monotonic nanoseconds: latencies, ages, timeouts.
    public var now: @Sendable () -> UInt64
    /// Seconds since the Unix epoch: JWT expiry.
    public var unixSeconds: @Sendable () -> Int64

    public init(now: @escaping @Sendable () -> UInt64, unixSeconds: @escaping @Sendable () -> Int64) {
        self.now = now
        self.unixSeconds = unixSeconds
    }
}
