import Testing

@testable import HeraldClient

@Suite struct SSEParserTests {
    /// A stream exercising every rule, with LF, CRLF and bare-CR line ends mixed.
    static let stream: [UInt8] =
        [0xEF, 0xBB, 0xBF]
        + Array(
            (": welcome\n"
                + "\n"
                + "id: 1\r\nevent: chat.message\r\ndata: {\"text\":\"héllo\"}\r\n\r\n"
                + ": hb\n\n"
                + "data: line one\rdata:line two\rdata:  indented\r\r"
                + "id\nevent:\ndata\n\n"
                + "retry: 1500\nretry: soon\nfoo: ignored\ndata: x: y\n\n"
                + "id: 7\u{0}bad\ndata: nul id ignored\n\n"
                + "event: herald.gap\ndata: {\"from\":3,\"to\":5,\"reason\":\"overflow\"}\n\n"
                + "data: unterminated").utf8)

    static let expected: [SSEEvent] = [
        SSEEvent(comments: ["welcome"]),
        SSEEvent(id: "1", event: "chat.message", data: "{\"text\":\"héllo\"}"),
        SSEEvent(comments: ["hb"]),
        SSEEvent(data: "line one\nline two\n indented"),
        SSEEvent(id: "", event: "", data: ""),
        SSEEvent(data: "x: y", retry: 1500),
        SSEEvent(data: "nul id ignored"),
        SSEEvent(event: "herald.gap", data: "{\"from\":3,\"to\":5,\"reason\":\"overflow\"}"),
    ]

    @Test func wholeStream() throws {
        var parser = SSEParser()
        let events = try parser.feed(Self.stream)
        #expect(events == Self.expected)
        #expect(parser.lastEventID == "")  // the last accepted id line was "id" (empty)
        parser.finish()
        #expect(try parser.feed(Array("\n\n".utf8)) == [])  // the unterminated block was dropped
    }

    @Test func everySplitPoint() throws {
        for cut in 0...Self.stream.count {
            var parser = SSEParser()
            var events: [SSEEvent] = []
            try parser.feed(Array(Self.stream[0..<cut]), into: &events)
            try parser.feed(Array(Self.stream[cut...]), into: &events)
            #expect(events == Self.expected, "split at \(cut)")
        }
    }

    @Test func oneByteAtATime() throws {
        var parser = SSEParser()
        var events: [SSEEvent] = []
        for byte in Self.stream { try parser.feed([byte], into: &events) }
        #expect(events == Self.expected)
    }

    @Test func pseudoRandomChunks() throws {
        var seed: UInt64 = 0x1234_5678
        for _ in 0..<200 {
            var parser = SSEParser()
            var events: [SSEEvent] = []
            var index = 0
            while index < Self.stream.count {
                seed = seed &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
                let size = Int(seed >> 59) + 1  // 1...32
                let end = min(index + size, Self.stream.count)
                try parser.feed(Array(Self.stream[index..<end]), into: &events)
                index = end
            }
            #expect(events == Self.expected)
        }
    }

    @Test func crlfSplitBetweenFeedsCountsOnce() throws {
        var parser = SSEParser()
        var events: [SSEEvent] = []
        try parser.feed(Array("data: a\r".utf8), into: &events)
        try parser.feed(Array("\n\r".utf8), into: &events)
        try parser.feed(Array("\ndata: b\r".utf8), into: &events)
        try parser.feed(Array("\r".utf8), into: &events)
        #expect(events == [SSEEvent(data: "a"), SSEEvent(data: "b")])
    }

    @Test func idPersistsAsLastEventID() throws {
        var parser = SSEParser()
        let events = try parser.feed(Array("id: 41\ndata: a\n\ndata: b\n\n".utf8))
        #expect(events.map(\.id) == ["41", nil])
        #expect(parser.lastEventID == "41")
    }

    @Test func lineLengthLimit() {
        var parser = SSEParser(maxLineLength: 16)
        #expect(throws: ClientError.self) {
            _ = try parser.feed([UInt8](repeating: UInt8(ascii: "a"), count: 10))
            _ = try parser.feed([UInt8](repeating: UInt8(ascii: "a"), count: 10))
        }
    }
}
