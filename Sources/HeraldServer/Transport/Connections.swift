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
        case ingest(IngestFormat, binary: BinaryCloudEvent?)
        /// Collect (and drop) the body, then send `rejection`.
        case reject(PendingResponse)
        /// Nothing to read; a response or file is on its way.
        case respond
    }

    var purpose: Purpose
    var body: [UInt8] = []
    var response: PendingResponse?

    init(purpose: Purpose) { self.purpose = purpose }
}

/// The CloudEvents attributes of a binary-mode request (`ce-*` headers).
struct BinaryCloudEvent {
    var attributes: [(String, String)]
    var contentType: String?
}

/// A subscriber that events are fanned out to.
protocol Subscriber: AnyObject {
    var id: UInt64 { get }
    var wsi: OpaquePointer { get }
    var queue: ClientQueue { get set }
}

/// An SSE stream: one subscription, events as `text/event-stream` blocks.
final class SSEClient: Subscriber {
    let id: UInt64
    let wsi: OpaquePointer
    var queue: ClientQueue
    var headSent = false
    /// Set on shutdown: end the stream at the next WRITEABLE.
    var ending = false
    let scratch = WriteBuffer(capacity: 256)

    init(id: UInt64, wsi: OpaquePointer, queue: ClientQueue) {
        self.id = id
        self.wsi = wsi
        self.queue = queue
    }
}

/// A WebSocket session: many subscriptions, JSON text frames both ways.
final class WebSocketClient: Subscriber {
    /// One subscription of the session.
    struct Subscription {
        var id: String
        /// The id as a JSON string literal, rendered once for every event frame.
        var encodedID: [UInt8]
    }

    let id: UInt64
    let wsi: OpaquePointer
    var queue: ClientQueue
    /// Slot → subscription; the slot is the bit in a `SubscriptionSet`.
    var subscriptions: [Subscription?]
    /// The publisher this session authenticated as; publishing needs one.
    var publisher: String?
    /// The message being reassembled from fragments.
    var incoming: [UInt8] = []
    var incomingTooLarge = false
    /// Set when the session must close at the next WRITEABLE.
    var closing: (code: UInt16, reason: String)?
    let scratch = WriteBuffer(capacity: 1024)

    init(id: UInt64, wsi: OpaquePointer, queue: ClientQueue, maxSubscriptions: Int, publisher: String?) {
        self.id = id
        self.wsi = wsi
        self.queue = queue
        self.subscriptions = Array(repeating: nil, count: maxSubscriptions)
        self.publisher = publisher
    }

    func slot(of subscriptionID: String) -> Int? {
        subscriptions.firstIndex { $0?.id == subscriptionID }
    }
}
