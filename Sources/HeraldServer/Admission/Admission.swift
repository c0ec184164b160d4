import HeraldCore
import Synchronization

/// What the loops decide together about who may come in and how fast: connections in
/// all and per client address, and ingest events per publisher and per address. One
/// lock each, taken when a connection opens or closes and once per ingest request — never
/// per event per client. (WebSocket message rates are per connection, on its loop.)
final class Admission: Sendable {
    private let connections: Mutex<ConnectionAdmission>
    private let ingestByPublisher: Mutex<KeyedRateLimiter<String>>
    private let ingestByAddress: Mutex<KeyedRateLimiter<String>>

    init(limits: HeraldConfig.Limits) {
        connections = Mutex(
            ConnectionAdmission(
                maxTotal: limits.maxConnections, maxPerAddress: limits.maxConnectionsPerAddress,
                maxPerSubject: limits.maxConnectionsPerSubject))
        ingestByPublisher = Mutex(
            KeyedRateLimiter(rate: limits.ingestEventsPerSecondPerKey, burst: limits.ingestEventsPerSecondPerKey))
        ingestByAddress = Mutex(
            KeyedRateLimiter(rate: limits.ingestEventsPerSecondPerAddress, burst: limits.ingestEventsPerSecondPerAddress))
    }

    /// Counts a new connection from `peer` in, or says why not.
    func admit(peer: String) -> ConnectionAdmission.Refusal? { connections.withLock { $0.admit(peer: peer) } }

    func release(peer: String) { connections.withLock { $0.release(peer: peer) } }

    /// Counts a stream of a JWT subject in, or says why not.
    func admit(subject: String) -> ConnectionAdmission.Refusal? { connections.withLock { $0.admit(subject: subject) } }

    func release(subject: String) { connections.withLock { $0.release(subject: subject) } }

    var connectionCount: Int { connections.withLock { $0.total } }

    /// The rate limits a client can run into.
    enum Limit: String {
        case ingestPerKey = "ingestEventsPerSecondPerKey"
        case ingestPerAddress = "ingestEventsPerSecondPerAddress"
        case webSocketMessages = "webSocketMessagesPerSecond"

        /// The `limit` label of `herald_rate_limited_total`.
        var metricLabel: String {
            switch self {
            case .ingestPerKey: "ingest_key"
            case .ingestPerAddress: "ingest_address"
            case .webSocketMessages: "websocket_messages"
            }
        }
    }

    /// Why `count` events from `publisher` at `peer` may not be taken now: which limit,
    /// and the nanoseconds until they could be; nil when they are admitted (and counted).
    func admitIngest(_ count: Int, publisher: String, peer: String, now: UInt64) -> (limit: Limit, wait: UInt64)? {
        if let wait = ingestByPublisher.withLock({ $0.take(count, for: publisher, now: now) }) { return (.ingestPerKey, wait) }
        let address = ConnectionAdmission.addressKey(peer)
        if let wait = ingestByAddress.withLock({ $0.take(count, for: address, now: now) }) { return (.ingestPerAddress, wait) }
        return nil
    }
}
