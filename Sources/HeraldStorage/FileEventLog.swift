public import HeraldCore

#if canImport(Glibc)
import Glibc
#endif

/// The durable event log (`storage.path`): segment files of CRC-checked records, written
/// and fsynced by a `LogWriter` thread, read back for resume and after a restart.
///
/// Why it exists: an acknowledged event must survive a crash, and a restart must continue
/// the sequence (same epoch, next seq) with history and the dedup window intact. The
/// loop appends (`append` returns `.pending`); the Hub delivers and acknowledges an event
/// only once the writer reports it durable through the loop's inbox.
///
/// Layout in `path`: `epoch` (the log's epoch, written once when the log is created) and
/// `<first seq, 20 digits>.log` segments. Each segment's seq → offset index is kept in
/// memory (4 bytes per record), rebuilt by reading the segments on open; a torn or
/// corrupt record ends the log there: it is cut, reported, and never delivered.
///
/// Owned by the loop thread, except the writer's side.
public final class FileEventLog: EventLog {
    /// One segment file: its first seq, where each record starts, its size.
    struct Segment {
        var firstSeq: UInt64
        var path: String
        var offsets: [UInt32] = []
        var size = 0
        /// Wall-clock time of its newest record (for retention by age).
        var newestUnixNanos: UInt64 = 0
        var readHandle: Int32 = -1
        var lastSeq: UInt64? { offsets.isEmpty ? nil : firstSeq + UInt64(offsets.count) - 1 }
    }

    public let epoch: StreamEpoch
    public private(set) var nextPosition: UInt64
    /// What opening found and did (a cut tail, deleted segments), for the server's log.
    public let recoveryNotes: [String]

    private let directory: String
    private let settings: HeraldConfig.Storage
    private let dedup: HeraldConfig.Dedup
    /// The held `flock` on `<path>/lock`: one process per log.
    private var lockHandle: Int32
    private var segments: [Segment]
    private var cache: History
    private var recent: [Event] = []
    private let writer: LogWriter
    /// Monotonic minus wall-clock nanoseconds at open: turns stored times into loop times.
    private let clockOffset: Int64

    /// Opens (or creates) the log in `settings.path` and starts its writer.
    ///
    /// Recovery: the directory is locked (one process per log); a torn or corrupt tail of
    /// the last segment is cut (it was never acknowledged: acks follow the writer's report);
    /// damage anywhere else, or a hole between segments, refuses to start — those records
    /// were acknowledged, so an operator decides. Under `fsync: never` a cut may drop
    /// events that were delivered, and without segments the positions cannot continue: in
    /// both cases the log takes a new epoch, so resuming clients get a `reset`.
    /// - Parameters:
    ///   - dedup: how far back `recover()` reaches (the Hub's dedup window).
    ///   - onDurable: called on the writer thread with the last durable position.
    ///   - onFailure: called on the writer thread once, when writing fails.
    public init(
        settings: HeraldConfig.Storage, history: HistoryLimits, dedup: HeraldConfig.Dedup = HeraldConfig.Dedup(),
        onDurable: @escaping @Sendable (UInt64) -> Void, onFailure: @escaping @Sendable (String) -> Void
    ) throws(HeraldError) {
        guard let path = settings.path else { throw HeraldError(.invalidConfig, "storage.path is not set") }
        directory = path
        self.settings = settings
        self.dedup = dedup
        cache = History(limits: history)
        clockOffset = Int64(bitPattern: Files.monotonicNanos()) &- Int64(bitPattern: Files.unixNanos())
        try Files.makeDirectory(path)
        let lock = try Files.lockExclusively(path + "/lock")
        lockHandle = lock
        do throws(HeraldError) {
            (epoch, segments, recoveryNotes) = try Self.recover(path, settings: settings)
            writer = try LogWriter(
                directory: path, activePath: segments[segments.count - 1].path, fsync: settings.fsync,
                batchWindowMilliseconds: settings.batchWindowMilliseconds, onDurable: onDurable, onFailure: onFailure)
        } catch {
            Glibc.close(lock)  // no `deinit` for a log that failed to open
            throw error
        }
        let last = segments[segments.count - 1]
        nextPosition = last.firstSeq + UInt64(last.offsets.count)
        retainedCount = segments.reduce(0) { $0 + $1.offsets.count }
        retainedBytes = segments.reduce(0) { $0 + $1.size }
        loadRecent()
        writer.start()
    }

    /// Reads the directory back: the epoch, the segments with their indexes, and notes on
    /// what was cut or changed (see `init`).
    private static func recover(
        _ path: String, settings: HeraldConfig.Storage
    ) throws(HeraldError) -> (StreamEpoch, [Segment], [String]) {
        var notes: [String] = []

        let segmentNames = try Files.list(path).filter(Self.isSegmentName).sorted()
        let epochPath = path + "/epoch"
        var epoch: StreamEpoch
        if let text = try Files.read(epochPath) {
            guard let stored = StreamEpoch(String(decoding: text, as: UTF8.self).trimmingSpaces().filter { $0 != "\n" })
            else { throw HeraldError(.storageUnavailable, "\(epochPath) does not hold an epoch") }
            epoch = stored
            if segmentNames.isEmpty {
                epoch = .random()
                try Files.writeDurably(Array((epoch.text + "\n").utf8), to: epochPath, directory: path)
                notes.append("no segments next to epoch \(stored.text): positions start again in the new epoch \(epoch.text)")
            }
        } else if segmentNames.isEmpty {
            epoch = .random()
            try Files.writeDurably(Array((epoch.text + "\n").utf8), to: epochPath, directory: path)
        } else {
            throw HeraldError(.storageUnavailable, "\(path) holds segments but no epoch file: not opening a log whose epoch is lost")
        }

        var loaded: [Segment] = []
        var cut = false
        for (index, name) in segmentNames.enumerated() {
            let segmentPath = path + "/" + name
            let first = UInt64(name.dropLast(4))!
            if let previous = loaded.last, first != previous.firstSeq + UInt64(previous.offsets.count) {
                throw HeraldError(
                    .storageUnavailable,
                    "\(path): \(name) does not follow \(previous.path) (events \(previous.firstSeq + UInt64(previous.offsets.count))–\(first - 1) are missing); refusing to start — move the damaged segments aside"
                )
            }
            var segment = Segment(firstSeq: first, path: segmentPath)
            let bytes = try Files.read(segmentPath) ?? []
            var offset = 0
            bytes.withUnsafeBytes { raw in
                while offset < raw.count {
                    let rest = UnsafeRawBufferPointer(rebasing: raw[offset...])
                    guard let length = LogRecord.validLength(rest) else { break }
                    let record = UnsafeRawBufferPointer(rebasing: rest[0..<length])
                    let seq = LogRecord.get64(record, LogRecord.headerBytes)
                    guard seq == first + UInt64(segment.offsets.count) else { break }
                    segment.offsets.append(UInt32(offset))
                    segment.newestUnixNanos = LogRecord.get64(record, LogRecord.headerBytes + 8)
                    offset += length
                }
            }
            segment.size = offset
            if offset < bytes.count {
                guard index == segmentNames.count - 1 else {
                    throw HeraldError(
                        .storageUnavailable,
                        "\(segmentPath) is damaged at byte \(offset) of \(bytes.count), before the log's tail: acknowledged events would be lost; refusing to start — move the damaged segments aside"
                    )
                }
                try Files.truncate(segmentPath, to: offset)
                notes.append(
                    "cut \(name) at byte \(offset) of \(bytes.count): a torn or corrupt record after seq \(segment.lastSeq.map(String.init) ?? "none")"
                )
                cut = true
            }
            loaded.append(segment)
        }
        if cut && settings.fsync == .never {
            let old = epoch
            epoch = .random()
            try Files.writeDurably(Array((epoch.text + "\n").utf8), to: epochPath, directory: path)
            notes.append("with fsync never a cut tail may have been delivered: new epoch \(epoch.text) (was \(old.text))")
        }
        if loaded.isEmpty { loaded.append(Segment(firstSeq: 1, path: segmentPath(path, first: 1))) }
        return (epoch, loaded, notes)
    }

    deinit { close() }

    /// Writes what was appended and stops the writer (on shutdown).
    public func follow(_ event: Event, now: UInt64) {
        preconditionFailure("a durable log is never clustered: the configuration refuses storage.path with cluster.redis")
    }

    public func follow(epoch: StreamEpoch) {
        preconditionFailure("a durable log is never clustered: the configuration refuses storage.path with cluster.redis")
    }

    public func close() {
        writer.stop()
        if lockHandle >= 0 { Glibc.close(lockHandle) }
        lockHandle = -1
        for i in segments.indices where segments[i].readHandle >= 0 {
            Glibc.close(segments[i].readHandle)
            segments[i].readHandle = -1
        }
    }

    /// `<first seq as exactly 20 digits>.log`; anything else in the directory is ignored.
    static func isSegmentName(_ name: String) -> Bool {
        name.utf8.count == 24 && name.hasSuffix(".log") && name.utf8.prefix(20).allSatisfy { (0x30...0x39).contains($0) }
            && !name.hasPrefix("00000000000000000000")  // seqs start at 1
    }

    static func segmentPath(_ directory: String, first: UInt64) -> String {
        let digits = String(first)
        return directory + "/" + String(repeating: "0", count: max(0, 20 - digits.count)) + digits + ".log"
    }

    // MARK: - EventLog

    public var oldestPosition: UInt64? { segments.first { !$0.offsets.isEmpty }?.firstSeq }
    public private(set) var retainedCount: Int
    public private(set) var retainedBytes: Int

    public func append(_ event: Event, now: UInt64) -> LogAppend {
        precondition(event.seq == nextPosition, "events are appended in sequence")
        let unixNanos = UInt64(bitPattern: Int64(bitPattern: event.acceptedAt) &- clockOffset)
        let record = LogRecord.encode(event, unixNanos: unixNanos)
        if segments[segments.count - 1].size + record.count > settings.segmentBytes && !segments[segments.count - 1].offsets.isEmpty {
            let next = Segment(firstSeq: event.seq, path: Self.segmentPath(directory, first: event.seq))
            segments.append(next)
            writer.submit(.roll(path: next.path))
        }
        let last = segments.count - 1
        segments[last].offsets.append(UInt32(segments[last].size))
        segments[last].size += record.count
        retainedCount += 1
        retainedBytes += record.count
        segments[last].newestUnixNanos = unixNanos
        writer.submit(.append(record, through: event.seq))
        cache.append(event, now: now)
        nextPosition += 1
        return .pending
    }

    public func event(at position: UInt64) -> Event? {
        if let cached = cache.event(seq: position) { return cached }
        guard let i = segmentIndex(holding: position) else { return nil }
        return read(position, in: i)
    }

    public func expire(now: UInt64) {
        cache.expire(now: now)
        let unixNow = Files.unixNanos()
        let maxAge = UInt64(settings.maxAgeSeconds) * 1_000_000_000
        while segments.count > 1 {
            let oldest = segments[0]
            let tooOld = unixNow > oldest.newestUnixNanos && unixNow - oldest.newestUnixNanos > maxAge
            guard retainedBytes > settings.maxBytes || tooOld else { break }
            if oldest.readHandle >= 0 { Glibc.close(oldest.readHandle) }
            segments.removeFirst()
            retainedCount -= oldest.offsets.count
            retainedBytes -= oldest.size
            writer.submit(.delete(path: oldest.path))
        }
    }

    public func recover() -> [Event] {
        defer { recent = [] }
        return recent
    }

    // MARK: - Reading

    private func segmentIndex(holding position: UInt64) -> Int? {
        var low = 0, high = segments.count - 1
        while low <= high {
            let mid = (low + high) / 2
            let segment = segments[mid]
            if position < segment.firstSeq {
                high = mid - 1
            } else if let last = segment.lastSeq, position <= last {
                return mid
            } else {
                low = mid + 1
            }
        }
        return nil
    }

    /// Reads one record back (resume beyond the in-memory cache). A record that no longer
    /// reads back whole is treated as gone.
    private func read(_ position: UInt64, in index: Int) -> Event? {
        if segments[index].readHandle < 0 {
            segments[index].readHandle = open(segments[index].path, O_RDONLY | O_CLOEXEC)
            guard segments[index].readHandle >= 0 else { return nil }
        }
        let segment = segments[index]
        let slot = Int(position - segment.firstSeq)
        let start = Int(segment.offsets[slot])
        let end = slot + 1 < segment.offsets.count ? Int(segment.offsets[slot + 1]) : segment.size
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: end - start, alignment: 8)
        defer { buffer.deallocate() }
        guard Files.readAll(segment.readHandle, into: buffer, at: start),
            LogRecord.validLength(UnsafeRawBufferPointer(buffer)) == end - start
        else { return nil }
        let fields = LogRecord.fields(UnsafeRawBufferPointer(buffer))
        return fields.event(epoch: epoch, acceptedAt: loopTime(fields.unixNanos))
    }

    private func loopTime(_ unixNanos: UInt64) -> UInt64 {
        let value = Int64(bitPattern: unixNanos) &+ clockOffset
        return value > 0 ? UInt64(value) : 0
    }

    /// Reads back from the newest event: into the cache what history allows (what a
    /// restarted gateway's clients resume from first), and for `recover()` what the dedup
    /// window still covers (by acceptance time and `dedup.maxEntries`).
    private func loadRecent() {
        var cached: [Event] = []
        var forDedup: [Event] = []
        var cachedBytes = 0
        var cacheFull = cache.limits.maxEvents == 0
        var dedupFull = dedup.windowSeconds == 0 || dedup.maxEntries == 0
        let oldestForDedup = Files.unixNanos() &- UInt64(dedup.windowSeconds) * 1_000_000_000
        var position = nextPosition
        while position > 1, !(cacheFull && dedupFull) {
            position -= 1
            guard let i = segmentIndex(holding: position), let event = read(position, in: i) else { break }
            if !cacheFull {
                cachedBytes += event.byteCount
                if cachedBytes > cache.limits.maxBytes { cacheFull = true } else { cached.append(event) }
                if cached.count >= cache.limits.maxEvents { cacheFull = true }
            }
            if !dedupFull {
                if unixTime(of: event) < oldestForDedup { dedupFull = true } else { forDedup.append(event) }
                if forDedup.count >= dedup.maxEntries { dedupFull = true }
            }
        }
        let now = Files.monotonicNanos()
        for event in cached.reversed() { cache.append(event, now: now) }
        recent = forDedup.reversed()
    }

    /// An event's acceptance time on the wall clock (the inverse of `loopTime`).
    private func unixTime(of event: Event) -> UInt64 {
        UInt64(bitPattern: Int64(bitPattern: event.acceptedAt) &- clockOffset)
    }
}
