import HeraldCore
import Logging

/// Headers every API response carries. `Gateway.respond` sets the allowed origin
/// (`cors.allowedOrigins`) in place of `*` for each request.
let apiHeaders: [(name: String, value: String)] = [("access-control-allow-origin", "*"), ("cache-control", "no-store")]

/// What to do with a request whose head has been read.
enum RequestPlan {
    /// Answer now; a body the request carries is read and dropped.
    case respond(HTTPServerResponse)
    /// Answer now and close the connection (the body, if any, is not read).
    case close(HTTPServerResponse)
    /// Read a body of at most `limit` bytes, then answer with `handler`.
    case readBody(any BodyHandler, limit: Int)
    /// Send the response head, then the file.
    case file(FileSender, HTTPServerResponse)
    /// The connection becomes a stream of `transport`; `head` is its response head.
    case stream(any StreamTransport, head: [UInt8])
    /// Answer once `held` can be answered (other loops' figures); later pipelined requests
    /// wait behind it. The request must carry no body.
    case held(HeldAnswer)
}

/// An HTTP endpoint: what it plans for a request whose method its route allows.
protocol Endpoint: Sendable {
    func plan(_ request: Request, connection: Connection, gateway: Gateway) -> RequestPlan
    /// A request used a method the route does not allow (405 follows); ingest counts it.
    func refusedMethod(_ method: HTTPMethod, gateway: Gateway)
}

extension Endpoint {
    func refusedMethod(_ method: HTTPMethod, gateway: Gateway) {}
}

/// The answer to a request with a body: now, or once what it acknowledges is stored.
enum BodyAnswer {
    case now(HTTPServerResponse)
    /// Held until stored (`Gateway.answer(held:)`); later pipelined requests wait behind it.
    case held(HeldAnswer)
}

/// An ingest answer that waits for storage.
enum HeldAnswer {
    /// A single node: sent when `Hub.committedThrough` reaches `position` (a 503 if the
    /// log fails first). `since`: when the body was complete (`ingest.deadlineMs`).
    case commit(position: UInt64, HTTPServerResponse, since: UInt64)
    /// A cluster: made when the broker answers submission `ticket` (202 with the stream's
    /// positions, or 503).
    case sequencing(ticket: UInt64, since: UInt64)
    /// Several loops: made when every loop asked has answered query `token`.
    case gathering(token: UInt64)
}

protocol BodyHandler {
    func answer(_ request: Request, gateway: Gateway) -> BodyAnswer
    /// The body was refused before it was used (too large, late, …); ingest counts it.
    func refused(_ code: HeraldError.Code, gateway: Gateway)
}

extension BodyHandler {
    func refused(_ code: HeraldError.Code, gateway: Gateway) {}
}

/// The method+path table of the HTTP API (DESIGN §3, §4, §9).
///
/// A route names a path (exact, or a prefix with a parameter after it), the methods it
/// allows and its endpoint. HEAD is handled once: a route that allows it gets the GET
/// answer's head (the endpoint plans as for GET; the connection drops the body); the
/// streaming endpoints do not allow it. Every other method gets `405` with `Allow`. A WebSocket upgrade goes to `WebSocketUpgrade` whatever the
/// path; paths no route names are `404` under `/v1` and static files elsewhere.
struct Router: Sendable {
    enum PathMatch: Sendable {
        case exact(String)
        /// The path starts with this; the rest is the endpoint's parameter.
        case prefix(String)

        func matches(_ path: String) -> Bool {
            switch self {
            case .exact(let exact): path == exact
            case .prefix(let prefix): path.hasPrefix(prefix)
            }
        }
    }

    struct Route: Sendable {
        var path: PathMatch
        var methods: [HTTPMethod]
        var endpoint: any Endpoint
    }

    let routes: [Route]
    let upgrade: any Endpoint
    let fallback: any Endpoint

    /// Herald's API.
    static let herald = Router(
        routes: [
            Route(path: .exact("/v1/events"), methods: [.post, .options], endpoint: IngestEndpoint()),
            Route(path: .exact("/v1/sse"), methods: [.get], endpoint: SSEEndpoint()),
            Route(path: .exact("/v1/ws"), methods: [.get], endpoint: UpgradeRequiredEndpoint()),
            Route(path: .exact("/v1/patterns/test"), methods: [.post], endpoint: PatternTestEndpoint()),
            Route(path: .exact("/v1/routes/explain"), methods: [.post], endpoint: ExplainEndpoint()),
            Route(path: .prefix("/v1/presence/"), methods: [.get, .head], endpoint: PresenceEndpoint()),
            Route(path: .exact("/v1/demo/token"), methods: [.get], endpoint: DemoTokenEndpoint()),
            Route(path: .exact("/v1/clients"), methods: [.get, .head], endpoint: ClientsEndpoint()),
            Route(path: .prefix("/v1/clients/"), methods: [.delete], endpoint: DisconnectClientEndpoint()),
            Route(path: .exact("/v1/stats"), methods: [.get, .head], endpoint: StatsEndpoint()),
            Route(path: .exact("/metrics"), methods: [.get, .head], endpoint: MetricsEndpoint()),
            Route(path: .exact("/healthz"), methods: [.get, .head], endpoint: StatusEndpoint(body: #"{"status":"ok"}"#)),
            Route(path: .exact("/readyz"), methods: [.get, .head], endpoint: ReadyEndpoint()),
        ],
        upgrade: WebSocketUpgrade(),
        fallback: StaticFilesEndpoint())

    func plan(_ request: Request, connection: Connection, gateway: Gateway) -> RequestPlan {
        let path = request.head.path
        let isUpgrade = WebSocketHandshake.isUpgrade(request.head)
        let route = routes.first(where: { $0.path.matches(path) })
        let isAPI = isUpgrade || route != nil || path == "/v1" || path.hasPrefix("/v1/")
        if isAPI, case .refused(let origin) = gateway.cors.decide(origin: request.head.field("origin"), host: request.head.field("host")) {
            let error = HeraldError(.originNotAllowed, "pages from \(origin) may not use this gateway (cors.allowedOrigins)")
            return .respond(gateway.errorResponse(error))
        }
        if isUpgrade {
            return upgrade.plan(request, connection: connection, gateway: gateway)
        }
        let method = request.head.method
        guard let route else {
            if path == "/v1" || path.hasPrefix("/v1/") {
                return .respond(gateway.errorResponse(HeraldError(.notFound, "no such endpoint: \(path)")))
            }
            guard method == .get || method == .head else { return Self.methodNotAllowed(method, allowed: [.get, .head], gateway) }
            return fallback.plan(request, connection: connection, gateway: gateway)
        }
        guard route.methods.contains(method) else {
            route.endpoint.refusedMethod(method, gateway: gateway)
            return Self.methodNotAllowed(method, allowed: route.methods, gateway)
        }
        return route.endpoint.plan(request, connection: connection, gateway: gateway)
    }

    static func methodNotAllowed(_ method: HTTPMethod, allowed: [HTTPMethod], _ gateway: Gateway) -> RequestPlan {
        let list = allowed.map(\.description).joined(separator: ", ")
        let error = HeraldError(.methodNotAllowed, "\(method) is not allowed here; use \(list)")
        return .respond(gateway.errorResponse(error, fields: [("allow", list)]))
    }
}

extension Gateway {
    /// A body endpoint's plan: the body must be delimited (Content-Length or chunked).
    func planBody(_ request: Request, _ handler: any BodyHandler, limit: Int) -> RequestPlan {
        guard request.head.bodyFraming != .none || request.head.field("content-length") != nil else {
            handler.refused(.lengthRequired, gateway: self)
            return .close(errorResponse(HeraldError(.lengthRequired, "a Content-Length header (or a chunked body) is required")))
        }
        return .readBody(handler, limit: limit)
    }

    /// A JSON response with the API headers.
    func json(_ status: Int, _ body: [UInt8], fields: [(name: String, value: String)] = []) -> HTTPServerResponse {
        HTTPServerResponse(status: status, fields: apiHeaders + fields, body: body)
    }

    /// An error response; its status follows from the error's code. An `overloaded` answer
    /// always says when to retry: `Retry-After: 1` unless the caller knows better.
    func errorResponse(_ error: HeraldError, fields: [(name: String, value: String)] = []) -> HTTPServerResponse {
        var extra = fields
        if error.code.httpStatus == 401 { extra.append(("www-authenticate", "Bearer")) }
        if error.code == .overloaded, !extra.contains(where: { $0.name == "retry-after" }) { extra.append(("retry-after", "1")) }
        return json(error.code.httpStatus, WireFormat.httpError(error), fields: extra)
    }
}

// MARK: - Small endpoints

/// `GET /healthz`, `GET /readyz`.
struct StatusEndpoint: Endpoint {
    let body: String
    func plan(_ request: Request, connection: Connection, gateway: Gateway) -> RequestPlan {
        .respond(gateway.json(200, Array(body.utf8)))
    }
}

/// `GET /readyz`: ready while events can be accepted; 503 with the reason when the
/// durable log cannot store them (connections and subscribers are unaffected). A gateway
/// that is late — a route burned its deadline budget over the last minute — is still
/// ready (200) but says `degraded` and names the routes: being late is not a reason to
/// take it out of a load balancer, which would only make the others later.
struct ReadyEndpoint: Endpoint {
    func plan(_ request: Request, connection: Connection, gateway: Gateway) -> RequestPlan {
        if let failure = gateway.hub.storageFailure {
            let error = HeraldError(.storageUnavailable, "\(gateway.hub.storageName) cannot store events: \(failure)")
            return .respond(gateway.errorResponse(error, fields: [("retry-after", "5")]))
        }
        return gateway.gatherFigures(.windows) { gateway, figures in
            let late = gateway.lateRoutes(figures)
            guard !late.isEmpty else { return gateway.json(200, Array(#"{"status":"ready"}"#.utf8)) }
            var body: [UInt8] = []
            JSONWriter.write(
                .object([
                    .init("status", .string("degraded")),
                    .init("late_routes", .array(late.map { .string($0.isEmpty ? "(ad-hoc filters)" : $0) })),
                ]), into: &body)
            return gateway.json(200, body)
        }
    }
}

/// `GET /v1/ws` without an upgrade.
struct UpgradeRequiredEndpoint: Endpoint {
    func plan(_ request: Request, connection: Connection, gateway: Gateway) -> RequestPlan {
        let error = HeraldError(.upgradeRequired, "/v1/ws needs a WebSocket upgrade (subprotocol herald.v1)")
        return .respond(gateway.errorResponse(error, fields: [("upgrade", "websocket")]))
    }
}

/// `GET /v1/presence/{group}`: the members the caller may see now, and the position the
/// list is valid at. A member is listed when its join event would be delivered to the
/// caller (the caller's token scope matches it), exactly as a subscription would.
struct PresenceEndpoint: Endpoint {
    func plan(_ request: Request, connection: Connection, gateway: Gateway) -> RequestPlan {
        let credentials: Credentials
        let group: String
        do throws(HeraldError) {
            credentials = try gateway.authenticate(gateway.requestToken(request))
            group = try ClientMessage.presenceGroup(.string(String(request.head.path.dropFirst("/v1/presence/".count))))
        } catch {
            return .respond(gateway.errorResponse(error))
        }
        let members = gateway.hub.members(of: group, visibleTo: credentials)
        var out: [UInt8] = Array(#"{"group":"#.utf8)
        JSONWriter.writeString(group, into: &out)
        out.append(contentsOf: #","position":"#.utf8)
        JSONWriter.writeInteger(gateway.hub.committedThrough, into: &out)
        out.append(contentsOf: #","count":"#.utf8)
        JSONWriter.writeInteger(members.count, into: &out)
        out.append(contentsOf: #","members":["#.utf8)
        for (i, member) in members.enumerated() {
            if i > 0 { out.append(UInt8(ascii: ",")) }
            out.append(contentsOf: #"{"member":"#.utf8)
            JSONWriter.writeString(member.id, into: &out)
            out.append(contentsOf: #","info":"#.utf8)
            out.append(contentsOf: member.info.bytes)
            out.append(contentsOf: #","transport":"#.utf8)
            JSONWriter.writeString(member.transport, into: &out)
            out.append(contentsOf: #","joinedSeq":"#.utf8)
            JSONWriter.writeInteger(member.joinedSeq, into: &out)
            out.append(UInt8(ascii: "}"))
        }
        out.append(contentsOf: "]}".utf8)
        return .respond(gateway.json(200, out))
    }
}
