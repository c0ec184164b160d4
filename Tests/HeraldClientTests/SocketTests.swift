// Client against tiny in-process servers over real sockets on 127.0.0.1.

import HeraldClient
import HeraldCore
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

private func response(_ status: String, headers: [String] = [], body: String = "", contentLength: Bool = true) -> String {
    var text = "HTTP/1.1 \(status)\r\n"
    for header in headers { text += header + "\r\n" }
    if contentLength { text += "Content-Length: \(body.utf8.count)\r\n" }
    return text + "\r\n" + body
}

private func headerValue(_ name: String, in head: String) -> String? {
    for line in head.split(separator: "\r\n") {
        let parts = line.split(separator: ":", maxSplits: 1)
        if parts.count == 2, parts[0].lowercased() == name.lowercased() {
            return parts[1].trimmingPrefix(" ").description
        }
    }
    return nil
}

private func sleepMillis(_ ms: Int) { usleep(UInt32(ms * 1000)) }

@Suite struct HTTPSocketTests {
    @Test func keepAliveFramingsAndReconnect() throws {
        let server = TestServer(connections: 2) { conn, index in
            if index == 0 {
                // 1: POST with a body → echo head line + body with Content-Length.
                guard let head = conn.readHead(), let length = headerValue("content-length", in: head).flatMap({ Int($0) }),
                    let body = conn.readExactly(length)
                else { return }
                let firstLine = head.split(separator: "\r\n").first.map(String.init) ?? ""
                conn.write(response("200 OK", body: firstLine + "|" + String(decoding: body, as: UTF8.self)))
                // 2: GET → chunked.
                guard conn.readHead() != nil else { return }
                conn.write("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
                conn.write("4\r\nWiki\r\n")
                sleepMillis(20)
                conn.write("5\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\n\r\n")
                // 3: GET → Connection: close.
                guard conn.readHead() != nil else { return }
                conn.write(response("200 OK", headers: ["Connection: close"], body: "bye"))
            } else {
                // 4: a new connection; body delimited by close.
                guard conn.readHead() != nil else { return }
                conn.write(response("200 OK", body: "until close", contentLength: false))
            }
        }
        defer { server.stop() }

        let connection = try HTTPConnection(host: "127.0.0.1", port: server.port, timeout: .seconds(5))
        let first = try connection.request(
            "POST", "/v1/events", headers: [("Content-Type", "application/json")], body: Array("{\"a\":1}".utf8))
        #expect(first.status == 200)
        #expect(first.bodyText == "POST /v1/events HTTP/1.1|{\"a\":1}")
        #expect(first.header("Content-Length") == "\(first.body.count)")

        let second = try connection.request("GET", "/chunked")
        #expect(second.bodyText == "Wikipedia in\r\n\r\nchunks.")
        #expect(second.header("transfer-encoding") == "chunked")

        let third = try connection.request("GET", "/close")
        #expect(third.bodyText == "bye")
        #expect(!connection.isOpen)
        #expect(connection.connectionCount == 1)

        let fourth = try connection.request("GET", "/again")
        #expect(fourth.bodyText == "until close")
        #expect(connection.connectionCount == 2)
        #expect(!connection.isOpen)
    }

    @Test func reconnectsAfterIdleCloseAndSkipsInterimResponses() throws {
        let server = TestServer(connections: 2) { conn, index in
            guard conn.readHead() != nil else { return }
            if index == 0 {
                conn.write(response("200 OK", body: "one"))  // then closes without saying so
            } else {
                conn.write("HTTP/1.1 100 Continue\r\n\r\n")
                conn.write(response("201 Created", headers: ["X-Test: yes"], body: "two"))
                _ = conn.waitForEOF()
            }
        }
        defer { server.stop() }

        let connection = try HTTPConnection(host: "127.0.0.1", port: server.port, timeout: .seconds(5))
        #expect(try connection.request("GET", "/").bodyText == "one")
        sleepMillis(100)
        let second = try connection.request("PUT", "/", body: [1, 2, 3])
        #expect(second.status == 201 && second.bodyText == "two" && second.header("x-test") == "yes")
        #expect(connection.connectionCount == 2)
        connection.close()
    }

    @Test func oneShotAndRaw() throws {
        let server = TestServer(connections: 2) { conn, index in
            guard let head = conn.readHead() else { return }
            if index == 0 {
                let connectionHeader = headerValue("connection", in: head) ?? "-"
                let host = headerValue("host", in: head) ?? "-"
                conn.write(response("200 OK", headers: ["Connection: close"], body: connectionHeader + " " + host))
            } else {
                conn.write(response("400 Bad Request", headers: ["Connection: close"], body: "{\"error\":{}}"))
            }
        }
        defer { server.stop() }

        let oneShot = try HTTPClient.request(url: "http://127.0.0.1:\(server.port)/healthz")
        #expect(oneShot.bodyText == "close 127.0.0.1:\(server.port)")

        let connection = try HTTPConnection(host: "127.0.0.1", port: server.port)
        let raw = try connection.sendRaw("BROKEN REQUEST\r\n\r\n")
        #expect(raw.status == 400)
        #expect(raw.reason == "Bad Request")
    }

    @Test func earlyResponseBeforeBodyIsRead() throws {
        let server = TestServer { conn, _ in
            guard conn.readHead() != nil else { return }
            conn.write(response("413 Payload Too Large", headers: ["Connection: close"], body: "too large"))
            _ = shutdown(conn.fd, Int32(SHUT_WR))
            _ = conn.waitForEOF()  // drain, so the kernel does not reset the connection
        }
        defer { server.stop() }

        let connection = try HTTPConnection(host: "127.0.0.1", port: server.port, timeout: .seconds(10))
        let big = [UInt8](repeating: UInt8(ascii: "x"), count: 32 * 1024 * 1024)
        let answer = try connection.request("POST", "/v1/events", body: big)
        #expect(answer.status == 413)
        #expect(answer.bodyText == "too large")
        #expect(!connection.isOpen)
    }

    @Test func errors() throws {
        // Refused.
        do {
            _ = try HTTPConnection(host: "127.0.0.1", port: unusedPort())
            Issue.record("connect succeeded")
        } catch {
            #expect(error.kind == .connect)
        }

        // Unresolvable.
        #expect(throws: ClientError.self) { try HTTPConnection(host: "no-such-host.invalid", port: 80) }

        // Timeout, then EOF without an answer, then EOF mid-body.
        let server = TestServer(connections: 3) { conn, index in
            guard conn.readHead() != nil else { return }
            switch index {
            case 0: _ = conn.waitForEOF()
            case 1: return
            default: conn.write("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort")
            }
        }
        defer { server.stop() }

        let connection = try HTTPConnection(host: "127.0.0.1", port: server.port, timeout: .milliseconds(300))
        let start = ContinuousClock.now
        do {
            _ = try connection.request("GET", "/slow")
            Issue.record("no timeout")
        } catch {
            #expect(error.isTimeout)
            #expect(ContinuousClock.now - start < .seconds(3))
        }
        #expect(!connection.isOpen)

        do {
            _ = try connection.request("GET", "/hangup")
            Issue.record("no error")
        } catch {
            #expect(error.isEOF)
            #expect(error.message.contains("before a response"))
        }

        do {
            _ = try connection.request("GET", "/short")
            Issue.record("no error")
        } catch {
            #expect(error.isEOF)
            #expect(error.message.contains("5 of 100"))
        }

        #expect(throws: ClientError.self) { try connection.request("GET", "/x", headers: [("Bad", "a\nb")]) }
    }
}

@Suite struct SSESocketTests {
    @Test func chunkedStreamSplitAwkwardly() throws {
        let server = TestServer { conn, _ in
            guard let head = conn.readHead() else { return }
            let accept = headerValue("accept", in: head) ?? ""
            let lastID = headerValue("last-event-id", in: head) ?? ""
            conn.write(
                "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
                    + "Transfer-Encoding: chunked\r\n\r\n")
            let body = ": \(accept) \(lastID)\n\nid: 42\nevent: chat\ndata: {\"a\":\r\ndata: 1}\n\n: hb\n\nid: 43\ndata: x\n\n"
            let bytes = Array(body.utf8)
            // Chunks that cut lines, CRLFs and the chunk framing itself across writes.
            var index = 0
            for size in [3, 1, 7, 11, 2, 19, 5, 100] where index < bytes.count {
                let end = min(index + size, bytes.count)
                let chunk = Array(bytes[index..<end])
                let frame = Array(String(chunk.count, radix: 16).utf8) + [13, 10] + chunk + [13, 10]
                for piece in [Array(frame.prefix(2)), Array(frame.dropFirst(2))] where !piece.isEmpty {
                    conn.write(piece)
                    sleepMillis(2)
                }
                index = end
            }
            conn.write("0\r\n\r\n")
            _ = conn.waitForEOF()
        }
        defer { server.stop() }

        let stream = try SSEStream(
            host: "127.0.0.1", port: server.port, path: "/v1/sse?filter=%7B%7D", headers: [("Last-Event-ID", "41")])
        #expect(stream.status == 200)
        #expect(stream.header("content-type") == "text/event-stream")
        #expect(try stream.next(timeout: .seconds(5)) == SSEEvent(comments: ["text/event-stream 41"]))
        #expect(try stream.next(timeout: .seconds(5)) == SSEEvent(id: "42", event: "chat", data: "{\"a\":\n1}"))
        let heartbeat = try stream.next(timeout: .seconds(5))
        #expect(heartbeat?.comments == ["hb"])
        #expect(heartbeat?.isCommentOnly == true)
        #expect(try stream.next(timeout: .seconds(5)) == SSEEvent(id: "43", data: "x"))
        #expect(try stream.next(timeout: .seconds(5)) == nil)
        #expect(stream.lastEventID == "43")
        #expect(try stream.next(timeout: .seconds(1)) == nil)
    }

    @Test func streamUntilCloseAndTimeout() throws {
        let server = TestServer { conn, _ in
            guard conn.readHead() != nil else { return }
            conn.write("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\ndata: first\n\n")
            sleepMillis(400)
            conn.write("data: second\n\ndata: partial")
        }
        defer { server.stop() }

        let stream = try SSEStream(url: "http://127.0.0.1:\(server.port)/v1/sse")
        #expect(try stream.next(timeout: .seconds(5))?.data == "first")
        do {
            _ = try stream.next(timeout: .milliseconds(100))
            Issue.record("no timeout")
        } catch {
            #expect(error.isTimeout)
        }
        #expect(try stream.next(timeout: .seconds(5))?.data == "second")
        #expect(try stream.next(timeout: .seconds(5)) == nil)  // the partial block is dropped
    }

    @Test func refusedStreamAndMidChunkEOF() throws {
        let server = TestServer(connections: 2) { conn, index in
            guard conn.readHead() != nil else { return }
            if index == 0 {
                conn.write(response("401 Unauthorized", headers: ["Content-Type: application/json"], body: "{\"error\":1}"))
            } else {
                conn.write("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\ndata: abc")
            }
        }
        defer { server.stop() }

        let refused = try SSEStream(host: "127.0.0.1", port: server.port, path: "/v1/sse")
        #expect(refused.status == 401)
        #expect(refused.errorBodyText == "{\"error\":1}")
        do {
            _ = try refused.next(timeout: .seconds(1))
            Issue.record("no error")
        } catch {
            #expect(error.kind == .httpStatus && error.httpStatus == 401)
        }

        let truncated = try SSEStream(host: "127.0.0.1", port: server.port, path: "/v1/sse")
        do {
            _ = try truncated.next(timeout: .seconds(5))
            Issue.record("no error")
        } catch {
            #expect(error.isEOF)
        }
    }
}

// MARK: - WebSocket

/// Server side of the opening handshake; returns the request head.
@discardableResult
/// `subprotocol` is selected when the client offered it, or always with `force`.
private func acceptWebSocket(
    _ conn: TestConnection, accept: String? = nil, subprotocol: String? = nil, force: Bool = false
) -> String? {
    guard let head = conn.readHead(), let key = headerValue("sec-websocket-key", in: head) else { return nil }
    var headers = [
        "Upgrade: websocket", "Connection: Upgrade",
        "Sec-WebSocket-Accept: \(accept ?? WebSocketHandshake.acceptValue(forKey: key))",
    ]
    let offered = (headerValue("sec-websocket-protocol", in: head) ?? "").split(separator: ",").map {
        $0.trimmingPrefix(" ").description
    }
    if let subprotocol, force || offered.contains(subprotocol) { headers.append("Sec-WebSocket-Protocol: \(subprotocol)") }
    conn.write(response("101 Switching Protocols", headers: headers, contentLength: false))
    return head
}

private func serverFrame(_ opcode: UInt8, _ payload: [UInt8], fin: Bool = true) -> [UInt8] {
    WebSocketFrame.encode(opcode: opcode, payload: payload, fin: fin)
}

@Suite struct WebSocketSocketTests {
    /// Echo server: fragments long messages (with a ping in between), answers pings,
    /// starts the close handshake on "bye", and refuses unmasked client frames.
    private static func echoServer() -> TestServer {
        TestServer { conn, _ in
            guard let head = acceptWebSocket(conn, subprotocol: "herald.v1") else { return }
            guard head.contains("Sec-WebSocket-Version: 13") else { return }
            while let frame = conn.readFrame() {
                guard frame.isMasked else {
                    conn.write(serverFrame(WebSocketFrame.close, WebSocketFrame.closePayload(code: 1002)))
                    return
                }
                switch frame.opcode {
                case WebSocketFrame.text where frame.payload == Array("bye".utf8):
                    conn.write(serverFrame(WebSocketFrame.close, WebSocketFrame.closePayload(code: 4000, reason: "overflow")))
                case WebSocketFrame.text, WebSocketFrame.binary:
                    let payload = frame.payload
                    if payload.count > 10 {
                        let third = payload.count / 3
                        conn.write(serverFrame(frame.opcode, Array(payload[0..<third]), fin: false))
                        conn.write(serverFrame(WebSocketFrame.ping, Array("are you there".utf8)))
                        conn.write(serverFrame(WebSocketFrame.continuation, Array(payload[third..<(2 * third)]), fin: false))
                        conn.write(serverFrame(WebSocketFrame.pong, []))
                        conn.write(serverFrame(WebSocketFrame.continuation, Array(payload[(2 * third)...])))
                    } else {
                        conn.write(serverFrame(frame.opcode, payload))
                    }
                case WebSocketFrame.ping:
                    conn.write(serverFrame(WebSocketFrame.pong, frame.payload))
                case WebSocketFrame.pong:
                    // Report the pong's payload back as a text message.
                    conn.write(serverFrame(WebSocketFrame.text, Array("pong:".utf8) + frame.payload))
                case WebSocketFrame.close:
                    conn.write(serverFrame(WebSocketFrame.close, frame.payload))
                    return
                default:
                    return
                }
            }
        }
    }

    @Test func echoRoundTripsAllLengthForms() throws {
        let server = Self.echoServer()
        defer { server.stop() }

        let ws = try WebSocketClient(
            host: "127.0.0.1", port: server.port, path: "/v1/ws", subprotocols: ["herald.v1", "other"])
        #expect(ws.acceptedSubprotocol == "herald.v1")

        try ws.send(text: "hi ✓")
        #expect(try ws.receive(timeout: .seconds(5)) == .text("hi ✓"))

        let medium = String(repeating: "é", count: 200)  // 400 bytes: 16-bit length, fragmented echo
        try ws.send(text: medium)
        #expect(try ws.receive(timeout: .seconds(5)) == .text(medium))
        #expect(try ws.receive(timeout: .seconds(5)) == .text("pong:are you there"))  // our automatic pong
        #expect(ws.pingsReceived == 1)

        let large = (0..<200_000).map { UInt8(truncatingIfNeeded: $0 &* 7) }  // 64-bit length
        try ws.send(binary: large)
        #expect(try ws.receive(timeout: .seconds(5)) == .binary(large))
        #expect(try ws.receive(timeout: .seconds(5)) == .text("pong:are you there"))

        try ws.sendPing(Array("p".utf8))
        try ws.send(text: "after ping")
        #expect(try ws.receive(timeout: .seconds(5)) == .text("after ping"))  // the pong was skipped
        #expect(ws.pongsReceived >= 3)

        ws.close()
        #expect(ws.closeReceived)
        #expect(ws.closeCode == 1000)
        #expect(!ws.isOpen)
    }

    @Test func serverInitiatedClose() throws {
        let server = Self.echoServer()
        defer { server.stop() }
        let ws = try WebSocketClient(url: "ws://127.0.0.1:\(server.port)/v1/ws", subprotocols: ["herald.v1"])
        try ws.send(text: "bye")
        #expect(try ws.receive(timeout: .seconds(5)) == .close(code: 4000, reason: "overflow"))
        #expect(ws.closeSent)
        do {
            _ = try ws.receive(timeout: .seconds(1))
            Issue.record("receive after close succeeded")
        } catch {
            #expect(error.isEOF)
        }
        #expect(throws: ClientError.self) { try ws.send(text: "too late") }
        ws.close()
    }

    @Test func unmaskedClientFrameViaRawAPI() throws {
        let server = Self.echoServer()
        defer { server.stop() }
        let ws = try WebSocketClient(host: "127.0.0.1", port: server.port, path: "/v1/ws")
        #expect(ws.acceptedSubprotocol == nil)
        try ws.sendRawFrame(opcode: WebSocketFrame.text, payload: Array("x".utf8), masked: false)
        #expect(try ws.receive(timeout: .seconds(5)) == .close(code: 1002, reason: ""))
    }

    @Test func handshakeFailures() throws {
        let server = TestServer(connections: 3) { conn, index in
            switch index {
            case 0:
                guard conn.readHead() != nil else { return }
                conn.write(
                    response("401 Unauthorized", headers: ["Content-Type: application/json"], body: "{\"error\":\"token\"}"))
            case 1:
                acceptWebSocket(conn, accept: "d3JvbmcgYWNjZXB0IHZhbHVlIQ==")
            default:
                acceptWebSocket(conn, subprotocol: "not-offered", force: true)
            }
        }
        defer { server.stop() }

        do {
            _ = try WebSocketClient(host: "127.0.0.1", port: server.port, path: "/v1/ws")
            Issue.record("upgrade succeeded")
        } catch {
            #expect(error.kind == .httpStatus)
            #expect(error.httpStatus == 401)
            #expect(error.bodyText == "{\"error\":\"token\"}")
        }
        do {
            _ = try WebSocketClient(host: "127.0.0.1", port: server.port, path: "/v1/ws")
            Issue.record("bad accept passed")
        } catch {
            #expect(error.kind == .protocolViolation)
            #expect(error.message.contains("Sec-WebSocket-Accept"))
        }
        do {
            _ = try WebSocketClient(host: "127.0.0.1", port: server.port, path: "/v1/ws", subprotocols: ["herald.v1"])
            Issue.record("unexpected subprotocol passed")
        } catch {
            #expect(error.kind == .protocolViolation)
        }
    }

    @Test func eofTimeoutAndViolations() throws {
        let server = TestServer(connections: 5) { conn, index in
            guard acceptWebSocket(conn) != nil else { return }
            switch index {
            case 0: conn.write([0x81, 0x7E, 0x01])  // EOF in the middle of a frame header
            case 1: conn.write(serverFrame(WebSocketFrame.text, Array("hello".utf8)).dropLast(2))  // mid-payload
            case 2: break  // EOF without a close frame
            case 3: _ = conn.waitForEOF()  // silent: timeout
            default:
                conn.write(serverFrame(WebSocketFrame.text, [0xC3, 0x28]))  // invalid UTF-8
                if let frame = conn.readFrame(), frame.opcode == WebSocketFrame.close {
                    conn.write(serverFrame(WebSocketFrame.close, frame.payload))
                }
                _ = conn.waitForEOF()
            }
        }
        defer { server.stop() }

        for expected in ["middle of a WebSocket frame (3 of at least 4", "middle of a WebSocket frame (5 of at least 7"] {
            let ws = try WebSocketClient(host: "127.0.0.1", port: server.port, path: "/")
            do {
                _ = try ws.receive(timeout: .seconds(5))
                Issue.record("no error")
            } catch {
                #expect(error.isEOF)
                #expect(error.message.contains(expected), "\(error)")
            }
        }

        let silentClose = try WebSocketClient(host: "127.0.0.1", port: server.port, path: "/")
        do {
            _ = try silentClose.receive(timeout: .seconds(5))
            Issue.record("no error")
        } catch {
            #expect(error.isEOF)
            #expect(error.message.contains("without a WebSocket close frame"))
        }

        let idle = try WebSocketClient(host: "127.0.0.1", port: server.port, path: "/")
        do {
            _ = try idle.receive(timeout: .milliseconds(150))
            Issue.record("no timeout")
        } catch {
            #expect(error.isTimeout)
        }
        idle.abort()

        let badText = try WebSocketClient(host: "127.0.0.1", port: server.port, path: "/")
        do {
            _ = try badText.receive(timeout: .seconds(5))
            Issue.record("invalid UTF-8 accepted")
        } catch {
            #expect(error.kind == .protocolViolation)
            #expect(error.message.contains("1007"))
        }
        #expect(!badText.isOpen)
    }
}
