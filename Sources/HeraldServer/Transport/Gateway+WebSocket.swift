import HeraldCore
import Logging

/// `GET /v1/ws`: WebSocket sessions, subprotocol `herald.v1` (DESIGN §4).
extension Gateway {
    /// Checks an upgrade request; a refusal is an HTTP error and the connection closes.
    func planWebSocket(_ request: Request, on connection: Connection) -> RequestPlan {
        guard request.head.path == "/v1/ws" else {
            return .close(errorResponse(HeraldError(.notFound, "WebSockets are served at /v1/ws, not \(request.head.path)")))
        }
        let agreement: WebSocketHandshake.Agreement
        let credentials: Credentials
        let route: String?
        do throws(HeraldError) {
            agreement = try WebSocketHandshake.validate(request.head, subprotocol: "herald.v1")
            credentials = try authenticate(requestToken(request))
            route = try request.head.queryArgument("route")
            if let route, config.route(named: route) == nil {
                throw HeraldError(.unknownRoute, "no route named \"\(route)\"")
            }
        } catch {
            let fields: [(name: String, value: String)] = error.code == .upgradeRequired ? [("sec-websocket-version", "13")] : []
            return .close(errorResponse(error, fields: fields))
        }
        let client = WebSocketClient(
            id: nextClientID, connection: connection, queue: queue(forRoute: route, transport: .webSocket),
            maxSubscriptions: config.limits.maxSubscriptionsPerConnection,
            maxMessageBytes: messageLimit(for: credentials), credentials: credentials)
        nextClientID += 1
        subscribers[client.id] = client
        connection.socket.setTimer(microseconds: UInt64(config.delivery.pingSeconds) * 1_000_000)
        logger.debug("websocket opened", metadata: ["client": "\(client.id)", "peer": "\(connection.peer)"])
        return .webSocket(client, head: WebSocketHandshake.response(agreement))
    }

    /// The largest message a client may send: small until it proved who it is.
    func messageLimit(for credentials: Credentials) -> Int {
        if case .anonymous = credentials { return min(config.limits.maxUnauthenticatedBodyBytes, config.limits.maxBodyBytes) }
        return config.limits.maxBodyBytes
    }

    /// Reads whole messages from the connection's input and handles each in order. A
    /// protocol violation closes the session with the code that answers it.
    func readWebSocket(_ client: WebSocketClient, on connection: Connection) {
        while client.closing == nil, !connection.input.isEmpty {
            let next: (message: WebSocketMessageReader.Message?, consumed: Int)
            do throws(WebSocketProtocolError) {
                next = try connection.input.withUnread { (bytes) throws(WebSocketProtocolError) in try client.reader.next(bytes) }
            } catch {
                connection.input.removeAll()
                close(client, code: error.closeCode, reason: error.message, immediately: true)
                return
            }
            connection.input.consume(next.consumed)
            guard let message = next.message else { break }
            handle(message, from: client, on: connection)
        }
        if client.closing != nil { connection.input.removeAll() }
        if connection.input.count + client.reader.bufferedBytes > 0,
           pendingInputBytes - connection.chargedInputBytes + connection.input.count + client.reader.bufferedBytes > config.limits.maxPendingInputBytesTotal {
            connection.input.removeAll()
            close(client, code: .tryAgainLater, reason: "the gateway holds too much unfinished input", immediately: true)
        }
    }

    /// Handles one message from the client.
    private func handle(_ message: WebSocketMessageReader.Message, from client: WebSocketClient, on connection: Connection) {
        client.lastHeard = MonotonicClock.nanoseconds()
        switch message {
        case .text(let text):
            handleMessage(text, from: client)
        case .binary:
            send(client, WireFormat.webSocketError(HeraldError(.invalidMessage, "binary frames are not supported; send JSON text"), id: nil))
        case .ping(let payload):
            // Only the newest ping is answered (RFC 6455 §5.5.3), so a ping flood costs nothing.
            client.pendingPong = payload
            connection.socket.requestWritable()
        case .pong:
            break
        case .close(let code, _):
            close(client, code: code.map(WebSocketCloseCode.init(rawValue:)) ?? .normal, reason: "", immediately: true)
        }
    }

    private func handleMessage(_ text: [UInt8], from client: WebSocketClient) {
        let message: ClientMessage
        do throws(HeraldError) {
            message = try ClientMessage(decoding: text, limits: config.limits.ingest.json)
        } catch {
            send(client, WireFormat.webSocketError(error, id: ClientMessage.subscriptionID(in: text)))
            return
        }
        switch message {
        case .subscribe(let id, let filter, let route, let since):
            subscribe(client, id: id, filter: filter, route: route, since: since)
        case .unsubscribe(let id):
            guard let slot = client.slot(of: id) else {
                send(client, WireFormat.webSocketError(HeraldError(.unknownSubscription, "no subscription \"\(id)\" on this connection"), id: id))
                return
            }
            client.clearSubscription(slot)
            client.catchUp?.replaying.remove(slot)
            index.remove(owner: client.id, slot: slot)
            changeQueue(of: client) { $0.removeSubscription(slot) }
            send(client, WireFormat.unsubscribed(id: id))
        case .publish(let event):
            publishFromWebSocket(client, event: event)
        case .ping:
            send(client, WireFormat.pong)
        case .auth(let token):
            do throws(HeraldError) {
                client.credentials = try authenticate(token)
            } catch {
                send(client, WireFormat.webSocketError(error, id: nil))
                close(client, code: .policyViolation, reason: "invalid token", immediately: false)
                return
            }
            client.reader.maxMessageBytes = messageLimit(for: client.credentials)
            send(client, WireFormat.authenticated(
                publisher: client.credentials.publisherName, subject: client.credentials.subject, expiresAt: client.credentials.expiresAt))
        case .presenceJoin(let group, let info):
            joinPresence(client, group: group, info: info)
        case .presenceLeave(let group):
            leavePresence(client, group: group)
        }
    }

    private func subscribe(_ client: WebSocketClient, id: String, filter: JSONValue?, route: String?, since: UInt64?) {
        guard client.slot(of: id) == nil else {
            send(client, WireFormat.webSocketError(HeraldError(.duplicateSubscription, "subscription \"\(id)\" already exists on this connection"), id: id))
            return
        }
        guard let slot = client.freeSlot() else {
            send(client, WireFormat.webSocketError(HeraldError(.tooManySubscriptions, "a connection may hold at most \(client.maxSlots) subscriptions"), id: id))
            return
        }
        var patterns: [Pattern] = []
        do throws(HeraldError) {
            if let route { patterns = try subscriptionPatterns(filterText: nil, route: route) }
            if let filter { patterns.append(try Pattern(filter, limits: config.limits.pattern)) }
            if let scope = client.credentials.scope { patterns.append(scope) }
        } catch {
            send(client, WireFormat.webSocketError(error, id: id))
            return
        }
        client.setSubscription(slot, patterns: patterns, description: describe(id: id, route: route, filter: filter))
        index.add(owner: client.id, slot: slot, patterns: patterns)
        send(client, WireFormat.subscribed(id: id, position: lastSeq))
        if let since { beginCatchUp(client, since: since, slots: SubscriptionSet(slot: slot)) }
    }

    /// Publishes an event exactly as the client sent it (compacted), validated and
    /// authorized like an ingest body.
    private func publishFromWebSocket(_ client: WebSocketClient, event: RawJSON) {
        event.bytes.withUnsafeBytes { bytes in
            do throws(HeraldError) {
                let events = try IngestParser.parse(bytes, format: .json, limits: config.limits.ingest, tape: &ingestTape)
                if let refusal = publishRefusal(events, credentials: client.credentials, tape: ingestTape, body: bytes) { throw refusal }
                for accepted in publish(events, tape: ingestTape, body: bytes) {
                    send(client, WireFormat.published(id: accepted.id, seq: accepted.seq))
                }
            } catch {
                var located = error
                if located.path == nil, located.offset != nil { located.path = "$.event" }
                send(client, WireFormat.webSocketError(located, id: nil))
            }
        }
    }

    /// Queues a control message for the client.
    func send(_ client: WebSocketClient, _ message: [UInt8]) {
        sendControl(message, to: client)
    }

    /// Closes the session with `code`: at the next WRITEABLE, or once the messages queued
    /// so far are written. No new events are queued for it meanwhile.
    func close(_ client: WebSocketClient, code: WebSocketCloseCode, reason: String, immediately: Bool) {
        if client.closing == nil || immediately { client.closing = (code, reason, immediately) }
        index.removeAll(owner: client.id)
        client.catchUp = nil
        client.socket.requestWritable()
    }

    /// Appends control frames, then as many queued messages as fit in `writeBudget`, to
    /// the connection's output. Each message is framed here (server frames are unmasked
    /// and Herald negotiates no extension), so a busy client costs one callback and one
    /// syscall per batch rather than per message.
    func fillWebSocket(_ client: WebSocketClient, on connection: Connection) {
        let buffer = connection.output
        if let pong = client.pendingPong {
            buffer.appendWebSocketFrame(opcode: WebSocketFrame.pong, payload: pong)
            client.pendingPong = nil
        }
        // A refusal closes after the error frames queued before it; shutdown closes at once.
        if let closing = client.closing, closing.immediately || client.queue.isEmpty || draining {
            let code = closing.code.rawValue
            buffer.appendWebSocketFrame(opcode: WebSocketFrame.close, payload: [UInt8(code >> 8), UInt8(code & 0xFF)] + closing.reason.utf8.prefix(120))
            connection.closeAfterOutput = true
            return
        }
        if client.pingDue {
            // A 2-byte payload: some clients report only non-empty pongs.
            buffer.appendWebSocketFrame(opcode: WebSocketFrame.ping, payload: Array("hb".utf8))
            client.pingDue = false
        }
        let now = MonotonicClock.nanoseconds()
        while buffer.count < writeBudget, let next = takeNext(from: client) {
            switch next {
            case .event(let event, let subscriptions, let replayed):
                countDelivery(event, subscriptions: subscriptions, to: client, replayed: replayed, now: now)
                let head: StaticString = #"{"type":"event","subs":["#
                var idsLength = 0
                subscriptions.forEach { slot in idsLength += (client.descriptions[slot]?.encodedID.count ?? 0) + 1 }
                let length = head.utf8CodeUnitCount + max(idsLength - 1, 0) + 2 + event.webSocketTail.count
                buffer.appendWebSocketHeader(opcode: WebSocketFrame.text, length: length)
                buffer.append(head)
                var first = true
                subscriptions.forEach { slot in
                    guard let subscription = client.descriptions[slot] else { return }
                    if !first { buffer.append(byte: UInt8(ascii: ",")) }
                    first = false
                    buffer.append(subscription.encodedID)
                }
                buffer.append("],")
                buffer.append(event.webSocketTail)
            case .control(let bytes):
                buffer.appendWebSocketFrame(opcode: WebSocketFrame.text, payload: bytes)
            case .gap(let from, let to, let subscriptions, let reason):
                var ids: [[UInt8]] = []
                subscriptions.forEach { slot in if let s = client.descriptions[slot] { ids.append(s.encodedID) } }
                buffer.appendWebSocketFrame(
                    opcode: WebSocketFrame.text, payload: WireFormat.webSocketGap(subscriptionIDs: ids, from: from, to: to, reason: reason.rawValue))
            }
        }
    }

    /// A WebSocket's ping timer fired: close it when it has been silent too long, else ping.
    func timerFired(_ connection: Connection) {
        guard case .webSocket(let client) = connection.mode else { return }
        let silent = MonotonicClock.nanoseconds() - client.lastHeard
        if silent > UInt64(config.delivery.idleTimeoutSeconds) * 1_000_000_000 {
            logger.debug("websocket idle, closing", metadata: ["client": "\(client.id)"])
            close(client, code: .goingAway, reason: "idle timeout", immediately: true)
            return
        }
        client.pingDue = true
        connection.socket.requestWritable()
        connection.socket.setTimer(microseconds: UInt64(config.delivery.pingSeconds) * 1_000_000)
    }
}
