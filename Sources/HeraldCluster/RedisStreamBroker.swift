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
/// Threads: a writer (its own connection; submissions queued under a lock, pipelined to
/// Redis, answered through `Callbacks.sequenced`), a reader (its own connection; events
/// through `Callbacks.received`), and reads of older events on the caller's thread (a
/// third connection, `event(at:)`). A lost connection is retried with backoff (50 ms up to
/// 2 s); meanwhile submissions fail at once and `Callbacks.health` says why, and the reader
/// continues from the last id it read: nothing lost, nothing twice.
///
/// - Note: `@unchecked Sendable`: the queue and flags are guarded by `signal`'s mutex, the
///   read position by a `Mutex`; each connection is owned by one thread.
public final class RedisStreamBroker: EventBroker, @unchecked Sendable {
    /// Where the broker's news goes (a loop's inbox).
    public struct Callbacks: Sendable {
        /// The answer to a submission, in submission order.
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
    /// The stream's epoch and last position when this node joined: its log starts there.
    public let joinedEpoch: StreamEpoch
    public let joinedPosition: UInt64

    private let keys: StreamScript.Keys
    private let maxLength: Int
    private let dedupSeconds: Int
    private let callbacks: Callbacks
    private let scriptSHA: String

    private let signal = ThreadSignal()
    private var queue: [Submission] = []
    private var stopping = false
    private var threads: [pthread_t] = []
    /// The epoch and last position the reader has read (the script checks Redis is not
    /// behind it).
    private let readThrough: Mutex<(epoch: StreamEpoch, seq: UInt64)>
    private let healthState = Mutex<(writer: String?, reader: String?, reported: String?)>((nil, nil, nil))

    /// Reads of older events (`event(at:)`), on the loop thread.
    private var reads: RedisConnection?
    private var readChunk: [Event] = []

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
    }

    deinit { stop() }

    /// The newest `count` events of the stream in the joined epoch, oldest first (a node
    /// fills its history with them before it serves).
    public func recentEvents(count: Int) throws(HeraldError) -> [Event] {
        guard count > 0, joinedPosition > 0 else { return [] }
        let first = joinedPosition > UInt64(count) ? joinedPosition - UInt64(count) + 1 : 1
        var events: [Event] = []
        var next = first
        while next <= joinedPosition {
            let chunk = try range(from: next, through: joinedPosition, count: 1000)
            guard let last = chunk.last else { break }
            events += chunk.filter { $0.seq <= joinedPosition }
            next = last.seq + 1
        }
        return events
    }

    /// The event at `position` in the joined epoch's numbering, read from the stream (nil
    /// when trimmed away, of another epoch, or Redis cannot be reached). Called on the loop
    /// thread for resumes older than its history; reads ahead 256 events per round trip.
    public func event(at position: UInt64) -> Event? {
        if let first = readChunk.first, position >= first.seq, let hit = readChunk.first(where: { $0.seq == position }) {
            return hit
        }
        do throws(HeraldError) {
            readChunk = try range(from: position, through: nil, count: 256)
        } catch {
            readChunk = []
            return nil
        }
        return readChunk.first { $0.seq == position }
    }

    /// Events from `first` (through `last`), at most `count`, in the current epoch.
    private func range(from first: UInt64, through last: UInt64?, count: Int) throws(HeraldError) -> [Event] {
        if reads == nil { reads = try RedisConnection(host: address.host, port: address.port, timeout: .seconds(1)) }
        guard let reads else { return [] }
        let reply = try reads.command([
            Array("XRANGE".utf8), keys.stream, Array("\(first)-0".utf8), Array((last.map { "\($0)-0" } ?? "+").utf8),
            Array("COUNT".utf8), Array(String(count).utf8),
        ])
        guard case .array(let entries) = reply else { return [] }
        let epoch = readThrough.withLock { $0.epoch }
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

    public func submit(_ submission: Submission) {
        signal.lock()
        queue.append(submission)
        signal.signal()
        signal.unlock()
    }

    /// Answers what was submitted, then ends both threads (the reader within its 500 ms
    /// block).
    public func stop() {
        signal.lock()
        stopping = true
        signal.signal()
        signal.unlock()
        for thread in threads { pthread_join(thread, nil) }
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
        while true {
            signal.lock()
            if queue.isEmpty && !stopping {
                // Disconnected: try again after the backoff even if nothing is submitted,
                // so that the node is ready again as soon as Redis is.
                if redis == nil { signal.wait(milliseconds: backoff) } else { signal.wait() }
            }
            let batch = queue
            queue.removeAll(keepingCapacity: true)
            let stop = stopping
            signal.unlock()
            if stop && batch.isEmpty { return }
            if redis == nil {
                do throws(HeraldError) {
                    redis = try connectWriter()
                    backoff = Self.minBackoffMilliseconds
                    report(.writer, nil)
                } catch {
                    report(.writer, error.message)
                    backoff = min(backoff * 2, Self.maxBackoffMilliseconds)
                    for submission in batch { callbacks.sequenced(submission.ticket, .failed(error.message)) }
                    continue
                }
            }
            guard !batch.isEmpty, let connection = redis else { continue }
            do throws(HeraldError) {
                try append(batch, on: connection)
            } catch {
                redis = nil
                report(.writer, error.message)
                for submission in batch { callbacks.sequenced(submission.ticket, .failed(error.message)) }
            }
        }
    }

    private func connectWriter() throws(HeraldError) -> RedisConnection {
        let redis = try RedisConnection(host: address.host, port: address.port)
        _ = try Self.loadScript(redis)  // a restarted Redis has forgotten it
        return redis
    }

    /// Appends each submission with the script, all in one pipeline, and answers each.
    private func append(_ batch: [Submission], on redis: RedisConnection) throws(HeraldError) {
        let seen = readThrough.withLock { $0 }
        let now = Self.unixNanos()
        let commands = batch.map {
            StreamScript.arguments(
                sha: scriptSHA, keys: keys, maxLength: maxLength, dedupSeconds: dedupSeconds, freshEpoch: .random(),
                seen: (seen.epoch, seen.seq), acceptedAtUnixNanos: now, events: $0.events)
        }
        var replies = try redis.pipeline(commands)
        for (index, submission) in batch.enumerated() {
            if case .error(let message) = replies[index], message.hasPrefix("NOSCRIPT") {
                _ = try Self.loadScript(redis)
                replies[index] = try redis.command(commands[index])
            }
            if let (_, accepted) = StreamScript.acceptances(replies[index], events: submission.events) {
                callbacks.sequenced(submission.ticket, .accepted(accepted))
            } else {
                let reason = "Redis at \(address.host):\(address.port) refused the append: \(replies[index])"
                callbacks.sequenced(submission.ticket, .failed(reason))
            }
        }
    }

    private func runReader() {
        var redis: RedisConnection?
        var backoff = Self.minBackoffMilliseconds
        var cursor = ReadCursor(epoch: joinedEpoch, after: "\(joinedPosition)-0", lastSeq: joinedPosition)
        while !isStopping {
            do throws(HeraldError) {
                if redis == nil {
                    let connection = try RedisConnection(host: address.host, port: address.port)
                    try cursor.check(epochKey: connection.command([Array("GET".utf8), keys.epoch]))
                    redis = connection
                    backoff = Self.minBackoffMilliseconds
                    report(.reader, nil)
                }
                guard let connection = redis else { continue }
                let reply = try connection.command([
                    Array("XREAD".utf8), Array("COUNT".utf8), Array("1000".utf8), Array("BLOCK".utf8), Array("500".utf8),
                    Array("STREAMS".utf8), keys.stream, Array(cursor.after.utf8),
                ])
                guard case .array(let streams) = reply, case .array(let stream)? = streams.first, stream.count == 2,
                    case .array(let entries) = stream[1]
                else {
                    // Nothing new for 500 ms: a stream that was lost and begun again
                    // under a new epoch is only seen by its epoch key.
                    try cursor.check(epochKey: connection.command([Array("GET".utf8), keys.epoch]))
                    continue
                }
                let loopTime = Self.loopTimeConverter()
                var run: [Event] = []
                for entry in entries {
                    guard let (entryEpoch, event) = StreamScript.event(entry, loopTime: loopTime) else { continue }
                    let verdict = cursor.read(entryEpoch, seq: event.seq)
                    if verdict == .restart { break }
                    if verdict == .keep { run.append(event) }
                }
                if !run.isEmpty { callbacks.received(run, cursor.epoch) }
                readThrough.withLock { $0 = (cursor.epoch, cursor.lastSeq) }
            } catch {
                redis = nil
                report(.reader, error.message)
                signal.lock()
                if !stopping { signal.wait(milliseconds: backoff) }
                signal.unlock()
                backoff = min(backoff * 2, Self.maxBackoffMilliseconds)
            }
        }
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
