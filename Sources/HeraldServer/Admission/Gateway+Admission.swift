import HeraldCore

extension Gateway {
    /// The answer to the first request of a connection `Admission` did not count in:
    /// 503 with a jittered `Retry-After` (1–5 s), so that clients refused together do not
    /// come back together.
    func refuseAdmission(_ refusal: ConnectionAdmission.Refusal) -> HTTPServerResponse {
        var error = HeraldError(.tooManyConnections, refusal.message)
        error.retryAfterMs = Int.random(in: 1...5) * 1000
        return errorResponse(error, fields: retryAfterField(error))
    }

    /// Counts a new stream of `credentials`' JWT subject on `connection` (released when it
    /// closes), or returns the refusal (counted) when the subject holds its most.
    func admitStream(of credentials: Credentials, on connection: Connection) -> ConnectionAdmission.Refusal? {
        guard let subject = credentials.subject else { return nil }
        if let refusal = admission.admit(subject: subject) {
            hub.metrics.connectionsRefused[refusal.metricReason, default: 0] += 1
            return refusal
        }
        connection.countedSubject = subject
        return nil
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
        let rate =
            switch limit {
            case .ingestPerKey: config.limits.ingestEventsPerSecondPerKey
            case .ingestPerAddress: config.limits.ingestEventsPerSecondPerAddress
            case .webSocketMessages: config.limits.webSocketMessagesPerSecond
            }
        var error = HeraldError(.rateLimited, "\(what) would pass limits.\(limit.rawValue) (\(rate)/s); retry after retryAfterMs")
        error.retryAfterMs = Int((wait + 999_999) / 1_000_000)
        return error
    }

    /// `Retry-After` in whole seconds (at least 1) for an error that says when to retry.
    func retryAfterField(_ error: HeraldError) -> [(name: String, value: String)] {
        guard let ms = error.retryAfterMs else { return [] }
        return [("retry-after", "\(max(1, (ms + 999) / 1000))")]
    }
}

extension ConnectionAdmission.Refusal {
    /// The `reason` label of `herald_connections_refused_total`.
    var metricReason: String {
        switch self {
        case .total: "total"
        case .perAddress: "address"
        case .perSubject: "subject"
        }
    }
}
