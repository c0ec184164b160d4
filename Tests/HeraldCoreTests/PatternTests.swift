import HeraldCore
import Testing

/// The pattern language, operator by operator: a conformance table written from the
/// documented semantics (AWS EventBridge user guide, event-ruler / quamina docs, and the
/// choices in docs/patterns.md) — the expected values were not obtained by running the
/// matcher. Every row is checked three ways: `Pattern.matches`, a `SubscriptionIndex`
/// holding the pattern, and the test's reference matcher.
@Suite struct PatternTests {
    /// Matches `event` against `pattern` with all three matchers and checks they agree.
    static func matches(_ pattern: String, _ event: String, sourceLocation: SourceLocation = #_sourceLocation) throws -> Bool {
        let compiled = try Pattern(parsing: Array(pattern.utf8))
        let bytes = Array(event.utf8)
        let tape = try JSONScanner.scan(bytes)
        var index = SubscriptionIndex()
        index.add(owner: 7, slot: 3, patterns: [compiled])
        var results: [SubscriptionIndex.Match] = []
        let single = bytes.withUnsafeBytes { compiled.matches(EventView(tape: tape, node: 0, bytes: $0)) }
        bytes.withUnsafeBytes { index.match(EventView(tape: tape, node: 0, bytes: $0), into: &results) }
        let reference = PatternReference.matches(pattern: try JSONValue(parsing: pattern), event: try JSONValue(parsing: event))
        #expect(
            results == (single ? [.init(owner: 7, subscriptions: SubscriptionSet(slot: 3))] : []), "index vs Pattern.matches",
            sourceLocation: sourceLocation)
        #expect(reference == single, "reference vs Pattern.matches", sourceLocation: sourceLocation)
        return single
    }

    typealias Row = (pattern: String, event: String, expected: Bool)

    @Test(
        arguments: [
            // strings, numbers by value, booleans, null
            (#"{"type":["chat.message"]}"#, #"{"type":"chat.message"}"#, true),
            (#"{"type":["chat.message"]}"#, #"{"type":"chat.messages"}"#, false),
            (#"{"type":["a","b"]}"#, #"{"type":"b"}"#, true),
            (#"{"n":[35]}"#, #"{"n":35.0}"#, true),
            (#"{"n":[35]}"#, #"{"n":3.5e1}"#, true),
            (#"{"n":[3.5e1]}"#, #"{"n":35}"#, true),
            (#"{"n":[35]}"#, #"{"n":"35"}"#, false),
            (#"{"n":[0]}"#, #"{"n":-0.0}"#, true),
            (#"{"n":[100]}"#, #"{"n":1E2}"#, true),
            (#"{"s":["35"]}"#, #"{"s":35}"#, false),
            (#"{"b":[true]}"#, #"{"b":true}"#, true),
            (#"{"b":[true]}"#, #"{"b":"true"}"#, false),
            (#"{"b":[false]}"#, #"{"b":false}"#, true),
            (#"{"b":[false]}"#, #"{"b":null}"#, false),
            (#"{"z":[null]}"#, #"{"z":null}"#, true),
            (#"{"z":[null]}"#, #"{}"#, false),
            (#"{"z":[null]}"#, #"{"z":""}"#, false),
            (#"{"z":[""]}"#, #"{"z":""}"#, true),
            (#"{"z":[""]}"#, #"{"z":null}"#, false),
            (#"{"s":["é"]}"#, #"{"s":"\u00e9"}"#, true),
            (#"{"s":["tab\there"]}"#, #"{"s":"tab\u0009here"}"#, true),
            (#"{"s":["Chat"]}"#, #"{"s":"chat"}"#, false),
            // every field must match; absent fields do not
            (#"{"type":["t"],"room":["lobby"]}"#, #"{"type":"t","room":"lobby","x":1}"#, true),
            (#"{"type":["t"],"room":["lobby"]}"#, #"{"type":"t"}"#, false),
            (#"{}"#, #"{"anything":1}"#, true),
            // nesting
            (#"{"data":{"sensorId":["VB-1"]}}"#, #"{"data":{"sensorId":"VB-1","x":2}}"#, true),
            (#"{"data":{"sensorId":["VB-1"]}}"#, #"{"data":"VB-1"}"#, false),
            (#"{"data":{"sensorId":["VB-1"]}}"#, #"{"sensorId":"VB-1"}"#, false),
            (#"{"a":{"b":{"c":["x"]}}}"#, #"{"a":{"b":{"c":"x"}}}"#, true),
            (#"{"a.b":["x"]}"#, #"{"a":{"b":"x"}}"#, false),
            (#"{"a":{"b":["x"]}}"#, #"{"a.b":"x"}"#, false),
            // the pattern value is never the event value's container
            (#"{"a":["x"]}"#, #"{"a":{"x":1}}"#, false),
            (#"{"a":["x"]}"#, #"{"a":["x"],"b":1}"#, true),
        ] as [Row])
    func exactValues(pattern: String, event: String, expected: Bool) throws {
        #expect(try Self.matches(pattern, event) == expected)
    }

    @Test(
        arguments: [
            // a field matches when any element of an event array matches
            (#"{"mentions":["ada"]}"#, #"{"mentions":["bob","ada"]}"#, true),
            (#"{"mentions":["ada"]}"#, #"{"mentions":[]}"#, false),
            // nested arrays are crushed like event-ruler and quamina do
            (#"{"mentions":["ada"]}"#, #"{"mentions":[["bob"],["ada"]]}"#, true),
            (#"{"items":{"sku":["a"]}}"#, #"{"items":[{"sku":"b"},{"sku":"a"}]}"#, true),
            (#"{"items":{"sku":["a"]}}"#, #"{"items":[[{"sku":"a"}]]}"#, true),
            // array consistency: one match never combines fields of different elements
            (#"{"items":{"sku":["a"],"qty":[2]}}"#, #"{"items":[{"sku":"a","qty":1},{"sku":"b","qty":2}]}"#, false),
            (#"{"items":{"sku":["a"],"qty":[2]}}"#, #"{"items":[{"sku":"b","qty":1},{"sku":"a","qty":2}]}"#, true),
            (
                #"{"employees":{"firstName":["Anna"],"lastName":["Jones"]}}"#,
                #"{"employees":[[{"firstName":"John","lastName":"Doe"},{"firstName":"Anna","lastName":"Smith"}],[{"firstName":"Peter","lastName":"Jones"}]]}"#,
                false
            ),
            (
                #"{"employees":{"firstName":["Anna"],"lastName":["Smith"]}}"#,
                #"{"employees":[[{"firstName":"John","lastName":"Doe"},{"firstName":"Anna","lastName":"Smith"}],[{"firstName":"Peter","lastName":"Jones"}]]}"#,
                true
            ),
            (#"{"a":{"b":{"c":[1],"d":[2]}}}"#, #"{"a":[{"b":[{"c":1},{"d":2}]}]}"#, false),
            (#"{"a":{"b":{"c":[1],"d":[2]}}}"#, #"{"a":[{"b":[{"c":1,"d":2}]}]}"#, true),
            // fields in different arrays combine freely
            (#"{"a":{"x":[1]},"b":{"y":[2]}}"#, #"{"a":[{"x":0},{"x":1}],"b":[{"y":2},{"y":3}]}"#, true),
            // the same array element may serve several fields; a scalar outside any array too
            (#"{"top":["t"],"items":{"sku":["a"],"qty":[1]}}"#, #"{"top":"t","items":[{"sku":"a","qty":1}]}"#, true),
            // an array of values in the pattern against an array in the event: non-empty intersection
            (#"{"resources":["r1","r2"]}"#, #"{"resources":["r0","r2"]}"#, true),
            (#"{"resources":["r1","r2"]}"#, #"{"resources":["r0","r3"]}"#, false),
        ] as [Row])
    func arrays(pattern: String, event: String, expected: Bool) throws {
        #expect(try Self.matches(pattern, event) == expected)
    }

    @Test(
        arguments: [
            (#"{"time":[{"prefix":"2017-10-02"}]}"#, #"{"time":"2017-10-02T18:43:48Z"}"#, true),
            (#"{"time":[{"prefix":"2017-10-02"}]}"#, #"{"time":"2017-10-03T18:43:48Z"}"#, false),
            (#"{"p":[{"prefix":"ab"}]}"#, #"{"p":"a"}"#, false),
            (#"{"p":[{"prefix":"ab"}]}"#, #"{"p":"ab"}"#, true),
            (#"{"p":[{"prefix":"ab"}]}"#, #"{"p":["x","abc"]}"#, true),
            (#"{"p":[{"prefix":""}]}"#, #"{"p":"anything"}"#, true),
            (#"{"p":[{"prefix":"1"}]}"#, #"{"p":12}"#, false),
            (#"{"p":[{"prefix":"Ab"}]}"#, #"{"p":"abc"}"#, false),
            (#"{"s":[{"prefix":{"equals-ignore-case":"EventB"}}]}"#, #"{"s":"eventbridge"}"#, true),
            (#"{"s":[{"prefix":{"equals-ignore-case":"EventB"}}]}"#, #"{"s":"EVENTBRIDGE"}"#, true),
            (#"{"s":[{"prefix":{"equals-ignore-case":"EventB"}}]}"#, #"{"s":"Event"}"#, false),
            (#"{"s":[{"prefix":{"equals-ignore-case":"ÉCO"}}]}"#, #"{"s":"école"}"#, true),
            (#"{"f":[{"suffix":".png"}]}"#, #"{"f":"image.png"}"#, true),
            (#"{"f":[{"suffix":".png"}]}"#, #"{"f":"image.PNG"}"#, false),
            (#"{"f":[{"suffix":".png"}]}"#, #"{"f":".png"}"#, true),
            (#"{"f":[{"suffix":".png"}]}"#, #"{"f":"png"}"#, false),
            (#"{"f":[{"suffix":"5"}]}"#, #"{"f":5}"#, false),
            (#"{"f":[{"suffix":{"equals-ignore-case":".png"}}]}"#, #"{"f":"IMAGE.PNG"}"#, true),
            (#"{"f":[{"suffix":{"equals-ignore-case":"TBRIDGE"}}]}"#, #"{"f":"eventbridge"}"#, true),
            (#"{"f":[{"suffix":{"equals-ignore-case":"ÉE"}}]}"#, #"{"f":"allée"}"#, true),
            (#"{"s":[{"equals-ignore-case":"alice"}]}"#, #"{"s":"ALICE"}"#, true),
            (#"{"s":[{"equals-ignore-case":"alice"}]}"#, #"{"s":"Alicia"}"#, false),
            (#"{"s":[{"equals-ignore-case":"alice"}]}"#, #"{"s":["bob","AlIcE"]}"#, true),
            (#"{"s":[{"equals-ignore-case":"5"}]}"#, #"{"s":5}"#, false),
            (#"{"s":[{"equals-ignore-case":"ÉCOLE"}]}"#, #"{"s":"école"}"#, true),
            // simple case folding (Unicode CaseFolding C+S): final sigma, micro sign, Kelvin,
            // capital sharp s fold; "ß" is not expanded to "ss"; dotted capital I is kept
            (#"{"s":[{"equals-ignore-case":"ΟΔΟΣ"}]}"#, #"{"s":"οδος"}"#, true),
            (#"{"s":[{"equals-ignore-case":"ς"}]}"#, #"{"s":"Σ"}"#, true),
            (#"{"s":[{"equals-ignore-case":"µ"}]}"#, #"{"s":"Μ"}"#, true),
            (#"{"s":[{"equals-ignore-case":"k"}]}"#, #"{"s":"\u212A"}"#, true),
            (#"{"s":[{"equals-ignore-case":"ẞ"}]}"#, #"{"s":"ß"}"#, true),
            (#"{"s":[{"equals-ignore-case":"STRASSE"}]}"#, #"{"s":"straße"}"#, false),
            (#"{"s":[{"equals-ignore-case":"i"}]}"#, #"{"s":"İ"}"#, false),
        ] as [Row])
    func prefixSuffixIgnoreCase(pattern: String, event: String, expected: Bool) throws {
        #expect(try Self.matches(pattern, event) == expected)
    }

    @Test(
        arguments: [
            (#"{"state":[{"anything-but":"initializing"}]}"#, #"{"state":"running"}"#, true),
            (#"{"state":[{"anything-but":"initializing"}]}"#, #"{"state":"initializing"}"#, false),
            (#"{"state":[{"anything-but":"initializing"}]}"#, #"{}"#, false),
            (#"{"state":[{"anything-but":"initializing"}]}"#, #"{"state":5}"#, true),
            (#"{"state":[{"anything-but":"initializing"}]}"#, #"{"state":null}"#, true),
            (#"{"state":[{"anything-but":"initializing"}]}"#, #"{"state":["initializing","running"]}"#, true),
            (#"{"state":[{"anything-but":"initializing"}]}"#, #"{"state":["initializing"]}"#, false),
            (#"{"state":[{"anything-but":"initializing"}]}"#, #"{"state":{"x":"y"}}"#, false),
            (#"{"x":[{"anything-but":123}]}"#, #"{"x":124}"#, true),
            (#"{"x":[{"anything-but":123}]}"#, #"{"x":123}"#, false),
            (#"{"x":[{"anything-but":123}]}"#, #"{"x":1.23e2}"#, false),
            (#"{"x":[{"anything-but":123}]}"#, #"{"x":"123"}"#, true),
            (#"{"s":[{"anything-but":["stopped","overloaded"]}]}"#, #"{"s":"stopped"}"#, false),
            (#"{"s":[{"anything-but":["stopped","overloaded"]}]}"#, #"{"s":"overloaded"}"#, false),
            (#"{"s":[{"anything-but":["stopped","overloaded"]}]}"#, #"{"s":"running"}"#, true),
            (#"{"x":[{"anything-but":[100,200,300]}]}"#, #"{"x":200}"#, false),
            (#"{"x":[{"anything-but":[100,200,300]}]}"#, #"{"x":201}"#, true),
            (#"{"s":[{"anything-but":{"prefix":"init"}}]}"#, #"{"s":"initializing"}"#, false),
            (#"{"s":[{"anything-but":{"prefix":"init"}}]}"#, #"{"s":"running"}"#, true),
            (#"{"s":[{"anything-but":{"prefix":"init"}}]}"#, #"{"s":5}"#, true),
            (#"{"s":[{"anything-but":{"prefix":["init","err"]}}]}"#, #"{"s":"error"}"#, false),
            (#"{"s":[{"anything-but":{"prefix":["init","err"]}}]}"#, #"{"s":"ok"}"#, true),
            (#"{"id":[{"anything-but":{"suffix":"1234"}}]}"#, #"{"id":"i-1234"}"#, false),
            (#"{"id":[{"anything-but":{"suffix":"1234"}}]}"#, #"{"id":"i-5678"}"#, true),
            (#"{"id":[{"anything-but":{"suffix":["1234","6789"]}}]}"#, #"{"id":"i-6789"}"#, false),
            (#"{"s":[{"anything-but":{"equals-ignore-case":"Stopped"}}]}"#, #"{"s":"STOPPED"}"#, false),
            (#"{"s":[{"anything-but":{"equals-ignore-case":"Stopped"}}]}"#, #"{"s":"running"}"#, true),
            (#"{"s":[{"anything-but":{"equals-ignore-case":["Stopped","OverLoaded"]}}]}"#, #"{"s":"overloaded"}"#, false),
            (#"{"f":[{"anything-but":{"wildcard":"*/bin/*.jar"}}]}"#, #"{"f":"/usr/bin/app.jar"}"#, false),
            (#"{"f":[{"anything-but":{"wildcard":"*/bin/*.jar"}}]}"#, #"{"f":"/usr/lib/app.jar"}"#, true),
            (#"{"f":[{"anything-but":{"wildcard":["*/bin/*.jar","*/bin/*.class"]}}]}"#, #"{"f":"/bin/x.class"}"#, false),
            // two anything-but values in one list are ORed: everything matches one of them
            (#"{"s":[{"anything-but":"a"},{"anything-but":"b"}]}"#, #"{"s":"a"}"#, true),
        ] as [Row])
    func anythingBut(pattern: String, event: String, expected: Bool) throws {
        #expect(try Self.matches(pattern, event) == expected)
    }

    @Test(
        arguments: [
            (#"{"c":[{"numeric":[">",0,"<=",5]}]}"#, #"{"c":5}"#, true),
            (#"{"c":[{"numeric":[">",0,"<=",5]}]}"#, #"{"c":0}"#, false),
            (#"{"c":[{"numeric":[">",0,"<=",5]}]}"#, #"{"c":0.1}"#, true),
            (#"{"c":[{"numeric":[">",0,"<=",5]}]}"#, #"{"c":5.0001}"#, false),
            (#"{"c":[{"numeric":[">",0,"<=",5]}]}"#, #"{"c":"3"}"#, false),
            (#"{"c":[{"numeric":[">=",0,"<",5]}]}"#, #"{"c":0}"#, true),
            (#"{"c":[{"numeric":[">=",0,"<",5]}]}"#, #"{"c":5}"#, false),
            (#"{"d":[{"numeric":["<",10]}]}"#, #"{"d":9.99}"#, true),
            (#"{"d":[{"numeric":["<",10]}]}"#, #"{"d":10}"#, false),
            (#"{"d":[{"numeric":["<",10]}]}"#, #"{"d":-1e300}"#, true),
            (#"{"d":[{"numeric":["<=",10]}]}"#, #"{"d":10}"#, true),
            (#"{"x":[{"numeric":["=",301.8]}]}"#, #"{"x":3.018e2}"#, true),
            (#"{"x":[{"numeric":["=",301.8]}]}"#, #"{"x":301.80000000000001}"#, true),
            (#"{"x":[{"numeric":["=",301.8]}]}"#, #"{"x":301.81}"#, false),
            (#"{"x":[{"numeric":[">=",1e9]}]}"#, #"{"x":1000000000}"#, true),
            (#"{"x":[{"numeric":[">",-1,"<",1]}]}"#, #"{"x":-0.0}"#, true),
            (#"{"x":[{"numeric":[">",0]}]}"#, #"{"x":-0.0}"#, false),
            (#"{"x":[{"numeric":[">",0]}]}"#, #"{"x":5e-324}"#, true),
            (#"{"x":[{"numeric":[">",1e300]}]}"#, #"{"x":1e308}"#, true),
            (#"{"x":[{"numeric":[">",1e300]}]}"#, #"{"x":1.5e308}"#, true),
            (#"{"x":[{"numeric":["<",0.30000000000000004]}]}"#, #"{"x":0.3}"#, true),
            (#"{"x":[{"numeric":[">",10]}]}"#, #"{"x":[1,20]}"#, true),
            (#"{"x":[{"numeric":[">",10]}]}"#, #"{"x":[1,2]}"#, false),
            (#"{"x":[{"numeric":[">",10]}]}"#, #"{"x":true}"#, false),
            (#"{"x":[{"numeric":[">=",5,"<=",5]}]}"#, #"{"x":5}"#, true),
            (#"{"x":[{"numeric":["<",0]},{"numeric":[">",100]}]}"#, #"{"x":50}"#, false),
            (#"{"x":[{"numeric":["<",0]},{"numeric":[">",100]}]}"#, #"{"x":150}"#, true),
            (#"{"x":[{"numeric":["<",0]},7]}"#, #"{"x":7}"#, true),
        ] as [Row])
    func numeric(pattern: String, event: String, expected: Bool) throws {
        #expect(try Self.matches(pattern, event) == expected)
    }

    @Test(
        arguments: [
            (#"{"c":[{"exists":true}]}"#, #"{"c":5}"#, true),
            (#"{"c":[{"exists":true}]}"#, #"{"c":null}"#, true),
            (#"{"c":[{"exists":true}]}"#, #"{"c":""}"#, true),
            (#"{"c":[{"exists":true}]}"#, #"{}"#, false),
            (#"{"c":[{"exists":true}]}"#, #"{"c":{"d":1}}"#, false),
            (#"{"c":[{"exists":true}]}"#, #"{"c":[]}"#, false),
            (#"{"c":[{"exists":true}]}"#, #"{"c":[1]}"#, true),
            (#"{"c":[{"exists":false}]}"#, #"{}"#, true),
            (#"{"c":[{"exists":false}]}"#, #"{"c":null}"#, false),
            (#"{"c":[{"exists":false}]}"#, #"{"c":"x"}"#, false),
            (#"{"c":[{"exists":false}]}"#, #"{"c":{"d":1}}"#, true),
            (#"{"c":[{"exists":false}]}"#, #"{"c":[]}"#, true),
            (#"{"detail":{"c-count":[{"exists":false}]}}"#, #"{"detail":{"state":"x"}}"#, true),
            (#"{"detail":{"c-count":[{"exists":false}]}}"#, #"{"other":1}"#, true),
            (#"{"detail":{"c-count":[{"exists":false}]}}"#, #"{"detail":{"c-count":{"c1":100}}}"#, true),
            (#"{"detail":{"c-count":[{"exists":false}]}}"#, #"{"detail":{"c-count":0}}"#, false),
            (#"{"a":["x"],"b":[{"exists":false}]}"#, #"{"a":"x"}"#, true),
            (#"{"a":["x"],"b":[{"exists":false}]}"#, #"{"a":"x","b":1}"#, false),
            // exists: false is judged within the array element the other fields chose
            (#"{"items":{"sku":["a"],"gift":[{"exists":false}]}}"#, #"{"items":[{"sku":"a","gift":true},{"sku":"b"}]}"#, false),
            (#"{"items":{"sku":["a"],"gift":[{"exists":false}]}}"#, #"{"items":[{"sku":"a"},{"sku":"b","gift":true}]}"#, true),
            (#"{"items":{"gift":[{"exists":false}]}}"#, #"{"items":[{"sku":"a"},{"sku":"b","gift":true}]}"#, false),
            // mixed with values: absent, or one of the values
            (#"{"c":[{"exists":false},"x"]}"#, #"{}"#, true),
            (#"{"c":[{"exists":false},"x"]}"#, #"{"c":"x"}"#, true),
            (#"{"c":[{"exists":false},"x"]}"#, #"{"c":"y"}"#, false),
            (#"{"c":[{"exists":true},{"exists":false}]}"#, #"{"d":1}"#, true),
        ] as [Row])
    func exists(pattern: String, event: String, expected: Bool) throws {
        #expect(try Self.matches(pattern, event) == expected)
    }

    @Test(
        arguments: [
            (#"{"ip":[{"cidr":"10.0.0.0/24"}]}"#, #"{"ip":"10.0.0.255"}"#, true),
            (#"{"ip":[{"cidr":"10.0.0.0/24"}]}"#, #"{"ip":"10.0.0.0"}"#, true),
            (#"{"ip":[{"cidr":"10.0.0.0/24"}]}"#, #"{"ip":"10.0.1.0"}"#, false),
            (#"{"ip":[{"cidr":"10.0.0.0/24"}]}"#, #"{"ip":"10.0.0.256"}"#, false),
            (#"{"ip":[{"cidr":"10.0.0.0/24"}]}"#, #"{"ip":"10.0.0"}"#, false),
            (#"{"ip":[{"cidr":"10.0.0.0/8"}]}"#, #"{"ip":"010.0.0.1"}"#, false),
            (#"{"ip":[{"cidr":"10.0.0.0/24"}]}"#, #"{"ip":"x"}"#, false),
            (#"{"ip":[{"cidr":"10.0.0.0/24"}]}"#, #"{"ip":10}"#, false),
            (#"{"ip":[{"cidr":"10.0.0.7/32"}]}"#, #"{"ip":"10.0.0.7"}"#, true),
            (#"{"ip":[{"cidr":"10.0.0.7/32"}]}"#, #"{"ip":"10.0.0.8"}"#, false),
            (#"{"ip":[{"cidr":"0.0.0.0/0"}]}"#, #"{"ip":"1.2.3.4"}"#, true),
            (#"{"ip":[{"cidr":"0.0.0.0/0"}]}"#, #"{"ip":"::1"}"#, false),
            (#"{"ip":[{"cidr":"10.0.0.77/24"}]}"#, #"{"ip":"10.0.0.1"}"#, true),
            (#"{"ip":[{"cidr":"2001:db8::/32"}]}"#, #"{"ip":"2001:db8:1::1"}"#, true),
            (#"{"ip":[{"cidr":"2001:db8::/32"}]}"#, #"{"ip":"2001:DB8::"}"#, true),
            (#"{"ip":[{"cidr":"2001:db8::/32"}]}"#, #"{"ip":"2001:db9::"}"#, false),
            (#"{"ip":[{"cidr":"2001:db8::/32"}]}"#, #"{"ip":"10.0.0.1"}"#, false),
            (#"{"ip":[{"cidr":"2001:db8::/32"}]}"#, #"{"ip":"2001:0db8:0000:0000:0000:0000:0000:0001"}"#, true),
            (#"{"ip":[{"cidr":"::ffff:0:0/96"}]}"#, #"{"ip":"::ffff:10.0.0.1"}"#, true),
            (#"{"ip":[{"cidr":"::ffff:0:0/96"}]}"#, #"{"ip":"10.0.0.1"}"#, false),
            (#"{"ip":[{"cidr":"::1/128"}]}"#, #"{"ip":"0:0:0:0:0:0:0:1"}"#, true),
            (#"{"ip":[{"cidr":"fe80::/10"}]}"#, #"{"ip":"fe80::1%eth0"}"#, false),
            (#"{"ip":[{"cidr":"10.0.0.0/8"},{"cidr":"192.168.0.0/16"}]}"#, #"{"ip":["1.1.1.1","192.168.4.4"]}"#, true),
        ] as [Row])
    func cidr(pattern: String, event: String, expected: Bool) throws {
        #expect(try Self.matches(pattern, event) == expected)
    }

    @Test(
        arguments: [
            (#"{"s":[{"wildcard":"Simple*Service"}]}"#, #"{"s":"SimpleQueueService"}"#, true),
            (#"{"s":[{"wildcard":"Simple*Service"}]}"#, #"{"s":"SimpleService"}"#, true),
            (#"{"s":[{"wildcard":"Simple*Service"}]}"#, #"{"s":"SimpleQueue"}"#, false),
            (#"{"s":[{"wildcard":"*.png"}]}"#, #"{"s":"a.png"}"#, true),
            (#"{"s":[{"wildcard":"*.png"}]}"#, #"{"s":".png"}"#, true),
            (#"{"s":[{"wildcard":"*.png"}]}"#, #"{"s":"a.jpg"}"#, false),
            (#"{"s":[{"wildcard":"dir/*"}]}"#, #"{"s":"dir/a/b"}"#, true),
            (#"{"s":[{"wildcard":"a*b*c"}]}"#, #"{"s":"abc"}"#, true),
            (#"{"s":[{"wildcard":"a*b*c"}]}"#, #"{"s":"aXbYc"}"#, true),
            (#"{"s":[{"wildcard":"a*b*c"}]}"#, #"{"s":"acb"}"#, false),
            (#"{"s":[{"wildcard":"a*b*c"}]}"#, #"{"s":"abcb"}"#, false),
            (#"{"s":[{"wildcard":"*ab*ab*"}]}"#, #"{"s":"abab"}"#, true),
            (#"{"s":[{"wildcard":"*ab*ab*"}]}"#, #"{"s":"aab"}"#, false),
            (#"{"s":[{"wildcard":"*a*"}]}"#, #"{"s":"bab"}"#, true),
            (#"{"s":[{"wildcard":"*"}]}"#, #"{"s":""}"#, true),
            (#"{"s":[{"wildcard":"*"}]}"#, #"{"s":"anything"}"#, true),
            (#"{"s":[{"wildcard":"*"}]}"#, #"{"s":5}"#, false),
            (#"{"s":[{"wildcard":"a\\*b"}]}"#, #"{"s":"a*b"}"#, true),
            (#"{"s":[{"wildcard":"a\\*b"}]}"#, #"{"s":"axb"}"#, false),
            (#"{"s":[{"wildcard":"a\\\\*"}]}"#, #"{"s":"a\\zzz"}"#, true),
            (#"{"s":[{"wildcard":"a\\\\*"}]}"#, #"{"s":"azzz"}"#, false),
            (#"{"s":[{"wildcard":"abc"}]}"#, #"{"s":"abc"}"#, true),
            (#"{"s":[{"wildcard":"abc"}]}"#, #"{"s":"abcd"}"#, false),
            (#"{"s":[{"wildcard":"*/dir/*.png"}]}"#, #"{"s":"/a/dir/b.png"}"#, true),
        ] as [Row])
    func wildcard(pattern: String, event: String, expected: Bool) throws {
        #expect(try Self.matches(pattern, event) == expected)
    }

    @Test(
        arguments: [
            (
                #"{"source":["aws.cloudwatch"],"$or":[{"metricName":["CPU"]},{"namespace":["AWS/EC2"]}]}"#,
                #"{"source":"aws.cloudwatch","namespace":"AWS/EC2"}"#, true
            ),
            (
                #"{"source":["aws.cloudwatch"],"$or":[{"metricName":["CPU"]},{"namespace":["AWS/EC2"]}]}"#,
                #"{"source":"aws.cloudwatch"}"#, false
            ),
            (
                #"{"source":["aws.cloudwatch"],"$or":[{"metricName":["CPU"]},{"namespace":["AWS/EC2"]}]}"#,
                #"{"namespace":"AWS/EC2"}"#, false
            ),
            (#"{"$or":[{"a":[1]},{"b":[2]}],"detail":{"$or":[{"s":["x"]},{"t":["y"]}]}}"#, #"{"b":2,"detail":{"t":"y"}}"#, true),
            (#"{"$or":[{"a":[1]},{"b":[2]}],"detail":{"$or":[{"s":["x"]},{"t":["y"]}]}}"#, #"{"b":2,"detail":{"u":"y"}}"#, false),
            (
                #"{"source":["s"],"$or":[{"m":["a"]},{"t":["T"],"n":["N"],"$or":[{"id":[1234]},{"sp":[1000]}]},{"scope":["S"]}]}"#,
                #"{"source":"s","t":"T","n":"N","sp":1000}"#, true
            ),
            (
                #"{"source":["s"],"$or":[{"m":["a"]},{"t":["T"],"n":["N"],"$or":[{"id":[1234]},{"sp":[1000]}]},{"scope":["S"]}]}"#,
                #"{"source":"s","t":"T","sp":1000}"#, false
            ),
            // a field constrained in a branch and outside: both conditions must hold, each by
            // its own leaf, and leaves from different elements of one array never combine
            (#"{"a":[1],"$or":[{"a":[2]},{"b":[3]}]}"#, #"{"a":[1,2]}"#, false),
            (#"{"a":[1],"$or":[{"a":[1,2]},{"b":[3]}]}"#, #"{"a":[1,2]}"#, true),
            (#"{"a":[1],"$or":[{"a":[2]},{"b":[3]}]}"#, #"{"a":1,"b":3}"#, true),
            (#"{"a":[1],"$or":[{"a":[2]},{"b":[3]}]}"#, #"{"a":1}"#, false),
            // $or inside an array element keeps array consistency per branch
            (
                #"{"items":{"sku":["a"],"$or":[{"qty":[1]},{"gift":[true]}]}}"#, #"{"items":[{"sku":"a","qty":2},{"sku":"b","qty":1}]}"#,
                false
            ),
            (#"{"items":{"sku":["a"],"$or":[{"qty":[1]},{"gift":[true]}]}}"#, #"{"items":[{"sku":"a","gift":true}]}"#, true),
        ] as [Row])
    func or(pattern: String, event: String, expected: Bool) throws {
        #expect(try Self.matches(pattern, event) == expected)
    }

    @Test(arguments: [
        ("[]", "$", "must be a JSON object"),
        (#"{"a":"b"}"#, "$.a", "must be an array of values or an object"),
        (#"{"a":[]}"#, "$.a", "must not be empty"),
        (#"{"a":{}}"#, "$.a", "must not be empty"),
        (#"{"a":[[1]]}"#, "$.a[0]", "must not be an array"),
        (#"{"a":[1e400]}"#, "$", "number out of range"),
        (#"{"a":[{"prefix":"x","suffix":"y"}]}"#, "$.a[0]", "exactly one key"),
        (#"{"a":[{}]}"#, "$.a[0]", "must have one key"),
        (#"{"a":[{"foo":1}]}"#, "$.a[0]", "unknown operator \"foo\""),
        (#"{"a":[{"prefix":5}]}"#, "$.a[0].prefix", "must be a string"),
        (#"{"a":[{"prefix":{"equals-ignore-case":1}}]}"#, "$.a[0].prefix.equals-ignore-case", "must be a string"),
        (#"{"a":[{"prefix":{"wildcard":"x"}}]}"#, "$.a[0].prefix", "equals-ignore-case"),
        (#"{"a":[{"equals-ignore-case":["x"]}]}"#, "$.a[0].equals-ignore-case", "must be a string"),
        (#"{"a":[{"numeric":5}]}"#, "$.a[0].numeric", "must be an array"),
        (#"{"a":[{"numeric":[">",5,"<",1]}]}"#, "$.a[0].numeric", "bad numeric range"),
        (#"{"a":[{"numeric":[">",5,"<=",5]}]}"#, "$.a[0].numeric", "bad numeric range"),
        (#"{"a":[{"numeric":["<",5,">",1]}]}"#, "$.a[0].numeric[2]", "bad numeric range"),
        (#"{"a":[{"numeric":[">","5"]}]}"#, "$.a[0].numeric[1]", "expected a number"),
        (#"{"a":[{"numeric":["!=",5]}]}"#, "$.a[0].numeric[0]", "bad numeric range"),
        (#"{"a":[{"numeric":[">",1,"<",5,"<",6]}]}"#, "$.a[0].numeric[4]", "too many terms"),
        (#"{"a":[{"numeric":[">",1,">",5]}]}"#, "$.a[0].numeric[2]", "bad numeric range"),
        (#"{"a":[{"cidr":"10.0.0.0/33"}]}"#, "$.a[0].cidr", "at most 32"),
        (#"{"a":[{"cidr":"::/129"}]}"#, "$.a[0].cidr", "at most 128"),
        (#"{"a":[{"cidr":"10.0.0.0"}]}"#, "$.a[0].cidr", "malformed CIDR"),
        (#"{"a":[{"cidr":"300.0.0.0/8"}]}"#, "$.a[0].cidr", "not an IPv4 or IPv6 address"),
        (#"{"a":[{"cidr":"10.0.0.0/x"}]}"#, "$.a[0].cidr", "prefix length"),
        (#"{"a":[{"wildcard":"a**b"}]}"#, "$.a[0].wildcard", "\"**\""),
        (#"{"a":[{"wildcard":"a\\b"}]}"#, "$.a[0].wildcard", "invalid escape"),
        (#"{"a":[{"wildcard":"ab\\"}]}"#, "$.a[0].wildcard", "invalid escape"),
        (#"{"a":[{"exists":"yes"}]}"#, "$.a[0].exists", "true or false"),
        (#"{"a":[{"anything-but":[]}]}"#, "$.a[0].anything-but", "must not be empty"),
        (#"{"a":[{"anything-but":["x",1]}]}"#, "$.a[0].anything-but", "only strings or only numbers"),
        (#"{"a":[{"anything-but":[true]}]}"#, "$.a[0].anything-but[0]", "string or a number"),
        (#"{"a":[{"anything-but":null}]}"#, "$.a[0].anything-but", "must be a string, a number"),
        (#"{"a":[{"anything-but":{"prefix":""}}]}"#, "$.a[0].anything-but.prefix", "empty prefix"),
        (#"{"a":[{"anything-but":{"suffix":["x",""]}}]}"#, "$.a[0].anything-but.suffix", "empty suffix"),
        (#"{"a":[{"anything-but":{"numeric":[">",1]}}]}"#, "$.a[0].anything-but", "unknown \"anything-but\" operator"),
        (#"{"a":[{"anything-but":{"wildcard":"x**"}}]}"#, "$.a[0].anything-but.wildcard", "\"**\""),
        (#"{"$or":[{"a":[1]}]}"#, "$.$or", "at least two"),
        (#"{"$or":{"a":[1]}}"#, "$.$or", "must be an array"),
        (#"{"$or":[{"a":[1]},"x"]}"#, "$.$or[1]", "must be an object"),
        (#"{"$or":[{"a":[1]},{}]}"#, "$.$or[1]", "must not be empty"),
        (#"{"x":{"$or":[{"a":[1]},{"b":{"c":"d"}}]}}"#, "$.x.$or[1].b.c", "must be an array"),
        (#"{"a":{"b":[1],"b":[2]}}"#, "$", "duplicate key"),
    ])
    func invalidPatternsNameThePathAndReason(pattern: String, path: String, reason: String) {
        #expect { try Pattern(parsing: Array(pattern.utf8)) } throws: {
            guard let error = $0 as? HeraldError else { return false }
            return error.code == .invalidPattern && (error.path ?? "$") == path && error.message.contains(reason)
        }
    }

    @Test func duplicateKeysInAValueAreRejectedWithTheirPath() {
        let value = JSONValue.object([.init("a", .object([.init("b", .array([.number(1)])), .init("b", .array([.number(2)]))]))])
        #expect { try Pattern(value) } throws: {
            ($0 as? HeraldError)?.path == "$.a.b" && ($0 as? HeraldError)?.message.contains("duplicate key \"b\"") == true
        }
    }

    @Test func limitsAreEnforced() {
        let wide = "{" + (0..<70).map { #""f\#($0)":[1]"# }.joined(separator: ",") + "}"
        #expect { try Pattern(parsing: Array(wide.utf8)) } throws: { ($0 as? HeraldError)?.message.contains("64 fields") == true }
        let long = #"{"a":[""# + String(repeating: "x", count: 5000) + #""]}"#
        #expect { try Pattern(parsing: Array(long.utf8)) } throws: { ($0 as? HeraldError)?.message.contains("4096") == true }
        let deep = String(repeating: #"{"a":"#, count: 17) + "[1]" + String(repeating: "}", count: 17)
        #expect { try Pattern(parsing: Array(deep.utf8)) } throws: { ($0 as? HeraldError)?.message.contains("deeper than 16") == true }
        let sixteen = String(repeating: #"{"a":"#, count: 15) + "[1]" + String(repeating: "}", count: 15)
        #expect(throws: Never.self) { try Pattern(parsing: Array(sixteen.utf8)) }
        // 11 × 11 × 11 = 1,331 combinations > 1,000; 10 × 10 × 10 = 1,000 is allowed
        func or(_ name: String, _ n: Int) -> String {
            #""$or":["# + (0..<n).map { #"{"\#(name)\#($0)":[\#($0)]}"# }.joined(separator: ",") + "]"
        }
        let tooMany = #"{"# + or("a", 11) + #","b":{"# + or("b", 11) + #"},"c":{"# + or("c", 11) + "}}"
        #expect { try Pattern(parsing: Array(tooMany.utf8), limits: PatternLimits(maxBytes: 1 << 16, maxFields: 1000)) } throws: {
            ($0 as? HeraldError)?.message.contains("more than 1000 combinations") == true
        }
        let justRight = #"{"# + or("a", 10) + #","b":{"# + or("b", 10) + #"},"c":{"# + or("c", 10) + "}}"
        let pattern = try? Pattern(parsing: Array(justRight.utf8), limits: PatternLimits(maxBytes: 1 << 16, maxFields: 1000))
        #expect(pattern?.combinationCount == 1000)
        let stars = #"{"a":[{"wildcard":""# + String(repeating: "*x", count: 33) + #""}]}"#
        #expect { try Pattern(parsing: Array(stars.utf8)) } throws: { ($0 as? HeraldError)?.message.contains("too complex") == true }
        let fewer = #"{"a":[{"wildcard":""# + String(repeating: "*x", count: 32) + #""}]}"#
        #expect(throws: Never.self) { try Pattern(parsing: Array(fewer.utf8)) }
    }

    @Test func equalPatternsAreEqualWhateverTheirOrder() throws {
        let a = try Pattern(parsing: Array(#"{"x":["b","a"],"y":[{"prefix":"p"}]}"#.utf8))
        let b = try Pattern(parsing: Array(#"{"y":[{"prefix":"p"}],"x":["a","b","a"]}"#.utf8))
        #expect(a != b)  // different JSON
        var index = SubscriptionIndex()
        index.add(owner: 1, slot: 0, patterns: [a])
        let before = index.statistics
        index.add(owner: 2, slot: 0, patterns: [b])
        #expect(index.statistics.states == before.states, "the second pattern shares the first's compiled form")
    }
}
