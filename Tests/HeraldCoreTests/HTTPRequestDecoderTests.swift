import HeraldCore
import Testing

/// The gateway's own HTTP/1.1 request reader, without sockets: what it accepts, what it
/// refuses with which status, and that pipelined input is consumed exactly once.
@Suite struct HTTPRequestDecoderTests {
    func decode(_ text: String, limits: HTTPHeadLimits = HTTPHeadLimits()) throws(HeraldError) -> (head: HTTPRequestHead, consumed: Int)? {
        var decoder = HTTPRequestDecoder(limits: limits)
        let bytes = Array(text.utf8)
        let result = bytes.withUnsafeBytes { raw in
            Result { () throws(HeraldError) in try decoder.decodeHead(raw) }
        }
        return try result.get()
    }

    func head(_ text: String) throws -> HTTPRequestHead {
        try #require(try decode(text)).head
    }

    @Test func aSimpleGetWithAQuery() throws {
        let text = "GET /v1/sse?filter=%7B%7D&a=b+c HTTP/1.1\r\nHost: x\r\nX-Two:  spaced value \t\r\n\r\n"
        let (head, consumed) = try #require(try decode(text))
        #expect(consumed == text.utf8.count)
        #expect(head.method == .get && head.path == "/v1/sse" && head.query == "filter=%7B%7D&a=b+c")
        #expect(try head.queryArgument("filter") == "{}")
        #expect(try head.queryArgument("a") == "b c")
        #expect(try head.queryArgument("missing") == nil)
        #expect(head.field("x-two") == "spaced value")
        #expect(head.keepAlive && head.bodyFraming == .none && head.minorVersion == 1)
    }

    @Test func framingAndKeepAlive() throws {
        #expect(try head("POST /e HTTP/1.1\r\nHost: x\r\nContent-Length: 12\r\n\r\n").bodyFraming == .length(12))
        #expect(try head("POST /e HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n").bodyFraming == .none)
        #expect(try head("POST /e HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 5\r\n\r\n").bodyFraming == .length(5))
        #expect(try head("POST /e HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: Chunked\r\n\r\n").bodyFraming == .chunked)
        #expect(try head("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").keepAlive == false)
        #expect(try head("GET / HTTP/1.0\r\n\r\n").keepAlive == false)
        #expect(try head("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").keepAlive == true)
        #expect(try head("POST /e HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n").expectsContinue)
    }

    @Test func targetForms() throws {
        #expect(try head("GET http://example.com:8080/v1/stats?x=1 HTTP/1.1\r\nHost: x\r\n\r\n").path == "/v1/stats")
        #expect(try head("GET https://example.com HTTP/1.1\r\nHost: x\r\n\r\n").path == "/")
        #expect(try head("OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n").path == "*")
        #expect(try head("GET /a%20b/%C3%A9 HTTP/1.1\r\nHost: x\r\n\r\n").path == "/a b/é")
        // Lenient line ends and empty lines before the request line (RFC 9112 §2.2).
        #expect(try head("\r\n\nGET /x HTTP/1.1\nHost: x\n\n").path == "/x")
    }

    @Test(arguments: [
        ("GET / HTTP/1.1\r\n\r\n", "bad_request", "Host"),
        ("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", "bad_request", "more than one Host"),
        ("G(T / HTTP/1.1\r\nHost: x\r\n\r\n", "bad_request", "method"),
        ("GET /a b HTTP/1.1\r\nHost: x\r\n\r\n", "bad_request", "a space"),
        ("GET /\u{7F} HTTP/1.1\r\nHost: x\r\n\r\n", "bad_request", "control character"),
        ("GET x HTTP/1.1\r\nHost: x\r\n\r\n", "bad_request", "start with /"),
        ("GET * HTTP/1.1\r\nHost: x\r\n\r\n", "bad_request", "only for OPTIONS"),
        ("GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n", "bad_request", "obs-fold"),
        ("GET / HTTP/1.1\r\nHost : x\r\n\r\n", "bad_request", "malformed header"),
        ("GET / HTTP/1.1\r\nHost: x\r\nX: a\u{01}b\r\n\r\n", "bad_request", "control character"),
        ("GET / HTTP/1.1\r\nHost: x\r\nNoColon\r\n\r\n", "bad_request", "malformed header"),
        ("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", "bad_request", "both"),
        ("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", "not_implemented", "chunked"),
        ("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", "bad_request", "once"),
        ("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", "bad_request", "HTTP/1.0"),
        ("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", "bad_request", "Content-Length"),
        ("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", "bad_request", "Content-Length"),
        ("POST / HTTP/1.1\r\nHost: x\r\nContent-Length:\r\n\r\n", "bad_request", "Content-Length"),
        ("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3,\r\n\r\n", "bad_request", "Content-Length"),
        ("POST / HTTP/1.1\r\nHost: x\r\nContent-Length:\r\nTransfer-Encoding: chunked\r\n\r\n", "bad_request", "both"),
        ("\r\n\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n", "bad_request", "empty lines"),
        ("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 9999999999999999\r\n\r\n", "bad_request", "Content-Length"),
        ("GET / HTTP/2.0\r\nHost: x\r\n\r\n", "http_version_not_supported", "HTTP/2.0"),
        ("GET / HTTX/1.1\r\nHost: x\r\n\r\n", "bad_request", "HTTP version"),
        ("GET /%00 HTTP/1.1\r\nHost: x\r\n\r\n", "bad_request", "NUL"),
        ("GET /%zz HTTP/1.1\r\nHost: x\r\n\r\n", "bad_request", "percent-encoding"),
        ("GET /%FF HTTP/1.1\r\nHost: x\r\n\r\n", "bad_request", "UTF-8"),
    ])
    func malformedHeadsAreRefused(text: String, code: String, reason: String) {
        #expect { try decode(text) } throws: { error in
            guard let error = error as? HeraldError else { return false }
            return error.code.rawValue == code && error.message.contains(reason)
        }
    }

    @Test func limitsGiveTheirStatuses() {
        let limits = HTTPHeadLimits(maxHeadBytes: 2048, maxTargetBytes: 256, maxFieldBytes: 512, maxFields: 4)
        func code(_ text: String) -> String? {
            do throws(HeraldError) {
                _ = try decode(text, limits: limits)
                return nil
            } catch { return error.code.rawValue }
        }
        let longTarget = "/" + String(repeating: "a", count: 300)
        #expect(code("GET \(longTarget) HTTP/1.1\r\nHost: x\r\n\r\n") == "uri_too_long")
        #expect(code("GET \(longTarget + longTarget)") == "uri_too_long", "refused before the line ends")
        #expect(
            code("GET / HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(String(repeating: "t", count: 600))\r\n\r\n") == "headers_too_large")
        #expect(code("GET / HTTP/1.1\r\nHost: x\r\nA: 1\r\nB: 1\r\nC: 1\r\nD: 1\r\n\r\n") == "headers_too_large")
        let manyLines = (0..<10).map { "X\($0): \(String(repeating: "v", count: 300))\r\n" }.joined()
        #expect(code("GET / HTTP/1.1\r\nHost: x\r\n" + manyLines) == "headers_too_large", "an unfinished head past the limit")
        #expect(HeraldError.Code.uriTooLong.httpStatus == 414 && HeraldError.Code.headersTooLarge.httpStatus == 431)
    }

    @Test func aHeadArrivingAByteAtATimeIsReadOnceComplete() throws {
        let text = Array("POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}".utf8)
        var decoder = HTTPRequestDecoder()
        for end in 1..<text.count {
            let partial = Array(text[0..<end])
            let result = try partial.withUnsafeBytes { raw in try Result { () throws(HeraldError) in try decoder.decodeHead(raw) }.get() }
            if end < text.count - 2 {
                #expect(result == nil, "incomplete at \(end)")
            } else {
                #expect(result?.consumed == text.count - 2)
                return
            }
        }
    }

    @Test func pipelinedRequestsAreReadInOrderEachOnce() throws {
        var input = Array(
            ("POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
                + "POST /b HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
                + "GET /c HTTP/1.1\r\nHost: x\r\n\r\nGET /d HT").utf8)
        var decoder = HTTPRequestDecoder()
        var seen: [(String, String)] = []
        while true {
            let decoded = try input.withUnsafeBytes { raw in try Result { () throws(HeraldError) in try decoder.decodeHead(raw) }.get() }
            guard let (head, consumed) = decoded else { break }
            input.removeFirst(consumed)
            var reader = HTTPBodyReader(framing: head.bodyFraming)
            var body: [UInt8] = []
            let used = try input.withUnsafeBytes { raw in
                try Result { () throws(HeraldError) in try reader.read(raw) { body.append(contentsOf: $0) } }.get()
            }
            #expect(reader.isComplete)
            input.removeFirst(used)
            seen.append((head.path, String(decoding: body, as: UTF8.self)))
        }
        #expect(seen.map(\.0) == ["/a", "/b", "/c"])
        #expect(seen.map(\.1) == ["hello", "abc", ""])
        #expect(String(decoding: input, as: UTF8.self) == "GET /d HT", "the partial fourth request waits for its bytes")
    }

    @Test func aBodyReaderTakesExactlyTheBodyInAnySplit() throws {
        let body = Array("6\r\nchunk!\r\n2;ext\r\nAB\r\n0\r\nTrailer: t\r\n\r\nNEXT".utf8)
        for cut in 0...body.count {
            // Bytes arrive in two reads; what the reader leaves stays in the input buffer.
            var reader = HTTPBodyReader(framing: .chunked)
            var out: [UInt8] = []
            var buffered = Array(body[0..<cut])
            var used = 0
            for arrival in [[UInt8](), Array(body[cut...])] {
                buffered += arrival
                let n = try buffered.withUnsafeBytes { raw in
                    try Result { () throws(HeraldError) in try reader.read(raw) { out.append(contentsOf: $0) } }.get()
                }
                buffered.removeFirst(n)
                used += n
            }
            #expect(reader.isComplete && String(decoding: out, as: UTF8.self) == "chunk!AB", "cut \(cut)")
            #expect(used == body.count - 4 && buffered == Array("NEXT".utf8), "NEXT belongs to the next request (cut \(cut))")
        }
    }

    @Test func responsesAreOneBufferWithLengthAndClose() {
        var out: [UInt8] = []
        HTTPServerResponse(status: 404, fields: [("x-bad", "a\r\nInjected: 1")], body: Array("{}".utf8)).encode(
            into: &out, omitBody: false, keepAlive: false)
        #expect(
            String(decoding: out, as: UTF8.self)
                == "HTTP/1.1 404 Not Found\r\ncontent-type: application/json\r\ncontent-length: 2\r\nx-bad: a  Injected: 1\r\nconnection: close\r\n\r\n{}"
        )
        out.removeAll()
        HTTPServerResponse(status: 200, contentType: "text/plain", body: Array("abc".utf8)).encode(
            into: &out, omitBody: true, keepAlive: true)
        #expect(String(decoding: out, as: UTF8.self) == "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 3\r\n\r\n")
    }
}
