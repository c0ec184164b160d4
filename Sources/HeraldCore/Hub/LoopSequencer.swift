import Synchronization

/// Positions events for the loops of one process, as a cluster's stream does for nodes.
///
/// Why it exists: with `listen.loops` above 1 every loop owns a Hub of its own (its
/// sessions, queues and subscription index; nothing on the delivery path is shared or
/// locked), yet a gateway has one sequence of positions, one dedup window, one presence
/// list and one count of events per route (`RouteTally`). So each loop's Hub is clustered on this sequencer through a
/// `LoopBroker`: `submit` runs on the submitting loop's thread under one mutex — dedup,
/// positions, each `Event` built once with both wire encodings — posts the events to
/// every loop's inbox (`.received`, the same objects for all loops; the submitter's too,
/// so that each loop delivers in position order) and returns the answer to the submitter
/// at once. Posting happens under the mutex, so every loop receives events in position
/// order. The critical section is per batch, never per delivery.
public final class LoopSequencer: Sendable {
    /// The epoch every loop's positions count in.
    public let epoch: StreamEpoch
    private let clock: HubClock
    private let state: Mutex<State>

    private struct State: ~Copyable {
        var nextPosition: UInt64 = 1
        var dedup: Deduplicator
        /// How each loop is reached (its inbox), by loop index.
        var loops: [(@Sendable (HubMessage) -> Void)?]
        /// Presence members of every loop, by group, then by member id.
        var members: [String: [String: JoinedMember]] = [:]
        /// Bytes of events posted to each loop and not yet received by it.
        var backlog: [Int]
    }

    private struct JoinedMember {
        var loop: Int
        var member: PresenceRegistry.Member
    }

    public init(loopCount: Int, clock: HubClock, dedup: HeraldConfig.Dedup, epoch: StreamEpoch = .random()) {
        self.epoch = epoch
        self.clock = clock
        state = Mutex(
            State(
                dedup: Deduplicator(windowSeconds: dedup.windowSeconds, maxEntries: dedup.maxEntries),
                loops: Array(repeating: nil, count: loopCount), backlog: Array(repeating: 0, count: loopCount)))
    }

    /// Connects loop `index`: what it is sent arrives through `deliver` (its inbox).
    /// Returns the broker its Hub submits through.
    public func attach(loop index: Int, deliver: @escaping @Sendable (HubMessage) -> Void) -> LoopBroker {
        state.withLock { $0.loops[index] = deliver }
        return LoopBroker(sequencer: self, loop: index)
    }

    /// Dedups and positions one submission, sends its events to every loop and returns
    /// where they went.
    func submit(_ submission: Submission, from loop: Int) -> SequencingResult {
        let now = clock.now()
        return state.withLock { state in
            var acceptances: [WireFormat.Acceptance] = []
            acceptances.reserveCapacity(submission.events.count)
            var events: [Event] = []
            events.reserveCapacity(submission.events.count)
            for proposed in submission.events {
                let identity = proposed.hasExplicitID ? Deduplicator.Key(source: proposed.source, id: proposed.id) : nil
                if let identity, let original = state.dedup.lookup(identity, now: now) {
                    acceptances.append(.init(id: proposed.id, seq: original, duplicate: true))
                    continue
                }
                let seq = state.nextPosition
                state.nextPosition += 1
                let event = proposed.json.withUnsafeBytes {
                    Event(
                        epoch: epoch, seq: seq, id: proposed.id, source: proposed.source, type: proposed.type, acceptedAt: now, json: $0,
                        routeTally: RouteTally())
                }
                if let identity { state.dedup.record(identity, seq: seq, now: now) }
                events.append(event)
                acceptances.append(.init(id: proposed.id, seq: seq, duplicate: false))
            }
            if let change = submission.presence, let announcing = events.first {
                Self.apply(change, announcedBy: announcing, from: loop, to: &state.members)
            }
            if !events.isEmpty {
                let bytes = events.reduce(0) { $0 + $1.byteCount }
                for index in state.loops.indices {
                    guard let deliver = state.loops[index] else { continue }
                    state.backlog[index] += bytes
                    deliver(.received(events, epoch: epoch))
                }
            }
            return .accepted(acceptances, epoch: epoch)
        }
    }

    private static func apply(
        _ change: PresenceChange, announcedBy event: Event, from loop: Int, to members: inout [String: [String: JoinedMember]]
    ) {
        switch change {
        case .join(let group, let id, let transport, let info):
            let member = PresenceRegistry.Member(client: UInt64(id) ?? 0, info: info, transport: transport, joinEvent: event)
            members[group, default: [:]][id] = JoinedMember(loop: loop, member: member)
        case .leave(let group, let id):
            members[group]?[id] = nil
            if members[group]?.isEmpty == true { members[group] = nil }
        }
    }

    /// Loop `loop` took `events` from its inbox.
    func received(_ events: [Event], by loop: Int) {
        let bytes = events.reduce(0) { $0 + $1.byteCount }
        state.withLock { $0.backlog[loop] -= bytes }
    }

    /// The last position given out (0 before the first).
    var lastPosition: UInt64 { state.withLock { $0.nextPosition - 1 } }

    /// The largest backlog of any loop: a loop that delivers more slowly than the others
    /// accept would otherwise let its inbox grow without bound.
    var largestBacklog: Int { state.withLock { $0.backlog.max() ?? 0 } }

    /// The members of `group` on every loop but `loop` (whose own registry knows its own).
    func members(of group: String, besides loop: Int) -> [PresenceRegistry.Member] {
        state.withLock { state in
            guard let joined = state.members[group] else { return [] }
            return joined.values.filter { $0.loop != loop }.map(\.member).sorted { $0.joinedSeq < $1.joinedSeq }
        }
    }
}

/// One loop's door to the `LoopSequencer`: the `EventBroker` its Hub submits through.
///
/// Members keep plain client ids (`node` is empty): client ids are unique across the
/// loops of a process (`Hub.ClientIDs`), so no node name is needed to tell them apart.
public final class LoopBroker: EventBroker {
    let sequencer: LoopSequencer
    /// This loop's index.
    public let loop: Int

    init(sequencer: LoopSequencer, loop: Int) {
        self.sequencer = sequencer
        self.loop = loop
    }

    public var node: String { "" }
    public var storageName: String { "the event log" }
    public var backlogBytes: Int { sequencer.largestBacklog }
    public var lastPosition: UInt64? { sequencer.lastPosition }

    /// This loop took events from its inbox (they no longer count in its backlog).
    public func received(_ events: [Event]) { sequencer.received(events, by: loop) }

    public func submit(_ submission: Submission) -> SequencingResult? { sequencer.submit(submission, from: loop) }

    public func members(of group: String, fresh: Bool) -> [PresenceRegistry.Member]? {
        sequencer.members(of: group, besides: loop)
    }

    /// The sequencer's list never holds this loop's members (see `members(of:fresh:)`).
    public func isOwn(_ member: PresenceRegistry.Member) -> Bool { false }

    /// The sequencer changes its list with the submission itself: no copy to refresh.
    public func presenceChanged() {}

    /// The sequencer's list lives as long as the process: nothing is ever lost.
    public func restore(_ members: [(group: String, member: PresenceRegistry.Member)]) {}
}
