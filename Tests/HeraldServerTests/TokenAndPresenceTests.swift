import HeraldClient
import HeraldCore
import HeraldServer
import HeraldTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Subscriber JWTs (scope, publish rights) on every transport, demo tokens, and presence
/// over WebSocket, SSE and `GET /v1/presence/{group}` — all over real sockets.
@Suite struct TokenAndPresenceTests {
    static let secret = "test-jwt-secret-0123456789abcdef-0123"

    func config(demo: Bool = false, anonymous: Bool = true) -> HeraldConfig {
        testConfig {
            $0.auth.jwtSecret = Self.secret
            $0.auth.demo = demo
            $0.auth.anonymous = anonymous
            $0.auth.adminKeys = [.init(name: "admin", sha256: HeraldServer.sha256(of: "admin-key"))]
        }
    }

    func token(_ claims: String) -> String {
        HeraldServer.signToken(claims: json(claims), secret: Self.secret)
    }

    var now: Int { Int(time(nil)) }

    @Test func theHMACMatchesThePublishedHS256Vector() {
        // The example token of RFC 7519's companion site jwt.io: HS256 over the secret below.
        let expected =
            "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
        let parts = expected.split(separator: ".")
        let signed = HeraldServer.signToken(
            claims: json(#"{"sub":"1234567890","name":"John Doe","iat":1516239022}"#), secret: "your-256-bit-secret")
        // JSONWriter writes the same members in the same order, so the whole token matches.
        #expect(signed.split(separator: ".")[0] == parts[0])
        #expect(signed == expected)
    }

    @Test func ingestTakesATokenAndEnforcesItsPublishPattern() throws {
        try withTestServer(config()) { server in
            let chat = token(#"{"sub":"ada","exp":\#(now + 60),"herald.publish":{"type":["chat.message"],"from":["ada"]}}"#)
            let ok = try server.publish(#"{"type":"chat.message","from":"ada","text":"hi"}"#, key: chat)
            #expect(ok.status == 202)
            let wrongFrom = try server.publish(#"[{"type":"chat.message","from":"ada"},{"type":"chat.message","from":"bob"}]"#, key: chat)
            #expect(wrongFrom.status == 403)
            #expect(try wrongFrom.json["error"]?["index"] == .number(1))
            // Nothing of the refused batch was kept: the next event gets seq 2.
            #expect(try server.publish(#"{"type":"chat.message","from":"ada"}"#, key: chat).json["accepted"]?[0]?["seq"] == .number(2))
            let noPublish = try server.publish(#"{"type":"chat.message","from":"ada"}"#, key: token(#"{"sub":"ada"}"#))
            #expect(noPublish.status == 403 && noPublish.errorCode == "forbidden")
            let expired = try server.publish(
                #"{"type":"chat.message","from":"ada"}"#, key: token(#"{"exp":\#(now - 120),"herald.publish":{}}"#))
            #expect(expired.status == 401)
            #expect(try expired.json["error"]?["message"] == .string("the token expired"))
            let forged = try server.publish(#"{"type":"chat.message","from":"ada"}"#, key: chat + "x")
            #expect(forged.status == 401 && forged.errorCode == "unauthorized")
            // herald.* types are the gateway's own, even for a publisher key.
            let reserved = try server.publish(#"{"type":"herald.presence","group":"g"}"#)
            #expect(reserved.status == 403 && reserved.errorCode == "forbidden")
        }
    }

    @Test func aTokensScopeNarrowsEverySubscription() throws {
        try withTestServer(config(anonymous: false)) { server in
            let scoped = token(#"{"sub":"ada","herald.scope":{"tenant":["a"]}}"#)
            let ws = try server.webSocket(query: "?token=\(scoped)")
            try ws.send(json: #"{"op":"subscribe","id":"all","filter":{}}"#)
            #expect(try ws.receiveJSON()["type"] == .string("subscribed"))
            let sse = try server.sse(filter: "{}", headers: [("Authorization", "Bearer \(scoped)")])
            #expect(sse.status == 200)
            #expect(try server.publish(#"[{"id":"b1","tenant":"b"},{"id":"a1","tenant":"a"}]"#).status == 202)
            #expect(try ws.receiveJSON()["event"]?["id"] == .string("a1"))
            #expect(try sse.next(timeout: .seconds(5))?.id == "\(server.epoch):2")
            // /v1/clients names the JWT's subject as the user of both connections.
            let clients = try server.request("GET", "/v1/clients", headers: [("Authorization", "Bearer admin-key")]).json["clients"]
            #expect(clients?[0]?["user"] == .string("ada") && clients?[1]?["user"] == .string("ada"))
            #expect(clients?[0]?["publisher"] == .null)
            // Without anonymous access, no token means 401; a bad one too.
            #expect(try server.sse(filter: "{}").status == 401)
            #expect { _ = try server.webSocket(query: "?token=a.b.c") } throws: { _ in true }
        }
    }

    @Test func theAuthOpAcceptsATokenAndRefusesABadOne() throws {
        try withTestServer(config()) { server in
            let ws = try server.webSocket()
            try ws.send(json: #"{"op":"publish","event":{"type":"chat.message","from":"ada"}}"#)
            #expect(try ws.receiveJSON()["code"] == .string("forbidden"))
            try ws.send(json: #"{"op":"auth","token":"\#(token(#"{"sub":"ada","herald.publish":{"from":["ada"]}}"#))"}"#)
            #expect(try ws.receiveJSON() == json(#"{"type":"authenticated","publisher":null,"subject":"ada","expiresAt":null}"#))
            try ws.send(json: #"{"op":"publish","event":{"id":"m1","type":"chat.message","from":"ada"}}"#)
            #expect(try ws.receiveJSON() == json(#"{"type":"published","id":"m1","seq":1,"epoch":"\#(server.epoch)"}"#))
            try ws.send(json: #"{"op":"publish","event":{"type":"chat.message","from":"eve"}}"#)
            #expect(try ws.receiveJSON()["code"] == .string("forbidden"))
            try ws.send(json: #"{"op":"auth","token":"\#(token(#"{"exp":1}"#))"}"#)
            #expect(try ws.receiveJSON()["message"] == .string("the token expired"))
            #expect(try ws.receive(timeout: .seconds(5)) == .close(code: 1008, reason: "invalid token"))
        }
    }

    @Test func demoTokensAreOffUnlessConfiguredAndScopedToTheirNick() throws {
        try withTestServer(config()) { server in
            let off = try server.request("GET", "/v1/demo/token?nick=ada")
            #expect(off.status == 404 && off.errorCode == "not_found")
        }
        try withTestServer(testConfig { $0.auth.demo = true }) { server in
            #expect(try server.request("GET", "/v1/demo/token").status == 400)
            #expect(try server.request("GET", "/v1/demo/token?nick=a%20b").errorCode == "invalid_message")
            #expect(try server.request("GET", "/v1/demo/token?nick=ada&room=" + String(repeating: "r", count: 65)).status == 400)
            let issued = try server.request("GET", "/v1/demo/token?nick=ada&room=lobby").json
            #expect(issued["nick"] == .string("ada") && issued["room"] == .string("lobby"))
            let demo = try #require(issued["token"]?.stringValue)
            #expect(try server.publish(#"{"type":"chat.message","room":"lobby","from":"ada","text":"hi"}"#, key: demo).status == 202)
            #expect(try server.publish(#"{"type":"chat.message","room":"lobby","from":"bob","text":"hi"}"#, key: demo).status == 403)
            #expect(try server.publish(#"{"type":"chat.message","room":"other","from":"ada","text":"hi"}"#, key: demo).status == 403)
            #expect(try server.publish(#"{"type":"alert","room":"lobby","from":"ada"}"#, key: demo).status == 403)

            let ws = try server.webSocket(query: "?token=\(demo)")
            try ws.send(json: #"{"op":"presence.join","group":"chat:other","info":{"nick":"ada"}}"#)
            #expect(try ws.receiveJSON()["code"] == .string("forbidden"))
            try ws.send(json: #"{"op":"presence.join","group":"chat:lobby","info":{"nick":"bob"}}"#)
            #expect(try ws.receiveJSON()["code"] == .string("forbidden"))
            try ws.send(json: #"{"op":"presence.join","group":"chat:lobby","info":{"nick":"ada"}}"#)
            #expect(try ws.receiveJSON() == json(#"{"type":"presence.joined","group":"chat:lobby","seq":2}"#))
        }
    }

    @Test func presenceChangesAreEventsAndTheListFollowsThem() throws {
        try withTestServer(testConfig { $0.auth.demo = true }) { server in
            func demoToken(_ nick: String) throws -> String {
                try #require(try server.request("GET", "/v1/demo/token?nick=\(nick)&room=lobby").json["token"]?.stringValue)
            }
            let watcher = try server.webSocket()
            try watcher.send(json: #"{"op":"subscribe","id":"p","filter":{"type":["herald.presence"],"group":["chat:lobby"]}}"#)
            _ = try watcher.receiveJSON()

            // Anonymous connections may watch but not join.
            try watcher.send(json: #"{"op":"presence.join","group":"chat:lobby"}"#)
            #expect(try watcher.receiveJSON()["code"] == .string("forbidden"))

            let ada = try server.webSocket(query: "?token=\(try demoToken("ada"))")
            try ada.send(json: #"{"op":"presence.join","group":"chat:lobby","info":{"nick":"ada"}}"#)
            #expect(try ada.receiveJSON()["type"] == .string("presence.joined"))
            let join = try watcher.receiveJSON()
            #expect(join["seq"] == .number(1))
            #expect(join["event"]?["action"] == .string("join") && join["event"]?["info"] == json(#"{"nick":"ada"}"#))
            #expect(join["event"]?["count"] == .number(1))

            // A browser on SSE joins for the life of its stream.
            let bobStream = try server.sse(
                filter: #"{"type":["chat.message"]}"#,
                query: [
                    ("token", try demoToken("bob")), ("presence", "chat:lobby"), ("presenceInfo", #"{"nick":"bob"}"#),
                ])
            #expect(bobStream.status == 200)
            #expect(try watcher.receiveJSON()["event"]?["count"] == .number(2))

            #expect(try server.request("GET", "/v1/stats").json["presence"] == json(#"{"groups":1,"members":2}"#))
            let metrics = String(decoding: try server.request("GET", "/metrics").body, as: UTF8.self)
            #expect(metrics.contains("\nherald_presence_members 2\n") && metrics.contains("\nherald_presence_groups 1\n"))
            let list = try server.request("GET", "/v1/presence/chat%3Alobby").json
            #expect(list["group"] == .string("chat:lobby") && list["count"] == .number(2) && list["position"] == .number(2))
            #expect(list["members"]?[0]?["info"] == json(#"{"nick":"ada"}"#) && list["members"]?[0]?["transport"] == .string("ws"))
            #expect(list["members"]?[1]?["info"] == json(#"{"nick":"bob"}"#) && list["members"]?[1]?["transport"] == .string("sse"))

            // A join that the token does not allow refuses the stream.
            let refused = try server.sse(
                filter: "{}", query: [("token", try demoToken("eve")), ("presence", "chat:lobby"), ("presenceInfo", #"{"nick":"bob"}"#)])
            #expect(refused.status == 403)
            #expect(try server.sse(filter: "{}", query: [("presence", "chat:lobby"), ("presenceInfo", "[1]")]).status == 400)

            // Leaving explicitly, and by going away (WebSocket close, SSE stream closed).
            try ada.send(json: #"{"op":"presence.leave","group":"chat:lobby"}"#)
            #expect(try ada.receiveJSON() == json(#"{"type":"presence.left","group":"chat:lobby","seq":3}"#))
            try ada.send(json: #"{"op":"presence.leave","group":"chat:lobby"}"#)
            #expect(try ada.receiveJSON()["code"] == .string("not_a_member"))
            let left = try watcher.receiveJSON()["event"]
            #expect(left?["action"] == .string("leave") && left?["reason"] == .string("left") && left?["count"] == .number(1))
            try ada.send(json: #"{"op":"presence.join","group":"chat:lobby","info":{"nick":"ada"}}"#)
            _ = try watcher.receiveJSON()
            ada.close()
            let gone = try watcher.receiveJSON()["event"]
            #expect(gone?["reason"] == .string("disconnected") && gone?["info"] == json(#"{"nick":"ada"}"#))
            bobStream.close()
            let bobGone = try watcher.receiveJSON(timeout: .seconds(5))["event"]
            #expect(
                bobGone?["reason"] == .string("disconnected") && bobGone?["info"] == json(#"{"nick":"bob"}"#)
                    && bobGone?["count"] == .number(0))
            #expect(try server.request("GET", "/v1/presence/chat:lobby").json["count"] == .number(0))

            // Presence events are kept in history: a late subscriber resumes them.
            let late = try server.webSocket()
            try late.send(json: #"{"op":"subscribe","id":"h","filter":{"type":["herald.presence"]},"since":0}"#)
            _ = try late.receiveJSON()
            var actions: [String] = []
            for _ in 0..<6 { actions.append(try late.receiveJSON()["event"]?["action"]?.stringValue ?? "?") }
            #expect(actions == ["join", "join", "leave", "join", "leave", "leave"])
            #expect(try server.request("POST", "/v1/presence/chat:lobby").status == 405)
            #expect(try server.request("GET", "/v1/presence/").status == 400)
        }
    }
}
