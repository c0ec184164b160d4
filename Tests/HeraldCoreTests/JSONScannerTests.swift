import HeraldCore
import HeraldPatternCorpus
import Testing

// MARK: - Fixtures

/// The vibration-recorded example event (shared/examples), 601 bytes as written there.
let vibrationRecordedEvent = """
    {
      "eventId": "a1b2c3d4-5678-90ef-ghij-klmnopqrstuv",
      "eventType": "VibrationRecorded",
      "timestamp": "2023-09-29T16:30:25Z",
      "source": "VibrationSensor",
      "sensorLocation": "Motor Assembly Line B, Conveyor Unit 4",
      "version": "v1.2",
      "data": {
        "sensorId": "VB-42345",
        "vibrationLevel": 12.5,
        "baselineVibrationLevel": 4.0,
        "unit": "m/s²",
        "difference": 8.5
      },
      "metadata": {
        "model": "VibroMonitor Pro X1",
        "calibrationDate": "2023-06-15"
      },
      "systemMessage": "Vibration level recorded exceeds the acceptable threshold. Immediate inspection required."
    }

    """

/// Runs `JSONScanner.scan` and returns the error it threw, or nil when it accepted.
func scanError(_ bytes: [UInt8], limits: JSONLimits = JSONLimits()) -> HeraldError? {
    do {
        _ = try JSONScanner.scan(bytes, limits: limits)
        return nil
    } catch {
        return error
    }
}

/// One document the scanner must accept.
struct ValidCase: Sendable, CustomTestStringConvertible {
    var name: String
    var bytes: [UInt8]
    var nodeCount: Int
    var rootKind: JSONTape.Kind
    var testDescription: String { name }

    init(_ name: String, _ text: String, nodes: Int, _ kind: JSONTape.Kind) {
        self.init(name, Array(text.utf8), nodes: nodes, kind)
    }

    init(_ name: String, _ bytes: [UInt8], nodes: Int, _ kind: JSONTape.Kind) {
        self.name = name
        self.bytes = bytes
        self.nodeCount = nodes
        self.rootKind = kind
    }
}

/// One document the scanner must refuse, with where and why.
struct InvalidCase: Sendable, CustomTestStringConvertible {
    var name: String
    var bytes: [UInt8]
    var offset: Int
    var message: String
    var testDescription: String { name }

    init(_ name: String, _ text: String, at offset: Int, _ message: String) {
        self.init(name, Array(text.utf8), at: offset, message)
    }

    init(_ name: String, _ bytes: [UInt8], at offset: Int, _ message: String) {
        self.name = name
        self.bytes = bytes
        self.offset = offset
        self.message = message
    }
}

/// `"` + bytes + `"`, for UTF-8 cases.
func quoted(_ bytes: [UInt8]) -> [UInt8] { [0x22] + bytes + [0x22] }

let validCases: [ValidCase] = [
    ValidCase("empty object", "{}", nodes: 1, .object),
    ValidCase("empty array", "[]", nodes: 1, .array),
    ValidCase("empty containers with whitespace", " { } ", nodes: 1, .object),
    ValidCase("string root", "\"a\"", nodes: 1, .string),
    ValidCase("empty string", "\"\"", nodes: 1, .string),
    ValidCase("zero", "0", nodes: 1, .number),
    ValidCase("negative zero", "-0", nodes: 1, .number),
    ValidCase("full number", "-0.0e+0", nodes: 1, .number),
    ValidCase("exponent upper", "1E-2", nodes: 1, .number),
    ValidCase("big exponent", "123.456e289", nodes: 1, .number),
    ValidCase("true", "true", nodes: 1, .true),
    ValidCase("false", "false", nodes: 1, .false),
    ValidCase("null", "null", nodes: 1, .null),
    ValidCase("all whitespace kinds", " \t\n\r 1 \r\n\t", nodes: 1, .number),
    ValidCase("small mixed", "{\"a\":[1,\"x\"],\"b\":null}", nodes: 7, .object),
    ValidCase("nested arrays", "[[[]],[]]", nodes: 4, .array),
    ValidCase("empty key", "{\"\":\"\"}", nodes: 3, .object),
    ValidCase("literals in array", "[true,false,null]", nodes: 4, .array),
    ValidCase("escaped NUL", "\"\\u0000\"", nodes: 1, .string),
    ValidCase("surrogate pair", "\"\\ud83d\\ude00\"", nodes: 1, .string),
    ValidCase("surrogate pair upper hex", "\"\\uD83D\\uDE00\"", nodes: 1, .string),
    ValidCase("short escapes", "\"\\/\\b\\f\\n\\r\\t\\\"\\\\\"", nodes: 1, .string),
    ValidCase("raw two-byte UTF-8", "\"é\"", nodes: 1, .string),
    ValidCase("raw four-byte UTF-8", "\"😀 ok\"", nodes: 1, .string),
    ValidCase("U+10FFFF raw", quoted([0xF4, 0x8F, 0xBF, 0xBF]), nodes: 1, .string),
    ValidCase("U+FFFF raw", quoted([0xEF, 0xBF, 0xBF]), nodes: 1, .string),
    ValidCase("U+D7FF raw", quoted([0xED, 0x9F, 0xBF]), nodes: 1, .string),
    ValidCase("U+E000 raw", quoted([0xEE, 0x80, 0x80]), nodes: 1, .string),
    ValidCase("U+0800 raw", quoted([0xE0, 0xA0, 0x80]), nodes: 1, .string),
    ValidCase("U+10000 raw", quoted([0xF0, 0x90, 0x80, 0x80]), nodes: 1, .string),
    ValidCase("DEL is not a control character", quoted([0x7F]), nodes: 1, .string),
    ValidCase("keys differ by case", "{\"a\":1,\"A\":2}", nodes: 5, .object),
    ValidCase("keys differ by escape meaning", "{\"a\\n\":1,\"a\\\\n\":2,\"a\\/\":3,\"a/\\\\\":4}", nodes: 9, .object),
    ValidCase("same key in sibling objects", "[{\"a\":1},{\"a\":2}]", nodes: 7, .array),
    ValidCase("same key at two levels", "{\"a\":{\"a\":{\"a\":1}}}", nodes: 7, .object),
    ValidCase(
        "20 distinct keys (hash set path)",
        "{" + (0..<20).map { "\"k\($0)\":\($0)" }.joined(separator: ",") + "}", nodes: 41, .object),
    ValidCase(
        "escaped distinct keys past the hash threshold",
        "{" + (0..<40).map { "\"k\\u00\(String(0x30 + $0 % 10, radix: 16))\($0)\":0" }.joined(separator: ",") + "}",
        nodes: 81, .object),
    ValidCase("vibration-recorded event", vibrationRecordedEvent, nodes: 33, .object),
]

let invalidCases: [InvalidCase] = [
    // Truncated documents and empty input.
    InvalidCase("empty input", "", at: 0, "unexpected end of input"),
    InvalidCase("only whitespace", " \n\t ", at: 4, "unexpected end of input"),
    InvalidCase("open object", "{", at: 1, "unexpected end of input"),
    InvalidCase("open array", "[", at: 1, "unexpected end of input"),
    InvalidCase("array after element", "[1", at: 2, "unexpected end of input"),
    InvalidCase("array after comma", "[1,", at: 3, "unexpected end of input"),
    InvalidCase("object after key", "{\"a\"", at: 4, "unexpected end of input"),
    InvalidCase("object after colon", "{\"a\":", at: 5, "unexpected end of input"),
    InvalidCase("object after value", "{\"a\":1", at: 6, "unexpected end of input"),
    InvalidCase("unterminated string", "\"abc", at: 0, "unterminated string"),
    InvalidCase("unterminated nested string", "[\"abc", at: 1, "unterminated string"),
    InvalidCase("unterminated after backslash", "\"\\", at: 0, "unterminated string"),
    InvalidCase("unterminated inside \\u", "\"\\u12", at: 0, "unterminated string"),
    InvalidCase("truncated true", "tru", at: 3, "unexpected end of input"),
    InvalidCase("truncated false", "fals", at: 4, "unexpected end of input"),
    InvalidCase("truncated null", "nul", at: 3, "unexpected end of input"),
    // Numbers.
    InvalidCase("lone minus", "-", at: 1, "unexpected end of input"),
    InvalidCase("minus in array", "[-]", at: 2, "a digit after '-'"),
    InvalidCase("trailing dot", "1.", at: 2, "unexpected end of input"),
    InvalidCase("trailing dot in array", "[1.]", at: 3, "a digit after the decimal point"),
    InvalidCase("leading dot", ".5", at: 0, "expected a JSON value, found '.'"),
    InvalidCase("leading plus", "+1", at: 0, "expected a JSON value, found '+'"),
    InvalidCase("leading zero", "01", at: 0, "leading zero in number"),
    InvalidCase("negative leading zero", "-01", at: 1, "leading zero in number"),
    InvalidCase("double zero", "[00]", at: 1, "leading zero in number"),
    InvalidCase("bare exponent", "1e", at: 2, "unexpected end of input"),
    InvalidCase("number beyond float64", "123.456e789", at: 0, "number out of range"),
    InvalidCase("negative number beyond float64", "[1,-1e400]", at: 3, "number out of range"),
    InvalidCase("bare signed exponent", "1e+", at: 3, "unexpected end of input"),
    InvalidCase("bare exponent in array", "[1e]", at: 3, "a digit in the exponent"),
    InvalidCase("exponent without digits", "[1E-x]", at: 4, "a digit in the exponent"),
    InvalidCase("NaN", "NaN", at: 0, "found 'N'"),
    InvalidCase("Infinity", "Infinity", at: 0, "found 'I'"),
    InvalidCase("-Infinity", "-Infinity", at: 1, "a digit after '-'"),
    InvalidCase("hex number", "0x1F", at: 1, "trailing characters after JSON value"),
    InvalidCase("two dots", "[1.2.3]", at: 4, "',' or ']' after array element"),
    // Literals.
    InvalidCase("capitalised true", "True", at: 0, "found 'T'"),
    InvalidCase("misspelt null", "nulL", at: 3, "invalid literal (expected null)"),
    InvalidCase("misspelt false", "falsy", at: 4, "invalid literal (expected false)"),
    InvalidCase("literal with suffix", "[truex]", at: 5, "',' or ']' after array element"),
    // Structure.
    InvalidCase("trailing comma in array", "[1,]", at: 2, "trailing comma in array"),
    InvalidCase("trailing comma in object", "{\"a\":1,}", at: 6, "trailing comma in object"),
    InvalidCase("trailing comma with space", "[1 , ]", at: 3, "trailing comma in array"),
    InvalidCase("leading comma", "[,1]", at: 1, "expected a JSON value, found ','"),
    InvalidCase("missing comma", "[1 2]", at: 3, "',' or ']' after array element"),
    InvalidCase("missing colon", "{\"a\" 1}", at: 5, "':' after object key"),
    InvalidCase("equals for colon", "{\"a\"=1}", at: 4, "':' after object key"),
    InvalidCase("missing member comma", "{\"a\":1 \"b\":2}", at: 7, "',' or '}' after object member"),
    InvalidCase("missing value", "{\"a\":}", at: 5, "expected a JSON value, found '}'"),
    InvalidCase("unquoted key", "{a:1}", at: 1, "a string key"),
    InvalidCase("number key", "{1:1}", at: 1, "a string key"),
    InvalidCase("single-quoted key", "{'a':1}", at: 1, "single quote"),
    InvalidCase("single-quoted string", "['a']", at: 1, "single quote"),
    InvalidCase("mismatched close", "[1}", at: 2, "',' or ']' after array element"),
    InvalidCase("close without open", "]", at: 0, "expected a JSON value, found ']'"),
    InvalidCase("line comment after", "[1] // c", at: 4, "trailing characters after JSON value"),
    InvalidCase("block comment before", "/* c */ 1", at: 0, "comments are not allowed"),
    InvalidCase("comment inside", "[1,/*c*/2]", at: 3, "comments are not allowed"),
    InvalidCase("trailing garbage", "[1]x", at: 3, "trailing characters after JSON value"),
    InvalidCase("two values", "1 2", at: 2, "trailing characters after JSON value"),
    InvalidCase("extra close", "{}}", at: 2, "trailing characters after JSON value"),
    InvalidCase("trailing NUL", [0x5B, 0x5D, 0x00], at: 2, "trailing characters after JSON value"),
    InvalidCase("form feed is not whitespace", [0x0C, 0x31], at: 0, "control character 0x0C"),
    InvalidCase("NBSP is not whitespace", [0xC2, 0xA0, 0x31], at: 0, "found byte 0xC2"),
    InvalidCase("byte order mark", [0xEF, 0xBB, 0xBF, 0x7B, 0x7D], at: 0, "found byte 0xEF"),
    InvalidCase("raw UTF-8 outside string", "é", at: 0, "found byte 0xC3"),
    // Strings: control characters and escapes.
    InvalidCase("raw tab in string", "[\"a\tb\"]", at: 3, "unescaped control character 0x09 in string"),
    InvalidCase("raw newline in string", "\"a\nb\"", at: 2, "unescaped control character 0x0A in string"),
    InvalidCase("raw NUL in string", quoted([0x61, 0x00]), at: 2, "unescaped control character 0x00 in string"),
    InvalidCase("raw 0x1F in string", quoted([0x1F]), at: 1, "unescaped control character 0x1F in string"),
    InvalidCase("invalid escape x", "\"\\x\"", at: 1, "invalid escape \\x"),
    InvalidCase("invalid escape U", "\"ab\\U0041\"", at: 3, "invalid escape \\U"),
    InvalidCase("invalid escape quote", "\"\\'\"", at: 1, "invalid escape \\'"),
    InvalidCase("invalid escape 0", "\"\\0\"", at: 1, "invalid escape \\0"),
    InvalidCase("escaped newline", "\"\\\n\"", at: 1, "invalid escape \\ followed by byte 0x0A"),
    InvalidCase("bad hex digit", "\"\\u00G0\"", at: 1, "invalid \\u escape"),
    InvalidCase("short \\u", "\"\\u12\"", at: 1, "invalid \\u escape"),
    // Lone surrogates.
    InvalidCase("lone high surrogate", "\"\\ud800\"", at: 1, "lone surrogate \\ud800"),
    InvalidCase("lone low surrogate", "\"\\udc00\"", at: 1, "lone surrogate \\udc00"),
    InvalidCase("high then high", "\"\\ud800\\ud800\"", at: 1, "lone surrogate \\ud800"),
    InvalidCase("high then text", "\"\\ud800x\"", at: 1, "lone surrogate \\ud800"),
    InvalidCase("high then other escape", "\"\\ud800\\n\"", at: 1, "lone surrogate \\ud800"),
    InvalidCase("high then BMP escape", "\"\\ud800\\u0041\"", at: 1, "lone surrogate \\ud800"),
    InvalidCase("upper-case lone high", "\"a\\uDBFFz\"", at: 2, "lone surrogate \\udbff"),
    InvalidCase("low then high", "\"\\udfff\\ud800\"", at: 1, "lone surrogate \\udfff"),
    InvalidCase("lone surrogate in key", "{\"\\ud800\":1}", at: 2, "lone surrogate \\ud800"),
    // UTF-8.
    InvalidCase("overlong C0 AF", quoted([0xC0, 0xAF]), at: 1, "invalid UTF-8 byte 0xC0"),
    InvalidCase("overlong C1 BF", quoted([0xC1, 0xBF]), at: 1, "invalid UTF-8 byte 0xC1"),
    InvalidCase("overlong E0 80 AF", quoted([0xE0, 0x80, 0xAF]), at: 1, "overlong UTF-8 encoding"),
    InvalidCase("overlong E0 9F BF", quoted([0x61, 0xE0, 0x9F, 0xBF]), at: 2, "overlong UTF-8 encoding"),
    InvalidCase("overlong F0 80 80 AF", quoted([0xF0, 0x80, 0x80, 0xAF]), at: 1, "overlong UTF-8 encoding"),
    InvalidCase("UTF-8 surrogate ED A0 80", quoted([0xED, 0xA0, 0x80]), at: 1, "UTF-8 encoded surrogate"),
    InvalidCase("UTF-8 surrogate ED BF BF", quoted([0xED, 0xBF, 0xBF]), at: 1, "UTF-8 encoded surrogate"),
    InvalidCase("above U+10FFFF", quoted([0xF4, 0x90, 0x80, 0x80]), at: 1, "above U+10FFFF"),
    InvalidCase("F5 lead", quoted([0xF5, 0x80, 0x80, 0x80]), at: 1, "invalid UTF-8 byte 0xF5"),
    InvalidCase("FF byte", quoted([0x61, 0x62, 0xFF]), at: 3, "invalid UTF-8 byte 0xFF"),
    InvalidCase("stray continuation", quoted([0x80]), at: 1, "invalid UTF-8 byte 0x80"),
    InvalidCase("continuation after valid", quoted([0xC3, 0xA9, 0xA9]), at: 3, "invalid UTF-8 byte 0xA9"),
    InvalidCase("truncated 3-byte", quoted([0xE2, 0x82]), at: 1, "truncated UTF-8 sequence"),
    InvalidCase("truncated 2-byte", quoted([0xC3]), at: 1, "truncated UTF-8 sequence"),
    InvalidCase("truncated 4-byte at end", [0x22, 0xF0, 0x9F, 0x98], at: 1, "truncated UTF-8 sequence"),
    InvalidCase("ASCII where continuation needed", quoted([0xE2, 0x41, 0x41]), at: 1, "truncated UTF-8 sequence"),
    InvalidCase("invalid UTF-8 in key", [0x7B, 0x22, 0xC0, 0x22, 0x3A, 0x31, 0x7D], at: 2, "invalid UTF-8 byte 0xC0"),
    // Duplicate keys.
    InvalidCase("duplicate key", "{\"a\":1,\"a\":2}", at: 7, "duplicate key \"a\""),
    InvalidCase("escaped duplicate", "{\"a\":1,\"\\u0061\":2}", at: 7, "duplicate key \"a\""),
    InvalidCase("duplicate of escaped", "{\"\\u0061\":1,\"a\":2}", at: 12, "duplicate key \"a\""),
    InvalidCase("both escaped", "{\"\\n\":1,\"\\u000a\":2}", at: 8, "duplicate key \"\n\""),
    InvalidCase("two-byte duplicate", "{\"é\":1,\"\\u00e9\":2}", at: 8, "duplicate key \"é\""),
    InvalidCase("surrogate pair duplicate", "{\"😀\":1,\"\\ud83d\\ude00\":2}", at: 10, "duplicate key \"😀\""),
    InvalidCase("nested duplicate", "{\"a\":{\"a\":1},\"b\":{\"b\":1,\"b\":2}}", at: 24, "duplicate key \"b\""),
    InvalidCase("duplicate after nested object", "{\"a\":{\"x\":1},\"a\":2}", at: 13, "duplicate key \"a\""),
    InvalidCase("duplicate empty key", "{\"\":1,\"\":2}", at: 6, "duplicate key \"\""),
]

// MARK: - Tests

@Suite("JSON scanner")
struct JSONScannerTests {
    @Test("accepts valid documents", arguments: validCases)
    func acceptsValid(_ valid: ValidCase) throws {
        let tape = try JSONScanner.scan(valid.bytes)
        #expect(tape.nodes.count == valid.nodeCount)
        #expect(tape.nodes.first?.kind == valid.rootKind)
        #expect(tape.nodes.first.map { Int($0.next) } == tape.nodes.count)
    }

    @Test("refuses invalid documents with the exact offset", arguments: invalidCases)
    func refusesInvalid(_ invalid: InvalidCase) {
        guard let error = scanError(invalid.bytes) else {
            Issue.record("accepted \(invalid.name)")
            return
        }
        #expect(error.code == .invalidJSON)
        #expect(error.offset == invalid.offset, "\(error.message)")
        #expect(error.message.contains(invalid.message), "message was: \(error.message)")
    }

    @Test("tape layout of a small document")
    func tapeLayout() throws {
        let tape = try JSONScanner.scan(Array("{\"a\":[1,\"x\"],\"b\":null}".utf8))
        typealias Node = JSONTape.Node
        #expect(
            tape.nodes == [
                Node(kind: .object, start: 0, end: 22, next: 7, count: 2),
                Node(kind: .string, start: 2, end: 3, next: 2),
                Node(kind: .array, start: 5, end: 12, next: 5, count: 2),
                Node(kind: .number, start: 6, end: 7, next: 4),
                Node(kind: .string, start: 9, end: 10, next: 5),
                Node(kind: .string, start: 14, end: 15, next: 6),
                Node(kind: .null, start: 17, end: 21, next: 7),
            ])
    }

    @Test("escape flag, literal offsets and appending to a reused tape")
    func flagsAndReuse() throws {
        let bytes = Array(" [\"a\\n\", \"b\", true, false] ".utf8)
        var tape = JSONTape()
        try bytes.withUnsafeBytes { raw in
            try JSONScanner.scan(raw, into: &tape)
            #expect(tape.nodes.map(\.hasEscapes) == [false, true, false, false, false])
            #expect(tape.nodes[3].start == 14 && tape.nodes[3].end == 18)
            #expect(tape.nodes[4].start == 20 && tape.nodes[4].end == 25)
            #expect(tape.nodes[0].start == 1 && tape.nodes[0].end == 26 && tape.nodes[0].count == 4)
            tape.removeAll()
            try JSONScanner.scan(raw, into: &tape)
            #expect(tape.nodes.count == 5)
        }
        // Appending a second text keeps absolute indices; a failed scan leaves the tape as it was.
        let second = Array("{\"k\":[true]}".utf8)
        try second.withUnsafeBytes { raw in
            try JSONScanner.scan(raw, into: &tape)
            #expect(tape.nodes.count == 9)
            #expect(tape.nodes[5].next == 9 && tape.nodes[7].next == 9 && tape.member("k", inObjectAt: 5, in: raw) == 7)
        }
        let before = tape.nodes
        let broken = Array("[1,2,{\"a\":".utf8)
        broken.withUnsafeBytes { raw in
            _ = #expect(throws: HeraldError.self) { try JSONScanner.scan(raw, into: &tape) }
        }
        #expect(tape.nodes == before)
    }

    @Test("nesting limit: 64 levels pass, 65 fail at the 65th bracket")
    func depthLimit() throws {
        let ok = String(repeating: "[", count: 64) + String(repeating: "]", count: 64)
        #expect(try JSONScanner.scan(Array(ok.utf8)).nodes.count == 64)
        let deep = String(repeating: "[", count: 65) + String(repeating: "]", count: 65)
        let error = scanError(Array(deep.utf8))
        #expect(error?.offset == 64)
        #expect(error?.message == "nesting deeper than 64")

        let objects = String(repeating: "{\"a\":", count: 65) + "1" + String(repeating: "}", count: 65)
        #expect(scanError(Array(objects.utf8))?.offset == 64 * 5)
        let objectsOK = String(repeating: "{\"a\":", count: 64) + "1" + String(repeating: "}", count: 64)
        #expect(scanError(Array(objectsOK.utf8)) == nil)

        #expect(scanError(Array("[[1]]".utf8), limits: JSONLimits(maxDepth: 1))?.offset == 1)
        #expect(scanError(Array("[]".utf8), limits: JSONLimits(maxDepth: 0))?.offset == 0)
        #expect(scanError(Array("\"scalar\"".utf8), limits: JSONLimits(maxDepth: 0)) == nil)
        let veryDeep = String(repeating: "[", count: 100_000)
        #expect(scanError(Array(veryDeep.utf8), limits: JSONLimits(maxDepth: 1_000_000))?.offset == 100_000)
    }

    @Test("duplicate keys in large objects (hash set path)", arguments: [17, 40, 300])
    func duplicateInLargeObject(members: Int) throws {
        let keys = (0..<members).map { "\"k\($0)\":\($0)" }
        let valid = "{" + keys.joined(separator: ",") + "}"
        #expect(scanError(Array(valid.utf8)) == nil)
        for (duplicate, text) in [("k3", "\"k\\u0033\""), ("k\(members - 1)", "\"k\(members - 1)\"")] {
            let prefix = "{" + keys.joined(separator: ",") + ","
            let json = prefix + text + ":0}"
            let error = scanError(Array(json.utf8))
            #expect(error?.message == "duplicate key \"\(duplicate)\"")
            #expect(error?.offset == prefix.utf8.count)
        }
    }

    @Test("string fast path stops exactly at special bytes", arguments: 0..<24)
    func stringFastPathAlignment(prefix: Int) throws {
        let letters = [UInt8](repeating: UInt8(ascii: "a"), count: prefix)
        let tail = [UInt8](repeating: UInt8(ascii: "b"), count: 11)
        for special: UInt8 in [0x01, 0x1F, 0x0A, 0xFF, 0x80, 0xC0] {
            let error = scanError([0x22] + letters + [special] + tail + [0x22])
            #expect(error?.offset == prefix + 1, "byte \(special)")
        }
        let tape = try JSONScanner.scan([0x22] + letters + [0x22] + [UInt8](repeating: 0x20, count: 11))
        #expect(tape.nodes[0].end == UInt32(prefix + 1))
        let escaped = try JSONScanner.scan([0x22] + letters + Array("\\\"é€😀".utf8) + tail + [0x22])
        #expect(escaped.nodes[0].hasEscapes)
        #expect(scanError([0x22] + letters + tail) == HeraldError(.invalidJSON, "unterminated string", offset: 0))
    }

    @Test("every proper prefix of a document is refused")
    func truncations() {
        for text in ["{\"a\":[1,\"x\"],\"b\":null}", vibrationRecordedEvent.trimmingTrailingNewline] {
            let bytes = Array(text.utf8)
            for length in 0..<bytes.count {
                let error = scanError(Array(bytes[0..<length]))
                #expect(error?.code == .invalidJSON, "prefix of length \(length)")
            }
        }
    }
}

extension String {
    var trimmingTrailingNewline: String {
        var text = self
        while text.last == "\n" { text.removeLast() }
        return text
    }
}

// MARK: - Reading helpers

@Suite("JSON tape reading")
struct JSONTapeReadingTests {
    static let object = "{\"a\":1,\"\\u0062\":2,\"c\\\"d\":3,\"é\":4,\"\\ud83d\\ude00\":5,\"ab\":6,\"\":7}"

    @Test(
        "member lookup with raw and escaped keys",
        arguments: [
            ("a", 1.0), ("b", 2), ("c\"d", 3), ("é", 4), ("😀", 5), ("ab", 6), ("", 7),
        ] as [(String, Double)])
    func memberLookup(key: String, expected: Double) throws {
        let bytes = Array(Self.object.utf8)
        let tape = try JSONScanner.scan(bytes)
        bytes.withUnsafeBytes { raw in
            let index = tape.member(key, inObjectAt: 0, in: raw)
            #expect(index.map { tape.number(at: $0, in: raw) } == expected)
        }
    }

    @Test("member lookup misses and non-objects")
    func memberMisses() throws {
        let bytes = Array("{\"ab\":[1],\"a\\u0062c\":{\"x\":null}}".utf8)
        let tape = try JSONScanner.scan(bytes)
        bytes.withUnsafeBytes { raw in
            #expect(tape.member("a" as StaticString, inObjectAt: 0, in: raw) == nil)
            #expect(tape.member("abcd", inObjectAt: 0, in: raw) == nil)
            #expect(tape.member("zz", inObjectAt: 0, in: raw) == nil)
            #expect(tape.member("ab" as StaticString, inObjectAt: 0, in: raw) == 2)
            #expect(tape.member("abc" as StaticString, inObjectAt: 0, in: raw) == 5)
            #expect(tape.member("x", inObjectAt: 2, in: raw) == nil)  // an array
            #expect(tape.member("x", inObjectAt: 5, in: raw) == 7)
            #expect(tape.nodes[7].kind == .null)
        }
    }

    @Test(
        "string decoding",
        arguments: [
            ("\"plain\"", "plain"),
            ("\"\"", ""),
            ("\"a\\nb\"", "a\nb"),
            ("\"\\u00e9\"", "é"),
            ("\"\\u00E9t\\u00e9\"", "été"),
            ("\"\\ud83d\\ude00!\"", "😀!"),
            ("\"\\uDBFF\\uDFFF\"", "\u{10FFFF}"),
            ("\"\\u0000\"", "\u{0}"),
            ("\"x\\u0000y\"", "x\u{0}y"),
            ("\"\\/\\\\\\\"\"", "/\\\""),
            ("\"\\b\\f\\r\\t\"", "\u{8}\u{C}\r\t"),
            ("\"é😀 raw\"", "é😀 raw"),
            ("\"\\uffff\\u20AC\"", "\u{FFFF}€"),
            ("\"a long string with an escape at the very end\\n\"", "a long string with an escape at the very end\n"),
        ] as [(String, String)])
    func stringDecoding(json: String, expected: String) throws {
        let bytes = Array(json.utf8)
        let tape = try JSONScanner.scan(bytes)
        bytes.withUnsafeBytes { raw in
            #expect(tape.string(at: 0, in: raw) == expected)
            #expect(Array(tape.string(at: 0, in: raw).utf8) == Array(expected.utf8))
            var utf8 = Array(expected.utf8)
            utf8.withUnsafeBytes { #expect(tape.stringEquals(at: 0, $0, in: raw)) }
            utf8.append(0x41)
            utf8.withUnsafeBytes { #expect(!tape.stringEquals(at: 0, $0, in: raw)) }
            if !expected.isEmpty {
                utf8.removeLast(2)
                utf8.withUnsafeBytes { #expect(!tape.stringEquals(at: 0, $0, in: raw)) }
            }
        }
    }

    @Test(
        "number parsing",
        arguments: [
            ("35", 35.0), ("3.5e1", 35), ("-0.0", -0.0), ("1E-2", 0.01), ("0", 0), ("-0", -0.0),
            ("0.1", 0.1), ("-12.5", -12.5), ("4.0", 4), ("1e22", 1e22), ("1e23", 1e23),
            ("9007199254740993", 9_007_199_254_740_992), ("12345678901234567890", 12_345_678_901_234_567_168),
            ("123456789012345678901234567890", 1.2345678901234568e29), ("0.000001", 0.000001),
            ("1.7976931348623157e308", 1.7976931348623157e308), ("5e-324", .leastNonzeroMagnitude),
            ("2.2250738585072014e-308", 2.2250738585072014e-308), ("1e308", 1e308), ("-1e308", -1e308),
            ("1e-400", 0), ("0e999999999999", 0), ("100e-2", 1), ("0.30000000000000004", 0.30000000000000004),
        ] as [(String, Double)])
    func numberParsing(json: String, expected: Double) throws {
        let bytes = Array(json.utf8)
        let tape = try JSONScanner.scan(bytes)
        let value = bytes.withUnsafeBytes { tape.number(at: 0, in: $0) }
        #expect(value == expected)
        #expect(value.sign == expected.sign)
        #expect(value == Double(json))
    }

    @Test("walking members and elements")
    func walking() throws {
        let bytes = Array("{\"a\":[1,[2,3],{\"x\":4}],\"b\":{},\"c\":\"s\"}".utf8)
        let tape = try JSONScanner.scan(bytes)
        bytes.withUnsafeBytes { raw in
            var keys: [String] = []
            var valueKinds: [JSONTape.Kind] = []
            tape.forEachMember(ofObjectAt: 0) { key, value in
                keys.append(tape.string(at: key, in: raw))
                valueKinds.append(tape.nodes[value].kind)
            }
            #expect(keys == ["a", "b", "c"])
            #expect(valueKinds == [.array, .object, .string])
            var elementKinds: [JSONTape.Kind] = []
            tape.forEachElement(ofArrayAt: 2) { elementKinds.append(tape.nodes[$0].kind) }
            #expect(elementKinds == [.number, .array, .object])
            var none = 0
            tape.forEachMember(ofObjectAt: tape.member("b", inObjectAt: 0, in: raw)!) { _, _ in none += 1 }
            #expect(none == 0)
        }
    }

    @Test("reading the vibration event")
    func vibrationEvent() throws {
        let bytes = Array(vibrationRecordedEvent.utf8)
        let tape = try JSONScanner.scan(bytes)
        bytes.withUnsafeBytes { raw in
            let data = tape.member("data", inObjectAt: 0, in: raw)!
            let level = tape.member("vibrationLevel", inObjectAt: data, in: raw)!
            #expect(tape.number(at: level, in: raw) == 12.5)
            let unit = tape.member("unit", inObjectAt: data, in: raw)!
            #expect(tape.string(at: unit, in: raw) == "m/s²")
            let source = tape.member("source", inObjectAt: 0, in: raw)!
            #expect(
                "VibrationSensor".utf8.withContiguousStorageIfAvailable {
                    tape.stringEquals(at: source, UnsafeRawBufferPointer($0), in: raw)
                } == true)
        }
    }
}

// MARK: - Property tests

/// A random JSON document: its text and what the scanner must report for it.
struct GeneratedDocument {
    var text: [UInt8] = []
    /// Node kinds in document order.
    var kinds: [JSONTape.Kind] = []
    /// Decoded strings (keys and values) in document order.
    var strings: [String] = []
    /// Number tokens in document order.
    var numbers: [String] = []

    static let alphabet: [Unicode.Scalar] = [
        "a", "b", "z", "A", " ", "0", "\"", "\\", "/", "\u{0}", "\u{8}", "\n", "\u{1F}", "\u{7F}",
        "é", "€", "\u{FFFF}", "😀", "\u{10FFFF}", "\u{E000}",
    ]

    mutating func whitespace(_ rng: inout SeededGenerator) {
        let choices: [UInt8] = [0x20, 0x09, 0x0A, 0x0D]
        for _ in 0..<Int.random(in: 0...2, using: &rng) where Bool.random(using: &rng) {
            text.append(choices.randomElement(using: &rng)!)
        }
    }

    mutating func appendEscaped(_ unit: UInt16, _ rng: inout SeededGenerator) {
        var hex = String(unit, radix: 16, uppercase: Bool.random(using: &rng))
        while hex.count < 4 { hex = "0" + hex }
        text += Array("\\u\(hex)".utf8)
    }

    mutating func string(_ value: String, _ rng: inout SeededGenerator) {
        strings.append(value)
        kinds.append(.string)
        text.append(0x22)
        for scalar in value.unicodeScalars {
            let escape = Int.random(in: 0..<4, using: &rng) == 0
            switch scalar {
            case "\"": text += Array("\\\"".utf8)
            case "\\": text += Array("\\\\".utf8)
            case "\n" where !escape: text += Array("\\n".utf8)
            case "\u{8}" where !escape: text += Array("\\b".utf8)
            case "/" where escape: text += Array("\\/".utf8)
            case _ where scalar.value < 0x20 || escape:
                for unit in String(scalar).utf16 { appendEscaped(unit, &rng) }
            default: text += Array(String(scalar).utf8)
            }
        }
        text.append(0x22)
    }

    mutating func randomString(_ rng: inout SeededGenerator) -> String {
        var value = ""
        for _ in 0..<Int.random(in: 0...12, using: &rng) {
            value.unicodeScalars.append(Self.alphabet.randomElement(using: &rng)!)
        }
        return value
    }

    mutating func number(_ rng: inout SeededGenerator) {
        var token = Bool.random(using: &rng) ? "-" : ""
        token +=
            Bool.random(using: &rng)
            ? "0" : String(UInt64.random(in: 1...UInt64.max, using: &rng) >> (UInt64.random(in: 0..<64, using: &rng)))
        if Bool.random(using: &rng) { token += "." + String(UInt32.random(in: 0...999_999, using: &rng)) }
        if Bool.random(using: &rng) {
            token += ["e", "E"].randomElement(using: &rng)! + ["", "+", "-"].randomElement(using: &rng)!
            // Positive exponents stay within float64 (past it the scanner refuses the number).
            token += String(Int.random(in: 0...280, using: &rng))
        }
        numbers.append(token)
        kinds.append(.number)
        text += Array(token.utf8)
    }

    mutating func value(depth: Int, _ rng: inout SeededGenerator) {
        let pick = Int.random(in: 0..<(depth < 6 ? 8 : 5), using: &rng)
        switch pick {
        case 0: string(randomString(&rng), &rng)
        case 1: number(&rng)
        case 2:
            let (word, kind): (String, JSONTape.Kind) = [("true", .true), ("false", .false), ("null", .null)]
                .randomElement(using: &rng)!
            kinds.append(kind)
            text += Array(word.utf8)
        case 3, 4: number(&rng)
        case 5, 6:
            kinds.append(.object)
            text.append(UInt8(ascii: "{"))
            let members =
                Int.random(in: 0..<10, using: &rng) == 0
                ? Int.random(in: 15...40, using: &rng)
                : Int.random(in: 0...5, using: &rng)
            for i in 0..<members {
                if i > 0 { text.append(UInt8(ascii: ",")) }
                whitespace(&rng)
                string("k\(i)-" + randomString(&rng), &rng)  // "-" is not in the alphabet: keys are unique
                whitespace(&rng)
                text.append(UInt8(ascii: ":"))
                whitespace(&rng)
                value(depth: depth + 1, &rng)
                whitespace(&rng)
            }
            text.append(UInt8(ascii: "}"))
        default:
            kinds.append(.array)
            text.append(UInt8(ascii: "["))
            for i in 0..<Int.random(in: 0...6, using: &rng) {
                if i > 0 { text.append(UInt8(ascii: ",")) }
                whitespace(&rng)
                value(depth: depth + 1, &rng)
                whitespace(&rng)
            }
            text.append(UInt8(ascii: "]"))
        }
    }

    init(seed: UInt64) {
        var rng = SeededGenerator(seed: seed)
        whitespace(&rng)
        value(depth: 0, &rng)
        whitespace(&rng)
    }
}

@Suite("JSON scanner properties")
struct JSONScannerPropertyTests {
    @Test("random valid documents are accepted with the right tape", arguments: 0..<8)
    func randomValidDocuments(batch: UInt64) throws {
        for seed in batch * 250..<(batch + 1) * 250 {
            let document = GeneratedDocument(seed: seed)
            let tape = try JSONScanner.scan(document.text)
            #expect(tape.nodes.map(\.kind) == document.kinds, "seed \(seed)")
            document.text.withUnsafeBytes { raw in
                let strings = tape.nodes.indices.filter { tape.nodes[$0].kind == .string }
                #expect(strings.map { tape.string(at: $0, in: raw) } == document.strings, "seed \(seed)")
                let numbers = tape.nodes.indices.filter { tape.nodes[$0].kind == .number }
                #expect(numbers.map { tape.number(at: $0, in: raw) } == document.numbers.map { Double($0)! })
            }
        }
    }

    @Test("one mutated byte is accepted or refused as invalid_json, never a crash", arguments: 0..<4)
    func mutatedDocuments(batch: UInt64) {
        var rng = SeededGenerator(seed: 0xC0FFEE + batch)
        let interesting: [UInt8] = [
            0x00, 0x09, 0x20, 0x22, 0x2C, 0x2D, 0x2E, 0x30, 0x31, 0x3A, 0x5B, 0x5C, 0x5D, 0x65, 0x75, 0x7B, 0x7D,
            0x80, 0xBF, 0xC0, 0xC3, 0xE0, 0xED, 0xF0, 0xF4, 0xFF,
        ]
        for round in 0..<1000 {
            var bytes =
                round % 5 == 0
                ? Array(vibrationRecordedEvent.utf8) : GeneratedDocument(seed: rng.next()).text
            guard !bytes.isEmpty else { continue }
            let position = Int.random(in: 0..<bytes.count, using: &rng)
            bytes[position] =
                Bool.random(using: &rng)
                ? interesting.randomElement(using: &rng)! : UInt8.random(in: 0...255, using: &rng)
            do {
                let tape = try JSONScanner.scan(bytes)
                #expect(Int(tape.nodes[0].next) == tape.nodes.count)
                bytes.withUnsafeBytes { raw in
                    for index in tape.nodes.indices {
                        let node = tape.nodes[index]
                        #expect(Int(node.end) <= bytes.count && node.start <= node.end)
                        if node.kind == .string { _ = tape.string(at: index, in: raw) }
                        if node.kind == .number { _ = tape.number(at: index, in: raw) }
                    }
                }
            } catch {
                #expect(error.code == .invalidJSON)
                #expect((0...bytes.count).contains(error.offset ?? -1))
            }
        }
    }
}
