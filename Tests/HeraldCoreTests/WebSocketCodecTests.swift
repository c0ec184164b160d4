import Testing

@testable import HeraldCore

@Suite struct HandshakeCryptoTests {
    @Test func rfc6455AcceptExample() {
        // RFC 6455 §1.3. (A 20-byte SHA-1 digest is always 28 base64 characters.)
        let accept = WebSocketHandshake.acceptValue(forKey: "dGhlIHNhbXBsZSBub25jZQ==")
        #expect(accept == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
        #expect(accept.utf8.count == 28)
    }

    @Test func sha1KnownVectors() {
        func hex(_ bytes: [UInt8]) -> String {
            bytes.map { byte in
                let digits = Array("0123456789abcdef")
                return String([digits[Int(byte >> 4)], digits[Int(byte & 15)]])
            }.joined()
        }
        #expect(hex(SHA1.hash([])) == "da39a3ee5e6b4b0d3255bfef95601890afd80709")
        #expect(hex(SHA1.hash(Array("abc".utf8))) == "a9993e364706816aba3e25717850c26c9cd0d89d")
        // 56 bytes: the padding spills into a second block.
        #expect(
            hex(SHA1.hash(Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8)))
                == "84983e441c3bd26ebaae4aa1f95129e5e54670f1")
        #expect(
            hex(SHA1.hash([UInt8](repeating: UInt8(ascii: "a"), count: 1_000_000)))
                == "34aa973cd4c4daa4f61eeb2bdbad27316534016f")
    }

    @Test func base64RFC4648Vectors() {
        let cases: [(String, String)] = [
            ("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"), ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="), ("foobar", "Zm9vYmFy"),
        ]
        for (plain, encoded) in cases {
            #expect(Base64.encode(Array(plain.utf8)) == encoded)
        }
        #expect(Base64.encode([0xFB, 0xFF, 0xBF]) == "+/+/")
    }
}

@Suite struct WebSocketFrameTests {
    // RFC 6455 §5.7 examples.
    @Test func rfcExamples() throws {
        let hello = Array("Hello".utf8)
        #expect(WebSocketFrame.encode(opcode: 1, payload: hello) == [0x81, 0x05, 0x48, 0x65, 0x6C, 0x6C, 0x6F])
        let masked = WebSocketFrame.encode(opcode: 1, payload: hello, maskKey: [0x37, 0xFA, 0x21, 0x3D])
        #expect(masked == [0x81, 0x85, 0x37, 0xFA, 0x21, 0x3D, 0x7F, 0x9F, 0x4D, 0x51, 0x58])
        // Fragmented unmasked text "Hel" + "lo".
        #expect(WebSocketFrame.encode(opcode: 1, payload: Array("Hel".utf8), fin: false) == [0x01, 0x03, 0x48, 0x65, 0x6C])
        #expect(WebSocketFrame.encode(opcode: 0, payload: Array("lo".utf8)) == [0x80, 0x02, 0x6C, 0x6F])
        // 256 bytes binary: 16-bit length; 64 KiB: 64-bit length.
        let f256 = WebSocketFrame.encode(opcode: 2, payload: [UInt8](repeating: 7, count: 256))
        #expect(Array(f256.prefix(4)) == [0x82, 0x7E, 0x01, 0x00])
        let f64k = WebSocketFrame.encode(opcode: 2, payload: [UInt8](repeating: 7, count: 65536))
        #expect(Array(f64k.prefix(10)) == [0x82, 0x7F, 0, 0, 0, 0, 0, 1, 0, 0])

        guard case .frame(let frame, let consumed) = try WebSocketFrame.decode(masked) else {
            Issue.record("expected a frame")
            return
        }
        #expect(consumed == masked.count)
        #expect(frame.payload == hello)
        #expect(frame.maskKey == [0x37, 0xFA, 0x21, 0x3D])
        #expect(frame.fin && frame.opcode == 1 && frame.rsv == 0)
    }

    @Test(arguments: [0, 1, 7, 8, 9, 125, 126, 127, 1000, 65535, 65536, 70001])
    func roundTripAllLengthForms(length: Int) throws {
        let payload = (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
        for key in [nil, [UInt8(1), 2, 3, 4], [0xFF, 0x00, 0xA5, 0x5A]] as [[UInt8]?] {
            for opcode in [WebSocketFrame.text, WebSocketFrame.binary, WebSocketFrame.continuation] {
                let encoded = WebSocketFrame.encode(opcode: opcode, payload: payload, fin: length % 2 == 0, maskKey: key)
                let expectedHeader = WebSocketFrame.headerSize(payloadLength: length, masked: key != nil)
                #expect(encoded.count == expectedHeader + length)
                let lengthField = encoded[1] & 0x7F
                #expect(lengthField == (length < 126 ? UInt8(length) : (length <= 0xFFFF ? 126 : 127)))
                // Trailing bytes of a following frame must be left alone.
                guard case .frame(let frame, let consumed) = try WebSocketFrame.decode(encoded + [0x81, 0x00]) else {
                    Issue.record("expected a frame for length \(length)")
                    continue
                }
                #expect(consumed == encoded.count)
                #expect(frame.payload == payload)
                #expect(frame.opcode == opcode)
                #expect(frame.fin == (length % 2 == 0))
                #expect(frame.maskKey == key)
            }
        }
    }

    @Test func everyPrefixNeedsMore() throws {
        for length in [5, 200, 70000] {
            let encoded = WebSocketFrame.encode(
                opcode: 2, payload: [UInt8](repeating: 1, count: length), maskKey: [9, 8, 7, 6])
            for cut in [0, 1, 2, 3, 5, 9, 13, encoded.count - 1] where cut < encoded.count {
                guard case .needMore(let needed) = try WebSocketFrame.decode(Array(encoded[0..<cut])) else {
                    Issue.record("prefix \(cut) of \(encoded.count) decoded as a frame")
                    continue
                }
                #expect(needed > cut && needed <= encoded.count)
            }
        }
    }

    @Test func maskingMatchesBytewiseDefinition() {
        let key: (UInt8, UInt8, UInt8, UInt8) = (0x12, 0x34, 0x56, 0x78)
        let keyArray: [UInt8] = [0x12, 0x34, 0x56, 0x78]
        for length in [0, 3, 8, 15, 16, 17, 100] {
            let original = (0..<length).map { UInt8(truncatingIfNeeded: $0 * 13) }
            var masked = original
            masked.withUnsafeMutableBytes { WebSocketFrame.applyMask(key, to: $0) }
            #expect(masked == original.enumerated().map { $0.element ^ keyArray[$0.offset % 4] })
            masked.withUnsafeMutableBytes { WebSocketFrame.applyMask(key, to: $0) }
            #expect(masked == original)
        }
    }

    @Test func decodeRejectsViolations() {
        // Control frame longer than 125 bytes (encoded with a 16-bit length).
        let bigPing = WebSocketFrame.encode(opcode: WebSocketFrame.ping, payload: [UInt8](repeating: 0, count: 126))
        #expect(throws: WebSocketProtocolError.self) { try WebSocketFrame.decode(bigPing) }
        // Fragmented control frame.
        let fragmentedClose = WebSocketFrame.encode(opcode: WebSocketFrame.close, payload: [3, 232], fin: false)
        #expect(throws: WebSocketProtocolError.self) { try WebSocketFrame.decode(fragmentedClose) }
        // 64-bit length with the most significant bit set.
        let huge: [UInt8] = [0x82, 0x7F, 0x80, 0, 0, 0, 0, 0, 0, 1]
        #expect(throws: WebSocketProtocolError.self) { try WebSocketFrame.decode(huge) }
        // Over the caller's limit: refused from the header alone.
        let header16: [UInt8] = [0x82, 0x7E, 0x10, 0x00]
        #expect(throws: WebSocketProtocolError.self) { try WebSocketFrame.decode(header16, maxPayload: 1000) }
        // Non-minimal length encodings are accepted (lenient).
        let nonMinimal: [UInt8] = [0x81, 0x7E, 0x00, 0x02, 0x68, 0x69]
        #expect((try? WebSocketFrame.decode(nonMinimal)) == .frame(WebSocketFrame(opcode: 1, payload: [0x68, 0x69]), consumed: 6))
    }

    @Test func closePayloads() throws {
        #expect(WebSocketFrame.closePayload(code: nil) == [])
        #expect(WebSocketFrame.closePayload(code: 1000, reason: "bye") == [0x03, 0xE8, 0x62, 0x79, 0x65])
        let parsed = try WebSocketFrame.parseClosePayload([0x0F, 0xA0] + Array("overflow".utf8))
        #expect(parsed.code == 4000 && parsed.reason == "overflow")
        #expect(try WebSocketFrame.parseClosePayload([]).code == nil)
        #expect(throws: WebSocketProtocolError.self) { try WebSocketFrame.parseClosePayload([0x03]) }
        #expect(throws: WebSocketProtocolError.self) { try WebSocketFrame.parseClosePayload([0x03, 0xED]) }  // 1005
        #expect(throws: WebSocketProtocolError.self) { try WebSocketFrame.parseClosePayload([0x03, 0xE8, 0xC3, 0x28]) }
    }
}
