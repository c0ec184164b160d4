import HeraldCore
import Logging

/// `GET /v1/sse`: Server-Sent Events streams (DESIGN §4).
extension Gateway {
    /// Validates the subscription and registers the stream; its response head is the
    /// first thing the connection sends, before any event.
    func planSSE(_ request: Request, on connection: Connection) -> RequestPlan {
        let credentials: Credentials
        do throws(HeraldError) {
            credentials = try authenticate(requestToken(request))
        } catch {
            return .respond(errorResponse(error))
        }
        var patterns: [Pattern]
        var presence: (group: String, info: RawJSON)?
        var resumeFrom: UInt64?
        let route: String?
        do throws(HeraldError) {
            route = try request.head.queryArgument("route")
            patterns = try subscriptionPatterns(filterText: request.head.queryArgument("filter"), route: route)
            if let group = try request.head.queryArgument("presence") {
                var info = RawJSON.emptyObject
                if let text = try request.head.queryArgument("presenceInfo") {
                    info = try RawJSON(parsing: Array(text.utf8), limits: config.limits.ingest.json)
                }
                try ClientMessage.validatePresenceInfo(info, path: "presenceInfo")
                presence = (try ClientMessage.presenceGroup(.string(group)), info)
            }
            var lastEventID = request.head.field("last-event-id")
            if lastEventID == nil { lastEventID = try request.head.queryArgument("lastEventId") }
            if let text = lastEventID {
                guard let seq = UInt64(text.trimmingSpaces()) else {
                    throw HeraldError(.invalidMessage, "Last-Event-ID must be a sequence number, got \"\(text.prefix(64))\"")
                }
                resumeFrom = seq
            }
        } catch {
            return .respond(errorResponse(error))
        }

        let client = SSEClient(id: nextClientID, connection: connection, queue: queue(forRoute: route, transport: .sse), credentials: credentials)
        nextClientID += 1
        // The filter, when given, is the last pattern (after the route's).
        let filter = patterns.count > (route == nil ? 0 : 1) ? patterns.last?.value : nil
        if let scope = credentials.scope { patterns.append(scope) }
        client.setSubscription(0, patterns: patterns, description: describe(id: "sse", route: route, filter: filter))
        subscribers[client.id] = client
        index.add(owner: client.id, slot: 0, patterns: patterns)
        if let resumeFrom { beginCatchUp(client, since: resumeFrom, slots: SubscriptionSet(slot: 0)) }
        if let presence {
            do throws(HeraldError) {
                try join(client, credentials: credentials, group: presence.group, info: presence.info)
            } catch {
                forget(client)
                return .respond(errorResponse(error))
            }
        }
        logger.debug("sse stream opened", metadata: ["client": "\(client.id)", "peer": "\(connection.peer)"])
        var head: [UInt8] = []
        HTTPServerResponse.encodeHead(
            status: 200, contentType: "text/event-stream", contentLength: nil, fields: apiHeaders + [("x-accel-buffering", "no")],
            keepAlive: true, into: &head)
        return .eventStream(client, head: head)
    }

    /// Appends as many queued blocks as fit in one write to the connection's output; an
    /// ending stream closes once what is already in the output has gone.
    func fillSSE(_ client: SSEClient, on connection: Connection) {
        if client.ending {
            connection.closeAfterOutput = true
            return
        }
        let buffer = connection.output
        let now = MonotonicClock.nanoseconds()
        while buffer.count < writeBudget, let next = takeNext(from: client) {
            switch next {
            case .event(let event, let subscriptions, let replayed):
                countDelivery(event, subscriptions: subscriptions, to: client, replayed: replayed, now: now)
                buffer.append(UnsafeRawBufferPointer(event.sseFrame))
            case .control(let bytes):
                buffer.append(bytes)
            case .gap(let from, let to, _, let reason):
                buffer.append(WireFormat.sseGap(from: from, to: to, reason: reason.rawValue))
            }
        }
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
