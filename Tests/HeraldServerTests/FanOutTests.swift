import HeraldClient
import HeraldCore
import HeraldTestSupport
import Testing

/// Many subscribers, many events: everything arrives, once, in order.
@Suite struct FanOutTests {
    @Test func aThousandEventsReachAHundredSubscribersInOrder() throws {
        try withTestServer { server in
            let webSockets = try (0..<50).map { i in
                let ws = try server.webSocket()
                try ws.send(json: #"{"op":"subscribe","id":"s\#(i)","filter":{"kind":["tick"]}}"#)
                #expect(try ws.receiveJSON()["type"] == .string("subscribed"))
                return ws
            }
            let streams = try (0..<50).map { _ in try server.sse(filter: #"{"kind":["tick"]}"#) }

            // 1,000 matching events in batches of 100, with a non-matching event in every batch.
            for batch in 0..<10 {
                var events = (0..<100).map { i in #"{"kind":"tick","n":\#(batch * 100 + i)}"# }
                events.insert(#"{"kind":"tock"}"#, at: 50)
                #expect(try server.publish("[" + events.joined(separator: ",") + "]").status == 202)
            }

            for (index, ws) in webSockets.enumerated() {
                for n in 0..<1000 {
                    let message = try ws.receiveJSON()
                    guard message["event"]?["n"] == .number(Double(n)) else {
                        throw TestFailure("websocket \(index): expected n=\(n), got \(message.serialized)")
                    }
                }
            }
            for (index, stream) in streams.enumerated() {
                var lastSeq = 0
                for n in 0..<1000 {
                    let event = try #require(try stream.next(timeout: .seconds(5)))
                    let seq = Int(event.position?.seq ?? 0)
                    guard seq > lastSeq, event.data.contains(#""n":\#(n)}"#) else {
                        throw TestFailure("sse \(index): expected n=\(n) after seq \(lastSeq), got \(event)")
                    }
                    lastSeq = seq
                }
            }
        }
    }
}
