import HeraldCore
import Testing

/// RFC 6455 as the gateway enforces it on client frames, and the opening handshake.
@Suite struct WebSocketMessageReaderTests {
    static let mask: [UInt8] = [0x37, 0xFA, 0x21, 0x3D]

    func frame(_ opcode: UInt8, _ payload: [UInt8], fin: Bool = true, rsv: UInt8 = 0, masked: Bool = true) -> [UInt8] {
        WebSocketFrame.encode(opcode: opcode, payload: payload, fin: fin, rsv: rsv, maskKey: masked ? Self.mask : nil)
    }

    /// Every message in `bytes`, or the close code of the first violation.
    func read(_ bytes: [UInt8], limit: Int = 1024) -> (messages: [WebSocketMessageReader.Message], error: UInt16?, left: Int) {
        var reader = WebSocketMessageReader(maxMessageBytes: limit)
        var messages: [WebSocketMessageReader.Message] = []
        var rest = bytes
        while true {
            let next = rest.withUnsafeBytes { raw in Result { () throws(WebSocketProtocolError) in try reader.next(raw) } }
            switch next {
            case .failure(let error):
                return (messages, error.closeCode.rawValue, rest.count)
            case .success(let (message, consumed)):
                rest.removeFirst(consumed)
                guard let message else { return (messages, nil, rest.count) }
                messages.append(message)
            }
        }
    }

    @Test func maskedTextAndFragmentsAreReassembled() {
        let text = Array(#"{"op":"ping"}"#.utf8)
        #expect(read(frame(WebSocketFrame.text, text)).messages == [.text(text)])
        let fragmented =
            frame(WebSocketFrame.text, Array(text[0..<4]), fin: false)
            + frame(WebSocketFrame.ping, [1, 2])  // control frames may come between fragments
            + frame(WebSocketFrame.continuation, Array(text[4...]))
        #expect(read(fragmented).messages == [.ping([1, 2]), .text(text)])
        #expect(read(frame(WebSocketFrame.binary, [1, 2, 3])).messages == [.binary(count: 3)])
        #expect(read(frame(WebSocketFrame.close, [0x03, 0xE8] + Array("bye".utf8))).messages == [.close(code: 1000, reason: "bye")])
        #expect(read(frame(WebSocketFrame.close, [])).messages == [.close(code: nil, reason: "")])
    }

    @Test func aPartialFrameWaitsForItsBytes() {
        let whole = frame(WebSocketFrame.text, Array(String(repeating: "x", count: 300).utf8))
        for cut in 0..<whole.count {
            let result = read(Array(whole[0..<cut]))
            #expect(result.messages.isEmpty && result.error == nil && result.left == cut)
        }
    }

    @Test(arguments: [
        ("unmasked", [0x81, 0x02, 0x7B, 0x7D] as [UInt8], UInt16(1002)),
        ("RSV1 without an extension", WebSocketFrame.encode(opcode: 1, payload: [0x61], rsv: 4, maskKey: mask), 1002),
        ("reserved opcode", WebSocketFrame.encode(opcode: 3, payload: [], maskKey: mask), 1002),
        ("continuation without a start", WebSocketFrame.encode(opcode: 0, payload: [0x61], maskKey: mask), 1002),
        (
            "a new message inside a fragmented one",
            WebSocketFrame.encode(opcode: 1, payload: [0x61], fin: false, maskKey: mask)
                + WebSocketFrame.encode(opcode: 1, payload: [0x62], maskKey: mask), 1002
        ),
        ("fragmented ping", WebSocketFrame.encode(opcode: 9, payload: [], fin: false, maskKey: mask), 1002),
        ("long ping", WebSocketFrame.encode(opcode: 9, payload: [UInt8](repeating: 0, count: 126), maskKey: mask), 1002),
        ("1-byte close", WebSocketFrame.encode(opcode: 8, payload: [3], maskKey: mask), 1002),
        ("close code 1005", WebSocketFrame.encode(opcode: 8, payload: [0x03, 0xED], maskKey: mask), 1002),
        ("text that is not UTF-8", WebSocketFrame.encode(opcode: 1, payload: [0xC3, 0x28], maskKey: mask), 1007),
        ("surrogate in text", WebSocketFrame.encode(opcode: 1, payload: [0xED, 0xA0, 0x80], maskKey: mask), 1007),
        ("too big", WebSocketFrame.encode(opcode: 1, payload: [UInt8](repeating: 0x61, count: 1025), maskKey: mask), 1009),
        (
            "too big in fragments",
            WebSocketFrame.encode(opcode: 1, payload: [UInt8](repeating: 0x61, count: 600), fin: false, maskKey: mask)
                + WebSocketFrame.encode(opcode: 0, payload: [UInt8](repeating: 0x61, count: 600), maskKey: mask), 1009
        ),
    ])
    func violationsCloseWithTheirCode(_ name: String, bytes: [UInt8], code: UInt16) {
        #expect(read(bytes).error == code, "\(name)")
    }

    @Test func aTooBigFrameIsRefusedFromItsHeader() {
        // The 64-bit length says 1 GiB: refused before any payload arrives.
        let header: [UInt8] = [0x81, 0xFF, 0, 0, 0, 0, 0x40, 0, 0, 0] + Self.mask
        #expect(read(header).error == 1009)
    }

    @Test func utf8ValidationAgreesWithTheStandardLibrary() {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<2000 {
            let bytes = (0..<Int.random(in: 0...12, using: &generator)).map { _ -> UInt8 in
                [0x41, 0x7F, 0x80, 0xBF, 0xC2, 0xDF, 0xE0, 0xED, 0xEF, 0xF0, 0xF4, 0xF5, 0x9F, 0xA0, 0x8F, 0x90].randomElement(
                    using: &generator)!
            }
            let valid = bytes.withUnsafeBytes { UTF8Validation.isValid($0) }
            #expect(valid == (String(validating: bytes, as: UTF8.self) != nil), "\(bytes)")
        }
    }

    // MARK: - Handshake

    func upgrade(_ extra: String, method: String = "GET", version: String = "1.1") throws -> HTTPRequestHead {
        var decoder = HTTPRequestDecoder()
        let text = Array("\(method) /v1/ws HTTP/\(version)\r\nHost: x\r\nUpgrade: websocket\r\n\(extra)\r\n".utf8)
        return try #require(try text.withUnsafeBytes { raw in try Result { () throws(HeraldError) in try decoder.decodeHead(raw) }.get() })
            .head
    }

    static let valid = "Connection: keep-alive, Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"

    @Test func aValidUpgradeAgreesOnTheSubprotocol() throws {
        let plain = try WebSocketHandshake.validate(try upgrade(Self.valid), subprotocol: "herald.v1")
        #expect(plain == .init(accept: "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", subprotocol: nil))
        let offered = try WebSocketHandshake.validate(
            try upgrade(Self.valid + "Sec-WebSocket-Protocol: chat, herald.v1\r\n"), subprotocol: "herald.v1")
        #expect(offered.subprotocol == "herald.v1")
        #expect(
            String(decoding: WebSocketHandshake.response(offered), as: UTF8.self)
                == "HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\nsec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nsec-websocket-protocol: herald.v1\r\n\r\n"
        )
    }

    @Test(arguments: [
        ("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n", "bad_request"),  // no Connection: Upgrade
        ("Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n", "bad_request"),
        ("Connection: Upgrade\r\nSec-WebSocket-Key: short==\r\nSec-WebSocket-Version: 13\r\n", "bad_request"),
        ("Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n", "upgrade_required"),
        (valid + "Sec-WebSocket-Protocol: mqtt\r\n", "bad_request"),
    ])
    func badUpgradesAreRefused(extra: String, code: String) throws {
        let head = try upgrade(extra)
        #expect { try WebSocketHandshake.validate(head, subprotocol: "herald.v1") } throws: { ($0 as? HeraldError)?.code.rawValue == code }
    }
}
