/// Where a clustered node's events are positioned: the stream all nodes share.
///
/// Why a protocol: a single node positions events itself (its `EventLog` gives each its
/// `seq`). Nodes of a cluster cannot: two nodes would hand out the same position. There a
/// broker (the Redis Streams broker of `HeraldCluster`) positions every batch on the
/// shared stream, answers each `Submission` with `HubMessage.sequenced`, and reads the
/// stream back on a thread of its own, posting every node's events — this node's too — as
/// `HubMessage.received` to the loop's inbox, in stream order. A clustered Hub therefore
/// never delivers at publish time: it delivers what the stream says, in the stream's order,
/// exactly as every other node does.
public protocol EventBroker: AnyObject, Sendable {
    /// This node's name in the cluster (it qualifies presence members' ids).
    var node: String { get }
    /// Appends a batch to the shared stream. A broker that positions it at once returns
    /// the answer; one that appends on a thread of its own returns nil and answers through
    /// the loop's inbox as `.sequenced(ticket:result:)`, in submission order.
    func submit(_ submission: Submission) -> SequencingResult?
    /// The members of a presence group on every live node, from the shared store (on the
    /// loop thread, one round trip; `fresh: false` allows a copy up to a second old); nil
    /// when it cannot be reached.
    func members(of group: String, fresh: Bool) -> [PresenceRegistry.Member]?
    /// A presence change came through the stream: copies of lists are out of date.
    func presenceChanged()
    /// Writes this node's members into the shared store again (after it lost them).
    func restore(_ members: [(group: String, member: PresenceRegistry.Member)])
    /// Where events are stored, as messages name it.
    var storageName: String { get }
    /// Whether a member of the shared list is this node's (its own registry decides those).
    func isOwn(_ member: PresenceRegistry.Member) -> Bool
    /// Bytes of events positioned but not yet taken by the slowest reader (a loop's
    /// inbox); ingest is refused while it passes the pending-input bound.
    var backlogBytes: Int { get }
    /// This node's Hub took `events` from its inbox.
    func received(_ events: [Event])
    /// The last position given out, when the broker knows it at once (nil: a remote stream).
    var lastPosition: UInt64? { get }
}

extension EventBroker {
    public var lastPosition: UInt64? { nil }
    public var backlogBytes: Int { 0 }
    public func received(_ events: [Event]) {}
    public var storageName: String { "the cluster's stream" }
    public func isOwn(_ member: PresenceRegistry.Member) -> Bool { member.node == node }
}

/// A presence change that goes to the shared store with the event announcing it.
public enum PresenceChange: Sendable, Equatable {
    case join(group: String, member: String, transport: String, info: RawJSON)
    case leave(group: String, member: String)
}

/// An event validated on this node, on its way to the shared stream: not positioned yet.
public struct ProposedEvent: Sendable, Equatable {
    public var id: String
    public var source: String
    public var type: String
    /// Whether the publisher chose `id` (only those are deduplicated, cluster-wide).
    public var hasExplicitID: Bool
    /// The event as compact JSON.
    public var json: [UInt8]

    public init(id: String, source: String, type: String, hasExplicitID: Bool, json: [UInt8]) {
        self.id = id
        self.source = source
        self.type = type
        self.hasExplicitID = hasExplicitID
        self.json = json
    }
}

/// One ingest request's or one WebSocket publish's events, appended together (a batch
/// is contiguous on the stream) and answered together.
public struct Submission: Sendable {
    /// Names the submission in its answer; increasing per Hub.
    public var ticket: UInt64
    public var events: [ProposedEvent]
    /// The member list change a `herald.presence` event announces (stored atomically with it).
    public var presence: PresenceChange?

    public init(ticket: UInt64, events: [ProposedEvent], presence: PresenceChange? = nil) {
        self.ticket = ticket
        self.events = events
        self.presence = presence
    }
}

/// The broker's answer to a submission.
public enum SequencingResult: Sendable, Equatable {
    /// On the stream: each event's position (or, for a duplicate, its original's), in the
    /// stream's epoch as Redis answered (this node's reader may not have seen it change yet).
    case accepted([WireFormat.Acceptance], epoch: StreamEpoch)
    /// Not appended (the broker cannot reach the stream); nothing of the batch is
    /// acknowledged. If the connection broke after Redis received the batch, the events
    /// may still appear on the stream: a retry with the same ids is deduplicated.
    case failed(String)
}
