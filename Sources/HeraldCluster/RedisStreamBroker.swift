public import HeraldCore
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The cluster's `EventBroker`: one Redis stream shared by every node.
///
/// Why it exists: several Herald nodes behave as one gateway when they agree on one order
/// of events. Each node appends what it accepts to the stream (`StreamScript`: dedup,
/// positions and `XADD` atomically, one round trip per batch) and its ingest answers once
/// Redis has; each node reads the whole stream back with `XREAD BLOCK` and hands every
/// event — its own and other nodes' — to its loop, which delivers to its own clients in the
/// stream's order. History and resume read the stream too, so a client may reconnect to
/// any node.
///
/// Threads: a writer (its own connection; submissions and presence restores queued under a
/// lock, pipelined to Redis, each submission answered once through `Callbacks.sequenced`;
/// the node's heartbeat), a reader (its own connection; events through
/// `Callbacks.received`), and reads on the loop thread (a third connection: older events,
/// the oldest position, presence lists). A connection that died while Redis is up is
/// replaced at once; while Redis is down, each thread retries with backoff (50 ms up to
/// 2 s), submissions fail at once, `Callbacks.health` says why, and the reader continues
/// from the last id it read: nothing lost, nothing twice.
///
/// - Note: `@unchecked Sendable`: the queue and flags are guarded by `signal`'s mutex, the
///   read position by a `Mutex`; each connection is owned by one thread.
public final class RedisStreamBroker: EventBroker, OlderEvents, @unchecked Sendable {
    /// Where the broker's news goes (a loop's inbox).
    public struct Callbacks: Sendable {
        /// The answer to a submission, once per submission.
        public var sequenced: @Sendable (UInt64, SequencingResult) -> Void
        /// Events read from the stream, in its order, with the epoch they count in.
        public var received: @Sendable ([Event], StreamEpoch) -> Void
        /// Why Redis cannot be used (nil: it can again); called on changes only.
        public var health: @Sendable (String?) -> Void

        public init(
            sequenced: @escaping @Sendable (UInt64, SequencingResult) -> Void,
            received: @escaping @Sendable ([Event], StreamEpoch) -> Void, health: @escaping @Sendable (String?) -> Void
        ) {
            self.sequenced = sequenced
            self.received = received
            self.health = health
        }
    }

    public let address: HeraldConfig.RedisAddress
    /// This node's name: random per process (its presence members are `<node>.<client>`).
    public let node = String(StreamEpoch.random().text.prefix(8))
    /// The stream's epoch and last position when this node joined: its log starts there.
    public let joinedEpoch: StreamEpoch
    public let joinedPosition: UInt64

    private let keys: StreamScript.Keys
    private let maxLength: Int
    /// How long a node's heartbeat lives; it is renewed every third of it.
    private let nodeTimeoutSeconds: Int
    private let dedupSeconds: Int
    private let callbacks: Callbacks
    private let scriptSHA: String

    private let signal = ThreadSignal()
    /// What the writer thread does next, in order.
    private enum Work {
        case append(Submission)
        case restore([(group: String, member: PresenceRegistry.Member)])
    }
    private var queue: [Work] = []
    private var stopping = false
    private var threads: [pthread_t] = []
    /// The epoch and last position the reader has read (the script checks Redis is not
    /// behind it).
    private let readThrough: Mutex<(epoch: StreamEpoch, seq: UInt64)>
    /// How often the reader connected: a change tells the writer its own connection may be
    /// dead too.
    private let readerConnections = Atomic<Int>(0)
    /// The furthest position Redis acknowledged to this node's writer, and its epoch.
    private let acknowledged = Mutex<(epoch: StreamEpoch, seq: UInt64)?>(nil)
    private let healthState = Mutex<(writer: String?, reader: String?, reported: String?)>((nil, nil, nil))

    /// Epochs the reader left behind (Redis lost or rewound its data), newest last: an epoch
    /// key that says one of them again (the same old snapshot loaded twice) is rotated.
    private let retiredEpochs = Mutex<[StreamEpoch]>([])
    /// Where the reader found each epoch it adopted to begin (for `oldestPosition`).
    private let epochStarts = Mutex<[StreamEpoch: UInt64]>([:])
    /// Recent presence lists by group (loop thread; see `members(of:fresh:)`).
    private var memberCache: [String: (at: UInt64, members: [PresenceRegistry.Member])] = [:]
    /// Reads on the loop thread (older events, presence lists): a short timeout, and after
    /// a failure no new attempt for a second, so that a sick Redis stalls the loop little.
    private var reads: RedisConnection?
    private var readsRetryAt: UInt64 = 0
    /// Events read ahead by `event(at:)`, and the epoch they count in.
    private var readChunk: [Event] = []
    private var readChunkEpoch: StreamEpoch

    static let minBackoffMilliseconds = 50
    static let maxBackoffMilliseconds = 2000

    /// Connects, loads the script and learns the stream's epoch (making one for a new
    /// stream) and last position.
    /// - Throws: `storage_unavailable` when Redis cannot be reached (the node does not start).
    public init(settings: HeraldConfig.Cluster, dedupSeconds: Int, callbacks: Callbacks) throws(HeraldError) {
        guard let address = settings.redis else { preconditionFailure("a broker needs cluster.redis") }
        self.address = address
        keys = StreamScript.Keys(prefix: settings.stream)
        maxLength = settings.maxLength
        nodeTimeoutSeconds = settings.nodeTimeoutSeconds
        self.dedupSeconds = dedupSeconds
        self.callbacks = callbacks
        let redis = try RedisConnection(host: address.host, port: address.port)
        scriptSHA = try Self.loadScript(redis)
        _ = try redis.command([Array("SET".utf8), keys.epoch, Array(StreamEpoch.random().text.utf8), Array("NX".utf8)])
        let replies = try redis.pipeline([[Array("GET".utf8), keys.epoch], [Array("GET".utf8), keys.counter]])
        guard case .string(let epochText) = replies[0], let epoch = StreamEpoch(String(decoding: epochText, as: UTF8.self)) else {
            throw HeraldError(
                .storageUnavailable, "Redis at \(address.host):\(address.port) holds no valid epoch at \(settings.stream):epoch")
        }
        var position: UInt64 = 0
        if case .string(let counter) = replies[1] { position = UInt64(String(decoding: counter, as: UTF8.self)) ?? 0 }
        joinedEpoch = epoch
        joinedPosition = position
        readThrough = Mutex((epoch, position))
        reads = redis
        readChunkEpoch = epoch
    }

    deinit { stop() }

    /// The newest `count` events of the stream in the joined epoch, oldest first (a node
    /// fills its history with them before it serves).
    public func recentEvents(count: Int) throws(HeraldError) -> [Event] {
        guard count > 0, joinedPosition > 0 else { return [] }
        let first = joinedPosition > UInt64(count) ? joinedPosition - UInt64(count) + 1 : 1
        var events: [Event] = []
        var next = first
        guard let redis = reads else { return [] }
        while next <= joinedPosition {
            let chunk = try range(from: next, through: joinedPosition, count: 1000, epoch: joinedEpoch, on: redis)
            guard let last = chunk.last else { break }
            events += chunk.filter { $0.seq <= joinedPosition }
            next = last.seq + 1
        }
        return events
    }

    /// The event at `position` of `epoch`, read from the stream (nil when trimmed away, of
    /// another epoch, or Redis cannot be reached). Called on the loop thread for resumes
    /// older than its history; reads ahead 64 events per round trip.
    public func event(at position: UInt64, epoch: StreamEpoch) -> Event? {
        if readChunkEpoch != epoch {
            readChunk = []
            readChunkEpoch = epoch
        }
        if let hit = readChunk.first(where: { $0.seq == position }) { return hit }
        readChunk =
            withReads { (redis) throws(HeraldError) in try range(from: position, through: nil, count: 64, epoch: epoch, on: redis) } ?? []
        return readChunk.first { $0.seq == position }
    }

    /// The oldest position of `epoch` the stream still holds (nil: none, or Redis cannot be
    /// reached): where a resume older than that continues after its `expired` gap. After a
    /// new epoch began, older entries of the one before lead the stream: then the first
    /// position the reader read in `epoch`.
    public func oldestPosition(epoch: StreamEpoch) -> UInt64? {
        let first = withReads { (redis) throws(HeraldError) -> (StreamEpoch, UInt64)? in
            let reply = try redis.command([
                Array("XRANGE".utf8), keys.stream, Array("-".utf8), Array("+".utf8), Array("COUNT".utf8), Array("1".utf8),
            ])
            guard case .array(let entries) = reply, let entry = entries.first,
                let (entryEpoch, event) = StreamScript.event(entry, loopTime: { $0 })
            else { return nil }
            return (entryEpoch, event.seq)
        }
        guard let found = first, let (entryEpoch, seq) = found else { return nil }
        if entryEpoch == epoch { return seq }
        return epochStarts.withLock { $0[epoch] }
    }

    /// The members of `group` on live nodes; nil when Redis cannot be reached. On the loop
    /// thread. `fresh: false` may answer from a copy up to a second old that no presence
    /// event on the stream made stale since (counts in presence events: a wave of this
    /// node's disconnects costs one read per group, not one per change). Members of nodes whose heartbeat stopped are not listed (their entries
    /// stay: the node may only have been cut off, and comes back with them).
    public func members(of group: String, fresh: Bool) -> [PresenceRegistry.Member]? {
        let now = Self.monotonicNanos()
        if !fresh, let cached = memberCache[group], now &- cached.at < 1_000_000_000 { return cached.members }
        let epoch = readThrough.withLock { $0.epoch }
        let members = withReads { (redis) throws(HeraldError) -> [PresenceRegistry.Member] in
            guard case .array(let flat) = try redis.command([Array("HGETALL".utf8), keys.presence(group)]) else { return [] }
            var members: [PresenceRegistry.Member] = []
            for index in stride(from: 0, to: flat.count - 1, by: 2) {
                guard case .string(let field) = flat[index], case .string(let value) = flat[index + 1],
                    let member = StreamScript.member(field: field, value: value, epoch: epoch)
                else { continue }
                members.append(member)
            }
            let nodes = Array(Set(members.map(\.node)))
            guard !nodes.isEmpty else { return members }
            guard case .array(let beats) = try redis.command([Array("MGET".utf8)] + nodes.map { keys.node($0) }) else { return members }
            let dead = Set(zip(nodes, beats).filter { $0.1 == .null }.map(\.0))
            return members.filter { !dead.contains($0.node) }
        }
        if memberCache.count > 1000 { memberCache = memberCache.filter { now &- $0.value.at < 1_000_000_000 } }
        if let members { memberCache[group] = (now, members) }
        return members
    }

    public func presenceChanged() { memberCache.removeAll(keepingCapacity: true) }

    /// Writes this node's members again (after Redis lost or rewound its data, or this node
    /// was cut off): the shared lists then hold them whatever happened meanwhile.
    public func restore(_ members: [(group: String, member: PresenceRegistry.Member)]) {
        guard !members.isEmpty else { return }
        signal.lock()
        queue.append(.restore(members))
        signal.signal()
        signal.unlock()
    }

    /// Runs `body` on the loop thread's connection, (re)connecting if need be; nil on a
    /// failure (the connection is dropped and not tried again for a second).
    private func withReads<Result>(_ body: (RedisConnection) throws(HeraldError) -> Result) -> Result? {
        if reads == nil {
            guard Self.monotonicNanos() >= readsRetryAt else { return nil }
            do throws(HeraldError) {
                reads = try RedisConnection(host: address.host, port: address.port, timeout: .milliseconds(500))
            } catch {
                readsRetryAt = Self.monotonicNanos() + 1_000_000_000
                return nil
            }
        }
        guard let redis = reads else { return nil }
        do throws(HeraldError) {
            return try body(redis)
        } catch {
            redis.close()
            reads = nil
            readsRetryAt = Self.monotonicNanos() + 1_000_000_000
            return nil
        }
    }

    /// Events of `epoch` from `first` (through `last`), at most `count` entries read.
    private func range(
        from first: UInt64, through last: UInt64?, count: Int, epoch: StreamEpoch, on redis: RedisConnection
    ) throws(HeraldError) -> [Event] {
        let reply = try redis.command([
            Array("XRANGE".utf8), keys.stream, Array("\(first)-0".utf8), Array((last.map { "\($0)-0" } ?? "+").utf8),
            Array("COUNT".utf8), Array(String(count).utf8),
        ])
        if case .error(let message) = reply { throw HeraldError(.storageUnavailable, "Redis refused XRANGE: \(message)") }
        guard case .array(let entries) = reply else { return [] }
        let loopTime = Self.loopTimeConverter()
        return entries.compactMap { entry in
            guard let (entryEpoch, event) = StreamScript.event(entry, loopTime: loopTime), entryEpoch == epoch else { return nil }
            return event
        }
    }

    // MARK: - Threads

    /// Starts the writer and the reader (reading after `joinedPosition`).
    public func start() {
        for body in [runWriter, runReader] {
            let box = Unmanaged.passRetained(ThreadBody(body))
            var handle = pthread_t()
            let result = pthread_create(
                &handle, nil,
                { argument in
                    Unmanaged<ThreadBody>.fromOpaque(argument!).takeRetainedValue().run()
                    return nil
                }, box.toOpaque())
            precondition(result == 0, "could not start a cluster broker thread")
            threads.append(handle)
        }
    }

    /// Queued for the writer thread; answered through the inbox (`.sequenced`).
    @discardableResult
    public func submit(_ submission: Submission) -> SequencingResult? {
        signal.lock()
        queue.append(.append(submission))
        signal.signal()
        signal.unlock()
        return nil
    }

    /// Answers what was submitted, then ends both threads (the reader within its 500 ms
    /// block); the node's heartbeat is removed, so its members are not listed any more.
    public func stop() {
        signal.lock()
        stopping = true
        signal.signal()
        signal.unlock()
        for thread in threads { pthread_join(thread, nil) }
        if !threads.isEmpty, let reads { _ = try? reads.command([Array("DEL".utf8), keys.node(node)]) }
        threads = []
        reads?.close()
    }

    private var isStopping: Bool {
        signal.lock()
        defer { signal.unlock() }
        return stopping
    }

    private func runWriter() {
        var redis: RedisConnection?
        var backoff = Self.minBackoffMilliseconds
        var lastBeat: UInt64 = 0
        var lastUsed: UInt64 = 0
        var readerSessionsSeen = readerConnections.load(ordering: .relaxed)
        let beatInterval = UInt64(nodeTimeoutSeconds) * 1_000_000_000 / 3
        while true {
            signal.lock()
            if queue.isEmpty && !stopping {
                // Disconnected: try again after the backoff even if nothing is submitted,
                // so that the node is ready again as soon as Redis is; connected: wake for
                // the heartbeat (which also finds a dead connection before a client does).
                signal.wait(milliseconds: redis == nil ? backoff : Int(beatInterval / 1_000_000))
            }
            let work = queue
            queue.removeAll(keepingCapacity: true)
            let stop = stopping
            signal.unlock()
            if stop && work.isEmpty { return }
            var batch: [Submission] = []
            var restores: [(group: String, member: PresenceRegistry.Member)] = []
            for item in work {
                switch item {
                case .append(let submission): batch.append(submission)
                case .restore(let members): restores += members
                }
            }
            if redis == nil {
                do throws(HeraldError) {
                    redis = try connectWriter()
                    backoff = Self.minBackoffMilliseconds
                    lastBeat = 0  // at once: Redis may have lost the heartbeat meanwhile
                    report(.writer, nil)
                } catch {
                    report(.writer, error.message)
                    backoff = min(backoff * 2, Self.maxBackoffMilliseconds)
                    for submission in batch { callbacks.sequenced(submission.ticket, .failed(error.message)) }
                    continue
                }
            }
            guard var connection = redis else { continue }
            // Nothing is sent yet: a connection that died while idle (Redis restarted) is
            // found with an idempotent command and replaced, so no batch is put in doubt
            // and no healthy Redis is reported down.
            let now = Self.monotonicNanos()
            let readerSessions = readerConnections.load(ordering: .relaxed)
            // Checked first: when due, after a second idle, or when the reader had to
            // reconnect since this connection was last used (Redis may have restarted).
            if now &- lastBeat >= beatInterval || now &- lastUsed >= 1_000_000_000 || readerSessions != readerSessionsSeen {
                do throws(HeraldError) {
                    connection = try beat(on: connection)
                    lastBeat = Self.monotonicNanos()
                    readerSessionsSeen = readerSessions
                } catch {
                    redis = nil
                    report(.writer, error.message)
                    for submission in batch { callbacks.sequenced(submission.ticket, .failed(error.message)) }
                    continue
                }
                redis = connection
            }
            var answered = [Bool](repeating: false, count: batch.count)
            do throws(HeraldError) {
                try append(batch, on: connection, answered: &answered)
                if !restores.isEmpty { try restore(restores, on: connection) }
                lastUsed = Self.monotonicNanos()
            } catch {
                // Each submission is answered once: what Redis answered before the failure
                // keeps its answer; the rest is in doubt and refused (a retry with ids is safe).
                for (submission, done) in zip(batch, answered) where !done {
                    callbacks.sequenced(submission.ticket, .failed(error.message))
                }
                redis = try? connectWriter()
                report(.writer, redis == nil ? error.message : nil)
            }
        }
    }

    /// Renews the heartbeat; on a dead connection, once more on a new one.
    private func beat(on connection: RedisConnection) throws(HeraldError) -> RedisConnection {
        let command = [Array("SET".utf8), keys.node(node), Array("1".utf8), Array("EX".utf8), Array(String(nodeTimeoutSeconds).utf8)]
        do throws(HeraldError) {
            _ = try connection.command(command)
            return connection
        } catch {
            let fresh = try connectWriter()
            _ = try fresh.command(command)
            return fresh
        }
    }

    private func connectWriter() throws(HeraldError) -> RedisConnection {
        let redis = try RedisConnection(host: address.host, port: address.port)
        _ = try Self.loadScript(redis)  // a restarted Redis has forgotten it
        return redis
    }

    /// Writes members into their groups' hashes (what the append script writes on a join).
    private func restore(_ members: [(group: String, member: PresenceRegistry.Member)], on redis: RedisConnection) throws(HeraldError) {
        let commands = members.map { entry -> [[UInt8]] in
            var value = Array("\(entry.member.transport) \(entry.member.joinedSeq) \(entry.member.info.bytes.count) ".utf8)
            value += entry.member.info.bytes
            if let join = entry.member.joinEvent { value += Array(join.json) }
            return [Array("HSET".utf8), keys.presence(entry.group), Array(entry.member.id.utf8), value]
        }
        _ = try redis.pipeline(commands)
    }

    /// Appends each submission with the script, all in one pipeline, and answers each
    /// (marking it in `answered`). Submissions Redis did not run for want of the script
    /// (its cache was flushed) are sent again, in order, after loading it.
    private func append(_ batch: [Submission], on redis: RedisConnection, answered: inout [Bool]) throws(HeraldError) {
        var waiting = Array(batch.indices)
        for _ in 0..<2 where !waiting.isEmpty {
            let seen = seenThrough()
            let retired = retiredEpochs.withLock { $0 }
            let now = Self.unixNanos()
            let replies = try redis.pipeline(
                waiting.map {
                    StreamScript.arguments(
                        sha: scriptSHA, keys: keys, maxLength: maxLength, dedupSeconds: dedupSeconds, freshEpoch: .random(), seen: seen,
                        retired: retired, acceptedAtUnixNanos: now, events: batch[$0].events, presence: batch[$0].presence)
                })
            var again: [Int] = []
            for (index, reply) in zip(waiting, replies) {
                if case .error(let message) = reply, message.hasPrefix("NOSCRIPT") {
                    again.append(index)
                    continue
                }
                let submission = batch[index]
                if let (epoch, accepted) = StreamScript.acceptances(reply, events: submission.events) {
                    noteAcknowledged(epoch, accepted)
                    callbacks.sequenced(submission.ticket, .accepted(accepted, epoch: epoch))
                } else {
                    let reason = "Redis at \(address.host):\(address.port) refused the append: \(reply)"
                    callbacks.sequenced(submission.ticket, .failed(reason))
                }
                answered[index] = true
            }
            if !again.isEmpty { _ = try Self.loadScript(redis) }
            waiting = again
        }
        for index in waiting {
            callbacks.sequenced(batch[index].ticket, .failed("Redis at \(address.host):\(address.port) keeps forgetting the append script"))
            answered[index] = true
        }
    }

    /// The furthest position this node knows Redis had, in its epoch: what it read, or what
    /// Redis acknowledged to it (even before reading it). A counter behind it means Redis
    /// lost acknowledged events, and the script starts a new epoch.
    private func seenThrough() -> (StreamEpoch, UInt64) {
        let read = readThrough.withLock { $0 }
        let acked = acknowledged.withLock { $0 }
        guard let acked else { return (read.epoch, read.seq) }
        return acked.epoch == read.epoch ? (read.epoch, max(read.seq, acked.seq)) : (acked.epoch, acked.seq)
    }

    private func noteAcknowledged(_ epoch: StreamEpoch, _ accepted: [WireFormat.Acceptance]) {
        let highest = accepted.reduce(0) { max($0, $1.seq) }
        acknowledged.withLock { current in
            if let known = current, known.epoch == epoch, known.seq >= highest { return }
            current = (epoch, highest)
        }
    }

    private func runReader() {
        var redis: RedisConnection?
        var backoff = Self.minBackoffMilliseconds
        var cursor = ReadCursor(epoch: joinedEpoch, after: "\(joinedPosition)-0", lastSeq: joinedPosition)
        var retryAtOnce = true
        while !isStopping {
            do throws(HeraldError) {
                if redis == nil {
                    let connection = try RedisConnection(host: address.host, port: address.port)
                    // Redis came back: if it lost what this node read, the epoch changes
                    // now (not only at the next append), and the reader follows it.
                    readerConnections.add(1, ordering: .relaxed)
                    let rotation = StreamScript.rotationArguments(
                        keys: keys, seen: (cursor.epoch, cursor.lastSeq), retired: cursor.retiredList)
                    cursor.check(epochKey: try connection.command(rotation))
                    redis = connection
                }
                guard let connection = redis else { continue }
                let reply = try connection.command([
                    Array("XREAD".utf8), Array("COUNT".utf8), Array("1000".utf8), Array("BLOCK".utf8), Array("500".utf8),
                    Array("STREAMS".utf8), keys.stream, Array(cursor.after.utf8),
                ])
                if case .error(let message) = reply {
                    throw HeraldError(.storageUnavailable, "Redis at \(address.host):\(address.port) refused XREAD: \(message)")
                }
                backoff = Self.minBackoffMilliseconds
                retryAtOnce = true
                report(.reader, nil)
                guard case .array(let streams) = reply, case .array(let stream)? = streams.first, stream.count == 2,
                    case .array(let entries) = stream[1]
                else {
                    // Nothing new for 500 ms: a stream that was lost and begun again
                    // under a new epoch is only seen by its epoch key.
                    cursor.check(epochKey: try connection.command([Array("GET".utf8), keys.epoch]))
                    continue
                }
                let loopTime = Self.loopTimeConverter()
                var run: [Event] = []
                for entry in entries {
                    guard let id = StreamScript.entryID(entry) else { continue }
                    guard let (entryEpoch, event) = StreamScript.event(entry, loopTime: loopTime) else {
                        cursor.after = id  // not Herald's: step over it
                        continue
                    }
                    if entryEpoch != cursor.epoch, !run.isEmpty {
                        callbacks.received(run, cursor.epoch)  // what came before, in its own epoch
                        run = []
                    }
                    switch cursor.read(entryEpoch, seq: event.seq) {
                    case .keep:
                        if run.isEmpty { epochStarts.withLock { if $0[cursor.epoch] == nil { $0[cursor.epoch] = event.seq } } }
                        run.append(event)
                    case .skip: continue
                    case .restart: break
                    }
                    if cursor.after == "0-0" { break }
                }
                if !run.isEmpty { callbacks.received(run, cursor.epoch) }
                publish(cursor)
            } catch {
                // A connection that died while Redis is up (killed, timed out) is replaced
                // at once, without a health report; a Redis that is down is reported.
                redis = nil
                if retryAtOnce {
                    retryAtOnce = false
                    continue
                }
                report(.reader, error.message)
                signal.lock()
                if !stopping { signal.wait(milliseconds: backoff) }
                signal.unlock()
                backoff = min(backoff * 2, Self.maxBackoffMilliseconds)
            }
        }
    }

    /// Shares what the reader knows with the writer and the loop thread.
    private func publish(_ cursor: ReadCursor) {
        let previous = readThrough.withLock { state in
            defer { state = (cursor.epoch, cursor.lastSeq) }
            return state.epoch
        }
        guard previous != cursor.epoch else { return }
        retiredEpochs.withLock { $0 = cursor.retiredList }
        acknowledged.withLock { if let known = $0, known.epoch != cursor.epoch { $0 = nil } }
    }

    /// Where the reader is in the stream, and which epochs it has left behind.
    ///
    /// Normally it reads on after the last id. When the stream shows a new epoch (an entry
    /// of it, or the epoch key), Redis lost or rewound its data: the reader adopts the new
    /// epoch and reads the stream again from its start, skipping entries of epochs it left
    /// (what an older snapshot still holds); the Hub starts its log again from there.
    struct ReadCursor {
        var epoch: StreamEpoch
        var after: String
        var lastSeq: UInt64
        var retired: Set<StreamEpoch> = []
        /// The retired epochs, newest last (at most 16 are remembered).
        var retiredList: [StreamEpoch] = []

        enum Verdict { case keep, skip, restart }

        /// What to do with an entry read after `after`.
        mutating func read(_ entryEpoch: StreamEpoch, seq: UInt64) -> Verdict {
            after = "\(seq)-0"
            if entryEpoch == epoch {
                lastSeq = seq
                return .keep
            }
            if retired.contains(entryEpoch) { return .skip }
            adopt(entryEpoch)
            return .restart
        }

        /// Adopts the epoch the key holds if it is new.
        mutating func check(epochKey reply: RedisConnection.Reply) {
            guard case .string(let text) = reply, let current = StreamEpoch(String(decoding: text, as: UTF8.self)),
                current != epoch, !retired.contains(current)
            else { return }
            adopt(current)
        }

        private mutating func adopt(_ new: StreamEpoch) {
            retired.insert(epoch)
            retiredList.append(epoch)
            if retiredList.count > 16 { retired.remove(retiredList.removeFirst()) }
            epoch = new
            after = "0-0"
            lastSeq = 0
        }
    }

    // MARK: - Health and time

    /// The broker's two connections, each healthy or not.
    private enum Side { case writer, reader }

    /// Records one side's state and tells the loop when the whole changed.
    private func report(_ side: Side, _ reason: String?) {
        let change: String?? = healthState.withLock { state in
            if side == .writer { state.writer = reason } else { state.reader = reason }
            let now = state.writer ?? state.reader
            guard now != state.reported else { return .none }
            state.reported = now
            return .some(now)
        }
        if case .some(let reason) = change { callbacks.health(reason) }
    }

    private static func loadScript(_ redis: RedisConnection) throws(HeraldError) -> String {
        let reply = try redis.command([Array("SCRIPT".utf8), Array("LOAD".utf8), Array(StreamScript.append.utf8)])
        guard case .string(let sha) = reply else {
            throw HeraldError(.storageUnavailable, "Redis at \(redis.host):\(redis.port) did not load the append script: \(reply)")
        }
        return String(decoding: sha, as: UTF8.self)
    }

    /// Turns Unix nanoseconds into the loop's monotonic clock, as of now.
    private static func loopTimeConverter() -> (UInt64) -> UInt64 {
        let unix = unixNanos()
        let monotonic = monotonicNanos()
        return { accepted in
            let age = unix > accepted ? unix - accepted : 0
            return monotonic > age ? monotonic - age : 0
        }
    }

    static func unixNanos() -> UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
    }

    static func monotonicNanos() -> UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
    }
}

/// A closure run on a new pthread.
private final class ThreadBody {
    let run: () -> Void
    init(_ run: @escaping () -> Void) { self.run = run }
}

/// A mutex and a condition: the broker's threads wait here for work or for a backoff.
final class ThreadSignal: @unchecked Sendable {
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let condition = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)

    init() {
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(condition, nil)
    }

    deinit {
        pthread_mutex_destroy(mutex)
        pthread_cond_destroy(condition)
        mutex.deallocate()
        condition.deallocate()
    }

    func lock() { pthread_mutex_lock(mutex) }
    func unlock() { pthread_mutex_unlock(mutex) }
    func signal() { pthread_cond_broadcast(condition) }
    /// Waits (the mutex held) until signalled.
    func wait() { pthread_cond_wait(condition, mutex) }
    /// Waits (the mutex held) until signalled or `milliseconds` passed.
    func wait(milliseconds: Int) {
        var deadline = timespec()
        clock_gettime(CLOCK_REALTIME, &deadline)
        let nanos = Int(deadline.tv_nsec) + milliseconds * 1_000_000
        deadline.tv_sec += nanos / 1_000_000_000
        deadline.tv_nsec = nanos % 1_000_000_000
        pthread_cond_timedwait(condition, mutex, &deadline)
    }
}
