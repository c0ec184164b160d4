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
    public private(set) var recoveryNotes: [String] = []
    /// Events recovered on open and restart time (for the closing figures).
    public private(set) var recoveredCount = 0

    private let directory: String
    private let settings: HeraldConfig.Storage
    private let maxPayload: Int
    private var segments: [Segment] = []
    private var cache: History
    private var recent: [Event] = []
    private let writer: LogWriter
    /// Monotonic minus wall-clock nanoseconds at open: turns stored times into loop times.
    private let clockOffset: Int64

    /// Opens (or creates) the log in `settings.path` and starts its writer.
    /// - Parameters:
    ///   - maxEventBytes: the largest event the gateway accepts (a longer record is corrupt).
    ///   - onDurable: called on the writer thread with the last durable position.
    ///   - onFailure: called on the writer thread once, when writing fails.
    public init(
        settings: HeraldConfig.Storage, history: HistoryLimits, maxEventBytes: Int,
        onDurable: @escaping @Sendable (UInt64) -> Void, onFailure: @escaping @Sendable (String) -> Void
    ) throws(HeraldError) {
        guard let path = settings.path else { throw HeraldError(.invalidConfig, "storage.path is not set") }
        directory = path
        self.settings = settings
        let maxPayload = maxEventBytes + 64 * 1024
        self.maxPayload = maxPayload
        var notes: [String] = []
        cache = History(limits: history)
        clockOffset = Int64(bitPattern: Files.monotonicNanos()) &- Int64(bitPattern: Files.unixNanos())
        try Files.makeDirectory(path)

        let names = try Files.list(path)
        let segmentNames = names.filter { $0.hasSuffix(".log") && UInt64($0.dropLast(4)) != nil }
            .sorted { UInt64($0.dropLast(4))! < UInt64($1.dropLast(4))! }
        let epochPath = path + "/epoch"
        if let text = try Files.read(epochPath) {
            guard let epoch = StreamEpoch(String(decoding: text, as: UTF8.self).trimmingSpaces().filter { $0 != "\n" })
            else { throw HeraldError(.storageUnavailable, "\(epochPath) does not hold an epoch") }
            self.epoch = epoch
        } else if segmentNames.isEmpty {
            epoch = .random()
            try Files.writeDurably(Array((epoch.text + "\n").utf8), to: epochPath, directory: path)
        } else {
            throw HeraldError(.storageUnavailable, "\(path) holds segments but no epoch file: not opening a log whose epoch is lost")
        }

        var loaded: [Segment] = []
        var expected: UInt64?
        var cut = false
        for name in segmentNames {
            let segmentPath = path + "/" + name
            let first = UInt64(name.dropLast(4))!
            if cut || (expected != nil && first != expected) {
                try Files.remove(segmentPath)
                notes.append("deleted \(name): it follows a cut or a hole in the log")
                cut = true
                continue
            }
            var segment = Segment(firstSeq: first, path: segmentPath)
            let bytes = try Files.read(segmentPath) ?? []
            var offset = 0
            bytes.withUnsafeBytes { raw in
                while offset < raw.count {
                    let rest = UnsafeRawBufferPointer(rebasing: raw[offset...])
                    guard let length = LogRecord.validLength(rest, maxPayload: maxPayload) else { break }
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
                try Files.truncate(segmentPath, to: offset)
                notes.append(
                    "cut \(name) at byte \(offset) of \(bytes.count): a torn or corrupt record after seq \(segment.lastSeq.map(String.init) ?? "none")"
                )
                cut = true
            }
            expected = first + UInt64(segment.offsets.count)
            loaded.append(segment)
        }
        let lastSegment = loaded.last
        nextPosition = max(lastSegment.map { $0.firstSeq + UInt64($0.offsets.count) } ?? 1, 1)
        if lastSegment == nil {
            loaded.append(Segment(firstSeq: 1, path: Self.segmentPath(path, first: 1)))
        }
        segments = loaded
        recoveredCount = loaded.reduce(0) { $0 + $1.offsets.count }
        recoveryNotes = notes

        writer = try LogWriter(
            directory: path, activePath: loaded[loaded.count - 1].path, fsync: settings.fsync,
            batchWindowMilliseconds: settings.batchWindowMilliseconds, onDurable: onDurable, onFailure: onFailure)
        loadRecent()
        writer.start()
    }

    deinit { close() }

    /// Writes what was appended and stops the writer (on shutdown).
    public func close() {
        writer.stop()
        for i in segments.indices where segments[i].readHandle >= 0 {
            Glibc.close(segments[i].readHandle)
            segments[i].readHandle = -1
        }
    }

    static func segmentPath(_ directory: String, first: UInt64) -> String {
        let digits = String(first)
        return directory + "/" + String(repeating: "0", count: max(0, 20 - digits.count)) + digits + ".log"
    }

    // MARK: - EventLog

    public var oldestPosition: UInt64? { segments.first { !$0.offsets.isEmpty }?.firstSeq }
    public var retainedCount: Int { segments.reduce(0) { $0 + $1.offsets.count } }
    public var retainedBytes: Int { segments.reduce(0) { $0 + $1.size } }

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
            LogRecord.validLength(UnsafeRawBufferPointer(buffer), maxPayload: maxPayload) == end - start
        else { return nil }
        let fields = LogRecord.fields(UnsafeRawBufferPointer(buffer))
        return fields.event(epoch: epoch, acceptedAt: loopTime(fields.unixNanos))
    }

    private func loopTime(_ unixNanos: UInt64) -> UInt64 {
        let value = Int64(bitPattern: unixNanos) &+ clockOffset
        return value > 0 ? UInt64(value) : 0
    }

    /// Fills the cache with the newest events history allows (they are what a restarted
    /// gateway's clients resume from first) and keeps them for `recover()`.
    private func loadRecent() {
        guard cache.limits.maxEvents > 0 else { return }
        var loaded: [Event] = []
        var bytes = 0
        var position = nextPosition
        while position > 1, loaded.count < cache.limits.maxEvents {
            position -= 1
            guard let i = segmentIndex(holding: position), let event = read(position, in: i) else { break }
            bytes += event.byteCount
            if bytes > cache.limits.maxBytes { break }
            loaded.append(event)
        }
        loaded.reverse()
        let now = Files.monotonicNanos()
        for event in loaded { cache.append(event, now: now) }
        recent = loaded
    }
}
