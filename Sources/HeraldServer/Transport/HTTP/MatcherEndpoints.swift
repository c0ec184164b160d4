import HeraldCore
import Logging

/// The matcher's dry runs.
enum MatcherQuery {
    /// `POST /v1/patterns/test`.
    case testPattern
    /// `POST /v1/routes/explain` (admin).
    case explainRoutes
}

/// `POST /v1/patterns/test`: does this pattern match this event? No key is needed, so
/// the body is small (`limits.maxUnauthenticatedBodyBytes`).
struct PatternTestEndpoint: Endpoint {
    func plan(_ request: Request, connection: Connection, gateway: Gateway) -> RequestPlan {
        let limits = gateway.config.limits
        return gateway.planBody(
            request, MatcherBody(query: .testPattern), limit: min(limits.maxUnauthenticatedBodyBytes, limits.maxBodyBytes))
    }
}

/// `POST /v1/routes/explain` (admin): which live subscriptions would receive this event?
struct ExplainEndpoint: Endpoint {
    func plan(_ request: Request, connection: Connection, gateway: Gateway) -> RequestPlan {
        if let failure = gateway.authorizeAdmin(request) { return .respond(gateway.errorResponse(failure)) }
        return gateway.planBody(request, MatcherBody(query: .explainRoutes), limit: gateway.config.limits.maxBodyBytes)
    }
}

/// The body of a dry run.
struct MatcherBody: BodyHandler {
    var query: MatcherQuery
    func answer(_ request: Request, gateway: Gateway) -> BodyAnswer {
        gateway.answerMatcherRequest(query, body: request.body)
    }
}

/// One loop's part of an explanation: its recipients, and the client's subscriptions if
/// the client is on this loop. The loops' parts add up to the gateway's answer.
struct ExplainPart: Sendable {
    var recipients = 0
    /// Subscriptions per route index and transport.
    var perRoute: [PerTransport<UInt64>]
    /// The named client's subscription rows, from the loop that holds it.
    var client: [JSONValue]?

    mutating func add(_ other: ExplainPart) {
        recipients += other.recipients
        for index in perRoute.indices where other.perRoute.indices.contains(index) { perRoute[index].add(other.perRoute[index]) }
        client = client ?? other.client
    }
}

extension Gateway {
    /// Answers `POST /v1/patterns/test` and `POST /v1/routes/explain`. The event is
    /// matched as sent (its own bytes), exactly as an ingested event would be.
    func answerMatcherRequest(_ query: MatcherQuery, body: [UInt8]) -> BodyAnswer {
        do throws(HeraldError) {
            let limits = JSONLimits(maxDepth: config.limits.maxJSONDepth)
            let tape = try JSONScanner.scan(body, limits: limits)
            let request = body.withUnsafeBytes { JSONValue(tape: tape, index: 0, bytes: $0) }
            guard case .object = request else { throw HeraldError(.invalidMessage, "the body must be a JSON object", path: "$") }
            guard let eventNode = body.withUnsafeBytes({ tape.member("event", inObjectAt: 0, in: $0) }) else {
                throw HeraldError(.invalidMessage, "the body needs an \"event\" object", path: "$.event")
            }
            guard tape.nodes[eventNode].kind == .object else {
                throw HeraldError(
                    .notAnObject, "\"event\" must be a JSON object, not \(request["event"]?.kindName ?? "nothing")", path: "$.event")
            }
            switch query {
            case .testPattern:
                guard let patternValue = request["pattern"] else {
                    throw HeraldError(.invalidPattern, "the body needs a \"pattern\"", path: "$.pattern")
                }
                let pattern: Pattern
                do throws(HeraldError) {
                    pattern = try Pattern(patternValue, limits: config.limits.pattern)
                } catch {
                    throw HeraldError(.invalidPattern, error.message, path: "$.pattern" + (error.path.map { String($0.dropFirst()) } ?? ""))
                }
                let matched = body.withUnsafeBytes { pattern.matches(EventView(tape: tape, node: eventNode, bytes: $0)) }
                return .now(json(200, Array((matched ? #"{"match":true}"# : #"{"match":false}"#).utf8)))
            case .explainRoutes:
                var clientID: UInt64?
                if let value = request["client"], value != .null {
                    guard case .number(let n) = value, n >= 0, n == n.rounded(), n < 9e15 else {
                        throw HeraldError(.invalidMessage, "\"client\" must be a client id", path: "$.client")
                    }
                    clientID = UInt64(n)
                }
                let own = body.withUnsafeBytes { explainPart(EventView(tape: tape, node: eventNode, bytes: $0), client: clientID) }
                return .held(
                    ask(.explain(body: body, client: clientID), of: loops.others) { gateway, answers in
                        var all = own
                        for case .explained(let part) in answers { all.add(part) }
                        return gateway.explanation(all, client: clientID)
                    })
            }
        } catch {
            return .now(errorResponse(error))
        }
    }

    /// The answer to an explain request from every loop's part.
    private func explanation(_ part: ExplainPart, client: UInt64?) -> HTTPServerResponse {
        if let client, part.client == nil { return errorResponse(HeraldError(.notFound, "no client \(client)", path: "$.client")) }
        let routes = hub.metrics.routes
        var members: [JSONValue.Member] = [
            .init("clients", .number(Double(part.recipients))),
            .init(
                "routes",
                .object(
                    routes.indices.map { index in
                        .init(
                            routes[index].name,
                            .object(TransportKind.allCases.map { .init($0.name, .number(Double(part.perRoute[index][$0]))) }))
                    })),
        ]
        if let client, let rows = part.client {
            members.append(.init("client", .object([.init("id", .number(Double(client))), .init("subscriptions", .array(rows))])))
        }
        var out: [UInt8] = []
        JSONWriter.write(.object(members), into: &out)
        return json(200, out)
    }

    /// This loop's part of an explain request another loop validated.
    func explainPart(body: [UInt8], client: UInt64?) -> ExplainPart {
        let limits = JSONLimits(maxDepth: config.limits.maxJSONDepth)
        guard let tape = try? JSONScanner.scan(body, limits: limits),
            let eventNode = body.withUnsafeBytes({ tape.member("event", inObjectAt: 0, in: $0) })
        else { return ExplainPart(perRoute: []) }  // cannot happen: the asking loop validated it
        return body.withUnsafeBytes { explainPart(EventView(tape: tape, node: eventNode, bytes: $0), client: client) }
    }

    /// How many of this loop's live subscriptions, per route and transport, would receive
    /// `event`; and, if `client` is on this loop, which of its subscriptions match and, for
    /// those that do not, the first pattern field that decided.
    private func explainPart(_ event: EventView, client: UInt64?) -> ExplainPart {
        var part = ExplainPart(perRoute: Array(repeating: PerTransport<UInt64>(0), count: hub.metrics.routes.count))
        for case let session? in hub.sessions {
            let matched = session.matchingSubscriptions(event)
            if !matched.isEmpty { part.recipients += 1 }
            matched.forEach { slot in
                guard let route = session.descriptions[slot]?.routeIndex else { return }
                part.perRoute[route][session.transport] += 1
            }
        }
        if let client, let subscriber = hub.session(id: client) {
            var rows: [JSONValue] = []
            for (slot, description) in subscriber.descriptions.enumerated() {
                guard let description, let patterns = subscriber.patterns[slot] else { continue }
                var row: [JSONValue.Member] = [.init("id", .string(description.id))]
                let failing = patterns.firstIndex { !$0.matches(event) }
                row.append(.init("match", .bool(failing == nil)))
                if let failing {
                    // The route's pattern comes first when the subscription names one.
                    let source = description.route != nil && failing == 0 ? "route" : "filter"
                    row.append(.init("decidedBy", decidingField(patterns[failing], event: event, source: source)))
                }
                rows.append(.object(row))
            }
            part.client = rows
        }
        return part
    }

    /// The first leaf condition of `pattern` (document order) that the event fails alone;
    /// `$or` groups count as one condition. When every condition holds alone but not all
    /// together, the decision was array consistency.
    private func decidingField(_ pattern: Pattern, event: EventView, source: String) -> JSONValue {
        for (path, condition) in Self.leafConditions(pattern.value, path: ["$"]) {
            guard let single = try? Pattern(Self.nest(condition, under: path), limits: config.limits.pattern) else { continue }
            if !single.matches(event) {
                return .object([
                    .init("pattern", .string(source)), .init("path", .string(path.joined(separator: "."))),
                    .init("condition", condition.value),
                ])
            }
        }
        return .object([
            .init("pattern", .string(source)), .init("path", .string("$")),
            .init("condition", .string("array consistency: the fields match in different elements of an array")),
        ])
    }

    /// (path, {key: condition}) for each leaf of a pattern; `$or` is kept whole.
    private static func leafConditions(_ value: JSONValue, path: [String]) -> [([String], JSONValue.Member)] {
        guard case .object(let members) = value else { return [] }
        var leaves: [([String], JSONValue.Member)] = []
        for member in members {
            if case .object = member.value, member.key != "$or" {
                leaves += leafConditions(member.value, path: path + [member.key])
            } else {
                leaves.append((path + [member.key], member))
            }
        }
        return leaves
    }

    /// `{path[1]: {path[2]: … {key: condition}}}` — a one-condition pattern.
    private static func nest(_ member: JSONValue.Member, under path: [String]) -> JSONValue {
        var value: JSONValue = .object([member])
        for key in path.dropFirst().dropLast().reversed() { value = .object([.init(key, value)]) }
        return value
    }
}
