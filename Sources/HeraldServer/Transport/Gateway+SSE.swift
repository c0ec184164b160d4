import CLibWebSockets
import HeraldCore
import Logging

/// `GET /v1/sse`: Server-Sent Events streams (DESIGN §4).
extension Gateway {
    /// Validates the subscription and registers the stream; the head goes out at the first
    /// WRITEABLE, before any event.
    func beginSSE(_ wsi: OpaquePointer) -> Int32 {
        let credentials: Credentials
        do throws(HeraldError) {
            credentials = try authenticate(requestToken(wsi))
        } catch {
            return respond(wsi, error: error, status: 401, extraHeaders: [("www-authenticate", "Bearer")])
        }
        var patterns: [Pattern]
        var presence: (group: String, info: JSONValue)?
        do throws(HeraldError) {
            patterns = try subscriptionPatterns(
                filterText: LWS.queryArgument(wsi, "filter"),
                route: LWS.queryArgument(wsi, "route"))
            if let group = LWS.queryArgument(wsi, "presence") {
                let info = try LWS.queryArgument(wsi, "presenceInfo").map { text throws(HeraldError) in
                    try JSONValue(parsing: text, limits: config.limits.ingest.json)
                } ?? .object([])
                try ClientMessage.validatePresenceInfo(info, path: "presenceInfo")
                presence = (try ClientMessage.presenceGroup(.string(group)), info)
            }
        } catch {
            return respond(wsi, error: error, status: 400)
        }
        var resumeFrom: UInt64?
        if let text = LWS.customHeader(wsi, "last-event-id:") ?? LWS.queryArgument(wsi, "lastEventId") {
            guard let seq = UInt64(text.trimmingSpaces()) else {
                return respond(wsi, error: HeraldError(.invalidMessage, "Last-Event-ID must be a sequence number, got \"\(text)\""), status: 400)
            }
            resumeFrom = seq
        }

        let route = LWS.queryArgument(wsi, "route")
        let client = SSEClient(id: nextClientID, wsi: wsi, queue: queue(forRoute: route), credentials: credentials)
        nextClientID += 1
        // The filter, when given, is the last pattern (after the route's).
        let filter = patterns.count > (route == nil ? 0 : 1) ? patterns.last?.value : nil
        if let scope = credentials.scope { patterns.append(scope) }
        client.patterns[0] = patterns
        client.descriptions[0] = describe(id: "sse", route: route, filter: filter)
        connections[wsi] = .sse(client)
        subscribers[client.id] = client
        index.add(owner: client.id, slot: 0, patterns: patterns)
        if let resumeFrom { beginCatchUp(client, since: resumeFrom, slots: SubscriptionSet(slot: 0)) }
        if let presence {
            do throws(HeraldError) {
                _ = try join(client, credentials: credentials, group: presence.group, info: presence.info, transport: "sse")
            } catch {
                connections[wsi] = nil
                forget(client)
                return respond(wsi, error: error, status: error.code == .forbidden ? 403 : 400)
            }
        }
        logger.debug("sse stream opened", metadata: ["client": "\(client.id)", "peer": "\(LWS.peerAddress(wsi))"])
        LWS.requestWritable(wsi)
        return 0
    }

    /// Writes the head, then as many queued blocks as fit in one write per callback.
    func sseWriteable(_ wsi: OpaquePointer, _ client: SSEClient) -> Int32 {
        if client.ending { return -1 }
        if !client.headSent {
            let headers = apiHeaders + [("x-accel-buffering", "no")]
            guard LWS.writeHead(wsi, status: 200, contentType: "text/event-stream", contentLength: nil, headers: headers) else { return -1 }
            client.headSent = true
            lws_http_mark_sse(wsi)
            if !client.queue.isEmpty { LWS.requestWritable(wsi) }
            return 0
        }
        // As many queued blocks as fit in the budget go out in one write.
        let buffer = client.scratch
        buffer.reset()
        let now = MonotonicClock.nanoseconds()
        while buffer.count < writeBudget, let next = takeNext(from: client) {
            switch next {
            case .event(let event, let subscriptions):
                countDelivery(event, subscriptions: subscriptions, to: client, webSocket: false, now: now)
                buffer.append(UnsafeRawBufferPointer(event.sseFrame))
            case .control(let bytes):
                buffer.append(bytes)
            case .gap(let from, let to, _, let reason):
                buffer.append(WireFormat.sseGap(from: from, to: to, reason: reason.rawValue))
            }
        }
        if buffer.count > 0 {
            guard LWS.write(wsi, buffer.start, buffer.count, LWS_WRITE_HTTP) else { return -1 }
        }
        if client.catchUp != nil { pump(client) }
        if !client.queue.isEmpty { LWS.requestWritable(wsi) }
        return 0
    }

    // MARK: - Shared by both transports

    /// The patterns a subscription must all match: its route's and its own filter.
    func subscriptionPatterns(filterText: String?, route: String?) throws(HeraldError) -> [Pattern] {
        var patterns: [Pattern] = []
        if let route {
            guard let named = config.route(named: route) else {
                let known = config.routes.map(\.name).joined(separator: ", ")
                throw HeraldError(.unknownRoute, "no route named \"\(route)\"" + (known.isEmpty ? "" : " (routes: \(known))"))
            }
            patterns.append(named.pattern)
        }
        if let filterText {
            patterns.append(try Pattern(parsing: Array(filterText.utf8), limits: config.limits.pattern))
        }
        guard route != nil || filterText != nil else {
            throw HeraldError(.invalidPattern, "a subscription needs a filter or a route (filter={} receives every event)")
        }
        return patterns
    }
}
