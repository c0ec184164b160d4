import HeraldCore
import Logging

/// Headers every API response carries.
let apiHeaders: [(name: String, value: String)] = [("access-control-allow-origin", "*"), ("cache-control", "no-store")]

/// What to do with a request whose head has been read.
enum RequestPlan {
    /// Answer now; a body the request carries is read and dropped.
    case respond(HTTPServerResponse)
    /// Answer now and close the connection (the body, if any, is not read).
    case close(HTTPServerResponse)
    /// Read a body of at most `limit` bytes, then answer through the endpoint.
    case readBody(BodyEndpoint, limit: Int)
    /// Send the response head, then the file.
    case file(FileSender, HTTPServerResponse)
    /// The connection becomes a Server-Sent Events stream; `head` is its response head.
    case eventStream(SSEClient, head: [UInt8])
    /// The connection becomes a WebSocket; `head` is the `101` response.
    case webSocket(WebSocketClient, head: [UInt8])
}

extension Gateway {
    /// Routes a request by path, then by method. HEAD is answered like GET wherever GET is
    /// allowed (the serving code drops the body).
    func plan(_ request: Request, on connection: Connection) -> RequestPlan {
        let path = request.head.path
        let method = request.head.method
        if WebSocketHandshake.isUpgrade(request.head) {
            return planWebSocket(request, on: connection)
        }
        if path.hasPrefix("/v1/clients/") {
            guard method == .delete else { return methodNotAllowed(method, allowed: "DELETE") }
            return .respond(deleteClient(request, idText: String(path.dropFirst("/v1/clients/".count))))
        }
        if path.hasPrefix("/v1/presence/") {
            guard method == .get || method == .head else { return methodNotAllowed(method, allowed: "GET, HEAD") }
            return .respond(presenceList(request, group: String(path.dropFirst("/v1/presence/".count))))
        }
        let readable = method == .get || method == .head
        switch path {
        case "/v1/events":
            return planIngest(request)
        case "/v1/patterns/test":
            guard method == .post else { return methodNotAllowed(method, allowed: "POST") }
            return planBody(request, .matcher(.testPattern), limit: min(config.limits.maxUnauthenticatedBodyBytes, config.limits.maxBodyBytes))
        case "/v1/routes/explain":
            guard method == .post else { return methodNotAllowed(method, allowed: "POST") }
            if let failure = authorizeAdmin(request) { return .respond(errorResponse(failure)) }
            return planBody(request, .matcher(.explainRoutes), limit: config.limits.maxBodyBytes)
        case "/v1/sse":
            guard method == .get else { return methodNotAllowed(method, allowed: "GET") }
            return planSSE(request, on: connection)
        case "/v1/ws":
            guard method == .get else { return methodNotAllowed(method, allowed: "GET") }
            let error = HeraldError(.upgradeRequired, "/v1/ws needs a WebSocket upgrade (subprotocol herald.v1)")
            return .respond(errorResponse(error, fields: [("upgrade", "websocket")]))
        case "/v1/demo/token":
            guard method == .get else { return methodNotAllowed(method, allowed: "GET") }
            return .respond(issueDemoToken(request))
        case "/metrics":
            guard readable else { return methodNotAllowed(method, allowed: "GET, HEAD") }
            return .respond(HTTPServerResponse(status: 200, contentType: "text/plain; version=0.0.4; charset=utf-8", fields: apiHeaders, body: prometheusText()))
        case "/v1/stats":
            guard readable else { return methodNotAllowed(method, allowed: "GET, HEAD") }
            return .respond(json(200, statsJSON()))
        case "/v1/clients":
            guard readable else { return methodNotAllowed(method, allowed: "GET, HEAD") }
            return .respond(listClients(request))
        case "/healthz":
            guard readable else { return methodNotAllowed(method, allowed: "GET, HEAD") }
            return .respond(json(200, Array(#"{"status":"ok"}"#.utf8)))
        case "/readyz":
            guard readable else { return methodNotAllowed(method, allowed: "GET, HEAD") }
            return .respond(json(200, Array(#"{"status":"ready"}"#.utf8)))
        default:
            if path == "/v1" || path.hasPrefix("/v1/") {
                return .respond(errorResponse(HeraldError(.notFound, "no such endpoint: \(path)")))
            }
            guard readable else { return methodNotAllowed(method, allowed: "GET, HEAD") }
            return planStaticFile(path)
        }
    }

    /// A body endpoint: the body must be delimited (Content-Length or chunked).
    func planBody(_ request: Request, _ endpoint: BodyEndpoint, limit: Int) -> RequestPlan {
        guard request.head.bodyFraming != .none || request.head.field("content-length") != nil else {
            countIngestRefusal(endpoint, .lengthRequired)
            return .close(errorResponse(HeraldError(.lengthRequired, "a Content-Length header (or a chunked body) is required")))
        }
        return .readBody(endpoint, limit: limit)
    }

    /// Answers a completed body request.
    func answer(_ endpoint: BodyEndpoint, _ request: Request) -> HTTPServerResponse {
        switch endpoint {
        case .ingest(let format, let binary, let credentials):
            return ingest(request.body, format: format, binary: binary, credentials: credentials)
        case .matcher(let query):
            return answerMatcherRequest(query, body: request.body)
        }
    }

    /// Counts an ingest request refused before its body was used.
    func countIngestRefusal(_ endpoint: BodyEndpoint, _ code: HeraldError.Code) {
        if case .ingest = endpoint { metrics.rejected[code.rawValue, default: 0] += 1 }
    }

    /// `DELETE /v1/clients/{id}` (admin): disconnects one client.
    private func deleteClient(_ request: Request, idText: String) -> HTTPServerResponse {
        if let failure = authorizeAdmin(request) { return errorResponse(failure) }
        guard let id = UInt64(idText), disconnectClient(id: id) else {
            return errorResponse(HeraldError(.notFound, "no client \(idText)"))
        }
        return HTTPServerResponse(status: 204, contentType: nil, fields: apiHeaders)
    }

    /// `GET /v1/clients` (admin).
    private func listClients(_ request: Request) -> HTTPServerResponse {
        if let failure = authorizeAdmin(request) { return errorResponse(failure) }
        // Past the end is an empty page, however far past (digits beyond Int are clamped).
        func count(_ text: String) -> Int {
            guard !text.isEmpty, text.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return -1 }
            return Int(text) ?? Int.max
        }
        let limit = request.query("limit").map(count) ?? 100
        let offset = request.query("offset").map(count) ?? 0
        guard (1...10_000).contains(limit), offset >= 0 else {
            return errorResponse(HeraldError(.invalidMessage, "limit must be in 1...10000 and offset non-negative"))
        }
        return json(200, clientsJSON(limit: limit, offset: offset))
    }

    func methodNotAllowed(_ method: HTTPMethod, allowed: String) -> RequestPlan {
        .respond(errorResponse(HeraldError(.methodNotAllowed, "\(method) is not allowed here; use \(allowed)"), fields: [("allow", allowed)]))
    }

    // MARK: - Responses

    /// A JSON response with the API headers.
    func json(_ status: Int, _ body: [UInt8], fields: [(name: String, value: String)] = []) -> HTTPServerResponse {
        HTTPServerResponse(status: status, fields: apiHeaders + fields, body: body)
    }

    /// An error response; its status follows from the error's code.
    func errorResponse(_ error: HeraldError, fields: [(name: String, value: String)] = []) -> HTTPServerResponse {
        var extra = fields
        if error.code.httpStatus == 401 { extra.append(("www-authenticate", "Bearer")) }
        return json(error.code.httpStatus, WireFormat.httpError(error), fields: extra)
    }
}
