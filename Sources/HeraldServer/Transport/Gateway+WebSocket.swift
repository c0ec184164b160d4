import CLibWebSockets
import HeraldCore
import Logging

/// `GET /v1/ws`: WebSocket sessions, subprotocol `herald.v1` (DESIGN §4).
extension Gateway {
    /// Decides whether an upgrade may proceed; a refusal is answered with an HTTP error.
    /// Returns >0 when refused with a response, 0 to proceed.
    func confirmUpgrade(_ wsi: OpaquePointer) -> Int32 {
        let path = LWS.header(wsi, WSI_TOKEN_GET_URI) ?? ""
        guard path == "/v1/ws" else {
            return refuseUpgrade(wsi, HeraldError(.notFound, "WebSockets are served at /v1/ws, not \(path)"), status: 404)
        }
        if draining {
            return refuseUpgrade(wsi, HeraldError(.shuttingDown, "the gateway is shutting down"), status: 503)
        }
        let credentials: Credentials
        do throws(HeraldError) {
            credentials = try authenticate(requestToken(wsi))
        } catch {
            return refuseUpgrade(wsi, error, status: 401)
        }
        let route = LWS.queryArgument(wsi, "route")
        if let route, config.route(named: route) == nil {
            return refuseUpgrade(wsi, HeraldError(.unknownRoute, "no route named \"\(route)\""), status: 400)
        }
        pendingUpgrades[wsi] = PendingUpgrade(credentials: credentials, route: route)
        return 0
    }

    /// Answers a refused upgrade. This is the one place Herald writes outside a WRITEABLE
    /// callback: lws requires the refusal to be written before the callback returns.
    private func refuseUpgrade(_ wsi: OpaquePointer, _ error: HeraldError, status: Int) -> Int32 {
        let body = WireFormat.httpError(error)
        var headers = apiHeaders + [("connection", "close")]
        if status == 401 { headers.append(("www-authenticate", "Bearer")) }
        guard LWS.writeHead(wsi, status: status, contentType: "application/json", contentLength: body.count, headers: headers) else { return -1 }
        let buffer = WriteBuffer(capacity: body.count)
        buffer.append(body)
        guard LWS.write(wsi, buffer.start, buffer.count, LWS_WRITE_HTTP_FINAL) else { return -1 }
        return 1
    }

    func webSocketEstablished(_ wsi: OpaquePointer) -> Int32 {
        let upgrade = pendingUpgrades.removeValue(forKey: wsi) ?? PendingUpgrade(credentials: .anonymous, route: nil)
        let client = WebSocketClient(
            id: nextClientID, wsi: wsi, queue: queue(forRoute: upgrade.route),
            maxSubscriptions: config.limits.maxSubscriptionsPerConnection, credentials: upgrade.credentials)
        nextClientID += 1
        connections[wsi] = .webSocket(client)
        subscribers[client.id] = client
        lws_set_timer_usecs(wsi, lws_usec_t(config.delivery.pingSeconds) * 1_000_000)
        logger.debug("websocket opened", metadata: ["client": "\(client.id)", "peer": "\(LWS.peerAddress(wsi))"])
        return 0
    }

    /// Collects a message from its fragments and handles it when complete.
    func webSocketReceive(_ wsi: OpaquePointer, _ chunk: UnsafeRawBufferPointer) -> Int32 {
        guard case .webSocket(let client)? = connections[wsi] else { return -1 }
        client.lastHeard = MonotonicClock.nanoseconds()
        if lws_is_first_fragment(wsi) != 0 {
            client.incoming.removeAll(keepingCapacity: true)
            client.incomingTooLarge = false
        }
        if client.incoming.count + chunk.count > config.limits.maxBodyBytes {
            client.incomingTooLarge = true
            client.incoming.removeAll()
        } else if !client.incomingTooLarge {
            client.incoming.append(contentsOf: chunk)
        }
        guard lws_is_final_fragment(wsi) != 0, lws_remaining_packet_payload(wsi) == 0 else { return 0 }
        if client.incomingTooLarge {
            close(client, code: 1009, reason: "message larger than \(config.limits.maxBodyBytes) bytes", immediately: false)
            return 0
        }
        if lws_frame_is_binary(wsi) != 0 {
            send(client, WireFormat.webSocketError(HeraldError(.invalidMessage, "binary frames are not supported; send JSON text"), id: nil))
            return 0
        }
        let message = client.incoming
        client.incoming.removeAll(keepingCapacity: true)
        handleMessage(message, from: client)
        return 0
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
            client.patterns[slot] = nil
            client.descriptions[slot] = nil
            client.catchUp?.replaying.remove(slot)
            index.remove(owner: client.id, slot: slot)
            let before = client.queue.byteCount
            client.queue.removeSubscription(slot)
            queuedBytesTotal -= before - client.queue.byteCount
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
                close(client, code: 1008, reason: "invalid token", immediately: false)
                return
            }
            send(client, WireFormat.authenticated(publisher: client.credentials.publisherName, subject: client.credentials.subject))
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
        guard let slot = client.descriptions.firstIndex(where: { $0 == nil }) else {
            send(client, WireFormat.webSocketError(HeraldError(.tooManySubscriptions, "a connection may hold at most \(client.descriptions.count) subscriptions"), id: id))
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
        client.patterns[slot] = patterns
        client.descriptions[slot] = describe(id: id, route: route, filter: filter)
        index.add(owner: client.id, slot: slot, patterns: patterns)
        send(client, WireFormat.subscribed(id: id, position: lastSeq))
        if let since { beginCatchUp(client, since: since, slots: SubscriptionSet(slot: slot)) }
    }

    private func publishFromWebSocket(_ client: WebSocketClient, event: JSONValue) {
        var body: [UInt8] = []
        JSONWriter.write(event, into: &body)
        body.withUnsafeBytes { bytes in
            do throws(HeraldError) {
                guard case .object = event else { throw HeraldError(.notAnObject, "\"event\" must be a JSON object, not \(event.kindName)", path: "$.event") }
                let events = try IngestParser.parse(bytes, format: .json, limits: config.limits.ingest, tape: &ingestTape)
                if let refusal = publishRefusal(events, credentials: client.credentials, tape: ingestTape, body: bytes) { throw refusal }
                for accepted in publish(events, tape: ingestTape, body: bytes) {
                    send(client, WireFormat.published(id: accepted.id, seq: accepted.seq))
                }
            } catch {
                send(client, WireFormat.webSocketError(error, id: nil))
            }
        }
    }

    /// Queues a control message for the client.
    func send(_ client: WebSocketClient, _ message: [UInt8]) {
        sendControl(message, to: client)
    }

    /// Closes the session with `code`: at the next WRITEABLE, or once the messages queued
    /// so far are written. No new events are queued for it meanwhile.
    func close(_ client: WebSocketClient, code: UInt16, reason: String, immediately: Bool) {
        if client.closing == nil || immediately { client.closing = (code, reason, immediately) }
        index.removeAll(owner: client.id)
        client.catchUp = nil
        LWS.requestWritable(client.wsi)
    }

    /// Writes as many queued messages as fit in `writeBudget` with one `lws_write`.
    ///
    /// Each message is framed here (server frames are unmasked and Herald negotiates no
    /// extension) and the frames go out as one raw write, so a busy client costs one
    /// WRITEABLE callback and one syscall per batch rather than per message.
    func webSocketWriteable(_ wsi: OpaquePointer) -> Int32 {
        guard case .webSocket(let client)? = connections[wsi] else { return 0 }
        // A refusal closes after the error frames queued before it; shutdown closes at once.
        if let closing = client.closing, closing.immediately || client.queue.isEmpty || draining {
            LWS.setCloseReason(wsi, code: closing.code, reason: closing.reason)
            return -1
        }
        let buffer = client.scratch
        buffer.reset()
        if client.pingDue {
            // FIN + ping with a 2-byte payload: lws reports only non-empty pongs to us.
            for byte: UInt8 in [0x89, 0x02, UInt8(ascii: "h"), UInt8(ascii: "b")] { buffer.append(byte: byte) }
            client.pingDue = false
        }
        let now = MonotonicClock.nanoseconds()
        while buffer.count < writeBudget, let next = takeNext(from: client) {
            switch next {
            case .event(let event, let subscriptions):
                countDelivery(event, subscriptions: subscriptions, to: client, webSocket: true, now: now)
                let head: StaticString = #"{"type":"event","subs":["#
                var idsLength = 0
                subscriptions.forEach { slot in idsLength += (client.descriptions[slot]?.encodedID.count ?? 0) + 1 }
                let length = head.utf8CodeUnitCount + max(idsLength - 1, 0) + 2 + event.webSocketTail.count
                buffer.appendWebSocketTextHeader(length: length)
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
                buffer.appendWebSocketTextHeader(length: bytes.count)
                buffer.append(bytes)
            case .gap(let from, let to, let subscriptions, let reason):
                var ids: [[UInt8]] = []
                subscriptions.forEach { slot in if let s = client.descriptions[slot] { ids.append(s.encodedID) } }
                let message = WireFormat.webSocketGap(subscriptionIDs: ids, from: from, to: to, reason: reason.rawValue)
                buffer.appendWebSocketTextHeader(length: message.count)
                buffer.append(message)
            }
        }
        if buffer.count > 0 {
            guard LWS.write(wsi, buffer.start, buffer.count, LWS_WRITE_HTTP) else { return -1 }
        }
        if client.catchUp != nil { pump(client) }
        if !client.queue.isEmpty || client.closing != nil { LWS.requestWritable(wsi) }
        return 0
    }
}

/// Most bytes one WRITEABLE callback hands to lws.
let writeBudget = 64 * 1024
