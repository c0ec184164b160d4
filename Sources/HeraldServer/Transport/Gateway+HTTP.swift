import CLibWebSockets
import HeraldCore
import Logging
#if canImport(Glibc)
import Glibc
#endif

/// Headers every API response carries.
let apiHeaders: [(String, String)] = [("access-control-allow-origin", "*"), ("cache-control", "no-store")]

extension Gateway {
    /// Routes a request whose head has been read.
    func handleHTTPRequest(_ wsi: OpaquePointer, path: String) -> Int32 {
        let method = LWS.method(wsi)
        // A HEAD request gets the head of whatever a GET would get, errors included.
        respondingToHead = method == "HEAD"
        defer { respondingToHead = false }
        if draining {
            if path == "/v1/events" { metrics.rejected["shutting_down", default: 0] += 1 }
            return respond(wsi, error: HeraldError(.shuttingDown, "the gateway is shutting down"), status: 503, closeAfter: true)
        }
        if path.hasPrefix("/v1/clients/") {
            return deleteClient(wsi, method: method, idText: String(path.dropFirst("/v1/clients/".count)))
        }
        if path.hasPrefix("/v1/presence/") {
            guard method == "GET" || method == "HEAD" else { return methodNotAllowed(wsi, method: method, allowed: "GET, HEAD") }
            do throws(HeraldError) {
                _ = try authenticate(requestToken(wsi))
                let group = try ClientMessage.presenceGroup(.string(String(path.dropFirst("/v1/presence/".count))))
                return respond(wsi, status: 200, json: presenceJSON(group: group))
            } catch {
                return respond(wsi, error: error, status: error.code == .unauthorized ? 401 : 400)
            }
        }
        switch path {
        case "/v1/demo/token":
            guard method == "GET" else { return methodNotAllowed(wsi, method: method, allowed: "GET") }
            return issueDemoToken(wsi)
        case "/v1/patterns/test":
            return beginAPIRequest(wsi, method: method, operation: .testPattern)
        case "/v1/routes/explain":
            if method == "POST", let failure = authorizeAdmin(wsi) {
                return respond(wsi, error: failure, status: 401, extraHeaders: [("www-authenticate", "Bearer")])
            }
            return beginAPIRequest(wsi, method: method, operation: .explainRoutes)
        case "/metrics":
            guard method == "GET" || method == "HEAD" else { return methodNotAllowed(wsi, method: method, allowed: "GET, HEAD") }
            return respond(wsi, status: 200, body: prometheusText(), contentType: "text/plain; version=0.0.4; charset=utf-8")
        case "/v1/stats":
            guard method == "GET" || method == "HEAD" else { return methodNotAllowed(wsi, method: method, allowed: "GET, HEAD") }
            return respond(wsi, status: 200, json: statsJSON())
        case "/v1/clients":
            guard method == "GET" || method == "HEAD" else { return methodNotAllowed(wsi, method: method, allowed: "GET, HEAD") }
            if let failure = authorizeAdmin(wsi) {
                return respond(wsi, error: failure, status: 401, extraHeaders: [("www-authenticate", "Bearer")])
            }
            let limit = LWS.queryArgument(wsi, "limit").flatMap { Int($0) } ?? 100
            let offset = LWS.queryArgument(wsi, "offset").flatMap { Int($0) } ?? 0
            guard (1...10_000).contains(limit), offset >= 0 else {
                return respond(wsi, error: HeraldError(.invalidMessage, "limit must be in 1...10000 and offset non-negative"), status: 400)
            }
            return respond(wsi, status: 200, json: clientsJSON(limit: limit, offset: offset))
        case "/v1/events":
            return beginIngest(wsi, method: method)
        case "/v1/sse":
            guard method == "GET" else { return methodNotAllowed(wsi, method: method, allowed: "GET") }
            return beginSSE(wsi)
        case "/v1/ws":
            guard method == "GET" else { return methodNotAllowed(wsi, method: method, allowed: "GET") }
            return respond(wsi, error: HeraldError(.invalidMessage, "/v1/ws needs a WebSocket upgrade (subprotocol herald.v1)"), status: 426, extraHeaders: [("upgrade", "websocket")])
        case "/healthz":
            guard method == "GET" || method == "HEAD" else { return methodNotAllowed(wsi, method: method, allowed: "GET, HEAD") }
            return respond(wsi, status: 200, json: Array(#"{"status":"ok"}"#.utf8), head: method == "HEAD")
        case "/readyz":
            guard method == "GET" || method == "HEAD" else { return methodNotAllowed(wsi, method: method, allowed: "GET, HEAD") }
            return respond(wsi, status: 200, json: Array(#"{"status":"ready"}"#.utf8), head: method == "HEAD")
        default:
            if path.hasPrefix("/v1/") || path == "/v1" {
                return respond(wsi, error: HeraldError(.notFound, "no such endpoint: \(path)"), status: 404)
            }
            guard method == "GET" || method == "HEAD" else { return methodNotAllowed(wsi, method: method, allowed: "GET, HEAD") }
            return serveStaticFile(wsi, path: path, head: method == "HEAD")
        }
    }

    /// `DELETE /v1/clients/{id}` (admin): disconnects one client.
    private func deleteClient(_ wsi: OpaquePointer, method: String, idText: String) -> Int32 {
        guard method == "DELETE" else { return methodNotAllowed(wsi, method: method, allowed: "DELETE") }
        if let failure = authorizeAdmin(wsi) {
            return respond(wsi, error: failure, status: 401, extraHeaders: [("www-authenticate", "Bearer")])
        }
        guard let id = UInt64(idText), disconnectClient(id: id) else {
            return respond(wsi, error: HeraldError(.notFound, "no client \(idText)"), status: 404)
        }
        return respond(wsi, status: 204, json: [])
    }

    func methodNotAllowed(_ wsi: OpaquePointer, method: String, allowed: String) -> Int32 {
        respond(wsi, error: HeraldError(.methodNotAllowed, "\(method) is not allowed here; use \(allowed)"), status: 405, extraHeaders: [("allow", allowed)])
    }

    /// Queues an error response.
    func respond(_ wsi: OpaquePointer, error: HeraldError, status: Int, extraHeaders: [(String, String)] = [], closeAfter: Bool = false) -> Int32 {
        if status >= 500 { logger.warning("request failed", metadata: ["status": "\(status)", "error": "\(error)"]) }
        return respond(wsi, status: status, json: WireFormat.httpError(error), extraHeaders: extraHeaders, closeAfter: closeAfter)
    }

    /// Queues a JSON response; it is written in the next WRITEABLE callbacks.
    func respond(_ wsi: OpaquePointer, status: Int, json: [UInt8], extraHeaders: [(String, String)] = [], closeAfter: Bool = false, head: Bool = false) -> Int32 {
        respond(wsi, status: status, body: json, contentType: "application/json", extraHeaders: extraHeaders, closeAfter: closeAfter, head: head)
    }

    /// Queues a response; it is written in the next WRITEABLE callbacks.
    func respond(_ wsi: OpaquePointer, status: Int, body: [UInt8], contentType: String, extraHeaders: [(String, String)] = [], closeAfter: Bool = false, head: Bool = false) -> Int32 {
        let response = PendingResponse(status: status, contentType: contentType, headers: apiHeaders + extraHeaders, body: body, closeAfter: closeAfter, omitBody: head || respondingToHead)
        if case .exchange(let exchange)? = connections[wsi] {
            exchange.response = response
        } else {
            let exchange = HTTPExchange(purpose: .respond)
            exchange.response = response
            connections[wsi] = .exchange(exchange)
        }
        LWS.requestWritable(wsi)
        return 0
    }

    func handleHTTPWriteable(_ wsi: OpaquePointer) -> Int32 {
        switch connections[wsi] {
        case .exchange(let exchange)?:
            return writeResponse(wsi, exchange)
        case .sse(let client)?:
            return sseWriteable(wsi, client)
        default:
            return 0
        }
    }

    /// Writes the head, then (in the next callback) the body of a pending response.
    private func writeResponse(_ wsi: OpaquePointer, _ exchange: HTTPExchange) -> Int32 {
        guard var response = exchange.response else { return 0 }
        if !response.headSent {
            var headers = response.headers
            if response.closeAfter { headers.append(("connection", "close")) }
            guard LWS.writeHead(wsi, status: response.status, contentType: response.contentType, contentLength: response.body.count, headers: headers) else { return -1 }
            response.headSent = true
            exchange.response = response
            if !response.body.isEmpty && !response.omitBody {
                LWS.requestWritable(wsi)
                return 0
            }
        } else {
            let buffer = WriteBuffer(capacity: response.body.count)
            buffer.append(response.body)
            guard LWS.write(wsi, buffer.start, buffer.count, LWS_WRITE_HTTP_FINAL) else { return -1 }
        }
        connections[wsi] = nil
        if response.closeAfter { return -1 }
        return lws_http_transaction_completed(wsi) != 0 ? -1 : 0
    }

    // MARK: - Static files

    /// Serves a file below the public directory with its MIME type, or a 404.
    private func serveStaticFile(_ wsi: OpaquePointer, path: String, head: Bool) -> Int32 {
        guard let root = publicDirectory else {
            return respond(wsi, error: HeraldError(.notFound, "no such file: \(path)"), status: 404)
        }
        var relative = path
        if relative.hasSuffix("/") { relative += "index.html" }
        // lws has already decoded %xx and collapsed "/../"; refuse anything still odd.
        guard !relative.split(separator: "/").contains(where: { $0 == ".." || $0.hasPrefix(".") }), !relative.contains("\0") else {
            return respond(wsi, error: HeraldError(.notFound, "no such file: \(path)"), status: 404)
        }
        let file = root + relative
        var info = stat()
        if stat(file, &info) != 0 || (info.st_mode & S_IFMT) != S_IFREG {
            if stat(file, &info) == 0, (info.st_mode & S_IFMT) == S_IFDIR {
                return respond(wsi, status: 301, json: [], extraHeaders: [("location", path + "/")])
            }
            return respond(wsi, error: HeraldError(.notFound, "no such file: \(path)"), status: 404)
        }
        if head {
            return respond(wsi, status: 200, json: [], head: true)
        }
        let mime = MIMEType.forPath(relative)
        let extra = "cache-control: no-cache\r\n"
        connections[wsi] = .exchange(HTTPExchange(purpose: .respond))
        let result = lws_serve_http_file(wsi, file, mime, extra, Int32(extra.utf8.count))
        if result < 0 { connections[wsi] = nil; return -1 }
        if result > 0 {
            connections[wsi] = nil
            return lws_http_transaction_completed(wsi) != 0 ? -1 : 0
        }
        return 0
    }
}

/// Content types of the static files Herald serves.
enum MIMEType {
    static func forPath(_ path: String) -> String {
        let ext = path.split(separator: ".").last.map { $0.lowercased() } ?? ""
        switch ext {
        case "html", "htm": return "text/html; charset=utf-8"
        case "js", "mjs": return "text/javascript; charset=utf-8"
        case "css": return "text/css; charset=utf-8"
        case "json": return "application/json"
        case "svg": return "image/svg+xml"
        case "png": return "image/png"
        case "jpg", "jpeg": return "image/jpeg"
        case "gif": return "image/gif"
        case "ico": return "image/x-icon"
        case "webp": return "image/webp"
        case "woff2": return "font/woff2"
        case "woff": return "font/woff"
        case "txt", "md": return "text/plain; charset=utf-8"
        case "yaml", "yml": return "application/yaml"
        case "map": return "application/json"
        case "wasm": return "application/wasm"
        default: return "application/octet-stream"
        }
    }
}
