import HeraldCore
import Logging

extension Gateway {
    /// The HTTP answer to a refused connection, stream or resume: 503 with the jittered
    /// wait in `Retry-After` and `retryAfterMs`.
    func refuseAdmission(_ refusal: AdmissionRefusal) -> HTTPServerResponse {
        let error = refusal.error
        return errorResponse(error, fields: retryAfterField(error))
    }

    /// The first request of a connection takes it out of `limits.newConnectionsPerSecond`
    /// (health and metrics probes excepted: an orchestrator must see the node during a
    /// storm); returns the refusal (counted), which the connection keeps.
    func admitFirstRequest(_ request: Request, on connection: Connection) -> AdmissionRefusal? {
        guard !connection.rateChecked else { return nil }
        connection.rateChecked = true
        switch request.head.path {
        case "/healthz", "/readyz", "/metrics": return nil  // probes are never refused
        default: break
        }
        guard let refusal = admission.admitNewConnection(now: MonotonicClock.nanoseconds()) else { return nil }
        count(refusal)
        connection.admissionRefusal = refusal
        return refusal
    }

    /// What a refused connection's request gets: the refusal, then the connection closes.
    /// A WebSocket upgrade is accepted to be told with a close 1013 (`WebSocketUpgrade`),
    /// which a page's script can read, where it cannot read a refused upgrade's status;
    /// anything else the router would answer for an upgrade (a foreign origin, a bad
    /// handshake) is answered and the connection closed all the same.
    func refusedPlan(_ refusal: AdmissionRefusal, for request: Request, on connection: Connection) -> RequestPlan {
        guard WebSocketHandshake.isUpgrade(request.head) else { return .close(refuseAdmission(refusal)) }
        switch router.plan(request, connection: connection, gateway: self) {
        case .stream(let transport, let head): return .stream(transport, head: head)
        case .respond(let response), .close(let response): return .close(response)
        default: return .close(refuseAdmission(refusal))
        }
    }

    /// Counts a refusal in `herald_connections_refused_total`.
    func count(_ refusal: AdmissionRefusal) {
        hub.metrics.connectionsRefused[refusal.metricReason, default: 0] += 1
    }

    /// Counts a new stream of `credentials`' JWT subject on `connection` (released when it
    /// closes), or returns the refusal (counted) when the subject holds its most.
    func admitStream(of credentials: Credentials, on connection: Connection) -> AdmissionRefusal? {
        guard let subject = credentials.subject else { return nil }
        if let refusal = admission.admit(subject: subject) {
            count(refusal)
            return refusal
        }
        connection.countedSubject = subject
        return nil
    }

    /// Takes a resume from `position` out of `limits.resumesPerSecond` — none when it
    /// would replay nothing — or returns the refusal (counted).
    func admitResume(from position: ResumePosition) -> AdmissionRefusal? {
        guard hub.replays(from: position) else { return nil }
        guard let refusal = admission.admitResume(now: MonotonicClock.nanoseconds()) else { return nil }
        count(refusal)
        return refusal
    }

    /// Counts the stream of `connection` out (it closed, or never opened).
    func releaseStream(on connection: Connection) {
        guard let subject = connection.countedSubject else { return }
        connection.countedSubject = nil
        admission.release(subject: subject)
    }

    /// Takes `count` events of ingest from `credentials` at `peer` out of the ingest rate
    /// limits and counts them for their key (`herald_ingest_events_total`), or returns the
    /// `rate_limited` error that refuses them (counted).
    func admitIngest(_ count: Int, from credentials: Credentials, peer: String) -> HeraldError? {
        let publisher = credentials.publisherName ?? credentials.subject.map { "sub:\($0)" } ?? ""
        guard let (limit, wait) = admission.admitIngest(count, publisher: publisher, peer: peer, now: MonotonicClock.nanoseconds())
        else {
            hub.metrics.ingestedByKey[credentials.publisherName ?? "", default: 0] += UInt64(count)
            return nil
        }
        return rateLimited(limit, wait: wait, what: "\(count) event(s)")
    }

    /// The `rate_limited` error for `limit` with the wait, counted.
    func rateLimited(_ limit: Admission.Limit, wait: UInt64, what: String) -> HeraldError {
        hub.metrics.rateLimited[limit.metricLabel, default: 0] += 1
        var error = HeraldError(
            .rateLimited, "\(what) would pass limits.\(limit.rawValue) (\(limit.rate(in: config.limits))/s); retry after retryAfterMs")
        error.retryAfterMs = Int((wait + 999_999) / 1_000_000)
        return error
    }

    /// Logs a publish refused for its publisher's rights or rates, naming the key (or the
    /// JWT subject) and the client: at most one line per publisher and reason every 10 s,
    /// saying how many were not logged, since a flood of refusals is exactly when a line
    /// per request would drown the log.
    func logRefusedPublish(_ error: HeraldError, by credentials: Credentials, peer: String) {
        let publisher = credentials.publisherName ?? credentials.subject.map { "sub:\($0)" } ?? "anonymous"
        guard let unlogged = refusalLog.admit("\(publisher) \(error.code.rawValue)", now: MonotonicClock.nanoseconds()) else { return }
        logger.warning(
            "publish refused",
            metadata: [
                "key": "\(publisher)", "peer": "\(peer)", "code": "\(error.code.rawValue)", "reason": "\(error.message)",
                "unlogged": "\(unlogged)",
            ])
    }

    /// `Retry-After` in whole seconds (at least 1) for an error that says when to retry.
    func retryAfterField(_ error: HeraldError) -> [(name: String, value: String)] {
        guard let ms = error.retryAfterMs else { return [] }
        return [("retry-after", "\(max(1, (ms + 999) / 1000))")]
    }
}

/// Which refusals are logged: the first of each kind, then at most one every `interval`,
/// counting those in between. Holds about `maxKinds` kinds (JWT subjects are not a
/// closed set): past that, kinds quiet for an interval are forgotten, and while all are
/// recent new ones are logged together as one.
struct RefusalLog {
    private var kinds: [String: (loggedAt: UInt64, unlogged: Int)] = [:]
    static let interval: UInt64 = 10_000_000_000
    static let maxKinds = 1024
    static let others = "(other publishers)"

    /// nil: not logged now (counted). Otherwise log it, with how many were not logged before.
    mutating func admit(_ kind: String, now: UInt64) -> Int? {
        if let entry = kinds[kind], now &- entry.loggedAt < Self.interval {
            kinds[kind] = (entry.loggedAt, entry.unlogged + 1)
            return nil
        }
        if kinds[kind] == nil, kinds.count >= Self.maxKinds {
            kinds = kinds.filter { now &- $0.value.loggedAt < Self.interval }
            // Still full of recent kinds: the rest share one kind, so the pace holds.
            if kinds.count >= Self.maxKinds, kind != Self.others { return admit(Self.others, now: now) }
        }
        let unlogged = kinds[kind]?.unlogged ?? 0
        kinds[kind] = (now, 0)
        return unlogged
    }
}
