import HeraldCore

/// What the loop knows about one libwebsockets connection.
enum Connection {
    /// A plain HTTP request/response (ingest, API, static files).
    case exchange(HTTPExchange)
    /// A Server-Sent Events stream.
    case sse(SSEClient)
    /// A WebSocket session.
    case webSocket(WebSocketClient)
}

/// A response waiting for WRITEABLE callbacks: head first, then body.
struct PendingResponse {
    var status: Int
    var contentType: String
    var headers: [(String, String)]
    var body: [UInt8]
    /// Close the connection after the body (the request body was not read).
    var closeAfter: Bool
    var headSent = false
    /// For HEAD requests: send the head with the body's length, but no body.
    var omitBody = false
}

/// One HTTP request being served.
final class HTTPExchange {
    enum Purpose {
        /// POST /v1/events: collect the body, then ingest it.
        case ingest(IngestFormat, binary: BinaryCloudEvent?, credentials: Credentials)
        /// Collect (and drop) the body, then send `rejection`.
        case reject(PendingResponse)
        /// Collect a JSON body for an API operation, then answer it.
        case api(APIOperation)
        /// Nothing to read; a response or file is on its way.
        case respond
    }

    var purpose: Purpose
    var body: [UInt8] = []
    var response: PendingResponse?

    init(purpose: Purpose) { self.purpose = purpose }
}

/// API operations that take a JSON request body.
enum APIOperation {
    /// `POST /v1/patterns/test`.
    case testPattern
    /// `POST /v1/routes/explain` (admin).
    case explainRoutes
}

/// What `CONFIRM_UPGRADE` learned about a WebSocket before it was established.
struct PendingUpgrade {
    /// What the upgrade's token proved.
    var credentials: Credentials
    /// The route whose queue settings the session uses (`/v1/ws?route=`).
    var route: String?
}

/// The CloudEvents attributes of a binary-mode request (`ce-*` headers).
struct BinaryCloudEvent {
    var attributes: [(String, String)]
    var contentType: String?
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
    let wsi: OpaquePointer
    var queue: ClientQueue
    /// The patterns of each live subscription slot (all must match).
    var patterns: [[Pattern]?]
    /// What each slot was subscribed with, for `/v1/clients` and per-route metrics.
    var descriptions: [SubscriptionDescription?]
    /// The peer's address.
    let remote: String
    /// Events written to this client.
    var sent: UInt64 = 0
    /// Non-nil while the client is resuming from history; live events then wait in history.
    var catchUp: CatchUp?
    /// The highest sequence number queued for this client.
    var sentThrough: UInt64 = 0
    let connectedAt = MonotonicClock.nanoseconds()
    let scratch: WriteBuffer
    /// What the client's token proved; decides what it may see, publish and join.
    var credentials: Credentials

    init(id: UInt64, wsi: OpaquePointer, queue: ClientQueue, credentials: Credentials, slots: Int, scratchCapacity: Int) {
        self.id = id
        self.credentials = credentials
        self.wsi = wsi
        self.queue = queue
        self.patterns = Array(repeating: nil, count: slots)
        self.descriptions = Array(repeating: nil, count: slots)
        self.remote = LWS.peerAddress(wsi)
        self.scratch = WriteBuffer(capacity: scratchCapacity)
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
    var headSent = false
    /// Set on shutdown, overflow or a closed peer: end the stream at the next WRITEABLE.
    var ending = false
    /// When the last `: hb` comment was due (or the stream opened).
    var lastHeartbeat = MonotonicClock.nanoseconds()

    init(id: UInt64, wsi: OpaquePointer, queue: ClientQueue, credentials: Credentials) {
        super.init(id: id, wsi: wsi, queue: queue, credentials: credentials, slots: 1, scratchCapacity: 256)
    }
}

/// A WebSocket session: many subscriptions, JSON text frames both ways.
final class WebSocketClient: Subscriber {
    /// The message being reassembled from fragments.
    var incoming: [UInt8] = []
    var incomingTooLarge = false
    /// Set when the session must close: after the queued messages, or at once.
    var closing: (code: UInt16, reason: String, immediately: Bool)?
    /// A ping is to go out with the next write.
    var pingDue = false
    /// When the peer last sent anything (a message or a pong).
    var lastHeard = MonotonicClock.nanoseconds()

    init(id: UInt64, wsi: OpaquePointer, queue: ClientQueue, maxSubscriptions: Int, credentials: Credentials) {
        super.init(id: id, wsi: wsi, queue: queue, credentials: credentials, slots: maxSubscriptions, scratchCapacity: 1024)
    }

    func slot(of subscriptionID: String) -> Int? {
        descriptions.firstIndex { $0?.id == subscriptionID }
    }
}
