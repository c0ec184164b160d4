import HeraldCore
import Logging

/// `GET /metrics`: the Prometheus text exposition.
struct MetricsEndpoint: Endpoint {
    func plan(_ request: Request, connection: Connection, gateway: Gateway) -> RequestPlan {
        .respond(
            HTTPServerResponse(
                status: 200, contentType: "text/plain; version=0.0.4; charset=utf-8", fields: apiHeaders, body: gateway.prometheusText()))
    }
}

/// `GET /v1/stats`: the same figures as JSON, with rates, for the dashboard.
struct StatsEndpoint: Endpoint {
    func plan(_ request: Request, connection: Connection, gateway: Gateway) -> RequestPlan {
        .respond(gateway.json(200, gateway.statsJSON()))
    }
}

/// `GET /v1/clients` (admin): one row per client, busiest queues first.
struct ClientsEndpoint: Endpoint {
    func plan(_ request: Request, connection: Connection, gateway: Gateway) -> RequestPlan {
        if let failure = gateway.authorizeAdmin(request) { return .respond(gateway.errorResponse(failure)) }
        // Past the end is an empty page, however far past (digits beyond Int are clamped).
        func count(_ text: String) -> Int {
            guard !text.isEmpty, text.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return -1 }
            return Int(text) ?? Int.max
        }
        let limit = request.query("limit").map(count) ?? 100
        let offset = request.query("offset").map(count) ?? 0
        guard (1...10_000).contains(limit), offset >= 0 else {
            return .respond(gateway.errorResponse(HeraldError(.invalidMessage, "limit must be in 1...10000 and offset non-negative")))
        }
        return .respond(gateway.json(200, gateway.clientsJSON(limit: limit, offset: offset)))
    }
}

/// `DELETE /v1/clients/{id}` (admin): disconnects one client (WebSocket close 1008
/// "disconnected by an administrator", SSE stream ended).
struct DisconnectClientEndpoint: Endpoint {
    func plan(_ request: Request, connection: Connection, gateway: Gateway) -> RequestPlan {
        if let failure = gateway.authorizeAdmin(request) { return .respond(gateway.errorResponse(failure)) }
        let idText = String(request.head.path.dropFirst("/v1/clients/".count))
        guard let id = UInt64(idText), let session = gateway.hub.session(id: id) else {
            return .respond(gateway.errorResponse(HeraldError(.notFound, "no client \(idText)")))
        }
        gateway.hub.close(session, code: .policyViolation, reason: "disconnected by an administrator", immediately: true)
        gateway.logger.info("client disconnected by an administrator", metadata: ["client": "\(id)"])
        return .respond(HTTPServerResponse(status: 204, contentType: nil, fields: apiHeaders))
    }
}

/// The figures behind `/metrics`, `/v1/stats` and `/v1/clients` (DESIGN §9).
extension Gateway {
    // MARK: - /metrics

    /// The Prometheus text exposition of every figure.
    func prometheusText() -> [UInt8] {
        let now = MonotonicClock.nanoseconds()
        let metrics = hub.metrics
        var out = PrometheusText()
        out.family("herald_events_ingested_total", type: "counter", help: "Events offered on ingest, by result.")
        out.sample("herald_events_ingested_total", [("result", "accepted")], Double(metrics.accepted))
        out.sample("herald_events_ingested_total", [("result", "duplicate")], Double(metrics.duplicates))
        out.family(
            "herald_ingest_rejected_total", type: "counter", help: "Ingest requests refused, by error code (nothing of them was kept).")
        for code in Self.ingestErrorCodes {
            out.sample("herald_ingest_rejected_total", [("reason", code)], Double(metrics.rejected[code] ?? 0))
        }
        out.family("herald_ingest_bytes_total", type: "counter", help: "Bytes of ingest request bodies read.")
        out.sample("herald_ingest_bytes_total", [], Double(metrics.ingestBytes))
        out.perTransport(
            "herald_deliveries_total", type: "counter",
            help: "Live events written to client sockets, by transport (replays from history are herald_replayed_total).",
            metrics.delivered)
        out.family(
            "herald_dropped_total", type: "counter",
            help: "Events not delivered to a client, by reason; disconnect counts clients closed by the disconnect policy.")
        out.sample("herald_dropped_total", [("reason", "overflow")], Double(metrics.droppedOverflow))
        out.sample("herald_dropped_total", [("reason", "coalesced")], Double(metrics.droppedCoalesced))
        out.sample("herald_dropped_total", [("reason", "disconnect")], Double(metrics.disconnectedOverflow))
        out.family(
            "herald_gaps_expired_total", type: "counter",
            help: "Gap notices sent because a resuming client asked for events no longer in history.")
        out.sample("herald_gaps_expired_total", [], Double(metrics.expiredGaps))
        out.family(
            "herald_gaps_reset_total", type: "counter",
            help: "Gap notices sent because a resuming client's position belongs to another epoch (e.g. before a restart).")
        out.sample("herald_gaps_reset_total", [], Double(metrics.resetGaps))
        out.perTransport(
            "herald_replayed_total", type: "counter",
            help: "Events sent from history to resuming clients, by transport (not live deliveries: no latency sample).",
            metrics.replayed)

        let counts = sessionCounts()
        out.perTransport("herald_connections", type: "gauge", help: "Open streaming connections, by transport.", counts.sessions)
        out.perTransport("herald_subscriptions", type: "gauge", help: "Live subscriptions, by transport.", counts.subscriptions)
        out.family("herald_presence_groups", type: "gauge", help: "Presence groups with at least one member.")
        out.sample("herald_presence_groups", [], Double(hub.presence.groupCount))
        out.family("herald_presence_members", type: "gauge", help: "Presence memberships (one per connection and group).")
        out.sample("herald_presence_members", [], Double(hub.presence.memberCount))
        out.family("herald_queue_depth", type: "histogram", help: "Messages waiting in each client's queue, over clients, at scrape time.")
        out.histogram("herald_queue_depth", [], queueDepths())
        out.family("herald_queued_bytes", type: "gauge", help: "Bytes queued for all clients together.")
        out.sample("herald_queued_bytes", [], Double(hub.queuedBytesTotal))
        out.family(
            "herald_pending_input_bytes", type: "gauge",
            help:
                "Bytes of unfinished input held for all connections (partial requests and bodies, partial WebSocket messages); bounded by limits.maxPendingInputBytesTotal."
        )
        out.sample("herald_pending_input_bytes", [], Double(pendingInputBytes))
        out.family("herald_open_connections", type: "gauge", help: "Open TCP connections (HTTP requests, SSE streams and WebSockets).")
        out.sample("herald_open_connections", [], Double(connections.count))
        out.family(
            "herald_delivery_latency_seconds", type: "histogram",
            help: "From ingest acceptance to the socket write, per live delivery (replays are not sampled).")
        out.histogram("herald_delivery_latency_seconds", [], metrics.deliveryLatency)
        out.family("herald_match_seconds", type: "histogram", help: "Matching one event against every subscription.")
        out.histogram("herald_match_seconds", [], metrics.matchDuration)
        out.family("herald_history_events", type: "gauge", help: "Events retained in history for resume.")
        out.sample("herald_history_events", [], Double(hub.retained.events))
        out.family("herald_history_bytes", type: "gauge", help: "Bytes retained in history.")
        out.sample("herald_history_bytes", [], Double(hub.retained.bytes))
        out.family(
            "herald_storage_failures_total", type: "counter",
            help: "Times the durable log failed to store events (ingest answers 503 from then on).")
        out.sample("herald_storage_failures_total", [], Double(hub.metrics.storageFailures))
        out.family(
            "herald_storage_refused_total", type: "counter",
            help: "Ingest requests and WebSocket publishes refused, or accepted but not acknowledged, because the log could not store them."
        )
        out.sample("herald_storage_refused_total", [], Double(hub.metrics.storageRefusals))
        out.family("herald_storage_up", type: "gauge", help: "1 while the event log stores events (or there is none), 0 after it failed.")
        out.sample("herald_storage_up", [], hub.storageFailure == nil ? 1 : 0)

        out.family(
            "herald_route_matched_total", type: "counter",
            help: "Events that matched at least one subscription through the route (\"\": ad-hoc filters).")
        for route in metrics.routes { out.sample("herald_route_matched_total", [("route", route.name)], Double(route.matched)) }
        out.family("herald_route_delivered_total", type: "counter", help: "Events written to clients through the route.")
        for route in metrics.routes { out.sample("herald_route_delivered_total", [("route", route.name)], Double(route.delivered)) }
        out.family("herald_route_dropped_total", type: "counter", help: "Events dropped for clients subscribed through the route.")
        for route in metrics.routes { out.sample("herald_route_dropped_total", [("route", route.name)], Double(route.dropped)) }
        out.family(
            "herald_route_delivery_latency_seconds", type: "histogram", help: "Delivery latency of events written through the route.")
        for route in metrics.routes { out.histogram("herald_route_delivery_latency_seconds", [("route", route.name)], route.latency) }

        out.family("herald_uptime_seconds", type: "gauge", help: "Seconds since the gateway started.")
        out.sample("herald_uptime_seconds", [], Double(now - startedAt) / 1e9)
        out.family("herald_build_info", type: "gauge", help: "Build information (always 1).")
        out.sample("herald_build_info", [("version", HeraldVersion.current), ("lws", Socket.libraryVersion)], 1)
        return out.output
    }

    /// Every code an ingest request can be refused with (a bounded label set).
    static let ingestErrorCodes = [
        "invalid_json", "not_an_object", "empty_batch", "invalid_event", "invalid_cloudevent", "unauthorized",
        "method_not_allowed", "length_required", "body_too_large", "batch_too_large", "event_too_large",
        "unsupported_media_type", "shutting_down", "forbidden", "token_expired", "overloaded", "request_timeout",
    ]

    // MARK: - /v1/stats

    /// The same figures as JSON, with rates over 1 s / 10 s / 60 s, for the dashboard.
    func statsJSON() -> [UInt8] {
        let now = MonotonicClock.nanoseconds()
        let metrics = hub.metrics
        statsWindow.record(metrics, now: now)
        func perTransport(_ values: PerTransport<UInt64>) -> JSONValue {
            .object(TransportKind.allCases.map { .init($0.name, .number(Double(values[$0]))) })
        }
        let current = StatsWindow.snapshot(of: metrics, at: now)
        let counts = sessionCounts()
        let depths = hub.sessions.compactMap { $0?.queue.count }.sorted()
        func exact(_ q: Double) -> JSONValue {
            depths.isEmpty ? .number(0) : .number(Double(depths[min(depths.count - 1, Int(Double(depths.count) * q))]))
        }
        func number(_ value: Double?) -> JSONValue { value.map { .number(($0 * 1000).rounded() / 1000) } ?? .null }
        func millis(_ seconds: Double?) -> JSONValue { number(seconds.map { $0 * 1000 }) }
        var rates: [JSONValue.Member] = []
        for window in [1, 10, 60] {
            let r = statsWindow.rates(over: window, current: current)
            rates.append(
                .init(
                    "\(window)s",
                    .object([
                        .init("events_in", number(r.eventsIn)), .init("deliveries", number(r.deliveries)), .init("drops", number(r.drops)),
                        .init("latency_p50_ms", millis(r.latencyP50)), .init("latency_p99_ms", millis(r.latencyP99)),
                    ])))
        }
        var rejected: [JSONValue.Member] = []
        for (code, count) in metrics.rejected.sorted(by: { $0.key < $1.key }) { rejected.append(.init(code, .number(Double(count)))) }
        let stats: JSONValue = .object([
            .init("uptime_s", number(Double(now - startedAt) / 1e9)),
            .init(
                "events",
                .object([
                    .init("accepted", .number(Double(metrics.accepted))), .init("duplicate", .number(Double(metrics.duplicates))),
                    .init("rejected", .number(Double(metrics.rejectedTotal))), .init("rejected_by_reason", .object(rejected)),
                    .init("last_seq", .number(Double(hub.lastSeq))),
                    .init("epoch", .string(hub.epoch.text)),
                ])),
            .init("deliveries", perTransport(metrics.delivered)),
            .init("replayed", perTransport(metrics.replayed)),
            .init(
                "dropped",
                .object([
                    .init("overflow", .number(Double(metrics.droppedOverflow))),
                    .init("coalesced", .number(Double(metrics.droppedCoalesced))),
                    .init("disconnect", .number(Double(metrics.disconnectedOverflow))),
                ])),
            .init("connections", perTransport(counts.sessions)),
            .init("subscriptions", .number(Double(hub.subscriptionCount))),
            .init(
                "presence",
                .object([
                    .init("groups", .number(Double(hub.presence.groupCount))), .init("members", .number(Double(hub.presence.memberCount))),
                ])),
            .init(
                "history",
                .object([.init("events", .number(Double(hub.retained.events))), .init("bytes", .number(Double(hub.retained.bytes)))])),
            .init("queued_bytes", .number(Double(hub.queuedBytesTotal))),
            .init("pending_input_bytes", .number(Double(pendingInputBytes))),
            .init("open_connections", .number(Double(connections.count))),
            .init(
                "queue_depth",
                .object([
                    .init("p50", exact(0.5)), .init("p99", exact(0.99)), .init("max", .number(Double(depths.last ?? 0))),
                ])),
            .init("rates", .object(rates)),
            .init(
                "routes",
                .object(
                    metrics.routes.map { route in
                        .init(
                            route.name,
                            .object([
                                .init("matched", .number(Double(route.matched))), .init("delivered", .number(Double(route.delivered))),
                                .init("dropped", .number(Double(route.dropped))),
                            ]))
                    })),
        ])
        var out: [UInt8] = []
        JSONWriter.write(stats, into: &out)
        return out
    }

    /// Sessions and live subscriptions, per transport.
    private func sessionCounts() -> (sessions: PerTransport<UInt64>, subscriptions: PerTransport<UInt64>) {
        var sessions = PerTransport<UInt64>(0)
        var subscriptions = PerTransport<UInt64>(0)
        for case let session? in hub.sessions {
            sessions[session.transport] += 1
            subscriptions[session.transport] += UInt64(session.subscriptionCount)
        }
        return (sessions, subscriptions)
    }

    private func queueDepths() -> Histogram {
        var depths = Histogram.queueDepth()
        for case let session? in hub.sessions { depths.observe(Double(session.queue.count)) }
        return depths
    }

    // MARK: - /v1/clients

    /// Checks the admin key of a request; nil when it is valid.
    func authorizeAdmin(_ request: Request) -> HeraldError? {
        guard let token = PublisherKeys.bearerToken(request.head.field("authorization")) else {
            return HeraldError(.unauthorized, "this endpoint needs Authorization: Bearer <admin key>")
        }
        return admins.publisher(forKey: token) == nil ? HeraldError(.unauthorized, "the admin key is not valid") : nil
    }

    /// One row per client, busiest queues first: `?limit=` (default 100) and `?offset=`.
    func clientsJSON(limit: Int, offset: Int) -> [UInt8] {
        let now = MonotonicClock.nanoseconds()
        let all = hub.sessions.compactMap { $0 }.sorted { ($0.queue.count, $0.sent, $1.id) > ($1.queue.count, $1.sent, $0.id) }
        let page = all.dropFirst(offset).prefix(limit)
        let rows: [JSONValue] = page.map { client in
            let subscriptions: [JSONValue] = client.descriptions.compactMap { description in
                guard let description else { return nil }
                return .object([
                    .init("id", .string(description.id)),
                    .init("route", description.route.map(JSONValue.string) ?? .null),
                    .init("filter", description.filter ?? .null),
                ])
            }
            return .object([
                .init("id", .number(Double(client.id))),
                .init("transport", .string(client.transport.name)),
                .init("remote", .string(client.remote)),
                .init("user", client.credentials.subject.map(JSONValue.string) ?? .null),
                .init("publisher", client.credentials.publisherName.map(JSONValue.string) ?? .null),
                .init("subscriptions", .array(subscriptions)),
                .init("queue_depth", .number(Double(client.queue.count))),
                .init("queue_bytes", .number(Double(client.queue.byteCount))),
                .init("sent", .number(Double(client.sent))),
                .init("dropped", .number(Double(client.queue.droppedCount + client.queue.coalescedCount))),
                .init("resuming", .bool(client.isResuming)),
                .init("connected_s", .number((Double(now - client.openedAt) / 1e6).rounded() / 1000)),
            ])
        }
        var out: [UInt8] = []
        JSONWriter.write(.object([.init("total", .number(Double(all.count))), .init("clients", .array(rows))]), into: &out)
        return out
    }
}

/// The version Herald reports.
enum HeraldVersion {
    static let current = "0.1.0"
}
