import HeraldCore
import Logging

/// `GET /metrics`: the Prometheus text exposition.
struct MetricsEndpoint: Endpoint {
    func plan(_ request: Request, connection: Connection, gateway: Gateway) -> RequestPlan {
        gateway.gatherFigures(.counts) { gateway, figures in
            HTTPServerResponse(
                status: 200, contentType: "text/plain; version=0.0.4; charset=utf-8", fields: apiHeaders,
                body: gateway.prometheusText(figures))
        }
    }
}

/// `GET /v1/stats`: the same figures as JSON, with rates, for the dashboard.
struct StatsEndpoint: Endpoint {
    func plan(_ request: Request, connection: Connection, gateway: Gateway) -> RequestPlan {
        gateway.gatherFigures(.rates) { gateway, figures in gateway.json(200, gateway.statsJSON(figures)) }
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
        guard let order = ClientOrder(rawValue: request.query("order") ?? "busy") else {
            return .respond(
                gateway.errorResponse(
                    HeraldError(.invalidMessage, "order must be busy (fullest queues first) or late (most missed deadlines first)")))
        }
        return gateway.gatherFigures(.clients) { gateway, figures in
            gateway.json(200, gateway.clientsJSON(figures.clients, order: order, limit: limit, offset: offset))
        }
    }
}

/// How `/v1/clients` orders its rows (`?order=`).
enum ClientOrder: String {
    /// Fullest queues first, then most sent.
    case busy
    /// Most live deliveries past a deadline first, then the slowest delivery.
    case late
}

/// `DELETE /v1/clients/{id}` (admin): disconnects one client (WebSocket close 1008
/// "disconnected by an administrator", SSE stream ended).
struct DisconnectClientEndpoint: Endpoint {
    func plan(_ request: Request, connection: Connection, gateway: Gateway) -> RequestPlan {
        if let failure = gateway.authorizeAdmin(request) { return .respond(gateway.errorResponse(failure)) }
        let idText = String(request.head.path.dropFirst("/v1/clients/".count))
        func answer(found: Bool) -> HTTPServerResponse {
            found
                ? HTTPServerResponse(status: 204, contentType: nil, fields: apiHeaders)
                : gateway.errorResponse(HeraldError(.notFound, "no client \(idText)"))
        }
        guard let id = UInt64(idText), id > 0 else { return .respond(answer(found: false)) }
        // Held like every request that may need another loop, so that it behaves the same
        // whichever loop it reached.
        let holder = Hub.ClientIDs.loop(of: id, count: gateway.loops.count)
        let isOwn = holder == gateway.loops.index
        return .held(
            gateway.ask(.disconnect(id), of: isOwn ? [] : [holder]) { gateway, answers in
                guard !isOwn else { return answer(found: gateway.disconnectClient(id)) }
                return answer(found: answers.contains { if case .disconnected(found: true) = $0 { true } else { false } })
            })
    }
}

/// The figures behind `/metrics`, `/v1/stats` and `/v1/clients` (DESIGN §9).
extension Gateway {
    // MARK: - /metrics

    /// The Prometheus text exposition of every figure.
    func prometheusText(_ figures: LoopFigures) -> [UInt8] {
        let now = MonotonicClock.nanoseconds()
        let metrics = figures.metrics
        var out = PrometheusText()
        out.family("herald_events_ingested_total", type: "counter", help: "Events offered on ingest, by result.")
        out.sample("herald_events_ingested_total", [("result", "accepted")], Double(metrics.accepted))
        out.sample("herald_events_ingested_total", [("result", "duplicate")], Double(metrics.duplicates))
        out.family(
            "herald_ingest_rejected_total", type: "counter", help: "Ingest requests refused, by error code (nothing of them was kept).")
        for code in Self.ingestErrorCodes {
            out.sample("herald_ingest_rejected_total", [("reason", code)], Double(metrics.rejected[code] ?? 0))
        }
        out.family(
            "herald_ingest_events_total", type: "counter",
            help: "Events offered for publishing that passed validation and permission, by publisher key name (\"\": a JWT).")
        let keyNames = Set(config.auth.publisherKeys.map(\.name)).union(metrics.ingestedByKey.keys).sorted()
        for name in keyNames { out.sample("herald_ingest_events_total", [("key", name)], Double(metrics.ingestedByKey[name] ?? 0)) }
        out.family(
            "herald_connections_refused_total", type: "counter",
            help:
                "Connections, streams and resumes refused: the gateway (total), their address or their JWT subject held the most allowed, or a wave of new connections or resumes passed its rate."
        )
        for reason in ["total", "address", "subject", "new_connection_rate", "resume_rate"] {
            out.sample("herald_connections_refused_total", [("reason", reason)], Double(metrics.connectionsRefused[reason] ?? 0))
        }
        out.family(
            "herald_rate_limited_total", type: "counter",
            help: "Ingest requests and WebSocket messages, subscribes and publishes refused by a rate limit, by limit.")
        for limit in ["ingest_key", "ingest_address", "websocket_messages", "websocket_subscribes", "websocket_publishes"] {
            out.sample("herald_rate_limited_total", [("limit", limit)], Double(metrics.rateLimited[limit] ?? 0))
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

        out.perTransport("herald_connections", type: "gauge", help: "Open streaming connections, by transport.", figures.sessions)
        out.perTransport("herald_subscriptions", type: "gauge", help: "Live subscriptions, by transport.", figures.subscriptions)
        out.family("herald_presence_groups", type: "gauge", help: "Presence groups with at least one member.")
        out.sample("herald_presence_groups", [], Double(figures.presenceGroups.count))
        out.family("herald_presence_members", type: "gauge", help: "Presence memberships (one per connection and group).")
        out.sample("herald_presence_members", [], Double(figures.presenceMembers))
        out.family("herald_queue_depth", type: "histogram", help: "Messages waiting in each client's queue, over clients, at scrape time.")
        var depths = Histogram.queueDepth()
        for depth in figures.queueDepths { depths.observe(Double(depth)) }
        out.histogram("herald_queue_depth", [], depths)
        out.family("herald_queued_bytes", type: "gauge", help: "Bytes queued for all clients together.")
        out.sample("herald_queued_bytes", [], Double(figures.queuedBytes))
        out.family(
            "herald_pending_input_bytes", type: "gauge",
            help:
                "Bytes of unfinished input held for all connections (partial requests and bodies, partial WebSocket messages); bounded by limits.maxPendingInputBytesTotal."
        )
        out.sample("herald_pending_input_bytes", [], Double(figures.pendingInputBytes))
        out.family("herald_open_connections", type: "gauge", help: "Open TCP connections (HTTP requests, SSE streams and WebSockets).")
        out.sample("herald_open_connections", [], Double(figures.openConnections))
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
        out.sample("herald_storage_failures_total", [], Double(metrics.storageFailures))
        out.family(
            "herald_storage_refused_total", type: "counter",
            help: "Ingest requests and WebSocket publishes refused, or accepted but not acknowledged, because the log could not store them."
        )
        out.sample("herald_storage_refused_total", [], Double(metrics.storageRefusals))
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
        for route in metrics.routes { out.histogram("herald_route_delivery_latency_seconds", [("route", route.name)], route.live.latency) }
        out.family(
            "herald_route_deadline_seconds", type: "gauge",
            help: "The route's delivery deadline (routes.<name>.deadlineMs, else delivery.deadlineMs; route \"\": ad-hoc filters).")
        for route in metrics.routes {
            out.sample("herald_route_deadline_seconds", [("route", route.name)], Double(route.live.deadline) / 1e9)
        }
        out.family(
            "herald_deadline_deliveries_total", type: "counter",
            help: "Live deliveries within (met) and past (missed) their route's deadline; replays are not counted.")
        for route in metrics.routes {
            out.sample("herald_deadline_deliveries_total", [("route", route.name), ("result", "met")], Double(route.live.met))
            out.sample("herald_deadline_deliveries_total", [("route", route.name), ("result", "missed")], Double(route.live.missed))
        }
        out.family(
            "herald_deadline_missed_total", type: "counter",
            help:
                "Missed deadlines by cause: slow_client (it waited in the client's queue past a write that did not include it) or gateway (the first write after it arrived came late)."
        )
        for route in metrics.routes {
            out.sample(
                "herald_deadline_missed_total", [("route", route.name), ("cause", "slow_client")], Double(route.live.missedSlowClient))
            out.sample("herald_deadline_missed_total", [("route", route.name), ("cause", "gateway")], Double(route.live.missedGateway))
        }
        let ingest = metrics.ingestAnswers
        out.family(
            "herald_ingest_deadline_seconds", type: "gauge", help: "ingest.deadlineMs: the time within which each 202 should go out.")
        out.sample("herald_ingest_deadline_seconds", [], Double(ingest.deadline) / 1e9)
        out.family(
            "herald_ingest_deadline_answers_total", type: "counter",
            help: "Ingest 202 answers within (met) and past (missed) ingest.deadlineMs, from the request's last byte.")
        out.sample("herald_ingest_deadline_answers_total", [("result", "met")], Double(ingest.met))
        out.sample("herald_ingest_deadline_answers_total", [("result", "missed")], Double(ingest.missed))
        out.family(
            "herald_ingest_answer_seconds", type: "histogram",
            help: "From an ingest request's last byte to its 202 (the log's commit or the cluster's sequencing included).")
        out.histogram("herald_ingest_answer_seconds", [], ingest.latency)

        out.family(
            "herald_tls_certificate_reloads_total", type: "counter",
            help: "SIGHUP reloads of tls.cert and tls.key, by result (failed: the certificate in use stays).")
        out.sample("herald_tls_certificate_reloads_total", [("result", "ok")], Double(metrics.certificateReloads))
        out.sample("herald_tls_certificate_reloads_total", [("result", "failed")], Double(metrics.certificateReloadFailures))
        out.family("herald_loops", type: "gauge", help: "Event loops serving (listen.loops), each on a thread of its own.")
        out.sample("herald_loops", [], Double(loops.count))
        out.family("herald_uptime_seconds", type: "gauge", help: "Seconds since the gateway started.")
        out.sample("herald_uptime_seconds", [], Double(now - startedAt) / 1e9)
        out.family("herald_build_info", type: "gauge", help: "Build information (always 1).")
        out.sample("herald_build_info", [("version", HeraldVersion.current), ("lws", Socket.libraryVersion)], 1)
        out.process(ProcessFigures.current())
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
    func statsJSON(_ figures: LoopFigures) -> [UInt8] {
        let now = MonotonicClock.nanoseconds()
        let metrics = figures.metrics
        func perTransport(_ values: PerTransport<UInt64>) -> JSONValue {
            .object(TransportKind.allCases.map { .init($0.name, .number(Double(values[$0]))) })
        }
        let depths = figures.queueDepths.sorted()
        func exact(_ q: Double) -> JSONValue {
            depths.isEmpty ? .number(0) : .number(Double(depths[min(depths.count - 1, Int(Double(depths.count) * q))]))
        }
        func number(_ value: Double?) -> JSONValue { value.map { .number(($0 * 1000).rounded() / 1000) } ?? .null }
        func millis(_ seconds: Double?) -> JSONValue { number(seconds.map { $0 * 1000 }) }
        var rates: [JSONValue.Member] = []
        for (seconds, window) in zip(LoopFigures.windowSeconds, figures.windows) {
            let r = window.rates
            rates.append(
                .init(
                    "\(seconds)s",
                    .object([
                        .init("events_in", number(r.eventsIn)), .init("deliveries", number(r.deliveries)), .init("drops", number(r.drops)),
                        .init("latency_p50_ms", millis(r.latencyP50)), .init("latency_p99_ms", millis(r.latencyP99)),
                    ])))
        }
        var rejected: [JSONValue.Member] = []
        for (code, count) in metrics.rejected.sorted(by: { $0.key < $1.key }) { rejected.append(.init(code, .number(Double(count)))) }
        let stats: JSONValue = .object([
            .init("uptime_s", number(Double(now - startedAt) / 1e9)),
            .init("loops", .number(Double(loops.count))),
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
            .init("connections", perTransport(figures.sessions)),
            .init("subscriptions", .number(Double(figures.subscriptions.sum))),
            .init(
                "presence",
                .object([
                    .init("groups", .number(Double(figures.presenceGroups.count))),
                    .init("members", .number(Double(figures.presenceMembers))),
                ])),
            .init(
                "history",
                .object([.init("events", .number(Double(hub.retained.events))), .init("bytes", .number(Double(hub.retained.bytes)))])),
            .init("queued_bytes", .number(Double(figures.queuedBytes))),
            .init("pending_input_bytes", .number(Double(figures.pendingInputBytes))),
            .init("open_connections", .number(Double(figures.openConnections))),
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
            .init("deadlines", deadlinesJSON(figures, number: number)),
        ])
        var out: [UInt8] = []
        JSONWriter.write(stats, into: &out)
        return out
    }

    /// Each route's deadline, its live deliveries over 1 s / 10 s / 60 s (latency
    /// percentiles and maximum, share missed), its totals and its state
    /// (`DeadlineState`); then ingest answers against `ingest.deadlineMs` (`ingest`).
    func deadlinesJSON(_ figures: LoopFigures, number: (Double?) -> JSONValue) -> JSONValue {
        func windows(_ part: (StatsWindow.Window) -> StatsWindow.Timeliness?) -> JSONValue {
            .object(
                zip(LoopFigures.windowSeconds, figures.windows).compactMap { seconds, window in
                    guard let figures = part(window) else { return nil }
                    return .init(
                        "\(seconds)s",
                        .object([
                            .init("count", .number(Double(figures.met + figures.missed))),
                            .init("missed", .number(Double(figures.missed))),
                            .init("missed_slow_client", .number(Double(figures.missedSlowClient))),
                            .init("missed_ratio", figures.missedRatio.map { .number(($0 * 1e6).rounded() / 1e6) } ?? .null),
                            .init("latency_p50_ms", number(figures.latency.quantile(0.5).map { $0 * 1000 })),
                            .init("latency_p99_ms", number(figures.latency.quantile(0.99).map { $0 * 1000 })),
                            .init("latency_max_ms", number(figures.met + figures.missed == 0 ? nil : Double(figures.slowest) / 1e6)),
                        ]))
                })
        }
        let states = deadlineStates(figures)
        let routes: [JSONValue.Member] = figures.metrics.routes.enumerated().map { index, route in
            .init(
                route.name,
                .object([
                    .init("deadline_ms", .number(Double(route.live.deadline) / 1e6)),
                    .init("state", .string(states[index].rawValue)),
                    .init("met", .number(Double(route.live.met))),
                    .init("missed", .number(Double(route.live.missed))),
                    .init("missed_slow_client", .number(Double(route.live.missedSlowClient))),
                    .init("missed_gateway", .number(Double(route.live.missedGateway))),
                    .init("windows", windows { $0.routes.indices.contains(index) ? $0.routes[index] : nil }),
                ]))
        }
        let ingest = figures.metrics.ingestAnswers
        return .object([
            .init("budget", .number(config.delivery.deadlineMissBudget)),
            .init("routes", .object(routes)),
            .init(
                "ingest",
                .object([
                    .init("deadline_ms", .number(Double(ingest.deadline) / 1e6)),
                    .init("met", .number(Double(ingest.met))),
                    .init("missed", .number(Double(ingest.missed))),
                    .init("windows", windows { $0.ingest }),
                ])),
        ])
    }

    /// Each route's state (in `GatewayMetrics.routes` order) from its missed shares over
    /// the last 10 s and 60 s against `delivery.deadlineMissBudget`.
    func deadlineStates(_ figures: LoopFigures) -> [DeadlineState] {
        func window(_ seconds: Int, _ route: Int) -> StatsWindow.Timeliness? {
            guard let at = LoopFigures.windowSeconds.firstIndex(of: seconds), figures.windows.indices.contains(at),
                figures.windows[at].routes.indices.contains(route)
            else { return nil }
            return figures.windows[at].routes[route]
        }
        return figures.metrics.routes.indices.map { route in
            DeadlineState(last10s: window(10, route), last60s: window(60, route), budget: config.delivery.deadlineMissBudget)
        }
    }

    /// The routes burning their deadline budget (red), for `/readyz`.
    func lateRoutes(_ figures: LoopFigures) -> [String] {
        zip(figures.metrics.routes, deadlineStates(figures)).compactMap { route, state in state == .red ? route.name : nil }
    }

    // MARK: - /v1/clients

    /// Checks the admin key of a request; nil when it is valid.
    func authorizeAdmin(_ request: Request) -> HeraldError? {
        guard let token = PublisherKeys.bearerToken(request.head.field("authorization")) else {
            return HeraldError(.unauthorized, "this endpoint needs Authorization: Bearer <admin key>")
        }
        return admins.publisher(forKey: token) == nil ? HeraldError(.unauthorized, "the admin key is not valid") : nil
    }

    /// One row per client, busiest queues first (`late`: most missed deadlines first, then
    /// the slowest delivery): `?limit=` (default 100) and `?offset=`.
    func clientsJSON(_ rows: [LoopFigures.ClientRow], order: ClientOrder, limit: Int, offset: Int) -> [UInt8] {
        let all = rows.sorted { a, b in
            switch order {
            case .busy: (a.queueDepth, a.sent, b.id) > (b.queueDepth, b.sent, a.id)
            case .late: (a.missedDeadlines, a.slowestDelivery, b.id) > (b.missedDeadlines, b.slowestDelivery, a.id)
            }
        }
        let page = all.dropFirst(offset).prefix(limit).map(\.json)
        var out: [UInt8] = []
        JSONWriter.write(.object([.init("total", .number(Double(all.count))), .init("clients", .array(page))]), into: &out)
        return out
    }

    /// This loop's clients as `/v1/clients` rows.
    func clientRows() -> [LoopFigures.ClientRow] {
        let now = MonotonicClock.nanoseconds()
        return hub.sessions.compactMap { $0 }.map { client in
            let subscriptions: [JSONValue] = client.descriptions.compactMap { description in
                guard let description else { return nil }
                return .object([
                    .init("id", .string(description.id)),
                    .init("route", description.route.map(JSONValue.string) ?? .null),
                    .init("filter", description.filter ?? .null),
                ])
            }
            let json: JSONValue = .object([
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
                .init("missed_deadlines", .number(Double(client.missedDeadlines))),
                .init("slowest_delivery_ms", .number((Double(client.slowestDelivery) / 1e3).rounded() / 1000)),
            ])
            return LoopFigures.ClientRow(
                id: client.id, queueDepth: client.queue.count, sent: client.sent, missedDeadlines: client.missedDeadlines,
                slowestDelivery: client.slowestDelivery, json: json)
        }
    }
}

/// The version Herald reports.
enum HeraldVersion {
    static let current = "0.1.0"
}
