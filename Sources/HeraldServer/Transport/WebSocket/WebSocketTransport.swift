import HeraldCore
import Logging

/// `GET /v1/ws`: a WebSocket session, subprotocol `herald.v1` (DESIGN §4): many
/// subscriptions, JSON text frames both ways.
///
/// Frames are read by `WebSocketMessageReader` (RFC 6455 rules, close codes) and each
/// message is an op on the Hub; the session's writes are framed here, many per write
/// (server frames are unmasked and Herald negotiates no extension).
final class WebSocketTransport: StreamTransport {
    let session: Session
    /// Reassembles the client's frames into messages.
    var reader: WebSocketMessageReader
    /// The payload of the newest ping, answered before anything else.
    var pendingPong: [UInt8]?
    /// Since when part of a message (a frame, a fragment) has waited for the rest; it must
    /// be finished within `limits.bodyTimeoutSeconds`, pings or not.
    private var unfinishedSince: UInt64?
    /// The client's address (ingest rates per address).
    let peer: String
    /// `limits.webSocketMessagesPerSecond`, and of those `.webSocketSubscribesPerSecond`
    /// and `.webSocketPublishesPerSecond`; bursts of two seconds' worth.
    private var messages: TokenBucket
    private var subscribes: TokenBucket
    private var publishes: TokenBucket
    /// Messages refused in a row by the rate limit; past `maxRefusedInARow` the client is
    /// not listening to its `rate_limited` errors and the session closes (1008).
    private var refusedInARow = 0
    static let maxRefusedInARow = 100
    /// Until when `since` subscriptions share the token of the connection's first resume:
    /// a client that reconnects resubscribes everything at once (herald.js does), and
    /// that is one resume; a `since` later on takes a token of its own.
    private var resumeBurstUntil: UInt64 = 0
    static let resumeBurstNanoseconds: UInt64 = 1_000_000_000

    init(session: Session, maxMessageBytes: Int, peer: String, limits: HeraldConfig.Limits) {
        self.session = session
        self.reader = WebSocketMessageReader(maxMessageBytes: maxMessageBytes)
        self.peer = peer
        let now = MonotonicClock.nanoseconds()
        func bucket(_ rate: Int) -> TokenBucket { TokenBucket(rate: rate, burst: 2 * rate, now: now) }
        messages = bucket(limits.webSocketMessagesPerSecond)
        subscribes = bucket(limits.webSocketSubscribesPerSecond)
        publishes = bucket(limits.webSocketPublishesPerSecond)
    }

    // MARK: - Input

    /// Reads whole messages from the connection's input and handles each in order. A
    /// protocol violation closes the session with the code that answers it.
    func received(on connection: Connection, in gateway: Gateway) {
        let hub = gateway.hub
        while session.closing == nil, !connection.input.isEmpty {
            let next: (message: WebSocketMessageReader.Message?, consumed: Int)
            do throws(WebSocketProtocolError) {
                next = try connection.input.withUnread { (bytes) throws(WebSocketProtocolError) in try reader.next(bytes) }
            } catch {
                connection.input.removeAll()
                hub.close(session, code: error.closeCode, reason: error.message, immediately: true)
                return
            }
            connection.input.consume(next.consumed)
            guard let message = next.message else { break }
            hub.heard(from: session)
            handle(message, on: connection, gateway: gateway)
        }
        if session.closing != nil { connection.input.removeAll() }
        let held = connection.input.count + reader.bufferedBytes
        if held == 0 {
            unfinishedSince = nil
        } else if unfinishedSince == nil {
            unfinishedSince = MonotonicClock.nanoseconds()
        }
        if held > 0, gateway.pendingInputBytes - connection.chargedInputBytes + held > gateway.config.limits.maxPendingInputBytesTotal {
            connection.input.removeAll()
            hub.close(session, code: .tryAgainLater, reason: "the gateway holds too much unfinished input", immediately: true)
        }
    }

    var heldInputBytes: Int { reader.bufferedBytes }

    /// A message the client did not finish within `limits.bodyTimeoutSeconds` is dropped
    /// and the session closes with 1008.
    func expire(now: UInt64, on connection: Connection, in gateway: Gateway) {
        let limit = UInt64(gateway.config.limits.bodyTimeoutSeconds) * 1_000_000_000
        guard let since = unfinishedSince, now &- since > limit else { return }
        connection.input.removeAll()
        reader = WebSocketMessageReader(maxMessageBytes: reader.maxMessageBytes)
        unfinishedSince = nil
        gateway.chargeInput(of: connection)
        let seconds = gateway.config.limits.bodyTimeoutSeconds
        gateway.hub.close(session, code: .policyViolation, reason: "message not finished within \(seconds) s", immediately: true)
    }

    private func handle(_ message: WebSocketMessageReader.Message, on connection: Connection, gateway: Gateway) {
        switch message {
        case .text(let text):
            if let wait = take(.webSocketMessages) {
                return refuse(.webSocketMessages, wait: wait, id: ClientMessage.subscriptionID(in: text), gateway)
            }
            handleOp(text, on: connection, gateway: gateway)
        case .binary:
            reply(
                WireFormat.webSocketError(HeraldError(.invalidMessage, "binary frames are not supported; send JSON text"), id: nil), gateway
            )
        case .ping(let payload):
            // Only the newest ping is answered (RFC 6455 §5.5.3), so a ping flood costs nothing.
            pendingPong = payload
            gateway.wakeStream(of: session)
        case .pong:
            break
        case .close(let code, _):
            gateway.hub.close(session, code: code.map(WebSocketCloseCode.init(rawValue:)) ?? .normal, reason: "", immediately: true)
        }
    }

    /// Takes a `since` subscription out of `limits.resumesPerSecond`, unless it replays
    /// nothing or comes within a second of the connection's first resume.
    private func admitResume(from position: ResumePosition, _ gateway: Gateway) -> AdmissionRefusal? {
        let now = MonotonicClock.nanoseconds()
        if now < resumeBurstUntil { return nil }
        if let refusal = gateway.admitResume(from: position) { return refusal }
        if resumeBurstUntil == 0 { resumeBurstUntil = now + Self.resumeBurstNanoseconds }
        return nil
    }

    /// Takes one message or op out of `limit`'s bucket; nil when admitted, else the wait.
    private func take(_ limit: Admission.Limit) -> UInt64? {
        let now = MonotonicClock.nanoseconds()
        switch limit {
        case .webSocketSubscribes: return subscribes.take(now: now)
        case .webSocketPublishes: return publishes.take(now: now)
        default: return messages.take(now: now)
        }
    }

    /// Answers a message past a rate with `rate_limited` and the wait, and closes (1008) a
    /// client that keeps sending regardless.
    private func refuse(_ limit: Admission.Limit, wait: UInt64, id: String?, _ gateway: Gateway) {
        refusedInARow += 1
        if refusedInARow > Self.maxRefusedInARow {
            gateway.hub.close(session, code: .policyViolation, reason: "rate limited: messages kept coming", immediately: false)
            return
        }
        reply(WireFormat.webSocketError(gateway.rateLimited(limit, wait: wait, what: limit.unit), id: id), gateway)
    }

    private func reply(_ bytes: [UInt8], _ gateway: Gateway) {
        gateway.hub.send(session, control: bytes)
    }

    private func handleOp(_ text: [UInt8], on connection: Connection, gateway: Gateway) {
        let hub = gateway.hub
        let message: ClientMessage
        do throws(HeraldError) {
            message = try ClientMessage(decoding: text, limits: gateway.config.limits.ingest.json)
        } catch {
            reply(WireFormat.webSocketError(error, id: ClientMessage.subscriptionID(in: text)), gateway)
            return
        }
        if let limit = message.rateLimit, let wait = take(limit) {
            return refuse(limit, wait: wait, id: message.subscriptionID, gateway)
        }
        refusedInARow = 0
        switch message {
        case .subscribe(let id, let filter, let route, let since):
            do throws(HeraldError) {
                let pattern = try filter.map { value throws(HeraldError) in try Pattern(value, limits: gateway.config.limits.pattern) }
                let subscribed = try hub.subscribe(session, id: id, route: route, filter: pattern)
                if let since, let refusal = admitResume(from: since, gateway) {
                    // A reconnect storm: come back later (herald.js waits this out), resuming.
                    hub.close(session, code: .tryAgainLater, reason: refusal.closeReason, immediately: false)
                    return
                }
                reply(WireFormat.subscribed(id: id, position: subscribed.position, epoch: hub.epoch), gateway)
                if let since { hub.resume(session, from: since, slots: SubscriptionSet(slot: subscribed.slot)) }
            } catch {
                reply(WireFormat.webSocketError(error, id: id), gateway)
            }
        case .unsubscribe(let id):
            if hub.unsubscribe(session, id: id) {
                reply(WireFormat.unsubscribed(id: id), gateway)
            } else {
                reply(
                    WireFormat.webSocketError(HeraldError(.unknownSubscription, "no subscription \"\(id)\" on this connection"), id: id),
                    gateway)
            }
        case .publish(let event):
            publish(event, gateway: gateway)
        case .ping:
            reply(WireFormat.pong, gateway)
        case .auth(let token):
            let credentials: Credentials
            do throws(HeraldError) {
                credentials = try gateway.authenticate(token)
            } catch {
                reply(WireFormat.webSocketError(error, id: nil), gateway)
                hub.close(session, code: .policyViolation, reason: "invalid token", immediately: false)
                return
            }
            if credentials.subject != connection.countedSubject {
                // The stream now counts for the new subject (`limits.maxConnectionsPerSubject`).
                gateway.releaseStream(on: connection)
                if let refusal = gateway.admitStream(of: credentials, on: connection) {
                    hub.close(session, code: .tryAgainLater, reason: refusal.closeReason, immediately: false)
                    return
                }
            }
            hub.authenticate(session, as: credentials)
            reader.maxMessageBytes = gateway.messageLimit(for: session.credentials)
            reply(
                WireFormat.authenticated(
                    publisher: session.credentials.publisherName, subject: session.credentials.subject,
                    expiresAt: session.credentials.expiresAt), gateway)
        case .presenceJoin(let group, let info):
            do throws(HeraldError) {
                let seq = try hub.join(session, group: group, info: info)
                reply(WireFormat.presenceReply("presence.joined", group: group, seq: seq), gateway)
            } catch {
                reply(WireFormat.webSocketError(error, id: nil), gateway)
            }
        case .presenceLeave(let group):
            if let seq = hub.leave(session, group: group) {
                reply(WireFormat.presenceReply("presence.left", group: group, seq: seq), gateway)
            } else {
                let error = HeraldError(.notAMember, "this connection is not in presence group \"\(group)\"", path: "$.group")
                reply(WireFormat.webSocketError(error, id: nil), gateway)
            }
        }
    }

    /// Publishes an event exactly as the client sent it (compacted), validated and
    /// authorized like an ingest body.
    private func publish(_ event: RawJSON, gateway: Gateway) {
        event.bytes.withUnsafeBytes { bytes in
            do throws(HeraldError) {
                let events = try IngestParser.parse(bytes, format: .json, limits: gateway.config.limits.ingest, tape: &gateway.ingestTape)
                if let refusal = session.credentials.publishRefusal(events, tape: gateway.ingestTape, body: bytes) {
                    gateway.logRefusedPublish(refusal, by: session.credentials, peer: peer)
                    throw refusal
                }
                if let refusal = gateway.storageRefusal() { throw refusal }
                if let limited = gateway.admitIngest(events.count, from: session.credentials, peer: peer) {
                    gateway.logRefusedPublish(limited, by: session.credentials, peer: peer)
                    throw limited
                }
                if gateway.hub.isClustered {
                    gateway.hub.submit(events, answer: .published(to: session))  // answered when the stream has them
                    return
                }
                for accepted in gateway.hub.publish(events, tape: gateway.ingestTape, body: bytes) {
                    // Acknowledged once stored (at once without a durable log).
                    let bytes = WireFormat.published(id: accepted.id, seq: accepted.seq, epoch: gateway.hub.epoch)
                    gateway.hub.send(session, control: bytes, after: accepted.seq)
                }
            } catch {
                var located = error
                if located.path == nil, located.offset != nil { located.path = "$.event" }
                reply(WireFormat.webSocketError(located, id: nil), gateway)
            }
        }
    }

    // MARK: - Output

    func beginWrite(into buffer: WriteBuffer) {
        guard let pong = pendingPong else { return }
        buffer.appendWebSocketFrame(opcode: WebSocketFrame.pong, payload: pong)
        pendingPong = nil
    }

    func encode(_ write: SessionWrite, into buffer: WriteBuffer, gateway: Gateway, now: UInt64, previousWriteAt: UInt64) {
        switch write {
        case .keepalive:
            // A 2-byte payload: some clients report only non-empty pongs.
            buffer.appendWebSocketFrame(opcode: WebSocketFrame.ping, payload: Self.pingPayload)
        case .entry(.event(let event, let subscriptions, let replayed)):
            gateway.hub.recordDelivery(
                event, subscriptions: subscriptions, to: session, replayed: replayed,
                clientBehind: previousWriteAt > event.acceptedAt, now: now)
            let head: StaticString = #"{"type":"event","subs":["#
            var idsLength = 0
            subscriptions.forEach { slot in idsLength += (session.descriptions[slot]?.encodedID.count ?? 0) + 1 }
            let length = head.utf8CodeUnitCount + max(idsLength - 1, 0) + 2 + event.webSocketTail.count
            buffer.appendWebSocketHeader(opcode: WebSocketFrame.text, length: length)
            buffer.append(head)
            var first = true
            subscriptions.forEach { slot in
                guard let subscription = session.descriptions[slot] else { return }
                if !first { buffer.append(byte: UInt8(ascii: ",")) }
                first = false
                buffer.append(subscription.encodedID)
            }
            buffer.append("],")
            buffer.append(event.webSocketTail)
        case .entry(.control(let bytes)):
            buffer.appendWebSocketFrame(opcode: WebSocketFrame.text, payload: bytes)
        case .entry(.gap(let from, let to, let subscriptions, let reason)):
            var ids: [[UInt8]] = []
            subscriptions.forEach { slot in if let s = session.descriptions[slot] { ids.append(s.encodedID) } }
            buffer.appendWebSocketFrame(
                opcode: WebSocketFrame.text,
                payload: WireFormat.webSocketGap(subscriptionIDs: ids, from: from, to: to, reason: reason, epoch: gateway.hub.epoch))
        case .close(let closing):
            if let notice = closing.notice {
                buffer.appendWebSocketFrame(opcode: WebSocketFrame.text, payload: WireFormat.webSocketError(notice, id: nil))
            }
            let code = closing.code.rawValue
            buffer.appendWebSocketFrame(
                opcode: WebSocketFrame.close, payload: [UInt8(code >> 8), UInt8(code & 0xFF)] + closing.reason.utf8.prefix(120))
        case .idle:
            break
        }
    }

    private static let pingPayload = Array("hb".utf8)
}

/// The WebSocket upgrade (any path; only `/v1/ws` is served): a refusal is an HTTP/1.1
/// JSON error and the connection closes.
struct WebSocketUpgrade: Endpoint {
    func plan(_ request: Request, connection: Connection, gateway: Gateway) -> RequestPlan {
        guard request.head.path == "/v1/ws" else {
            return .close(gateway.errorResponse(HeraldError(.notFound, "WebSockets are served at /v1/ws, not \(request.head.path)")))
        }
        let agreement: WebSocketHandshake.Agreement
        let credentials: Credentials
        let route: String?
        do throws(HeraldError) {
            agreement = try WebSocketHandshake.validate(request.head, subprotocol: "herald.v1")
            credentials = try gateway.authenticate(gateway.requestToken(request))
            route = try request.head.queryArgument("route")
            if let route, gateway.config.route(named: route) == nil {
                throw HeraldError(.unknownRoute, "no route named \"\(route)\"")
            }
        } catch {
            let fields: [(name: String, value: String)] = error.code == .upgradeRequired ? [("sec-websocket-version", "13")] : []
            return .close(gateway.errorResponse(error, fields: fields))
        }
        let session = gateway.hub.openSession(transport: .webSocket, remote: connection.peer, credentials: credentials, route: route)
        gateway.logger.debug("websocket opened", metadata: ["client": "\(session.id)", "peer": "\(connection.peer)"])
        let transport = WebSocketTransport(
            session: session, maxMessageBytes: gateway.messageLimit(for: credentials), peer: connection.peer,
            limits: gateway.config.limits)
        if let refusal = connection.admissionRefusal ?? gateway.admitStream(of: credentials, on: connection) {
            // Upgraded only to say so: close 1013 (try again later) with the wait, jittered.
            gateway.hub.close(session, code: .tryAgainLater, reason: refusal.closeReason, immediately: false)
        }
        return .stream(transport, head: WebSocketHandshake.response(agreement))
    }
}

extension Gateway {
    /// The largest message a WebSocket client may send: small until it proved who it is.
    func messageLimit(for credentials: Credentials) -> Int {
        if case .anonymous = credentials { return min(config.limits.maxUnauthenticatedBodyBytes, config.limits.maxBodyBytes) }
        return config.limits.maxBodyBytes
    }

    /// Asks for a WRITEABLE callback on the connection of `session` (what the transport
    /// owes the client outside the session's queue, such as a pong).
    func wakeStream(of session: Session) {
        if session.index < streams.count, let connection = streams[session.index] { connection.socket.requestWritable() }
    }
}

extension ClientMessage {
    /// The rate of its own, besides `limits.webSocketMessagesPerSecond`, an op is under.
    fileprivate var rateLimit: Admission.Limit? {
        switch self {
        case .subscribe: .webSocketSubscribes
        case .publish: .webSocketPublishes
        default: nil
        }
    }

    /// The subscription an op names, for its error frame.
    fileprivate var subscriptionID: String? {
        switch self {
        case .subscribe(let id, _, _, _), .unsubscribe(let id): id
        default: nil
        }
    }
}
