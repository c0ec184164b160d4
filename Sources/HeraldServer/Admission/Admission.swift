import HeraldCore
import Synchronization

/// What the loops decide together about who may come in and how fast: connections in
/// all and per client address, new connections and resumes per second (reconnect
/// storms), and ingest events per publisher and per address. One lock each, taken when a
/// connection opens or closes, a stream resumes, and once per ingest request — never per
/// event per client. (WebSocket message rates are per connection, on its loop.)
final class Admission: Sendable {
    private let connections: Mutex<ConnectionAdmission>
    private let newConnections: Mutex<WaveLimiter>
    private let resumes: Mutex<WaveLimiter>
    private let limits: HeraldConfig.Limits
    private let ingestByPublisher: Mutex<KeyedRateLimiter<String>>
    private let ingestByAddress: Mutex<KeyedRateLimiter<String>>

    init(limits: HeraldConfig.Limits) {
        connections = Mutex(
            ConnectionAdmission(
                maxTotal: limits.maxConnections, maxPerAddress: limits.maxConnectionsPerAddress,
                maxPerSubject: limits.maxConnectionsPerSubject))
        self.limits = limits
        let now = MonotonicClock.nanoseconds()
        newConnections = Mutex(WaveLimiter(rate: limits.newConnectionsPerSecond, now: now))
        resumes = Mutex(WaveLimiter(rate: limits.resumesPerSecond, now: now))
        ingestByPublisher = Mutex(
            KeyedRateLimiter(rate: limits.ingestEventsPerSecondPerKey, burst: limits.ingestEventsPerSecondPerKey))
        ingestByAddress = Mutex(
            KeyedRateLimiter(rate: limits.ingestEventsPerSecondPerAddress, burst: limits.ingestEventsPerSecondPerAddress))
    }

    /// Counts a new connection from `peer` in, or says why not (then nothing is counted).
    func admit(peer: String) -> AdmissionRefusal? {
        connections.withLock { $0.admit(peer: peer) }.map(AdmissionRefusal.init(held:))
    }

    /// Takes a new connection out of the node's rate, at its first request (so a connect
    /// that never sends one costs no token), or says how long to wait.
    func admitNewConnection(now: UInt64) -> AdmissionRefusal? {
        guard let wait = newConnections.withLock({ $0.admit(now: now) }) else { return nil }
        return AdmissionRefusal(reason: .newConnectionRate(limits.newConnectionsPerSecond), retryAfterMs: wait)
    }

    func release(peer: String) { connections.withLock { $0.release(peer: peer) } }

    /// Takes a resume (a stream or subscription asking for history) out of the node's
    /// resume rate, or says how long to wait.
    func admitResume(now: UInt64) -> AdmissionRefusal? {
        guard let wait = resumes.withLock({ $0.admit(now: now) }) else { return nil }
        return AdmissionRefusal(reason: .resumeRate(limits.resumesPerSecond), retryAfterMs: wait)
    }

    /// Counts a stream of a JWT subject in, or says why not.
    func admit(subject: String) -> AdmissionRefusal? {
        connections.withLock { $0.admit(subject: subject) }.map(AdmissionRefusal.init(held:))
    }

    func release(subject: String) { connections.withLock { $0.release(subject: subject) } }

    var connectionCount: Int { connections.withLock { $0.total } }

    /// The rate limits a client can run into.
    enum Limit: String {
        case ingestPerKey = "ingestEventsPerSecondPerKey"
        case ingestPerAddress = "ingestEventsPerSecondPerAddress"
        case webSocketMessages = "webSocketMessagesPerSecond"
        case webSocketSubscribes = "webSocketSubscribesPerSecond"
        case webSocketPublishes = "webSocketPublishesPerSecond"

        /// The `limit` label of `herald_rate_limited_total`.
        var metricLabel: String {
            switch self {
            case .ingestPerKey: "ingest_key"
            case .ingestPerAddress: "ingest_address"
            case .webSocketMessages: "websocket_messages"
            case .webSocketSubscribes: "websocket_subscribes"
            case .webSocketPublishes: "websocket_publishes"
            }
        }

        /// What one refused unit of a WebSocket limit is, in an error message.
        var unit: String {
            switch self {
            case .webSocketSubscribes: "this subscribe"
            case .webSocketPublishes: "this publish"
            default: "this message"
            }
        }

        /// The configured rate.
        func rate(in limits: HeraldConfig.Limits) -> Int {
            switch self {
            case .ingestPerKey: limits.ingestEventsPerSecondPerKey
            case .ingestPerAddress: limits.ingestEventsPerSecondPerAddress
            case .webSocketMessages: limits.webSocketMessagesPerSecond
            case .webSocketSubscribes: limits.webSocketSubscribesPerSecond
            case .webSocketPublishes: limits.webSocketPublishesPerSecond
            }
        }
    }

    /// Why `count` events from `publisher` at `peer` may not be taken now: which limit,
    /// and the nanoseconds until they could be; nil when they are admitted (and counted).
    func admitIngest(_ count: Int, publisher: String, peer: String, now: UInt64) -> (limit: Limit, wait: UInt64)? {
        if let wait = ingestByPublisher.withLock({ $0.take(count, for: publisher, now: now) }) { return (.ingestPerKey, wait) }
        let address = ConnectionAdmission.addressKey(peer)
        if let wait = ingestByAddress.withLock({ $0.take(count, for: address, now: now) }) {
            ingestByPublisher.withLock { $0.refund(count, for: publisher) }  // nothing of the request was taken
            return (.ingestPerAddress, wait)
        }
        return nil
    }
}

/// Why a connection, a stream or a resume is not taken now, and how long the client should
/// wait (jittered, so that clients refused together do not return together).
struct AdmissionRefusal: Equatable {
    enum Reason: Equatable {
        /// The gateway, the address or the subject holds its most connections.
        case held(ConnectionAdmission.Refusal)
        /// `limits.newConnectionsPerSecond`: a wave of new connections.
        case newConnectionRate(Int)
        /// `limits.resumesPerSecond`: a wave of clients asking for history.
        case resumeRate(Int)
    }

    let reason: Reason
    let retryAfterMs: Int

    /// A refusal for what is held: a wait of 1–5 s.
    init(held refusal: ConnectionAdmission.Refusal) {
        self.init(reason: .held(refusal), retryAfterMs: Int.random(in: 1...5) * 1000)
    }

    init(reason: Reason, retryAfterMs: Int) {
        self.reason = reason
        self.retryAfterMs = retryAfterMs
    }

    var error: HeraldError {
        var error =
            switch reason {
            case .held(let refusal): HeraldError(.tooManyConnections, refusal.message)
            case .newConnectionRate(let rate):
                HeraldError(
                    .tooManyConnections,
                    "the gateway takes \(rate) new connections a second (limits.newConnectionsPerSecond); retry after retryAfterMs")
            case .resumeRate(let rate):
                HeraldError(.overloaded, "the gateway takes \(rate) resumes a second (limits.resumesPerSecond); retry after retryAfterMs")
            }
        error.retryAfterMs = retryAfterMs
        return error
    }

    /// The reason of a WebSocket close 1013: the wait first, within the 123 bytes a close
    /// reason may hold.
    var closeReason: String {
        let what =
            switch reason {
            case .held(.total): "too many connections"
            case .held(.perAddress): "too many connections from this address"
            case .held(.perSubject): "too many streams for this subject"
            case .newConnectionRate: "too many new connections"
            case .resumeRate: "too many resumes"
            }
        return "retryAfterMs=\(retryAfterMs); \(what)"
    }

    /// The `reason` label of `herald_connections_refused_total`.
    var metricReason: String {
        switch reason {
        case .held(.total): "total"
        case .held(.perAddress): "address"
        case .held(.perSubject): "subject"
        case .newConnectionRate: "new_connection_rate"
        case .resumeRate: "resume_rate"
        }
    }
}
