import HeraldCore

#if canImport(Glibc)
import Glibc
#endif

/// The parsers a client's bytes reach, each driven by libFuzzer through one entry point.
/// A harness fails by crashing: a trap, an ASan report, or `check` when two answers that
/// must agree do not. Every input must be refused with a `HeraldError` or accepted; what
/// is accepted is checked for the invariants the gateway relies on.
enum Harness: String, CaseIterable {
    /// JSONScanner: every accepted text has a tape whose root spans it.
    case json
    /// Pattern parser + compiler + matcher: the automaton (`SubscriptionIndex`) against
    /// `Pattern.matches`, on one pattern and one event split at the first newline.
    case pattern
    /// The WebSocket op parser (`ClientMessage`).
    case wsop
    /// The JWT parser and verifier (claims, patterns in claims, time checks) with a
    /// verifier that accepts any signature, so that the claims are reached.
    case jwt
    /// The config reader.
    case config
    /// The HTTP path of ingest: request heads (pipelined), chunked bodies, and the body
    /// in each ingest format.
    case http

    static let selected: Harness = {
        guard let name = getenv("HERALD_FUZZ").map({ String(cString: $0) }), let harness = Harness(rawValue: name) else {
            let names = Harness.allCases.map(\.rawValue).joined(separator: ", ")
            print("set HERALD_FUZZ to one of: \(names)")
            exit(2)
        }
        return harness
    }()

    func run(_ bytes: [UInt8]) {
        switch self {
        case .json: Self.json(bytes)
        case .pattern: Self.pattern(bytes)
        case .wsop: _ = try? ClientMessage(decoding: bytes, limits: JSONLimits())
        case .jwt: Self.jwt(bytes)
        case .config: _ = try? HeraldConfig(parsing: bytes)
        case .http: Self.http(bytes)
        }
    }

    static func check(_ condition: Bool, _ what: @autoclosure () -> String) {
        if !condition { fatalError("invariant broken: \(what())") }
    }

    static func json(_ bytes: [UInt8]) {
        guard let tape = try? JSONScanner.scan(bytes) else { return }
        check(!tape.nodes.isEmpty, "an accepted text has a root node")
        // Reading it back as a value and writing it must give a text the scanner accepts.
        guard let value = try? JSONValue(parsing: bytes) else { return check(false, "JSONValue refuses what the scanner took") }
        var written: [UInt8] = []
        JSONWriter.write(value, into: &written)
        check((try? JSONScanner.scan(written)) != nil, "the written form of an accepted text is accepted")
    }

    static func pattern(_ bytes: [UInt8]) {
        let split = bytes.firstIndex(of: UInt8(ascii: "\n")) ?? bytes.endIndex
        let patternBytes = Array(bytes[..<split])
        let eventBytes = split < bytes.endIndex ? Array(bytes[(split + 1)...]) : Array("{}".utf8)
        guard let pattern = try? Pattern(parsing: patternBytes), let tape = try? JSONScanner.scan(eventBytes) else { return }
        var index = SubscriptionIndex()
        index.add(owner: 1, slot: 0, patterns: [pattern])
        var results: [SubscriptionIndex.Match] = []
        let (automaton, direct, permits) = eventBytes.withUnsafeBytes { raw in
            let view = EventView(tape: tape, node: 0, bytes: raw)
            index.match(view, into: &results)
            return (!results.isEmpty, pattern.matches(view), pattern.permits(view))
        }
        check(automaton == direct, "the automaton says \(automaton), Pattern.matches says \(direct)")
        check(!permits || direct, "a permission that holds implies a match")
        index.removeAll(owner: 1)
        check(index.count == 0, "removing the only pattern empties the index")
    }

    static func jwt(_ bytes: [UInt8]) {
        let text = String(decoding: bytes, as: UTF8.self)
        _ = try? SubscriberToken(
            verifying: text, now: 1_800_000_000, audience: "herald", issuer: nil, limits: PatternLimits(),
            verify: { _, _, _ in nil })
    }

    static func http(_ bytes: [UInt8]) {
        var decoder = HTTPRequestDecoder()
        var offset = 0
        var tape = JSONTape()
        bytes.withUnsafeBytes { raw in
            while offset < raw.count {
                guard let decoded = try? decoder.decodeHead(UnsafeRawBufferPointer(rebasing: raw[offset...])) else { return }
                check(decoded.consumed > 0 && offset + decoded.consumed <= raw.count, "a head consumes what it read")
                offset += decoded.consumed
                // What follows the head is its body (as much as is there), in every format.
                let body = UnsafeRawBufferPointer(rebasing: raw[offset...])
                for format in [IngestFormat.json, .cloudEvent, .cloudEventBatch] {
                    if let events = try? IngestParser.parse(body, format: format, limits: IngestLimits(), tape: &tape) {
                        check(!events.isEmpty, "an accepted body holds events")
                    }
                }
                // A CloudEvent in binary mode: its ce-* fields and the body become one
                // structured event, which must be JSON the scanner takes.
                if let binary = BinaryCloudEvent(head: decoded.head),
                    let structured = try? binary.structuredJSON(data: Array(body), limits: JSONLimits())
                {
                    check((try? JSONScanner.scan(structured, limits: JSONLimits(maxDepth: 1 << 16))) != nil, "structured form is JSON")
                    _ = structured.withUnsafeBytes { try? IngestParser.parse($0, format: .cloudEvent, limits: IngestLimits(), tape: &tape) }
                }
                var chunked = ChunkedDecoder()
                var out: [UInt8] = []
                if let used = try? chunked.decode(body.bindMemory(to: UInt8.self), into: &out) {
                    check(used <= body.count && out.count <= used, "chunked decoding stays in its input")
                }
                offset += min(body.count, 64)
            }
        }
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    let bytes = data.map { Array(UnsafeBufferPointer(start: $0, count: count)) } ?? []
    Harness.selected.run(bytes)
    return 0
}

/// libFuzzer's driver, which its own `main` would call: SwiftPM gives an executable the
/// entry point `<module>_main`, so this one hands libFuzzer the command line.
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
) -> CInt

@_cdecl("HeraldFuzz_main")
public func heraldFuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var count = argc
    var arguments = argv
    _ = Harness.selected  // refuse at once when HERALD_FUZZ names no harness
    return LLVMFuzzerRunDriver(&count, &arguments, fuzz)
}
