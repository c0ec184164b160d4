import HeraldCore
import Logging

/// `GET /v1/sse`: one subscription as a `text/event-stream` (DESIGN §4).
final class SSETransport: StreamTransport {
    let session: Session

    init(session: Session) { self.session = session }

    /// An SSE client has nothing to say after its request; what it sends is ignored.
    func received(on connection: Connection, in gateway: Gateway) {
        connection.input.removeAll()
    }

    var heldInputBytes: Int { 0 }

    func expire(now: UInt64, on connection: Connection, in gateway: Gateway) {}

    func beginWrite(into buffer: WriteBuffer) {}

    func encode(_ write: SessionWrite, into buffer: WriteBuffer, gateway: Gateway, now: UInt64, previousWriteAt: UInt64) {
        switch write {
        case .keepalive:
            buffer.append(WireFormat.sseHeartbeat)
        case .entry(.event(let event, let subscriptions, let replayed)):
            gateway.hub.recordDelivery(
                event, subscriptions: subscriptions, to: session, replayed: replayed,
                clientBehind: previousWriteAt > event.acceptedAt, now: now)
            buffer.append(event.sseFrame)
        case .entry(.control(let bytes)):
            buffer.append(bytes)
        case .entry(.gap(let from, let to, _, let reason)):
            buffer.append(WireFormat.sseGap(from: from, to: to, reason: reason, epoch: gateway.hub.epoch))
        case .close, .idle:
            break  // the stream simply ends
        }
    }
}

/// The SSE endpoint: validates the subscription and opens the stream; its response head
/// is the first thing the connection sends, before any event.
struct SSEEndpoint: Endpoint {
    func plan(_ request: Request, connection: Connection, gateway: Gateway) -> RequestPlan {
        let hub = gateway.hub
        let credentials: Credentials
        var filter: Pattern?
        var route: String?
        var presence: (group: String, info: RawJSON)?
        var resumeFrom: ResumePosition?
        do throws(HeraldError) {
            credentials = try gateway.authenticate(gateway.requestToken(request))
            route = try request.head.queryArgument("route")
            if let text = try request.head.queryArgument("filter") {
                filter = try Pattern(parsing: Array(text.utf8), limits: gateway.config.limits.pattern)
            }
            if let group = try request.head.queryArgument("presence") {
                var info = RawJSON.emptyObject
                if let text = try request.head.queryArgument("presenceInfo") {
                    info = try RawJSON(parsing: Array(text.utf8), limits: gateway.config.limits.ingest.json)
                }
                try ClientMessage.validatePresenceInfo(info, path: "presenceInfo")
                presence = (try ClientMessage.presenceGroup(.string(group)), info)
            }
            var lastEventID = request.head.field("last-event-id")
            if lastEventID == nil { lastEventID = try request.head.queryArgument("lastEventId") }
            if let text = lastEventID { resumeFrom = try ResumePosition(lastEventID: text) }
        } catch {
            return .respond(gateway.errorResponse(error))
        }
        if let refusal = gateway.admitStream(of: credentials, on: connection) {
            return .close(gateway.refuseAdmission(refusal))
        }
        if let resumeFrom, let refusal = gateway.admitResume(from: resumeFrom) {
            gateway.releaseStream(on: connection)
            return .close(gateway.refuseAdmission(refusal))
        }
        let session = hub.openSession(transport: .sse, remote: connection.peer, credentials: credentials, route: route)
        do throws(HeraldError) {
            let subscribed = try hub.subscribe(session, id: "sse", route: route, filter: filter)
            if let resumeFrom { hub.resume(session, from: resumeFrom, slots: SubscriptionSet(slot: subscribed.slot)) }
            if let presence { try hub.join(session, group: presence.group, info: presence.info) }
        } catch {
            hub.closeSession(session)
            gateway.releaseStream(on: connection)
            return .respond(gateway.errorResponse(error))
        }
        gateway.logger.debug("sse stream opened", metadata: ["client": "\(session.id)", "peer": "\(connection.peer)"])
        var head: [UInt8] = []
        HTTPServerResponse.encodeHead(
            status: 200, contentType: "text/event-stream", contentLength: nil,
            fields: gateway.corsFields(apiHeaders + [("x-accel-buffering", "no")], for: request.head),
            keepAlive: true, into: &head)
        // The reconnection delay of a native EventSource, jittered per stream: after a
        // restart or a network blip the streams do not all come back in the same second.
        head.append(contentsOf: "retry: \(Int.random(in: 1000...5000))\n\n".utf8)
        return .stream(SSETransport(session: session), head: head)
    }
}
