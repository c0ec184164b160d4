import HeraldCore
import Testing

/// `SubscriptionIndex` as the server uses it: owners, slots, AND of patterns, removal.
@Suite struct MatcherIndexTests {
    static func pattern(_ text: String) throws -> Pattern { try Pattern(parsing: Array(text.utf8)) }

    static func match(_ index: SubscriptionIndex, _ event: String) throws -> [SubscriptionIndex.Match] {
        let bytes = Array(event.utf8)
        let tape = try JSONScanner.scan(bytes)
        var results: [SubscriptionIndex.Match] = []
        bytes.withUnsafeBytes { index.match(EventView(tape: tape, node: 0, bytes: $0), into: &results) }
        return results.sorted { $0.owner < $1.owner }
    }

    static func set(_ slots: Int...) -> SubscriptionSet {
        var set = SubscriptionSet()
        for s in slots { set.insert(s) }
        return set
    }

    @Test func theIndexGroupsMatchesPerOwner() throws {
        var index = SubscriptionIndex()
        let lobby = try Self.pattern(#"{"room":["lobby"]}"#)
        let chat = try Self.pattern(#"{"type":["chat"]}"#)
        index.add(owner: 1, slot: 0, patterns: [lobby])
        index.add(owner: 1, slot: 5, patterns: [chat])
        index.add(owner: 2, slot: 0, patterns: [lobby, chat])
        index.add(owner: 3, slot: 0, patterns: [try Self.pattern(#"{"room":["ops"]}"#)])
        #expect(index.count == 4)
        let event = #"{"type":"chat","room":"lobby"}"#
        #expect(
            try Self.match(index, event) == [.init(owner: 1, subscriptions: Self.set(0, 5)), .init(owner: 2, subscriptions: Self.set(0))])
        index.remove(owner: 1, slot: 5)
        index.removeAll(owner: 2)
        #expect(index.count == 2)
        #expect(try Self.match(index, event) == [.init(owner: 1, subscriptions: Self.set(0))])
        index.removeAll(owner: 1)
        index.removeAll(owner: 3)
        #expect(index.count == 0)
        #expect(try Self.match(index, event) == [])
        #expect(index.statistics.states == 1, "only the root is left")
        #expect(index.statistics.paths == 0)
        #expect(index.statistics.values == 0)
    }

    @Test func addingToATakenSlotReplacesTheSubscription() throws {
        var index = SubscriptionIndex()
        index.add(owner: 9, slot: 1, patterns: [try Self.pattern(#"{"a":["x"]}"#)])
        index.add(owner: 9, slot: 1, patterns: [try Self.pattern(#"{"a":["y"]}"#)])
        #expect(index.count == 1)
        #expect(try Self.match(index, #"{"a":"x"}"#) == [])
        #expect(try Self.match(index, #"{"a":"y"}"#) == [.init(owner: 9, subscriptions: Self.set(1))])
    }

    @Test func anEmptyPatternListMatchesEveryObject() throws {
        var index = SubscriptionIndex()
        index.add(owner: 4, slot: 2, patterns: [])
        index.add(owner: 5, slot: 0, patterns: [try Self.pattern("{}")])
        #expect(try Self.match(index, #"{"x":1}"#).map(\.owner) == [4, 5])
        #expect(try Self.match(index, #"[1]"#) == [])
    }

    /// Patterns of one subscription are ANDed but each is matched on its own: array
    /// consistency does not carry from the route pattern to the filter.
    @Test func patternsOfASubscriptionAreMatchedIndependently() throws {
        var index = SubscriptionIndex()
        let route = try Self.pattern(#"{"items":{"sku":["a"]}}"#)
        let filter = try Self.pattern(#"{"items":{"qty":[2]}}"#)
        let merged = try Self.pattern(#"{"items":{"sku":["a"],"qty":[2]}}"#)
        index.add(owner: 1, slot: 0, patterns: [route, filter])
        index.add(owner: 2, slot: 0, patterns: [merged])
        let event = #"{"items":[{"sku":"a","qty":1},{"sku":"b","qty":2}]}"#
        #expect(try Self.match(index, event).map(\.owner) == [1])
        #expect(try Self.match(index, #"{"items":[{"sku":"a"}]}"#) == [])
    }

    @Test func sharedRoutePatternsAreCompiledOnce() throws {
        var index = SubscriptionIndex()
        let route = try Self.pattern(#"{"source":["sensors"],"data":{"kind":[{"prefix":"vib"}]}}"#)
        index.add(owner: 0, slot: 0, patterns: [route, try Self.pattern(#"{"data":{"sensorId":["VB-0"]}}"#)])
        let one = index.statistics
        for i in 1..<100 {
            index.add(owner: UInt64(i), slot: 0, patterns: [route, try Self.pattern(#"{"data":{"sensorId":["VB-\#(i)"]}}"#)])
        }
        let hundred = index.statistics
        // Each further subscription adds its filter's chain (edge + state), its join, and nothing for the route.
        #expect(hundred.states - one.states == 99 * 2)
        let event = #"{"source":"sensors","data":{"kind":"vibration","sensorId":"VB-42"}}"#
        #expect(try Self.match(index, event) == [.init(owner: 42, subscriptions: Self.set(0))])
        for i in 0..<100 { index.removeAll(owner: UInt64(i)) }
        #expect(index.statistics.states == 1)
        #expect(index.statistics.edges == 0)
        #expect(index.statistics.valueMatchers == 0)
    }

    @Test func oneOwnerCanUseEverySlot() throws {
        var index = SubscriptionIndex()
        let p = try Self.pattern(#"{"a":[1]}"#)
        for slot in 0..<SubscriptionSet.capacity { index.add(owner: 77, slot: slot, patterns: [p]) }
        let results = try Self.match(index, #"{"a":1}"#)
        #expect(results.count == 1)
        var all = SubscriptionSet()
        for slot in 0..<SubscriptionSet.capacity { all.insert(slot) }
        #expect(results.first?.subscriptions == all)
    }

    @Test func copiesAreIndependentSnapshots() throws {
        var index = SubscriptionIndex()
        index.add(owner: 1, slot: 0, patterns: [try Self.pattern(#"{"a":[1]}"#)])
        let snapshot = index
        index.removeAll(owner: 1)
        index.add(owner: 2, slot: 0, patterns: [try Self.pattern(#"{"a":[1]}"#)])
        #expect(try Self.match(snapshot, #"{"a":1}"#).map(\.owner) == [1])
        #expect(try Self.match(index, #"{"a":1}"#).map(\.owner) == [2])
    }

    @Test func eventsWithEscapesAndManyFieldsMatch() throws {
        var index = SubscriptionIndex()
        // More than 8 children under the root: the path trie switches to hashing.
        for i in 0..<20 { index.add(owner: UInt64(i), slot: 0, patterns: [try Self.pattern(#"{"f\#(i)":["v\#(i)"]}"#)]) }
        index.add(owner: 100, slot: 0, patterns: [try Self.pattern(#"{"quo\"te":["a\"b"],"é":[{"prefix":"\u00e9t"}]}"#)])
        #expect(try Self.match(index, #"{"f3":"v3","f\u0031\u0035":"v\u00315"}"#).map(\.owner) == [3, 15])
        #expect(try Self.match(index, #"{"quo\"te":"a\u0022b","\u00e9":"été"}"#).map(\.owner) == [100])
    }
}
