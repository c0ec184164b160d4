import HeraldClient
import HeraldCore
import HeraldServer
import HeraldTestSupport
import Synchronization
import Testing

/// The one way into a loop from another thread: messages keep their order, a batch wakes
/// the loop once, and a running server's Hub acts on what is posted.
@Suite struct LoopInboxTests {
    @Test func postsFromManyThreadsArriveInEachThreadsOrderWithFewWakes() {
        let wakes = Atomic<Int>(0)
        let inbox = Inbox<(thread: Int, n: Int)>(wake: { wakes.add(1, ordering: .relaxed) })
        let threads = (0..<4).map { thread in
            TestThread { for n in 0..<10_000 { inbox.post((thread, n)) } }
        }
        var received: [[Int]] = Array(repeating: [], count: 4)
        var drains = 0
        while received.map(\.count).reduce(0, +) < 40_000 {
            let batch = inbox.drain()
            if !batch.isEmpty { drains += 1 }
            for message in batch { received[message.thread].append(message.n) }
        }
        threads.forEach { $0.join() }
        #expect(received.allSatisfy { $0 == Array(0..<10_000) })
        #expect(inbox.drain().isEmpty)
        // A post wakes only an empty inbox: at most one wake per drained batch (+ the last).
        #expect(wakes.load(ordering: .relaxed) <= drains + 1)
    }

    @Test func eventsPostedFromAnotherThreadReachSubscribers() throws {
        var config = testConfig()
        config.listen.loops = 1  // one Hub, whose own sequence continues after what it received
        try withTestServer(config) { server in
            let ws = try server.webSocket()
            try ws.send(json: #"{"op":"subscribe","id":"s","filter":{"type":["chat"]}}"#)
            guard case .string(let text) = try ws.receiveJSON()["epoch"], let epoch = StreamEpoch(text) else {
                throw TestFailure("subscribed carries the epoch")
            }
            let remote = (1...2).map { n in
                Array(#"{"type":"chat","n":\#(n)}"#.utf8).withUnsafeBytes {
                    Event(epoch: epoch, seq: UInt64(n), id: "r\(n)", source: "node-b", type: "chat", acceptedAt: 0, json: $0)
                }
            }
            TestThread { server.server.post(.received(remote, epoch: epoch)) }.join()
            for n in 1...2 {
                let message = try ws.receiveJSON()
                #expect(message["seq"] == .number(Double(n)) && message["event"]?["n"] == .number(Double(n)), "\(message)")
            }
            // The local sequence continues after what other nodes accepted.
            #expect(try server.publish(#"{"type":"chat"}"#).json["accepted"]?[0]?["seq"] == .number(3))
        }
    }
}
