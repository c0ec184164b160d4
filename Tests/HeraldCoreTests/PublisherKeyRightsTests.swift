import HeraldCore
import Testing

/// A publisher key's `publish` pattern (config) is a permission, as a JWT's
/// `herald.publish` is: a batch passes only when every event's every value at each
/// constrained path satisfies it, and the refusal names the key and the event.
@Suite struct PublisherKeyRightsTests {
    static let config = #"""
        {"auth":{"publisherKeys":[
          {"name":"billing","sha256":"\#(String(repeating: "ab", count: 32))","publish":{"type":[{"prefix":"billing."}],"team":["billing"]}},
          {"name":"ops","sha256":"\#(String(repeating: "cd", count: 32))"}]}}
        """#

    func refusal(_ credentials: Credentials, _ body: String) throws -> HeraldError? {
        var tape = JSONTape()
        let bytes = Array(body.utf8)
        return try bytes.withUnsafeBytes { raw in
            let events = try IngestParser.parse(raw, format: .json, limits: HeraldConfig().limits.ingest, tape: &tape)
            return credentials.publishRefusal(events, tape: tape, body: raw)
        }
    }

    @Test func aKeysPatternIsReadAndEnforcedAsAPermission() throws {
        let config = try HeraldConfig(parsing: Array(Self.config.utf8))
        let billing = try #require(config.auth.publisherKeys.first { $0.name == "billing" })
        let ops = try #require(config.auth.publisherKeys.first { $0.name == "ops" })
        #expect(ops.publish == nil)
        let key = Credentials.publisherKey(name: billing.name, publish: billing.publish)
        #expect(try refusal(key, #"{"type":"billing.paid","team":"billing"}"#) == nil)
        #expect(try refusal(key, #"[{"type":"billing.paid","team":"billing"},{"type":"billing.x","team":"billing","n":[1,2]}]"#) == nil)
        let mixed = try #require(
            try refusal(key, #"[{"type":"billing.paid","team":"billing"},{"type":"chat.message","team":"billing"}]"#))
        #expect(mixed.code == .forbidden && mixed.index == 1 && mixed.message.contains(#""billing""#))
        let twoSources = try #require(try refusal(key, #"{"type":"billing.paid","team":["billing","payroll"]}"#))
        #expect(twoSources.code == .forbidden && twoSources.index == nil)
        #expect(try refusal(key, #"{"type":"billing.paid"}"#)?.code == .forbidden, "a constrained path the event lacks")
        #expect(try refusal(.publisherKey(name: "ops"), #"{"type":"anything","team":"anywhere"}"#) == nil)
        #expect(try refusal(key, #"{"type":"herald.presence","team":"billing"}"#)?.code == .forbidden, "reserved types stay reserved")
    }

    @Test func keyPatternsAndNamesAreCheckedWithTheirPaths() {
        let bad = #"""
            {"auth":{"publisherKeys":[{"name":"a","sha256":"\#(String(repeating: "ab", count: 32))","publish":{"type":"x"}},
              {"name":"a","sha256":"\#(String(repeating: "cd", count: 32))"}],
              "adminKeys":[{"name":"ops","sha256":"\#(String(repeating: "ef", count: 32))","publish":{"type":["x"]}}]}}
            """#
        #expect { try HeraldConfig(parsing: Array(bad.utf8)) } throws: { error in
            guard let errors = error as? HeraldConfig.ValidationErrors else { return false }
            return Set(errors.errors.compactMap(\.path)) == [
                "$.auth.publisherKeys[0].publish.type", "$.auth.publisherKeys[1].name", "$.auth.adminKeys[0].publish",
            ]
        }
    }
}
