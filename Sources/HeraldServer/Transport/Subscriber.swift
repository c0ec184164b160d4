import HeraldCore

/// What a WebSocket upgrade proved before the connection switched protocols.
struct PendingUpgrade {
    /// What the upgrade's token proved.
    var credentials: Credentials
    /// The route whose queue settings the session uses (`/v1/ws?route=`).
    var route: String?
}

/// A resume in progress: events after `cursor` are read from history instead of live.
struct CatchUp {
    /// The last sequence number handled for this client.
    var cursor: UInt64
    /// Events up to here were already queued live for the client's other subscriptions;
    /// among them only those matching `replaying` are sent again.
    var floor: UInt64
    /// The subscriptions that asked to resume.
    var replaying: SubscriptionSet
}

/// A subscriber that events are fanned out to (an SSE stream or a WebSocket session).
class Subscriber {
    let id: UInt64
    let transport: TransportKind
    /// The socket to wake when there is something to send.
    let socket: Socket
    var queue: ClientQueue
    /// The patterns of each subscription slot in use so far (all must match); nil for a
    /// slot freed by an unsubscribe. Slots grow as they are used, so an idle connection
    /// holds none.
    private(set) var patterns: [[Pattern]?] = []
    /// What each slot was subscribed with, for `/v1/clients` and per-route metrics.
    private(set) var descriptions: [SubscriptionDescription?] = []
    /// The most subscriptions this client may hold at once.
    let maxSlots: Int
    /// The peer's address.
    let remote: String
    /// Events written to this client.
    var sent: UInt64 = 0
    /// Non-nil while the client is resuming from history; live events then wait in history.
    var catchUp: CatchUp?
    /// The highest sequence number queued for this client.
    var sentThrough: UInt64 = 0
    let connectedAt = MonotonicClock.nanoseconds()
    /// What the client's token proved; decides what it may see, publish and join.
    var credentials: Credentials

    init(id: UInt64, transport: TransportKind, connection: Connection, queue: ClientQueue, credentials: Credentials, slots: Int) {
        self.id = id
        self.transport = transport
        self.credentials = credentials
        self.socket = connection.socket
        self.remote = connection.peer
        self.queue = queue
        self.maxSlots = slots
    }

    /// A free slot for a new subscription, or nil when the client holds `maxSlots`.
    func freeSlot() -> Int? {
        descriptions.firstIndex { $0 == nil } ?? (descriptions.count < maxSlots ? descriptions.count : nil)
    }

    /// Records a subscription in `slot` (from `freeSlot()`).
    func setSubscription(_ slot: Int, patterns list: [Pattern], description: SubscriptionDescription) {
        if slot == descriptions.count {
            patterns.append(nil)
            descriptions.append(nil)
        }
        patterns[slot] = list
        descriptions[slot] = description
    }

    /// Frees `slot` (after an unsubscribe).
    func clearSubscription(_ slot: Int) {
        patterns[slot] = nil
        descriptions[slot] = nil
    }

    /// The live subscriptions (slots) of this client.
    var subscriptionSlots: SubscriptionSet {
        var set = SubscriptionSet()
        for (slot, list) in patterns.enumerated() where list != nil { set.insert(slot) }
        return set
    }

    /// The metrics entries of the routes the subscriptions in `slots` were made through.
    func routes(of slots: SubscriptionSet) -> RouteSet {
        var routes = RouteSet()
        slots.forEach { slot in if let route = descriptions[slot]?.routeIndex { routes.insert(route) } }
        return routes
    }

    /// The subscriptions whose patterns all match `event`, among those `include` admits.
    func matchingSubscriptions(_ event: EventView, include: (Int) -> Bool) -> SubscriptionSet {
        var set = SubscriptionSet()
        for (slot, list) in patterns.enumerated() {
            guard let list, include(slot), list.allSatisfy({ $0.matches(event) }) else { continue }
            set.insert(slot)
        }
        return set
    }
}

/// How a subscription was made: its id, route and own filter.
struct SubscriptionDescription {
    var id: String
    /// The id as a JSON string literal, rendered once for every WebSocket event frame.
    var encodedID: [UInt8]
    var route: String?
    var filter: JSONValue?
    /// Index into `GatewayMetrics.routes` (the ad-hoc entry when there is no route).
    var routeIndex: Int
}

/// An SSE stream: one subscription (slot 0), events as `text/event-stream` blocks.
final class SSEClient: Subscriber {
    /// Set on shutdown, overflow or an expired token: end the stream at the next WRITEABLE.
    var ending = false
    /// When the last `: hb` comment was due (or the stream opened).
    var lastHeartbeat = MonotonicClock.nanoseconds()

    init(id: UInt64, connection: Connection, queue: ClientQueue, credentials: Credentials) {
        super.init(id: id, transport: .sse, connection: connection, queue: queue, credentials: credentials, slots: 1)
    }
}

/// A WebSocket session: many subscriptions, JSON text frames both ways.
final class WebSocketClient: Subscriber {
    /// Reassembles the client's frames into messages.
    var reader: WebSocketMessageReader
    /// Set when the session must close: after the queued messages, or at once.
    var closing: (code: WebSocketCloseCode, reason: String, immediately: Bool)?
    /// The payload of the newest ping, to be answered before anything else.
    var pendingPong: [UInt8]?
    /// A ping is to go out with the next write.
    var pingDue = false
    /// When the peer last sent anything (a message or a pong).
    var lastHeard = MonotonicClock.nanoseconds()

    init(id: UInt64, connection: Connection, queue: ClientQueue, maxSubscriptions: Int, maxMessageBytes: Int, credentials: Credentials) {
        reader = WebSocketMessageReader(maxMessageBytes: maxMessageBytes)
        super.init(id: id, transport: .webSocket, connection: connection, queue: queue, credentials: credentials, slots: maxSubscriptions)
    }

    func slot(of subscriptionID: String) -> Int? {
        descriptions.firstIndex { $0?.id == subscriptionID }
    }
}
