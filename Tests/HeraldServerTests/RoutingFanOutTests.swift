import HeraldClient
import HeraldCore
import HeraldTestSupport
import Testing

/// 1,000 WebSocket subscribers with distinct filters over the full pattern language: each
/// receives exactly the events that `Pattern.matches` (the single-pattern evaluator, checked
/// against the reference matcher in HeraldCoreTests) says it should, in order.
@Suite struct RoutingFanOutTests {
    /// A distinct filter per subscriber, cycling through operator families.
    static func filter(_ i: Int) -> String {
        switch i % 8 {
        case 0: return #"{"n":[\#(i % 50)]}"#
        case 1: return #"{"n":[{"numeric":[">=",\#(i % 50),"<",\#(i % 50 + 7)]}]}"#
        case 2: return #"{"sensor":[{"prefix":"VB-\#(i % 10)"}]}"#
        case 3: return #"{"sensor":[{"suffix":"\#(i % 10)"}],"n":[{"numeric":["<",\#(i % 40 + 5)]}]}"#
        case 4: return #"{"room":[{"anything-but":["lobby","r\#(i % 6)"]}]}"#
        case 5: return #"{"$or":[{"n":[\#(i % 50)]},{"room":[{"equals-ignore-case":"R\#(i % 6)"}]}]}"#
        case 6: return #"{"tags":[{"wildcard":"*-\#(i % 9)"}],"ip":[{"cidr":"10.\#(i % 4).0.0/16"}]}"#
        default: return #"{"data":{"level":[{"exists":true}]},"n":[{"numeric":[">",\#(i % 50)]}]}"#
        }
    }

    static func event(_ n: Int) -> String {
        let data = n % 3 == 0 ? #","data":{"level":\#(n)}"# : ""
        return #"{"n":\#(n % 50),"sensor":"VB-\#(n % 97)","room":"r\#(n % 7)","tags":["t-\#(n % 9)","x"],"ip":"10.\#(n % 5).1.2"\#(data)}"#
    }

    @Test func aThousandDistinctFiltersEachGetExactlyTheirEvents() throws {
        let subscribers = 1000
        let eventCount = 200
        try withTestServer { server in
            let clients = try (0..<subscribers).map { i -> WebSocketClient in
                let ws = try server.webSocket()
                try ws.send(json: #"{"op":"subscribe","id":"f\#(i)","filter":\#(Self.filter(i))}"#)
                return ws
            }
            for ws in clients {
                guard try ws.receiveJSON()["type"] == .string("subscribed") else { throw TestFailure("subscription refused") }
            }
            let events = (0..<eventCount).map(Self.event)
            for start in stride(from: 0, to: eventCount, by: 50) {
                #expect(try server.publish("[" + events[start..<(start + 50)].joined(separator: ",") + "]").status == 202)
            }
            var totalDeliveries = 0
            for (i, ws) in clients.enumerated() {
                let pattern = try Pattern(parsing: Array(Self.filter(i).utf8))
                let expected = events.indices.filter { n in
                    let bytes = Array(events[n].utf8)
                    let tape = try! JSONScanner.scan(bytes)
                    return bytes.withUnsafeBytes { pattern.matches(EventView(tape: tape, node: 0, bytes: $0)) }
                }.map { Double($0 + 1) }
                var received: [Double] = []
                for _ in expected {
                    let message = try ws.receiveJSON()
                    if case .number(let seq)? = message["seq"] { received.append(seq) }
                }
                guard received == expected else {
                    throw TestFailure("subscriber \(i) \(Self.filter(i)): expected \(expected), got \(received)")
                }
                totalDeliveries += received.count
                // Nothing beyond the expected events: a ping is answered next.
                try ws.send(json: #"{"op":"ping"}"#)
                guard try ws.receiveJSON()["type"] == .string("pong") else { throw TestFailure("subscriber \(i) got an extra event") }
            }
            #expect(totalDeliveries > 10_000, "the filters are selective but not empty (\(totalDeliveries))")
        }
    }
}
