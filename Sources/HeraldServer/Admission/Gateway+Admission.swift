import HeraldCore
import Logging

extension Gateway {
    /// The HTTP answer to a refused connection, stream or resume: 503 with the jittered
    /// wait in `Retry-After` and `retryAfterMs`.
    func refuseAdmission(_ refusal: AdmissionRefusal) -> HTTPServerResponse {
        let error = refusal.error
        return errorResponse(error, fields: retryAfterField(error))
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

    /// Takes a resume out of `limits.resumesPerSecond`, or returns the refusal (counted).
    func admitResume() -> AdmissionRefusal? {
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
/// counting those in between. Holds at most `maxKinds` kinds (JWT subjects are not a
/// closed set); past that it starts over.
struct RefusalLog {
    private var kinds: [String: (loggedAt: UInt64, unlogged: Int)] = [:]
    static let interval: UInt64 = 10_000_000_000
    static let maxKinds = 1024

    /// nil: not logged now (counted). Otherwise log it, with how many were not logged before.
    mutating func admit(_ kind: String, now: UInt64) -> Int? {
        if let entry = kinds[kind], now &- entry.loggedAt < Self.interval {
            kinds[kind] = (entry.loggedAt, entry.unlogged + 1)
            return nil
        }
        if kinds.count >= Self.maxKinds { kinds.removeAll(keepingCapacity: true) }
        let unlogged = kinds[kind]?.unlogged ?? 0
        kinds[kind] = (now, 0)
        return unlogged
    }
}
