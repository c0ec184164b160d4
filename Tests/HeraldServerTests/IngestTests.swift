import HeraldClient
import HeraldCore
import HeraldTestSupport
import Testing

/// `POST /v1/events` over a real socket: acceptance, ids, sequences, and every error.
@Suite struct IngestTests {
    @Test func acceptsOneEventWithItsIdAndASequenceNumber() throws {
        try withTestServer { server in
            let response = try server.publish(#"{"eventId":"e-1","source":"test","type":"t"}"#)
            #expect(response.status == 202)
            let accepted = try response.json["accepted"]
            #expect(
                accepted == .array([.object([.init("id", .string("e-1")), .init("seq", .number(1)), .init("duplicate", .bool(false))])]))
        }
    }

    @Test func generatesAnIdWhenTheEventHasNone() throws {
        try withTestServer { server in
            let response = try server.publish(#"{"type":"t"}"#)
            let id = try response.json["accepted"].flatMap { if case .array(let a) = $0 { a.first?["id"]?.stringValue } else { nil } }
            #expect(id?.count == 36)
            #expect(id?.split(separator: "-").map(\.count) == [8, 4, 4, 4, 12])
        }
    }

    @Test func acceptsABatchAtomicallyWithIncreasingSequences() throws {
        try withTestServer { server in
            let response = try server.publish(#"[{"id":"a","type":"t"},{"eventId":"b"},{"type":"t"}]"#)
            #expect(response.status == 202)
            guard case .array(let entries)? = try response.json["accepted"] else { throw TestFailure("no accepted array") }
            #expect(entries.map { $0["seq"] } == [.number(1), .number(2), .number(3)])
            #expect(entries.prefix(2).map { $0["id"]?.stringValue } == ["a", "b"])
        }
    }

    @Test func acceptsCloudEventsStructuredBatchAndBinaryModes() throws {
        try withTestServer { server in
            let structured = #"{"specversion":"1.0","id":"ce-1","source":"/payments","type":"payment.completed","data":{"amount":1}}"#
            #expect(try server.publish(structured, contentType: "application/cloudevents+json").status == 202)
            #expect(try server.publish("[\(structured)]", contentType: "application/cloudevents-batch+json").status == 202)
            let missingType = #"{"specversion":"1.0","id":"ce-2","source":"/p"}"#
            let refused = try server.publish(missingType, contentType: "application/cloudevents+json")
            #expect(refused.status == 400)
            #expect(refused.errorCode == "invalid_cloudevent")

            let sse = try server.sse(filter: #"{"type":["device.ready"]}"#)
            let binary = try server.publish(
                #"{"ticket":"R-1"}"#,
                headers: [
                    ("ce-specversion", "1.0"), ("ce-id", "bin-1"), ("ce-source", "/shop"), ("ce-type", "device.ready"),
                ])
            #expect(binary.status == 202)
            let event = try #require(try sse.next(timeout: .seconds(5)))
            #expect(event.event == "device.ready")
            let data = try JSONValue(parsing: event.data)
            #expect(data["id"] == .string("bin-1"))
            #expect(data["data"]?["ticket"] == .string("R-1"))
            #expect(data["datacontenttype"] == .string("application/json"))
        }
    }

    /// Every refusal: status, error code and, where it applies, index and offset.
    @Test(arguments: [
        (#"{"a":1,}"#, 400, "invalid_json"),
        (#"{"a":"\ud800"}"#, 400, "invalid_json"),
        ("", 400, "invalid_json"),
        ("42", 400, "not_an_object"),
        (#"[{"a":1},"x"]"#, 400, "not_an_object"),
        ("[]", 400, "empty_batch"),
        (#"{"id":7}"#, 400, "invalid_event"),
        (#"{"id":""}"#, 400, "invalid_event"),
        (#"{"a":1}{"b":2}"#, 400, "invalid_json"),
    ])
    func refusesInvalidBodies(body: String, status: Int, code: String) throws {
        try withTestServer { server in
            let response = try server.publish(body)
            #expect(response.status == status, "\(response.bodyText)")
            #expect(response.errorCode == code)
            #expect(response.header("content-type") == "application/json")
        }
    }

    @Test func reportsTheIndexAndOffsetOfTheFault() throws {
        try withTestServer { server in
            let response = try server.publish(#"[{"a":1},{"b":tru}]"#)
            #expect(response.status == 400)
            let error = try response.json["error"]
            #expect(error?["offset"] == .number(17), "the byte where the literal \"tru\" went wrong")
            let batch = try server.publish(#"[{"a":1},{"b":2},3]"#)
            #expect(try batch.json["error"]?["index"] == .number(2))
        }
    }

    @Test func refusesByAuthMethodContentTypeAndSize() throws {
        let config = testConfig {
            $0.limits.maxBatchEvents = 3
            $0.limits.maxEventBytes = 100
            $0.limits.maxBodyBytes = 2048
        }
        try withTestServer(config) { server in
            let noKey = try server.publish(#"{"a":1}"#, key: nil)
            #expect(noKey.status == 401)
            #expect(noKey.errorCode == "unauthorized")
            #expect(noKey.header("www-authenticate") == "Bearer")
            #expect(try server.publish(#"{"a":1}"#, key: "wrong").status == 401)

            let text = try server.publish(#"{"a":1}"#, contentType: "text/plain")
            #expect(text.status == 415)
            #expect(text.errorCode == "unsupported_media_type")

            let get = try server.request("GET", "/v1/events")
            #expect(get.status == 405)
            #expect(get.header("allow") == "POST, OPTIONS")

            let batch = try server.publish("[" + Array(repeating: #"{"a":1}"#, count: 4).joined(separator: ",") + "]")
            #expect(batch.status == 413)
            #expect(batch.errorCode == "batch_too_large")

            let big = try server.publish(#"{"text":""# + String(repeating: "x", count: 200) + #""}"#)
            #expect(big.status == 413)
            #expect(big.errorCode == "event_too_large")

            let huge = try server.publish(#"{"text":""# + String(repeating: "x", count: 4000) + #""}"#)
            #expect(huge.status == 413)
            #expect(huge.errorCode == "body_too_large")
        }
    }

    @Test func refusesABodyWithoutContentLength() throws {
        try withTestServer { server in
            let connection = try HTTPConnection(host: server.host, port: server.port)
            defer { connection.close() }
            // Neither Content-Length nor Transfer-Encoding: the body is unknown, so 411 and close.
            let raw =
                "POST /v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(TestServer.publisherKey)\r\nContent-Type: application/json\r\n\r\n"
            let response = try connection.sendRaw(raw)
            #expect(response.status == 411)
            #expect(response.errorCode == "length_required")
        }
    }

    @Test func readsAChunkedBody() throws {
        try withTestServer { server in
            let connection = try HTTPConnection(host: server.host, port: server.port)
            defer { connection.close() }
            // HTTP/1.1 servers must read chunked bodies (RFC 9112 §7.1); the chunks are reassembled.
            let raw =
                "POST /v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(TestServer.publisherKey)\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n{\"a\"\r\n3\r\n:1}\r\n0\r\n\r\n"
            let response = try connection.sendRaw(raw)
            #expect(response.status == 202)
            #expect(try response.json["accepted"]?[0]?["seq"] == .number(1))
            #expect(try server.request("GET", "/healthz").status == 200)
        }
    }

    @Test func keepsTheConnectionUsableAfterARefusal() throws {
        try withTestServer { server in
            let connection = try HTTPConnection(host: server.host, port: server.port)
            defer { connection.close() }
            let headers = [("Authorization", "Bearer \(TestServer.publisherKey)"), ("Content-Type", "application/json")]
            #expect(
                try connection.request("POST", "/v1/events", headers: [("Content-Type", "application/json")], body: #"{"a":1}"#).status
                    == 401)
            #expect(try connection.request("POST", "/v1/events", headers: headers, body: "{bad").status == 400)
            #expect(try connection.request("POST", "/v1/events", headers: headers, body: #"{"a":1}"#).status == 202)
        }
    }

    @Test func nothingOfARejectedBatchIsDelivered() throws {
        try withTestServer { server in
            let ws = try server.webSocket()
            try ws.send(json: #"{"op":"subscribe","id":"all","filter":{}}"#)
            #expect(try ws.receiveJSON()["type"] == .string("subscribed"))
            #expect(try server.publish(#"[{"n":1},{"n":2},{"n":3,}]"#).status == 400)
            #expect(try server.publish(#"[{"n":4},{"id":5}]"#).status == 400)
            #expect(try server.publish(#"{"n":6}"#).status == 202)
            let first = try ws.receiveJSON()
            #expect(first["event"]?["n"] == .number(6))
            #expect(first["seq"] == .number(1), "rejected batches consume no sequence numbers")
        }
    }

    @Test func answersPreflightAndUnknownEndpoints() throws {
        try withTestServer { server in
            let preflight = try server.request("OPTIONS", "/v1/events")
            #expect(preflight.status == 204)
            #expect(preflight.header("access-control-allow-methods") == "POST, OPTIONS")
            let missing = try server.request("GET", "/v1/nothing")
            #expect(missing.status == 404)
            #expect(missing.errorCode == "not_found")
            #expect(try server.request("GET", "/healthz").status == 200)
        }
    }
}
