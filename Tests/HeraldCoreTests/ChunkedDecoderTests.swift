import Testing

@testable import HeraldCore

@Suite struct ChunkedDecoderTests {
    static let chunkedBody = Array(
        "5\r\nhello\r\n1;ext=1\r\n \r\n00000006\r\nworld!\r\nA \r\n0123456789\r\n0\r\nTrailer: x\r\n\r\nNEXT".utf8)

    @Test func chunkedWholeAndSplit() throws {
        for cut in 0...Self.chunkedBody.count {
            var decoder = ChunkedDecoder()
            var output: [UInt8] = []
            var consumedTotal = 0
            for part in [Array(Self.chunkedBody[0..<cut]), Array(Self.chunkedBody[cut...])] {
                let consumed = try part.withUnsafeBufferPointer { (buffer) throws(HeraldError) -> Int in
                    try decoder.decode(buffer, into: &output)
                }
                consumedTotal += consumed
                if decoder.isFinished { break }
                #expect(consumed == part.count)
            }
            #expect(decoder.isFinished)
            #expect(String(decoding: output, as: UTF8.self) == "hello world!0123456789")
            #expect(consumedTotal == Self.chunkedBody.count - 4, "split at \(cut)")  // "NEXT" is left over
        }
    }

    @Test func chunkedErrors() {
        let malformed = ["xyz\r\n", "\r\n", "5\r\nhelloX", "FFFFFFFFFFFFFFFFF\r\n"]
        // Lenient framing is where request smuggling hides: bare LF, CR or NUL in a line.
        let lenient = [
            "5\nhello\r\n", "5\r\nhello\n0\r\n\r\n", "1;a\rb\r\nx\r\n", "1;\0\r\nx\r\n",
            "0\r\nTrailer: x\n\r\n", "0\r\nT: a\rb\r\n\r\n", "0\r\n\n",
        ]
        for bad in malformed + lenient {
            var decoder = ChunkedDecoder()
            var output: [UInt8] = []
            #expect(throws: HeraldError.self, "\(bad)") {
                _ = try Array(bad.utf8).withUnsafeBufferPointer { (buffer) throws(HeraldError) -> Int in
                    try decoder.decode(buffer, into: &output)
                }
            }
        }
    }
}
