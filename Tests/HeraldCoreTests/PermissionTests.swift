import HeraldCore
import HeraldPatternCorpus
import Testing

/// Patterns read as permissions (a key's or a token's publish rights): every value at a
/// constrained path must satisfy the rule, where a subscription needs only one.
@Suite struct PermissionTests {
    /// What a demo token for mallory in room lobby may publish (the demo's own rule).
    static let demo = #"""
        {"$or":[{"type":["chat.message"],"from":["mallory"],"room":["lobby"]},
                {"type":["herald.presence"],"group":["chat:lobby"],"info":{"nick":["mallory"]}}]}
        """#

    func check(_ pattern: String, _ event: String) throws -> (matches: Bool, permits: Bool) {
        let compiled = try Pattern(parsing: Array(pattern.utf8))
        let bytes = Array(event.utf8)
        let tape = try JSONScanner.scan(bytes)
        return bytes.withUnsafeBytes { raw in
            let view = EventView(tape: tape, node: 0, bytes: raw)
            return (compiled.matches(view), compiled.permits(view))
        }
    }

    @Test(arguments: [
        // What the demo token is for.
        (demo, #"{"type":"chat.message","from":"mallory","room":"lobby","text":"hi"}"#, true, true),
        (demo, #"{"type":"herald.presence","group":"chat:lobby","info":{"nick":"mallory"}}"#, true, true),
        // Arrays that matched as subscriptions but must not widen rights.
        (demo, #"{"type":"chat.message","from":"mallory","room":["lobby","secret"]}"#, true, false),
        (demo, #"{"type":"chat.message","from":["mallory","ada"],"room":"lobby"}"#, true, false),
        (demo, #"{"type":"herald.presence","group":"chat:lobby","info":{"nick":["mallory","ada"]}}"#, true, false),
        (demo, #"{"type":"herald.presence","group":"chat:lobby","info":[{"nick":"mallory"},{"nick":"ada"}]}"#, true, false),
        (demo, #"{"type":"chat.message","from":"mallory","room":[]}"#, false, false),
        (demo, #"{"type":"chat.message","from":"mallory","room":{"name":"lobby"}}"#, false, false),
        (demo, #"{"type":"chat.message","from":"mallory"}"#, false, false),
        // Arrays whose every element is allowed are fine.
        (#"{"tags":["a","b"]}"#, #"{"tags":["a","b","a"]}"#, true, true),
        (#"{"n":[{"numeric":[">",0,"<",10]}]}"#, #"{"n":[1,5,9]}"#, true, true),
        (#"{"n":[{"numeric":[">",0,"<",10]}]}"#, #"{"n":[1,50]}"#, true, false),
        (#"{"to":[{"anything-but":["root"]}]}"#, #"{"to":["ada","root"]}"#, true, false),
        (#"{"to":[{"prefix":"team-"}]}"#, #"{"to":["team-a",["team-b","x"]]}"#, true, false),
        // Paths through arrays of objects reach every element.
        (#"{"items":{"owner":["ada"]}}"#, #"{"items":[{"owner":"ada"},{"owner":"ada"}]}"#, true, true),
        (#"{"items":{"owner":["ada"]}}"#, #"{"items":[{"owner":"ada"},{"owner":"eve"}]}"#, true, false),
        (#"{"items":{"owner":["ada"]}}"#, #"{"items":[{"owner":"ada"},{"other":1}]}"#, true, true),
        // exists and absence.
        (#"{"meta":[{"exists":true}]}"#, #"{"meta":{"a":1}}"#, false, false),
        (#"{"secret":[{"exists":false}]}"#, #"{"a":1}"#, true, true),
        (#"{"secret":[{"exists":false}],"a":[1]}"#, #"{"a":[1],"secret":[]}"#, true, true),
        (#"{"secret":[{"exists":false}]}"#, #"{"secret":{"x":1}}"#, true, false),
    ])
    func everyValueMustSatisfy(pattern: String, event: String, matches: Bool, permits: Bool) throws {
        let result = try check(pattern, event)
        #expect(result.matches == matches, "match")
        #expect(result.permits == permits, "permission")
    }

    @Test func permissionImpliesMatchAndEqualsItWithoutArrays() throws {
        // Against every corpus pattern: a permitted event always matches, and for events
        // without arrays (one value per path) the two agree.
        let events = (0..<300).map { PatternCorpus.event($0).serialized }
        for entry in PatternCorpus.patterns {
            let pattern = try Pattern(parsing: Array(entry.pattern.utf8))
            for event in events {
                let bytes = Array(event.utf8)
                let tape = try JSONScanner.scan(bytes)
                let (matches, permits) = bytes.withUnsafeBytes { raw in
                    let view = EventView(tape: tape, node: 0, bytes: raw)
                    return (pattern.matches(view), pattern.permits(view))
                }
                if permits { #expect(matches, "\(entry.pattern) permits but does not match \(event)") }
                if !event.contains("[") { #expect(matches == permits, "\(entry.pattern) on \(event)") }
            }
        }
    }
}
