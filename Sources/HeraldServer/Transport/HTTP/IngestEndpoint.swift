import HeraldCore
import Logging

/// `POST /v1/events`: the HTTP ingest endpoint (DESIGN §3).
///
/// What can be checked from the head is checked first; the body is read only when it will
/// be used (a refusal known from the head drops the body, so the connection stays usable).
struct IngestEndpoint: Endpoint {
    func plan(_ request: Request, connection: Connection, gateway: Gateway) -> RequestPlan {
        let head = request.head
        if head.method == .options {
            return .respond(
                HTTPServerResponse(
                    status: 204, contentType: nil,
                    fields: apiHeaders + [
                        ("access-control-allow-methods", "POST, OPTIONS"),
                        (
                            "access-control-allow-headers",
                            "authorization, content-type, ce-id, ce-source, ce-type, ce-specversion, ce-subject, ce-time"
                        ),
                        ("access-control-max-age", "600"),
                    ]))
        }
        var credentials = Credentials.anonymous
        var refusal: HeraldError?
        if let token = PublisherKeys.bearerToken(head.field("authorization")) {
            do throws(HeraldError) {
                credentials = try gateway.authenticate(token)
            } catch {
                let message = SubscriberToken.looksLikeJWT(token) ? error.message : "the publisher key is not valid"
                refusal = HeraldError(error.code == .tokenExpired ? .tokenExpired : .unauthorized, message)
            }
        } else {
            refusal = HeraldError(.unauthorized, "publishing needs Authorization: Bearer <publisher key or token>")
        }
        let contentType = head.field("content-type")
        let format: IngestFormat
        let binary = BinaryCloudEvent(head: head)
        if binary != nil {
            // CloudEvents binary mode: attributes in headers, the data as the body.
            format = .cloudEvent
        } else if let contentType, let parsed = IngestFormat(contentType: contentType) {
            format = parsed
        } else {
            let got = contentType.map { "\"\($0)\"" } ?? "none"
            refusal =
                refusal
                ?? HeraldError(
                    .unsupportedMediaType,
                    "Content-Type must be application/json, application/cloudevents+json or application/cloudevents-batch+json (got \(got))"
                )
            format = .json
        }
        if let refusal {
            gateway.hub.metrics.rejected[refusal.code.rawValue, default: 0] += 1
            return .respond(gateway.errorResponse(refusal))
        }
        return gateway.planBody(
            request, IngestBody(format: format, binary: binary, credentials: credentials, peer: connection.peer),
            limit: gateway.config.limits.maxBodyBytes)
    }

    func refusedMethod(_ method: HTTPMethod, gateway: Gateway) {
        gateway.hub.metrics.rejected[HeraldError.Code.methodNotAllowed.rawValue, default: 0] += 1
    }
}

/// The body of an ingest request: validated, authorized and published once complete.
struct IngestBody: BodyHandler {
    var format: IngestFormat
    /// The CloudEvents attributes of a binary-mode request (`ce-*` headers).
    var binary: BinaryCloudEvent?
    var credentials: Credentials
    /// The client's address, for `limits.ingestEventsPerSecondPerAddress`.
    var peer: String

    func answer(_ request: Request, gateway: Gateway) -> BodyAnswer {
        gateway.ingest(request.body, format: format, binary: binary, credentials: credentials, peer: peer)
    }

    func refused(_ code: HeraldError.Code, gateway: Gateway) {
        gateway.hub.metrics.rejected[code.rawValue, default: 0] += 1
    }
}

extension Gateway {
    /// Validates, authorizes and publishes a complete ingest body.
    func ingest(_ body: [UInt8], format: IngestFormat, binary: BinaryCloudEvent?, credentials: Credentials, peer: String) -> BodyAnswer {
        let since = MonotonicClock.nanoseconds()
        hub.metrics.ingestBytes += UInt64(body.count)
        if let refusal = storageRefusal() {
            return .now(rejectIngest(refusal, fields: [("retry-after", refusal.code == .overloaded ? "1" : "5")]))
        }
        var body = body
        if let binary {
            do throws(HeraldError) {
                body = try binary.structuredJSON(data: body, limits: config.limits.ingest.json)
            } catch {
                return .now(rejectIngest(error))
            }
        }
        return body.withUnsafeBytes { bytes -> BodyAnswer in
            do throws(HeraldError) {
                let events = try IngestParser.parse(bytes, format: format, limits: config.limits.ingest, tape: &ingestTape)
                if let refusal = credentials.publishRefusal(events, tape: ingestTape, body: bytes) {
                    logRefusedPublish(refusal, by: credentials, peer: peer)
                    return .now(rejectIngest(refusal))
                }
                if let limited = admitIngest(events.count, from: credentials, peer: peer) {
                    logRefusedPublish(limited, by: credentials, peer: peer)
                    return .now(rejectIngest(limited, fields: retryAfterField(limited)))
                }
                if hub.isClustered { return .held(.sequencing(ticket: hub.submit(events, answer: .taken), since: since)) }
                let accepted = hub.publish(events, tape: ingestTape, body: bytes)
                let response = json(202, WireFormat.accepted(accepted, epoch: hub.epoch))
                let last = accepted.reduce(0) { max($0, $1.seq) }
                guard last <= hub.committedThrough else { return .held(.commit(position: last, response, since: since)) }
                return .now(acknowledged(response, since: since))
            } catch {
                return .now(rejectIngest(error))
            }
        }
    }

    /// The answer a held ingest request can get now, or nil while it waits. What was
    /// accepted but not stored is not acknowledged: 503, the client may retry (its ids
    /// make the retry safe).
    func answer(held: HeldAnswer) -> HTTPServerResponse? {
        switch held {
        case .commit(let position, let response, let since):
            if hub.committedThrough >= position { return acknowledged(response, since: since) }
            guard let refusal = storageFailedError() else { return nil }
            return errorResponse(refusal, fields: [("retry-after", "5")])
        case .gathering(let token):
            return gatheredAnswer(token)
        case .sequencing(let ticket, let since):
            switch hub.takeSequencingResult(ticket) {
            case nil:
                return nil
            case .accepted(let accepted, let epoch):
                return acknowledged(json(202, WireFormat.accepted(accepted, epoch: epoch)), since: since)
            case .failed(let reason):
                return rejectIngest(
                    HeraldError(.storageUnavailable, "the cluster's stream cannot store events: \(reason)"), fields: [("retry-after", "2")])
            }
        }
    }

    /// A 202 as it goes out: checked against `ingest.deadlineMs` from `since`, and a
    /// moment for the stats windows (the loop is busy anyway).
    private func acknowledged(_ response: HTTPServerResponse, since: UInt64) -> HTTPServerResponse {
        let now = MonotonicClock.nanoseconds()
        if hub.metrics.timingEnabled { hub.metrics.ingestAnswers.check(now &- since) }
        statsWindow.record(&hub.metrics, now: now)
        return response
    }

    /// Refuses an ingest request and counts it by its error code.
    private func rejectIngest(_ error: HeraldError, fields: [(name: String, value: String)] = []) -> HTTPServerResponse {
        hub.metrics.rejected[error.code.rawValue, default: 0] += 1
        return errorResponse(error, fields: fields)
    }

    /// Why events cannot be accepted now: the log failed to store, or what waits for the
    /// disk already reaches `limits.maxPendingInputBytesTotal` (nil while the log keeps up).
    func storageRefusal() -> HeraldError? {
        if let failed = storageFailedError() { return failed }
        if hub.pendingBytes > config.limits.maxPendingInputBytesTotal {
            return HeraldError(.overloaded, "\(hub.pendingBytes) bytes of events wait for the event log's disk; retry later")
        }
        let backlog = hub.deliveryBacklogBytes
        if backlog > config.limits.maxPendingInputBytesTotal {
            return HeraldError(.overloaded, "\(backlog) bytes of events wait for one of the gateway's loops to deliver them; retry later")
        }
        return nil
    }

    /// The answer to a request whose events the log failed to store (nil while it works).
    func storageFailedError() -> HeraldError? {
        guard let failure = hub.storageFailure else { return nil }
        hub.metrics.storageRefusals += 1
        return HeraldError(.storageUnavailable, "\(hub.storageName) cannot store events: \(failure)")
    }
}
