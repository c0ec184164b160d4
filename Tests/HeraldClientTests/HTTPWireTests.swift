import Testing

@testable import HeraldClient

@Suite struct HTTPWireTests {
    private func parseHead(_ text: String) throws(ClientError) -> HTTPResponseHead {
        let bytes = Array(text.utf8)
        let result = bytes.withUnsafeBufferPointer { buffer in
            Result { () throws(ClientError) -> HTTPResponseHead in try HTTPResponseHead.parse(buffer) }
        }
        return try result.get()
    }

    private func findEnd(_ text: String, from start: Int = 0) -> Int? {
        Array(text.utf8).withUnsafeBufferPointer { HTTPResponseHead.findEnd(in: $0, from: start) }
    }

    @Test func headParsing() throws {
        let head = try parseHead(
            "HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\nX-Multi:  a ,b \r\nX-Multi: c\r\n"
                + "X-Folded: one\r\n  two\r\nEmpty:\r\n\r\n")
        #expect(head.version == "HTTP/1.1")
        #expect(head.status == 202)
        #expect(head.reason == "Accepted")
        #expect(head.header("content-type") == "application/json")
        #expect(head.header("CONTENT-TYPE") == "application/json")
        #expect(head.tokens("x-multi") == ["a", "b", "c"])
        #expect(head.header("x-folded") == "one two")
        #expect(head.header("empty") == "")
        #expect(!head.closesConnection)

        let noReason = try parseHead("HTTP/1.1 204\r\n\r\n")
        #expect(noReason.status == 204 && noReason.reason == "")
        #expect(try parseHead("HTTP/1.0 200 OK\r\n\r\n").closesConnection)
        #expect(!(try parseHead("HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\n\r\n").closesConnection))
        #expect(try parseHead("HTTP/1.1 400 Bad\r\nConnection: foo, Close\r\n\r\n").closesConnection)

        #expect(throws: ClientError.self) { try parseHead("HTP/1.1 200 OK\r\n\r\n") }
        #expect(throws: ClientError.self) { try parseHead("HTTP/1.1 2000 OK\r\n\r\n") }
        #expect(throws: ClientError.self) { try parseHead("HTTP/1.1 200 OK\r\nno colon here\r\n\r\n") }
        #expect(throws: ClientError.self) { try parseHead("HTTP/1.1 200 OK\r\nbad name: x\r\n\r\n") }
    }

    @Test func headEnd() {
        #expect(findEnd("HTTP/1.1 200 OK\r\nA: b\r\n\r\nbody") == 25)
        #expect(findEnd("HTTP/1.1 200 OK\nA: b\n\nbody") == 22)
        #expect(findEnd("HTTP/1.1 200 OK\r\nA: b\r\n") == nil)
    }

    @Test func bodyFraming() throws {
        func framing(_ head: String, method: String = "GET") throws -> BodyFraming {
            try BodyFraming.of(try parseHead(head), requestMethod: method)
        }
        #expect(try framing("HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n") == .contentLength(12))
        #expect(try framing("HTTP/1.1 200 OK\r\nContent-Length: 12, 12\r\n\r\n") == .contentLength(12))
        #expect(try framing("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n") == .chunked)
        #expect(try framing("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n") == .untilClose)
        #expect(try framing("HTTP/1.1 200 OK\r\n\r\n") == .untilClose)
        #expect(try framing("HTTP/1.1 204 No Content\r\n\r\n") == .none)
        #expect(try framing("HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n") == .none)
        #expect(try framing("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n", method: "HEAD") == .none)
        #expect(throws: ClientError.self) { try framing("HTTP/1.1 200 OK\r\nContent-Length: 1, 2\r\n\r\n") }
        #expect(throws: ClientError.self) { try framing("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n") }
    }

    @Test func requestSerialization() throws {
        let bytes = try buildRequest(
            method: "POST", target: "/v1/events", hostHeader: "127.0.0.1:8080",
            headers: [("Authorization", "Bearer k"), ("Content-Type", "application/json")],
            body: Array("{}".utf8), defaultHeaders: [("User-Agent", "x"), ("Content-Type", "ignored")])
        #expect(
            String(decoding: bytes, as: UTF8.self)
                == "POST /v1/events HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: x\r\nAuthorization: Bearer k\r\n"
                + "Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}")
        #expect(throws: ClientError.self) {
            try buildRequest(method: "GET", target: "/", hostHeader: "h", headers: [("X", "a\r\nB: c")], body: nil)
        }
        #expect(throws: ClientError.self) {
            try buildRequest(method: "GET", target: "/a b", hostHeader: "h", headers: [], body: nil)
        }
    }
}

@Suite struct EndpointURLTests {
    @Test func parsesHTTPAndWS() throws {
        let a = try EndpointURL(parsing: "http://127.0.0.1:8080/v1/events")
        #expect(a == EndpointURL(scheme: .http, host: "127.0.0.1", port: 8080, path: "/v1/events"))
        let b = try EndpointURL(parsing: "ws://localhost:9000/v1/ws?token=abc#frag")
        #expect(b == EndpointURL(scheme: .ws, host: "localhost", port: 9000, path: "/v1/ws?token=abc"))
        let c = try EndpointURL(parsing: "HTTP://example.com")
        #expect(c == EndpointURL(scheme: .http, host: "example.com", port: 80, path: "/"))
        let d = try EndpointURL(parsing: "http://example.com?x=1")
        #expect(d.path == "/?x=1")
        let e = try EndpointURL(parsing: "ws://[::1]:7000/")
        #expect(e.host == "::1" && e.port == 7000 && e.hostAndPort == "[::1]:7000")
        #expect(e.description == "ws://[::1]:7000/")
        let f = try EndpointURL(parsing: "  http://h:1/  ")
        #expect(f.port == 1)
    }

    @Test func tlsSchemesDefaultToPort443() throws {
        let https = try EndpointURL(parsing: "https://example.com/")
        #expect(https.scheme == .https && https.scheme.isSecure && https.port == 443)
        let wss = try EndpointURL(parsing: "WSS://example.com:8443/v1/ws")
        #expect(wss.scheme == .wss && wss.port == 8443 && wss.path == "/v1/ws")
        #expect(try EndpointURL(parsing: "http://h/").scheme.isSecure == false)
        #expect(EndpointURL.Scheme.https.asWebSocket == .wss && EndpointURL.Scheme.http.asWebSocket == .ws)
        #expect(EndpointURL.Scheme.wss.asHTTP == .https && EndpointURL.Scheme.ws.asHTTP == .http)
    }

    @Test(arguments: [
        "127.0.0.1:8080/x", "ftp://h/", "http://", "http://:80/", "http://h:0/", "http://h:65536/", "http://h:8a/",
        "http://h:/", "http://user@h/", "http://[::1/", "http://h/a b",
    ])
    func rejectsInvalid(url: String) {
        #expect(throws: ClientError.self) { try EndpointURL(parsing: url) }
    }
}
