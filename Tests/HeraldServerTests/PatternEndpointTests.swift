import HeraldClient
import HeraldCore
import HeraldServer
import HeraldTestSupport
import Testing

/// `POST /v1/patterns/test` and `POST /v1/routes/explain` over real sockets.
@Suite struct PatternEndpointTests {
    static let adminKey = "test-admin-key"

    static func config() -> HeraldConfig {
        testConfig {
            $0.auth.adminKeys = [.init(name: "admin", sha256: HeraldServer.sha256(of: adminKey))]
            $0.routes = [.init(name: "chat", pattern: try! Pattern(json(#"{"type":["chat.message"]}"#)))]
        }
    }

    @Test(arguments: [
        (#"{"pattern":{"room":["lobby"]},"event":{"room":"lobby"}}"#, 200, #"{"match":true}"#),
        (#"{"pattern":{"room":["lobby"]},"event":{"room":"ops"}}"#, 200, #"{"match":false}"#),
        (#"{"pattern":{"room":"lobby"},"event":{"room":"ops"}}"#, 400, "invalid_pattern"),
        (#"{"pattern":{"room":["lobby"]},"event":[1]}"#, 400, "not_an_object"),
        (#"{"pattern":{"room":["lobby"]}}"#, 400, "invalid_message"),
        (#"{"event":{}}"#, 400, "invalid_pattern"),
        ("{bad", 400, "invalid_json"),
    ])
    func testsAPattern(body: String, status: Int, expected: String) throws {
        try withTestServer(Self.config()) { server in
            let response = try server.request(
                "POST", "/v1/patterns/test", headers: [("Content-Type", "application/json")], body: Array(body.utf8))
            #expect(response.status == status, "\(response.bodyText)")
            if status == 200 {
                #expect(try response.json == json(expected))
            } else {
                #expect(response.errorCode == expected)
            }
        }
    }

    @Test func invalidPatternErrorsNameThePathInTheRequest() throws {
        try withTestServer(Self.config()) { server in
            let response = try server.request(
                "POST", "/v1/patterns/test", body: Array(#"{"pattern":{"data":{"level":7}},"event":{}}"#.utf8))
            #expect(try response.json["error"]?["path"] == .string("$.pattern.data.level"))
            #expect(try server.request("GET", "/v1/patterns/test").status == 405)
        }
    }

    @Test func explainCountsRecipientsAndNamesTheDecidingField() throws {
        try withTestServer(Self.config()) { server in
            let ws = try server.webSocket()
            try ws.send(json: #"{"op":"subscribe","id":"lobby","route":"chat","filter":{"room":["lobby"]}}"#)
            try ws.send(json: #"{"op":"subscribe","id":"ops","filter":{"room":["ops"],"type":["chat.message"]}}"#)
            try ws.send(json: #"{"op":"subscribe","id":"alerts","route":"chat","filter":{"room":["lobby"]}}"#)
            for _ in 0..<3 { _ = try ws.receiveJSON() }
            let stream = try server.sse(query: [("route", "chat")])
            #expect(stream.status == 200)
            let admin = [("Authorization", "Bearer \(Self.adminKey)")]
            let stats = try server.request("GET", "/v1/clients", headers: admin).json
            guard case .array(let clients)? = stats["clients"],
                let wsClient = clients.first(where: { $0["transport"] == .string("ws") }),
                case .number(let id)? = wsClient["id"]
            else { throw TestFailure("no websocket client listed") }

            let body = #"{"event":{"type":"chat.message","room":"lobby"},"client":\#(Int(id))}"#
            let answer = try server.request("POST", "/v1/routes/explain", headers: admin, body: Array(body.utf8)).json
            #expect(answer["clients"] == .number(2))
            #expect(answer["routes"]?["chat"] == json(#"{"ws":2,"sse":1}"#))
            #expect(answer["routes"]?[""] == json(#"{"ws":0,"sse":0}"#))
            #expect(
                answer["client"]?["subscriptions"]
                    == json(
                        #"""
                        [{"id":"lobby","match":true},
                         {"id":"ops","match":false,"decidedBy":{"pattern":"filter","path":"$.room","condition":["ops"]}},
                         {"id":"alerts","match":true}]
                        """#))

            let other = #"{"event":{"type":"news","room":"lobby"},"client":\#(Int(id))}"#
            let routed = try server.request("POST", "/v1/routes/explain", headers: admin, body: Array(other.utf8)).json
            #expect(routed["client"]?["subscriptions"]?.serializedFirstDecision == "route:$.type")

            #expect(try server.request("POST", "/v1/routes/explain", body: Array(body.utf8)).status == 401)
            let missing = try server.request("POST", "/v1/routes/explain", headers: admin, body: Array(#"{"event":{},"client":999}"#.utf8))
            #expect(missing.status == 404)
        }
    }
}

extension JSONValue {
    /// "pattern:path" of the first subscription's `decidedBy`, for compact expectations.
    fileprivate var serializedFirstDecision: String? {
        guard case .array(let rows) = self, let decided = rows.first?["decidedBy"] else { return nil }
        return "\(decided["pattern"]?.stringValue ?? ""):\(decided["path"]?.stringValue ?? "")"
    }
}
