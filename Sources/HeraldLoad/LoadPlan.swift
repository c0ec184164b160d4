public import HeraldClient

/// What a load run does: who subscribes where, what is published how fast, and what is
/// measured. Gateway-neutral: everything gateway-specific is a template.
public struct LoadPlan: Sendable {
    public enum Transport: String, Sendable {
        case webSocket = "ws"
        case sse
    }

    /// Subscribers that read everything; `stalled` more subscribe the same way but never read.
    public var subscribers: Int
    public var stalled = 0
    public var transport: Transport
    /// `ws[s]://…` or `http[s]://…` per subscriber (`{i}`).
    public var subscribeURL: LoadTemplate
    /// WebSocket subprotocol to ask for (Herald: herald.v1), or nil.
    public var webSocketProtocol: String?
    /// A text message each WebSocket subscriber sends once connected (`{i}`), or nil.
    public var subscribeMessage: LoadTemplate?
    /// The subscriber waits for one message in answer to `subscribeMessage` before it
    /// counts as ready; an answer that says `"error"` fails the run.
    public var awaitsSubscribeReply = true

    /// Where events are POSTed (`{i}`: the subscriber an event is for).
    public var publishURL: LoadTemplate
    /// Extra request headers of every POST (authorization, content type).
    public var publishHeaders: [(String, String)] = []
    /// One event (`{i}`, `{n}`, `{sentAt}`); it must carry `"sentAt":{sentAt}` for latency.
    public var event: LoadTemplate
    /// Events per POST: more than one are sent as a JSON array.
    public var batch = 1
    /// Keep-alive publishing connections, and requests each may have in flight.
    public var publishers = 4
    public var pipeline = 8
    /// Events to publish, at `rate` events/s (0: as fast as the gateway answers).
    public var events: Int
    public var rate: Double = 0

    /// Source addresses 127.0.0.1 … 127.0.0.`sources` for subscribers (past 28k ports each).
    public var sources = 1
    /// Threads reading subscribers.
    public var threads = 1
    /// How long subscribers may take to connect, and how long deliveries may stall before
    /// the missing ones count as lost, in seconds.
    public var connectTimeout: Double = 120
    public var drainTimeout: Double = 5
    /// Only open the subscribers and measure the server's memory; publish nothing.
    public var idle = false
    /// The certificates to trust for https:// and wss:// URLs (nil: the system's).
    public var tls: TLSClientContext?
    /// Processes whose memory and CPU count as the server's (nginx: master and workers).
    public var serverPIDs: [Int32] = []
    /// A reconnect storm during publishing (Herald only), or nil.
    public var storm: StormPlan?
    /// Bounds the run fails past: the servers' peak resident memory, and the p99 delivery
    /// latency of the (undisturbed) readers, over the run and during a storm.
    public var maxServerResidentKB: Int?
    public var maxP99Milliseconds: Double?
    /// Deliveries later than this (from each event's due time) count as late.
    public var deadlineMilliseconds: Double = 100

    public init(
        subscribers: Int, transport: Transport, subscribeURL: LoadTemplate, publishURL: LoadTemplate, event: LoadTemplate, events: Int
    ) {
        self.subscribers = subscribers
        self.transport = transport
        self.subscribeURL = subscribeURL
        self.publishURL = publishURL
        self.event = event
        self.events = events
    }

    /// Each event goes to one subscriber (its template or URL says `{i}`): subscriber
    /// `n % subscribers` for event `n`. Otherwise every subscriber gets every event.
    public var isRouted: Bool { event.mentions(.subscriber) || publishURL.mentions(.subscriber) }

    /// What a subscriber of the run does, by index: readers first, then stalled ones,
    /// then storm clients.
    public enum Role: Sendable, Equatable {
        case reader, stalled, storm
    }

    public func role(of index: Int) -> Role {
        if index < subscribers { return .reader }
        return index < subscribers + stalled ? .stalled : .storm
    }

    /// Every subscriber of the run: readers, stalled ones and storm clients.
    public var connections: Int { subscribers + stalled + (storm?.clients ?? 0) }

    /// The `{i}` a subscriber's URL and subscribe message are rendered with: its index,
    /// and for a stalled one that of a reading subscriber, so that in a routed run stalled
    /// subscribers are sent events (and overflow) too.
    func templateIndex(of index: Int) -> Int { index < subscribers || subscribers == 0 ? index : index % subscribers }

    /// The subscriber event `n` is for, in a routed run.
    func target(of n: Int) -> Int { subscribers == 0 ? 0 : n % subscribers }

    public func validate() throws(LoadFailure) {
        guard subscribers >= 0, stalled >= 0, events >= 0 else { throw LoadFailure("counts must not be negative") }
        guard batch >= 1, publishers >= 1, pipeline >= 1, threads >= 1 else {
            throw LoadFailure("batch, publishers, pipeline and threads must be at least 1")
        }
        guard (1...250).contains(sources) else { throw LoadFailure("sources must be 1…250 (127.0.0.1 … 127.0.0.250)") }
        guard !(batch > 1 && publishURL.mentions(.subscriber)) else {
            throw LoadFailure("a publish URL per subscriber ({i}) takes one event per POST: use batch 1")
        }
        guard !isRouted || subscribers > 0 || idle else { throw LoadFailure("a routed run needs subscribers") }
        guard idle || event.mentions(.sentAt) else { throw LoadFailure("the event template must carry {sentAt} to measure latency") }
        guard rate >= 0 else { throw LoadFailure("the rate must not be negative") }
        guard subscribeMessage == nil || transport == .webSocket else {
            throw LoadFailure("a subscribe message needs WebSocket subscribers")
        }
        if let storm { try validate(storm) }
    }

    private func validate(_ storm: StormPlan) throws(LoadFailure) {
        guard storm.clients >= 1, storm.at >= 0, storm.window >= 0, storm.maxAttempts >= 1 else {
            throw LoadFailure("a storm needs clients, and a time and window that are not negative")
        }
        guard !isRouted, !idle else { throw LoadFailure("a storm is a broadcast run that publishes") }
        guard rate > 0, storm.at < Double(events) / rate else {
            throw LoadFailure("a storm needs a rate, and must start while events flow (before \(Double(events) / rate) s)")
        }
        // Completeness is checked by event number, order by seq.
        guard event.description.contains(#""n":{n}"#) else { throw LoadFailure(#"a storm needs "n":{n} in the event template"#) }
        guard transport == .sse || subscribeMessage?.description.hasSuffix("}") == true else {
            throw LoadFailure("a WebSocket storm resumes with Herald's subscribe op: a JSON object subscribe message")
        }
    }
}
