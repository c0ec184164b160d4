import HeraldClient
import HeraldCore
import HeraldTestSupport
import Testing

/// WebSocket and SSE subscribers over real sockets: routing by filter and route, frames,
/// ordering, and the protocol's errors.
@Suite struct SubscriptionTests {
    static let events = [
        #"{"type":"chat.message","room":"lobby","from":"ada","text":"hi"}"#,
        #"{"type":"chat.message","room":"ops","from":"bob","text":"deploy"}"#,
        #"{"eventType":"VibrationRecorded","data":{"sensorId":"VB-1","difference":8.5}}"#,
        #"{"type":"chat.message","room":"lobby","from":"bob","text":"hello","mentions":["ada","cy"]}"#,
        #"{"type":"presence","room":"lobby"}"#,
    ]

    @Test func anSSEStreamAdvisesAJitteredRetryThatIsNotAnEvent() throws {
        try withTestServer { server in
            let stream = try server.sse(filter: #"{"type":["t"]}"#)
            #expect(try server.publish(#"{"type":"t","n":1}"#).status == 202)
            let first = try #require(try stream.next(timeout: .seconds(5)))
            #expect(first.data.contains(#""n":1"#), "the advice block is not returned as an event")
            #expect((1000...5000).contains(try #require(stream.retry)))
            stream.close()
        }
    }

    @Test func subscribersReceiveExactlyTheMatchingEventsInOrder() throws {
        try withTestServer(testConfig { $0.routes = [.init(name: "chat", pattern: try! Pattern(json(#"{"type":["chat.message"]}"#)))] }) {
            server in
            let lobby = try server.webSocket()
            try lobby.send(json: #"{"op":"subscribe","id":"lobby","filter":{"room":["lobby"]}}"#)
            #expect(try lobby.receiveJSON() == json(#"{"type":"subscribed","id":"lobby","position":0,"epoch":"\#(server.epoch)"}"#))
            let chat = try server.sse(query: [("route", "chat")])
            #expect(chat.status == 200)
            #expect(chat.header("content-type") == "text/event-stream")
            let sensors = try server.sse(filter: #"{"data":{"sensorId":["VB-1"]}}"#)
            let mentions = try server.sse(filter: #"{"mentions":["ada"]}"#)

            for event in Self.events { #expect(try server.publish(event).status == 202) }

            var lobbySeqs: [Double] = []
            for _ in 0..<3 {
                let message = try lobby.receiveJSON()
                #expect(message["type"] == .string("event"))
                #expect(message["subs"] == .array([.string("lobby")]))
                if case .number(let seq)? = message["seq"] { lobbySeqs.append(seq) }
            }
            #expect(lobbySeqs == [1, 4, 5])

            let chatIDs = try (0..<3).map { _ in try #require(try chat.next(timeout: .seconds(5))).id }
            #expect(chatIDs == ["1", "2", "4"].map { "\(server.epoch):\($0)" })
            let sensor = try #require(try sensors.next(timeout: .seconds(5)))
            #expect(sensor.id == "\(server.epoch):3")
            #expect(sensor.event == "VibrationRecorded")
            #expect(sensor.data == #"{"eventType":"VibrationRecorded","data":{"sensorId":"VB-1","difference":8.5}}"#)
            #expect(try #require(try mentions.next(timeout: .seconds(5))).id == "\(server.epoch):4")

            // Nothing more arrives for anyone: one more event that matches only "lobby".
            #expect(try server.publish(#"{"room":"lobby"}"#).status == 202)
            #expect(try lobby.receiveJSON()["seq"] == .number(6))
            #expect(throws: ClientError.self) { try sensors.next(timeout: .milliseconds(300)) }
        }
    }

    @Test func anEventMatchingSeveralSubscriptionsIsSentOnceWithAllTheirIds() throws {
        try withTestServer { server in
            let ws = try server.webSocket()
            try ws.send(json: #"{"op":"subscribe","id":"a","filter":{"room":["lobby"]}}"#)
            try ws.send(json: #"{"op":"subscribe","id":"b","filter":{"type":["chat.message"]}}"#)
            try ws.send(json: #"{"op":"subscribe","id":"c","filter":{"type":["other"]}}"#)
            for _ in 0..<3 { #expect(try ws.receiveJSON()["type"] == .string("subscribed")) }
            #expect(try server.publish(Self.events[0]).status == 202)
            let message = try ws.receiveJSON()
            #expect(message == json(#"{"type":"event","subs":["a","b"],"seq":1,"event":\#(Self.events[0])}"#))
        }
    }

    @Test func sseFramesAreExactAndNameTheEventType() throws {
        try withTestServer { server in
            let stream = try server.sse(filter: "{}")
            #expect(
                try server.publish(
                    #"{"specversion":"1.0","id":"x","source":"s","type":"payment.completed"}"#, contentType: "application/cloudevents+json"
                ).status == 202)
            #expect(try server.publish(#"{"detail-type":"Order Placed"}"#).status == 202)
            #expect(try server.publish("{\n  \"plain\": true\n}").status == 202)
            let first = try #require(try stream.next(timeout: .seconds(5)))
            #expect(
                first
                    == SSEStream.Event(
                        id: "\(server.epoch):1", event: "payment.completed",
                        data: #"{"specversion":"1.0","id":"x","source":"s","type":"payment.completed"}"#, comments: []))
            #expect(try stream.next(timeout: .seconds(5))?.event == "Order Placed")
            let third = try #require(try stream.next(timeout: .seconds(5)))
            #expect(third.event == "message")
            #expect(third.data == #"{"plain":true}"#, "pretty-printed events are compacted onto one data line")
        }
    }

    @Test func unsubscribeStopsDelivery() throws {
        try withTestServer { server in
            let ws = try server.webSocket()
            try ws.send(json: #"{"op":"subscribe","id":"s","filter":{}}"#)
            _ = try ws.receiveJSON()
            try ws.send(json: #"{"op":"unsubscribe","id":"s"}"#)
            #expect(try ws.receiveJSON() == json(#"{"type":"unsubscribed","id":"s"}"#))
            #expect(try server.publish(#"{"a":1}"#).status == 202)
            try ws.send(json: #"{"op":"ping"}"#)
            #expect(try ws.receiveJSON() == json(#"{"type":"pong"}"#), "no event was queued before the pong")
        }
    }

    /// A malformed or refused message gets an error frame; the connection stays open.
    @Test(arguments: [
        ("not json", "invalid_message", nil as String?),
        (#"[1,2]"#, "invalid_message", nil),
        (#"{"id":"x"}"#, "invalid_message", "x"),
        (#"{"op":"dance","id":"d"}"#, "unknown_op", "d"),
        (#"{"op":"subscribe","id":"p","filter":{"a":"b"}}"#, "invalid_pattern", "p"),
        (#"{"op":"subscribe","id":"p","filter":{"a":[{"wildcard":"x**"}]}}"#, "invalid_pattern", "p"),
        (#"{"op":"subscribe","id":"p","filter":{"a":[{"numeric":[">",5,"<"]}]}}"#, "invalid_pattern", "p"),
        (#"{"op":"subscribe","id":"p","filter":{"a":[]}}"#, "invalid_pattern", "p"),
        (#"{"op":"subscribe","id":"r","route":"nope"}"#, "unknown_route", "r"),
        (#"{"op":"subscribe","id":"n"}"#, "invalid_message", "n"),
        (#"{"op":"subscribe","id":"","filter":{}}"#, "invalid_message", ""),
        (#"{"op":"unsubscribe","id":"ghost"}"#, "unknown_subscription", "ghost"),
        (#"{"op":"publish","event":{"a":1}}"#, "forbidden", nil),
    ])
    func malformedMessagesGetAnErrorFrame(message: String, code: String, id: String?) throws {
        try withTestServer { server in
            let ws = try server.webSocket()
            try ws.send(json: message)
            let error = try ws.receiveJSON()
            #expect(error["type"] == .string("error"))
            #expect(error["code"] == .string(code))
            #expect(error["id"]?.stringValue == id)
            #expect(error["message"]?.stringValue?.isEmpty == false)
            try ws.send(json: #"{"op":"ping"}"#)
            #expect(try ws.receiveJSON()["type"] == .string("pong"))
        }
    }

    @Test func duplicateIdsAndTheSubscriptionLimitAreRefused() throws {
        try withTestServer(testConfig { $0.limits.maxSubscriptionsPerConnection = 2 }) { server in
            let ws = try server.webSocket()
            try ws.send(json: #"{"op":"subscribe","id":"a","filter":{}}"#)
            try ws.send(json: #"{"op":"subscribe","id":"a","filter":{}}"#)
            try ws.send(json: #"{"op":"subscribe","id":"b","filter":{}}"#)
            try ws.send(json: #"{"op":"subscribe","id":"c","filter":{}}"#)
            #expect(try ws.receiveJSON()["type"] == .string("subscribed"))
            #expect(try ws.receiveJSON()["code"] == .string("duplicate_subscription"))
            #expect(try ws.receiveJSON()["type"] == .string("subscribed"))
            #expect(try ws.receiveJSON()["code"] == .string("too_many_subscriptions"))
        }
    }

    @Test func binaryFramesAreRefusedAndOversizedMessagesClose1009() throws {
        try withTestServer(testConfig { $0.limits.maxBodyBytes = 4096 }) { server in
            let ws = try server.webSocket()
            try ws.send(binary: [1, 2, 3])
            #expect(try ws.receiveJSON()["code"] == .string("invalid_message"))
            try ws.send(text: #"{"op":"ping","pad":""# + String(repeating: "x", count: 5000) + #""}"#)
            #expect(try ws.receive(timeout: .seconds(5)) == .close(code: 1009, reason: "message larger than 4096 bytes"))
        }
    }

    @Test func publishingOverTheWebSocketNeedsAPublisherKey() throws {
        try withTestServer { server in
            let ws = try server.webSocket()
            try ws.send(json: #"{"op":"subscribe","id":"s","filter":{"room":["lobby"]}}"#)
            _ = try ws.receiveJSON()
            try ws.send(json: #"{"op":"auth","token":"\#(TestServer.publisherKey)"}"#)
            #expect(try ws.receiveJSON() == json(#"{"type":"authenticated","publisher":"test","subject":null,"expiresAt":null}"#))
            try ws.send(json: #"{"op":"publish","event":{"id":"w1","room":"lobby"}}"#)
            let event = try ws.receiveJSON()
            #expect(event["event"] == json(#"{"id":"w1","room":"lobby"}"#))
            #expect(try ws.receiveJSON() == json(#"{"type":"published","id":"w1","seq":1,"epoch":"\#(server.epoch)"}"#))
            try ws.send(json: #"{"op":"publish","event":[1]}"#)
            #expect(try ws.receiveJSON()["code"] == .string("not_an_object"))

            let other = try server.webSocket(query: "?token=\(TestServer.publisherKey)")
            try other.send(json: #"{"op":"publish","event":{"room":"lobby"}}"#)
            #expect(try other.receiveJSON()["type"] == .string("published"))
            #expect(try ws.receiveJSON()["seq"] == .number(2))
        }
    }

    @Test func badTokensAreRefusedEvenWhenAnonymousAccessIsAllowed() throws {
        try withTestServer { server in
            #expect { _ = try server.webSocket(headers: [("Authorization", "Bearer nope")]) } throws: {
                ($0 as? ClientError)?.httpStatus == 401
            }
            #expect(try server.sse(filter: "{}", query: [("token", "nope")]).status == 401)
            let ws = try server.webSocket()
            try ws.send(json: #"{"op":"auth","token":"nope"}"#)
            #expect(try ws.receiveJSON()["code"] == .string("unauthorized"))
            guard case .close(let code, _) = try ws.receive(timeout: .seconds(5)) else { throw TestFailure("expected a close") }
            #expect(code == 1008)
        }
    }

    @Test func withoutAnonymousAccessSubscribersNeedAToken() throws {
        try withTestServer(testConfig { $0.auth.anonymous = false }) { server in
            let refused = try server.sse(filter: "{}")
            #expect(refused.status == 401)
            #expect(refused.errorBodyText.contains("unauthorized"))
            #expect { _ = try server.webSocket() } throws: { ($0 as? ClientError)?.httpStatus == 401 }
            #expect(try server.sse(filter: "{}", headers: [("Authorization", "Bearer \(TestServer.publisherKey)")]).status == 200)
            _ = try server.webSocket(query: "?token=\(TestServer.publisherKey)")
        }
    }

    @Test func sseRefusesBadSubscriptionsWithA400() throws {
        try withTestServer { server in
            let invalid = try server.sse(filter: #"{"a":"b"}"#)
            #expect(invalid.status == 400)
            #expect(invalid.errorBodyText.contains("invalid_pattern"))
            #expect(invalid.errorBodyText.contains("$.a"))
            #expect(try server.sse(filter: "{bad").status == 400)
            #expect(try server.sse(query: [("route", "missing")]).status == 400)
            #expect(try server.sse().status == 400)
            #expect(try server.request("POST", "/v1/sse").status == 405)
        }
    }

    @Test func upgradesElsewhereAndPlainRequestsToTheSocketAreRefused() throws {
        try withTestServer { (server: TestServer) throws in
            #expect {
                _ = try WebSocketClient(host: server.host, port: server.port, path: "/elsewhere", subprotocols: ["herald.v1"])
            } throws: {
                ($0 as? ClientError)?.httpStatus == 404
            }
            #expect(try server.request("GET", "/v1/ws").status == 426)
            #expect { _ = try server.webSocket(query: "?route=nope") } throws: { ($0 as? ClientError)?.httpStatus == 400 }
        }
    }
}
