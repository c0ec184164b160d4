/// One subscriber as the Hub sees it — a WebSocket session or an SSE stream, without the
/// socket: its subscriptions, its bounded queue, its credentials, where it is in a resume,
/// whether it is alive, and whether it is closing.
///
/// Why it exists: everything a subscriber needs beyond bytes on a wire lives here, so the
/// delivery rules (overflow, resume, liveness, expiry) are tested without sockets. The
/// transport asks the Hub what to write next (`Hub.nextWrite(for:)`) and encodes it.
///
/// Owned by the Hub on its loop thread; not thread-safe.
public final class Session {
    /// Why a session ends, and whether what is queued goes first.
    public struct Closing: Sendable, Equatable {
        public var code: WebSocketCloseCode
        public var reason: String
        /// Close at the next write; otherwise once the queued messages are written.
        public var immediately: Bool
        /// What to tell the client first, where the transport can (a WebSocket error
        /// frame `token_expired` before close 4001).
        public var notice: HeraldError?
    }

    /// The client id (`/v1/clients`, presence `member`).
    public let id: UInt64
    /// A small number, reused after the session ends, that the transport layer may use
    /// to find its connection without hashing.
    public let index: Int
    public let transport: TransportKind
    /// The peer's address, for `/v1/clients`.
    public let remote: String
    /// When the session opened (the Hub's clock).
    public let openedAt: UInt64
    /// What the client's token proved; decides what it may see, publish and join.
    public internal(set) var credentials: Credentials
    public internal(set) var queue: ClientQueue
    /// The patterns of each subscription slot in use so far (all must match); nil for a
    /// slot freed by an unsubscribe. Slots grow as they are used, so an idle session holds
    /// none.
    public internal(set) var patterns: [[Pattern]?] = []
    /// What each slot was subscribed with, for `/v1/clients` and per-route metrics.
    public internal(set) var descriptions: [SubscriptionDescription?] = []
    /// The most subscriptions this session may hold at once.
    public let maxSlots: Int
    /// Events written to this client.
    public internal(set) var sent: UInt64 = 0
    /// Live deliveries to this client past a deadline of one of their routes, and the
    /// slowest live delivery (nanoseconds): who is late, for `/v1/clients?order=late`.
    public internal(set) var missedDeadlines: UInt64 = 0
    public internal(set) var slowestDelivery: UInt64 = 0
    /// Set once the session is to end; see `Hub.nextWrite(for:)`.
    public internal(set) var closing: Closing? {
        get { closingBox?.closing }
        set { closingBox = newValue.map(ClosingBox.init) }
    }
    /// Where `closing` is kept: a reference, because a `Closing` (with its notice) is
    /// about a hundred bytes that an open session would otherwise carry all its life.
    private var closingBox: ClosingBox?
    /// The close was handed to the transport: nothing more is written.
    public internal(set) var closeWritten = false

    /// Non-nil while the client is resuming from history; live events then wait there.
    var catchUp: CatchUp?
    /// The highest sequence number queued for this client.
    var sentThrough: UInt64 = 0
    /// When the client last sent anything (a message or a pong).
    var lastHeard: UInt64
    /// When the last keepalive (WebSocket ping, SSE comment) was due.
    var lastKeepalive: UInt64
    /// A keepalive is to go out with the next write.
    var keepaliveDue = false
    /// In the Hub's list of sessions to wake.
    var wakePending = false
    /// Replies that acknowledge events the log has not made durable yet, each with the
    /// position it waits for (a WebSocket `published`), in order.
    var repliesAwaitingCommit: [(position: UInt64, bytes: [UInt8])] = []

    init(
        id: UInt64, index: Int, transport: TransportKind, remote: String, credentials: Credentials, queue: ClientQueue, maxSlots: Int,
        now: UInt64
    ) {
        self.id = id
        self.index = index
        self.transport = transport
        self.remote = remote
        self.credentials = credentials
        self.queue = queue
        self.maxSlots = maxSlots
        self.openedAt = now
        self.lastHeard = now
        self.lastKeepalive = now
    }

    /// This session's owner key in the subscription index.
    var owner: UInt64 { UInt64(index) }

    /// Whether the client is replaying history.
    public var isResuming: Bool { catchUp != nil }

    /// The live subscriptions (slots).
    public var subscriptionSlots: SubscriptionSet {
        var set = SubscriptionSet()
        for (slot, list) in patterns.enumerated() where list != nil { set.insert(slot) }
        return set
    }

    /// How many subscriptions are live.
    public var subscriptionCount: Int { descriptions.reduce(0) { $0 + ($1 == nil ? 0 : 1) } }

    /// The slot of the subscription named `id`, if any.
    public func slot(of id: String) -> Int? {
        descriptions.firstIndex { $0?.id == id }
    }

    /// The metrics entries of the routes the subscriptions in `slots` were made through.
    public func routes(of slots: SubscriptionSet) -> RouteSet {
        var routes = RouteSet()
        slots.forEach { slot in if let route = descriptions[slot]?.routeIndex { routes.insert(route) } }
        return routes
    }

    /// The subscriptions whose patterns all match `event`, among those `include` admits.
    public func matchingSubscriptions(_ event: EventView, include: (Int) -> Bool = { _ in true }) -> SubscriptionSet {
        var set = SubscriptionSet()
        for (slot, list) in patterns.enumerated() {
            guard let list, include(slot), list.allSatisfy({ $0.matches(event) }) else { continue }
            set.insert(slot)
        }
        return set
    }

    /// A free slot for a new subscription, or nil when the session holds `maxSlots`.
    func freeSlot() -> Int? {
        descriptions.firstIndex { $0 == nil } ?? (descriptions.count < maxSlots ? descriptions.count : nil)
    }

    func setSubscription(_ slot: Int, patterns list: [Pattern], description: SubscriptionDescription) {
        if slot == descriptions.count {
            patterns.append(nil)
            descriptions.append(nil)
        }
        patterns[slot] = list
        descriptions[slot] = description
    }

    func clearSubscription(_ slot: Int) {
        patterns[slot] = nil
        descriptions[slot] = nil
    }
}

/// A session's `Closing`, once it has one.
private final class ClosingBox {
    let closing: Session.Closing
    init(_ closing: Session.Closing) { self.closing = closing }
}

/// How a subscription was made: its id, route and own filter.
public struct SubscriptionDescription: Sendable {
    public var id: String
    /// The id as a JSON string literal, rendered once for every WebSocket event frame.
    public var encodedID: [UInt8]
    public var route: String?
    public var filter: JSONValue?
    /// Index into `GatewayMetrics.routes` (the ad-hoc entry when there is no route).
    public var routeIndex: Int
}

/// A resume in progress: events after `cursor` are read from history instead of live.
struct CatchUp {
    /// The last sequence number handled for this client.
    var cursor: UInt64
    /// Events up to here were already queued live for the client's other subscriptions:
    /// a subscription without an entry in `servedThrough` is owed only what follows.
    var floor: UInt64
    /// The subscriptions that asked to resume.
    var replaying: SubscriptionSet
    /// Per subscription, the position through which it is owed nothing more from
    /// history: its `since`, how far an earlier pass already served it (the cursor can
    /// move back for a later `since`), or the position a subscription made during the
    /// catch-up was told. Subscriptions not listed go by `floor`.
    var servedThrough: [Int: UInt64] = [:]
}

/// What a transport writes next for a session (`Hub.nextWrite(for:)`).
public enum SessionWrite {
    /// A keepalive: a WebSocket ping, an SSE comment.
    case keepalive
    /// A queued event, control message or gap notice.
    case entry(Outgoing)
    /// End the session: a WebSocket close frame (after the notice, if any), or the end
    /// of an SSE stream. Nothing is written after it.
    case close(Session.Closing)
    /// Nothing to write now.
    case idle
}
