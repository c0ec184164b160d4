import HeraldCluster
import HeraldCore
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The cluster's broker against a real `redis-server`: two brokers (two nodes) on one
/// stream get dense positions in one order, dedup spans them, both read back the same
/// stream, older events are read on demand, and a Redis that lost or rewound its data
/// starts a new epoch rather than hand out a position twice.
@Suite(.serialized) struct RedisStreamBrokerTests {
    /// What one broker reported, collected across its threads.
    final class Record: Sendable {
        let answers = Mutex<[UInt64: SequencingResult]>([:])
        let received = Mutex<[(StreamEpoch, UInt64, String)]>([])
        let health = Mutex<[String?]>([])
    }

    final class Node: Sendable {
        let record = Record()
        let broker: RedisStreamBroker

        init(port: Int, dedupSeconds: Int = 60) throws {
            var settings = HeraldConfig.Cluster()
            settings.redis = HeraldConfig.RedisAddress(host: "127.0.0.1", port: port)
            settings.stream = "test"
            let record = record
            broker = try RedisStreamBroker(
                settings: settings, dedupSeconds: dedupSeconds,
                callbacks: .init(
                    sequenced: { ticket, result in record.answers.withLock { $0[ticket] = result } },
                    received: { events, epoch in
                        record.received.withLock { list in
                            for event in events { list.append((epoch, event.seq, String(decoding: event.json, as: UTF8.self))) }
                        }
                    },
                    health: { reason in record.health.withLock { $0.append(reason) } }))
            broker.start()
        }

        func submit(_ ticket: UInt64, _ events: [(id: String?, json: String)]) {
            broker.submit(
                Submission(
                    ticket: ticket,
                    events: events.map {
                        ProposedEvent(
                            id: $0.id ?? "gen\(ticket)", source: "src", type: "t", hasExplicitID: $0.id != nil, json: Array($0.json.utf8))
                    }))
        }

        /// Waits (at most 10 s) for the answer to `ticket`.
        func answer(_ ticket: UInt64) throws -> SequencingResult {
            for _ in 0..<1000 {
                if let answer = record.answers.withLock({ $0[ticket] }) { return answer }
                usleep(10_000)
            }
            throw TestFailure("no answer to submission \(ticket)")
        }

        /// Waits for `count` received events.
        func receivedEvents(_ count: Int) throws -> [(StreamEpoch, UInt64, String)] {
            for _ in 0..<1000 {
                let list = record.received.withLock { $0 }
                if list.count >= count { return list }
                usleep(10_000)
            }
            throw TestFailure("received \(record.received.withLock { $0.count }) of \(count) events")
        }
    }

    struct TestFailure: Error, CustomStringConvertible {
        let description: String
        init(_ description: String) { self.description = description }
    }

    /// A redis-server of its own, a connection to it and one node on it (`stop` ends both).
    func startRedisAndNode() throws -> (RedisConnectionTests.RedisServer, RedisConnection, Node) {
        let server = try RedisConnectionTests.RedisServer()
        let redis = try server.connect()
        do {
            return (server, redis, try Node(port: server.port))
        } catch {
            server.stop()
            throw error
        }
    }

    func stop(_ node: Node, _ server: RedisConnectionTests.RedisServer) {
        node.broker.stop()
        server.stop()
    }

    func seqs(_ result: SequencingResult) -> [Int64] {
        guard case .accepted(let accepted, _) = result else { return [] }
        return accepted.map { $0.duplicate ? -Int64($0.seq) : Int64($0.seq) }
    }

    @Test func twoNodesShareOneDenseOrderAndDedup() throws {
        let server = try RedisConnectionTests.RedisServer()
        defer { server.stop() }
        _ = try server.connect()
        let a = try Node(port: server.port)
        let b = try Node(port: server.port)
        defer {
            a.broker.stop()
            b.broker.stop()
        }
        #expect(a.broker.joinedEpoch == b.broker.joinedEpoch && a.broker.joinedPosition == 0)
        a.submit(1, [(nil, #"{"n":1}"#), ("x", #"{"n":2}"#)])
        #expect(seqs(try a.answer(1)) == [1, 2])
        b.submit(1, [("x", #"{"n":3}"#), (nil, #"{"n":4}"#)])
        #expect(seqs(try b.answer(1)) == [-2, 3], "the same (source, id) on another node is the first one's")
        for n in 2...20 { (n % 2 == 0 ? a : b).submit(UInt64(n), [(nil, #"{"k":\#(n)}"#)]) }
        for n in 2...20 { _ = try (n % 2 == 0 ? a : b).answer(UInt64(n)) }
        let onA = try a.receivedEvents(22).map(\.1)
        let onB = try b.receivedEvents(22).map(\.1)
        #expect(onA == Array(1...22) && onB == onA, "both nodes read one order, every position once")
        // A node joining later: its history from the stream, older positions on demand.
        let c = try Node(port: server.port)
        defer { c.broker.stop() }
        #expect(c.broker.joinedPosition == 22)
        #expect(try c.broker.recentEvents(count: 5).map(\.seq) == Array(18...22))
        #expect(c.broker.event(at: 2, epoch: c.broker.joinedEpoch).map { String(decoding: $0.json, as: UTF8.self) } == #"{"n":2}"#)
        #expect(c.broker.event(at: 99, epoch: c.broker.joinedEpoch) == nil)
    }

    @Test func oddIdsAndSourcesSurviveAndForeignEntriesAreSkipped() throws {
        let (server, redis, node) = try startRedisAndNode()
        defer { stop(node, server) }
        // Spaces, digits and colons in ids and sources: the header's lengths keep them apart,
        // and ("ab", "c") is not ("a", "bc") for dedup.
        node.broker.submit(
            Submission(
                ticket: 1,
                events: [
                    ProposedEvent(id: "c", source: "ab", type: "t 1", hasExplicitID: true, json: Array(#"{"n":1}"#.utf8)),
                    ProposedEvent(id: "bc", source: "a", type: "t 2", hasExplicitID: true, json: Array(#"{"n":2}"#.utf8)),
                    ProposedEvent(id: "9 9:é", source: "12 3", type: "", hasExplicitID: true, json: Array(#"{"n":3}"#.utf8)),
                ]))
        #expect(seqs(try node.answer(1)) == [1, 2, 3])
        // Something else writes to the stream: skipped, and reading goes on after it.
        _ = try redis.command("XADD", "test", "4-0", "foo", "bar")
        _ = try redis.command("XADD", "test", "5-0", "e", "0123456789abcdef", "h", "1 99 0 x", "j", "{}")
        _ = try redis.command("SET", "test:seq", "5")
        node.submit(2, [(nil, #"{"n":6}"#)])
        #expect(seqs(try node.answer(2)) == [6])
        let read = try node.receivedEvents(4)
        #expect(read.map(\.1) == [1, 2, 3, 6])
        #expect(node.broker.event(at: 3, epoch: node.broker.joinedEpoch).map { [$0.id, $0.source, $0.type] } == ["9 9:é", "12 3", ""])
        #expect(
            node.broker.event(at: 4, epoch: node.broker.joinedEpoch) == nil
                && node.broker.event(at: 5, epoch: node.broker.joinedEpoch) == nil)
    }

    @Test func aRedisThatLostOrRewoundItsDataStartsANewEpoch() throws {
        let (server, redis, node) = try startRedisAndNode()
        defer { stop(node, server) }
        let first = node.broker.joinedEpoch
        node.submit(1, (1...2).map { (nil, #"{"n":\#($0)}"#) })
        _ = try node.answer(1)
        guard case .string(let snapshot) = try redis.command("DUMP", "test") else { throw TestFailure("DUMP") }
        node.submit(10, (3...5).map { (nil, #"{"n":\#($0)}"#) })
        _ = try node.answer(10)
        #expect(try node.receivedEvents(5).allSatisfy { $0.0 == first })
        // Rewound (an older snapshot): the stream and its counter are behind what this node read.
        _ = try redis.command([Array("RESTORE".utf8), Array("test".utf8), Array("0".utf8), snapshot, Array("REPLACE".utf8)])
        _ = try redis.command("SET", "test:seq", "2")
        node.submit(2, [(nil, #"{"n":6}"#)])
        let answer = try node.answer(2)
        guard case .accepted(let placed, let newEpoch) = answer else { throw TestFailure("\(answer)") }
        #expect(placed.map(\.seq) == [3] && newEpoch != first, "position 3 again, in a new epoch, and the answer says so")
        let rewound = try node.receivedEvents(6).last!
        #expect(rewound.0 == newEpoch && rewound.1 == 3)
        // A counter behind the stream's newest entry (an append cut short): positions go on
        // after the entry, in the same epoch.
        _ = try redis.command("SET", "test:seq", "1")
        node.submit(9, [(nil, #"{"n":7}"#)])
        #expect(try node.answer(9) == .accepted([.init(id: "gen9", seq: 4, duplicate: false)], epoch: newEpoch))
        // Lost (FLUSHALL): a new epoch from position 1.
        _ = try redis.command("FLUSHALL")
        node.submit(3, [(nil, #"{"n":7}"#)])
        #expect(seqs(try node.answer(3)) == [1])
        let fresh = try node.receivedEvents(8).last!
        #expect(fresh.0 != first && fresh.0 != rewound.0 && fresh.1 == 1)
    }

    /// A stream entry as the script writes it.
    func entry(_ seq: Int, epoch: String) -> [[UInt8]] {
        ["XADD", "test", "\(seq)-0", "e", epoch, "h", "1 1 1 xst", "j", #"{"n":\#(seq)}"#].map { Array($0.utf8) }
    }

    @Test func oneReadSpanningTwoEpochsKeepsEachEventsEpoch() throws {
        let (server, redis, node) = try startRedisAndNode()
        defer { stop(node, server) }
        let first = node.broker.joinedEpoch.text
        usleep(100_000)  // the reader is blocked in XREAD
        _ = try redis.pipeline([
            entry(1, epoch: first), entry(2, epoch: first), entry(3, epoch: "beef"), ["SET", "test:epoch", "beef"].map { Array($0.utf8) },
        ])
        let read = try node.receivedEvents(3)
        #expect(read.map { "\($0.0):\($0.1)" } == ["\(first):1", "\(first):2", "beef:3"])
        // Entries of the epoch left behind are skipped from then on.
        _ = try redis.pipeline([entry(4, epoch: first), entry(5, epoch: "beef")])
        #expect(try node.receivedEvents(4).last.map { "\($0.0):\($0.1)" } == "beef:5")
    }

    @Test func readsRecoverAndAnErrorReplyIsAFailureNotASpin() throws {
        let (server, redis, node) = try startRedisAndNode()
        defer { stop(node, server) }
        node.submit(1, (1...3).map { (nil, #"{"n":\#($0)}"#) })
        _ = try node.answer(1)
        #expect(node.broker.event(at: 2, epoch: node.broker.joinedEpoch) != nil)
        // Every client connection is cut: older reads come back on their own.
        _ = try redis.command("CLIENT", "KILL", "TYPE", "normal")
        var found: Event?
        for _ in 0..<40 where found == nil {
            found = node.broker.event(at: 1, epoch: node.broker.joinedEpoch)
            usleep(100_000)
        }
        #expect(found?.seq == 1)
        // The writer's connection died while idle too: the next submission is found a new
        // one before anything is sent (nothing in doubt), and no healthy Redis is reported down.
        usleep(1_100_000)
        node.submit(2, [(nil, #"{"n":4}"#)])
        #expect(seqs(try node.answer(2)) == [4])
        #expect(node.record.health.withLock { $0.allSatisfy { $0 == nil } }, "\(node.record.health.withLock { $0 })")
        // The stream key holds something else: XREAD answers with an error, reported (and
        // retried with backoff), not read again in a loop.
        _ = try redis.command("DEL", "test")
        _ = try redis.command("SET", "test", "not a stream")
        for _ in 0..<100 where !node.record.health.withLock({ $0.contains { $0?.contains("XREAD") == true } }) { usleep(20_000) }
        #expect(node.record.health.withLock { $0.contains { $0?.contains("WRONGTYPE") == true } })
        guard case .string(let stats) = try redis.command("INFO", "commandstats") else { throw TestFailure("INFO") }
        let xreads = String(decoding: stats, as: UTF8.self).split(separator: "\r\n").first { $0.hasPrefix("cmdstat_xread:") } ?? ""
        #expect(Int(xreads.split(separator: "=")[1].split(separator: ",")[0]) ?? .max < 100, "\(xreads)")
        _ = try redis.command("DEL", "test")
        for _ in 0..<200 where node.record.health.withLock({ $0.last != .some(nil) }) { usleep(20_000) }
        #expect(node.record.health.withLock { $0.last } == .some(nil), "healthy again")
    }

    @Test func theSameOldSnapshotLoadedTwiceStartsAnotherEpochAgain() throws {
        let (server, redis, node) = try startRedisAndNode()
        defer { stop(node, server) }
        let first = node.broker.joinedEpoch
        node.submit(1, (1...2).map { (nil, #"{"n":\#($0)}"#) })
        _ = try node.answer(1)
        var snapshot: [[UInt8]] = []
        for key in ["test", "test:seq", "test:epoch"] {
            guard case .string(let dump) = try redis.command("DUMP", key) else { throw TestFailure("DUMP \(key)") }
            snapshot.append(dump)
        }
        func loadSnapshot() throws {
            for (key, dump) in zip(["test", "test:seq", "test:epoch"], snapshot) {
                _ = try redis.command([Array("RESTORE".utf8), Array(key.utf8), Array("0".utf8), dump, Array("REPLACE".utf8)])
            }
        }
        node.submit(2, (3...4).map { (nil, #"{"n":\#($0)}"#) })
        _ = try node.answer(2)
        _ = try node.receivedEvents(4)
        try loadSnapshot()
        node.submit(3, [(nil, #"{"n":5}"#)])
        guard case .accepted(let second, let secondEpoch) = try node.answer(3) else { throw TestFailure("accepted") }
        #expect(secondEpoch != first && second.map(\.seq) == [3])
        _ = try node.receivedEvents(5)
        // The same snapshot again: its epoch is one this node left behind.
        try loadSnapshot()
        node.submit(4, [(nil, #"{"n":6}"#)])
        guard case .accepted(let third, let thirdEpoch) = try node.answer(4) else { throw TestFailure("accepted") }
        #expect(thirdEpoch != first && thirdEpoch != secondEpoch && third.map(\.seq) == [3])
        let last = try node.receivedEvents(6).last!
        #expect(last.0 == thirdEpoch && last.1 == 3 && last.2 == #"{"n":6}"#, "delivered, not skipped as a retired epoch")
    }

    @Test func aDeadRedisFailsSubmissionsAndReportsHealth() throws {
        let server = try RedisConnectionTests.RedisServer()
        _ = try server.connect()
        let node = try Node(port: server.port)
        defer { node.broker.stop() }
        server.stop()
        node.submit(1, [(nil, "{}")])
        guard case .failed(let reason) = try node.answer(1) else { throw TestFailure("a dead Redis acknowledges nothing") }
        #expect(reason.contains("127.0.0.1:\(server.port)"))
        for _ in 0..<300 where node.record.health.withLock({ $0.isEmpty }) { usleep(10_000) }
        #expect(node.record.health.withLock { $0.first??.contains("Redis") == true })
    }
}
