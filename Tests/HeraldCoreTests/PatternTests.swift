import HeraldCore
import Testing

/// Exact-value patterns: a conformance table written from the EventBridge semantics.
@Suite struct PatternTests {
    static func matches(_ pattern: String, _ event: String) throws -> Bool {
        let compiled = try Pattern(parsing: Array(pattern.utf8))
        let bytes = Array(event.utf8)
        let tape = try JSONScanner.scan(bytes)
        return bytes.withUnsafeBytes { compiled.matches(EventView(tape: tape, node: 0, bytes: $0)) }
    }

    @Test(arguments: [
        // strings, numbers by value, booleans, null
        (#"{"type":["chat.message"]}"#, #"{"type":"chat.message"}"#, true),
        (#"{"type":["chat.message"]}"#, #"{"type":"chat.messages"}"#, false),
        (#"{"type":["a","b"]}"#, #"{"type":"b"}"#, true),
        (#"{"n":[35]}"#, #"{"n":35.0}"#, true),
        (#"{"n":[35]}"#, #"{"n":3.5e1}"#, true),
        (#"{"n":[35]}"#, #"{"n":"35"}"#, false),
        (#"{"s":["35"]}"#, #"{"s":35}"#, false),
        (#"{"b":[true]}"#, #"{"b":true}"#, true),
        (#"{"b":[true]}"#, #"{"b":"true"}"#, false),
        (#"{"z":[null]}"#, #"{"z":null}"#, true),
        (#"{"z":[null]}"#, #"{}"#, false),
        (#"{"s":["é"]}"#, #"{"s":"\u00e9"}"#, true),
        // every field must match; absent fields do not
        (#"{"type":["t"],"room":["lobby"]}"#, #"{"type":"t","room":"lobby","x":1}"#, true),
        (#"{"type":["t"],"room":["lobby"]}"#, #"{"type":"t"}"#, false),
        (#"{}"#, #"{"anything":1}"#, true),
        // nesting
        (#"{"data":{"sensorId":["VB-1"]}}"#, #"{"data":{"sensorId":"VB-1","x":2}}"#, true),
        (#"{"data":{"sensorId":["VB-1"]}}"#, #"{"data":"VB-1"}"#, false),
        (#"{"data":{"sensorId":["VB-1"]}}"#, #"{"sensorId":"VB-1"}"#, false),
        // arrays in events: any element matches
        (#"{"mentions":["ada"]}"#, #"{"mentions":["bob","ada"]}"#, true),
        (#"{"mentions":["ada"]}"#, #"{"mentions":[]}"#, false),
        (#"{"mentions":["ada"]}"#, #"{"mentions":[["ada"]]}"#, false),
        // array consistency: one match never combines fields of different elements
        (#"{"items":{"sku":["a"],"qty":[2]}}"#, #"{"items":[{"sku":"a","qty":1},{"sku":"b","qty":2}]}"#, false),
        (#"{"items":{"sku":["a"],"qty":[2]}}"#, #"{"items":[{"sku":"b","qty":1},{"sku":"a","qty":2}]}"#, true),
        // the pattern value is never the event value's container
        (#"{"a":["x"]}"#, #"{"a":{"x":1}}"#, false),
    ])
    func exactValues(pattern: String, event: String, expected: Bool) throws {
        #expect(try Self.matches(pattern, event) == expected)
    }

    @Test(arguments: [
        ("[]", "$", "must be a JSON object"),
        (#"{"a":"b"}"#, "$.a", "must be an array of values or an object"),
        (#"{"a":[]}"#, "$.a", "must not be empty"),
        (#"{"a":{}}"#, "$.a", "must not be empty"),
        (#"{"a":[[1]]}"#, "$.a[0]", "must not be an array"),
        (#"{"a":[{"prefix":"x"}]}"#, "$.a[0]", "operator \"prefix\""),
        (#"{"$or":[{"a":[1]}]}"#, "$.$or", "$or"),
        (#"{"a":{"b":[1],"b":[2]}}"#, "$", "duplicate key \"b\""),
    ])
    func invalidPatternsNameThePathAndReason(pattern: String, path: String, reason: String) {
        #expect { try Pattern(parsing: Array(pattern.utf8)) } throws: {
            guard let error = $0 as? HeraldError else { return false }
            return error.code == .invalidPattern && (error.path ?? "$") == path && error.message.contains(reason)
        }
    }

    @Test func limitsAreEnforced() {
        let wide = "{" + (0..<70).map { #""f\#($0)":[1]"# }.joined(separator: ",") + "}"
        #expect { try Pattern(parsing: Array(wide.utf8)) } throws: { ($0 as? HeraldError)?.message.contains("64 fields") == true }
        let long = #"{"a":[""# + String(repeating: "x", count: 5000) + #""]}"#
        #expect { try Pattern(parsing: Array(long.utf8)) } throws: { ($0 as? HeraldError)?.message.contains("4096") == true }
    }

    @Test func theIndexGroupsMatchesPerOwner() throws {
        var index = SubscriptionIndex()
        let lobby = try Pattern(JSONValue(parsing: #"{"room":["lobby"]}"#))
        let chat = try Pattern(JSONValue(parsing: #"{"type":["chat"]}"#))
        index.add(owner: 1, slot: 0, patterns: [lobby])
        index.add(owner: 1, slot: 5, patterns: [chat])
        index.add(owner: 2, slot: 0, patterns: [lobby, chat])
        index.add(owner: 3, slot: 0, patterns: [try Pattern(JSONValue(parsing: #"{"room":["ops"]}"#))])
        #expect(index.count == 4)
        let bytes = Array(#"{"type":"chat","room":"lobby"}"#.utf8)
        let tape = try JSONScanner.scan(bytes)
        var results: [SubscriptionIndex.Match] = []
        bytes.withUnsafeBytes { index.match(EventView(tape: tape, node: 0, bytes: $0), into: &results) }
        var both = SubscriptionSet(slot: 0)
        both.insert(5)
        #expect(results == [.init(owner: 1, subscriptions: both), .init(owner: 2, subscriptions: SubscriptionSet(slot: 0))])
        index.remove(owner: 1, slot: 5)
        index.removeAll(owner: 2)
        #expect(index.count == 2)
        results.removeAll()
        bytes.withUnsafeBytes { index.match(EventView(tape: tape, node: 0, bytes: $0), into: &results) }
        #expect(results == [.init(owner: 1, subscriptions: SubscriptionSet(slot: 0))])
    }
}
