/// Where a byte offset falls in a text, as an editor counts: line and column from 1, the
/// column in characters (UTF-8 continuation bytes do not count), with the line itself —
/// so that a syntax error in a file can say `config.json:3:17` and show the line.
public struct TextPosition: Sendable, Equatable {
    public var line: Int
    public var column: Int
    /// The line holding the offset, without its line break.
    public var lineText: String

    public init(line: Int, column: Int, lineText: String) {
        self.line = line
        self.column = column
        self.lineText = lineText
    }

    /// The position of `offset` in `text` (an offset past the end is the end).
    public init(offset: Int, in text: [UInt8]) {
        let offset = max(0, min(offset, text.count))
        var line = 1
        var lineStart = 0
        for index in 0..<offset where text[index] == UInt8(ascii: "\n") {
            line += 1
            lineStart = index + 1
        }
        let lineEnd = text[offset...].firstIndex(where: { $0 == UInt8(ascii: "\n") || $0 == UInt8(ascii: "\r") }) ?? text.count
        self.line = line
        column = 1 + text[lineStart..<offset].reduce(0) { $0 + ($1 & 0xC0 == 0x80 ? 0 : 1) }
        lineText = String(decoding: text[lineStart..<lineEnd], as: UTF8.self)
    }
}
