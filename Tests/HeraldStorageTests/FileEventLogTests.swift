import HeraldCore
import HeraldStorage
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The durable log on a real directory: appends reported durable by the writer thread,
/// reopening continues the sequence and epoch, a torn or corrupt tail is cut and never
/// read, segments roll and retire, resume reads beyond the in-memory cache.
@Suite struct FileEventLogTests {
    /// A fresh directory under /tmp, removed by `cleanup`.
    final class Directory {
        let path: String
        init() {
            var template = Array("/tmp/herald-log-test-XXXXXX".utf8CString)
            path = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)!) }
        }
        var logPath: String { path + "/log" }
        func files() -> [String] {
            guard let dir = opendir(logPath) else { return [] }
            defer { closedir(dir) }
            var names: [String] = []
            while let entry = readdir(dir) {
                let name = withUnsafePointer(to: entry.pointee.d_name) {
                    $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
                }
                if name.hasSuffix(".log") { names.append(name) }
            }
            return names.sorted()
        }
        func cleanup() {
            for name in files() { unlink(logPath + "/" + name) }
            unlink(logPath + "/epoch")
            unlink(logPath + "/lock")
            rmdir(logPath)
            rmdir(path)
        }
    }

    /// What the writer thread reported.
    final class Reports: Sendable {
        let durable = Atomic<UInt64>(0)
        let failures = Mutex<[String]>([])
        func wait(for position: UInt64) -> Bool {
            for _ in 0..<500 {
                if durable.load(ordering: .acquiring) >= position { return true }
                usleep(10_000)
            }
            return false
        }
    }

    func open(
        _ directory: Directory, _ reports: Reports, fsync: HeraldConfig.Storage.Fsync = .always, segmentBytes: Int = 64 << 20,
        maxBytes: Int = 1 << 30, maxAgeSeconds: Int = 7 * 86400, history: HistoryLimits = HistoryLimits()
    ) throws -> FileEventLog {
        var settings = HeraldConfig.Storage()
        settings.path = directory.logPath
        settings.fsync = fsync
        settings.segmentBytes = segmentBytes
        settings.maxBytes = maxBytes
        settings.maxAgeSeconds = maxAgeSeconds
        return try FileEventLog(
            settings: settings, history: history,
            onDurable: { position in reports.durable.store(position, ordering: .releasing) },
            onFailure: { reason in reports.failures.withLock { $0.append(reason) } })
    }

    func event(_ log: FileEventLog, _ n: Int, padding: Int = 0, id: String? = nil, ageSeconds: UInt64 = 0) -> Event {
        let json = Array(#"{"type":"t","n":\#(n),"pad":"\#(String(repeating: "x", count: padding))"}"#.utf8)
        return json.withUnsafeBytes {
            Event(
                epoch: log.epoch, seq: log.nextPosition, id: id ?? "id-\(n)", source: "src", type: "t",
                acceptedAt: now() - ageSeconds * 1_000_000_000, json: $0)
        }
    }

    /// The loop's clock (monotonic ns): events accepted now.
    func now() -> UInt64 {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return UInt64(time.tv_sec) * 1_000_000_000 + UInt64(time.tv_nsec)
    }

    /// Writes `count` events and closes the log.
    func fill(_ directory: Directory, _ count: Int, fsync: HeraldConfig.Storage.Fsync = .always, segmentBytes: Int = 64 << 20) throws {
        let reports = Reports()
        let log = try open(directory, reports, fsync: fsync, segmentBytes: segmentBytes)
        for n in 1...count { _ = log.append(event(log, n, padding: 1000), now: 1) }
        #expect(reports.wait(for: log.nextPosition - 1))
        log.close()
    }

    func flipByte(_ path: String, at offset: Int) {
        let fd = Glibc.open(path, O_RDWR)
        var byte: UInt8 = 0
        pread(fd, &byte, 1, off_t(offset))
        byte ^= 0x10
        pwrite(fd, &byte, 1, off_t(offset))
        close(fd)
    }

    @Test func damageBeforeTheTailOrAHoleRefusesToStart() throws {
        let directory = Directory()
        defer { directory.cleanup() }
        try fill(directory, 200, segmentBytes: 64 << 10)
        let files = directory.files()
        #expect(files.count > 2)
        flipByte(directory.logPath + "/" + files[0], at: 500)
        #expect { try open(directory, Reports()) } throws: { error in
            (error as? HeraldError)?.code == .storageUnavailable && "\(error)".contains("before the log's tail")
        }
        #expect(directory.files() == files, "nothing deleted or cut")
        flipByte(directory.logPath + "/" + files[0], at: 500)  // repaired
        unlink(directory.logPath + "/" + files[1])
        #expect { try open(directory, Reports()) } throws: { error in "\(error)".contains("are missing") }
    }

    @Test func oneProcessPerLog() throws {
        let directory = Directory()
        defer { directory.cleanup() }
        let first = try open(directory, Reports())
        #expect { try open(directory, Reports()) } throws: { error in "\(error)".contains("another process uses the event log") }
        first.close()
        let second = try open(directory, Reports())
        second.close()
    }

    @Test func aCutUnderFsyncNeverOrLostSegmentsStartANewEpoch() throws {
        let directory = Directory()
        defer { directory.cleanup() }
        try fill(directory, 10, fsync: .never)
        let before = try open(directory, Reports(), fsync: .never)
        let epoch = before.epoch
        before.close()
        let segment = directory.logPath + "/" + directory.files()[0]
        truncate(segment, 3000)
        let after = try open(directory, Reports(), fsync: .never)
        #expect(after.epoch != epoch && after.nextPosition < 11, "\(after.recoveryNotes)")
        let cutEpoch = after.epoch
        after.close()
        for name in directory.files() { unlink(directory.logPath + "/" + name) }
        let empty = try open(directory, Reports(), fsync: .never)
        defer { empty.close() }
        #expect(empty.epoch != cutEpoch && empty.nextPosition == 1)
    }

    @Test func aLongIDAndOtherFilesDoNotCutTheLog() throws {
        let directory = Directory()
        defer { directory.cleanup() }
        let reports = Reports()
        let log = try open(directory, reports)
        _ = log.append(event(log, 1, id: String(repeating: "A", count: 300_000)), now: 1)
        _ = log.append(event(log, 2), now: 1)
        #expect(reports.wait(for: 2))
        log.close()
        let stray = directory.logPath + "/1.log"
        let fd = Glibc.open(stray, O_WRONLY | O_CREAT, 0o644)
        close(fd)
        defer { unlink(stray) }
        let again = try open(directory, Reports())
        defer { again.close() }
        #expect(again.nextPosition == 3 && again.recoveryNotes.isEmpty && again.event(at: 1)?.id.count == 300_000)
    }

    @Test(arguments: [HeraldConfig.Storage.Fsync.always, .batch, .never])
    func appendsBecomeDurableAndAReopenedLogContinues(fsync: HeraldConfig.Storage.Fsync) throws {
        let directory = Directory()
        defer { directory.cleanup() }
        let reports = Reports()
        let log = try open(directory, reports, fsync: fsync)
        let epoch = log.epoch
        #expect(log.nextPosition == 1 && log.oldestPosition == nil)
        for n in 1...50 { #expect(log.append(event(log, n), now: 1) == .pending) }
        #expect(reports.wait(for: 50))
        log.close()

        let again = try open(directory, Reports(), fsync: fsync, history: HistoryLimits(maxEvents: 10))
        defer { again.close() }
        #expect(again.epoch == epoch && again.nextPosition == 51 && again.oldestPosition == 1 && again.retainedCount == 50)
        #expect(again.recover().map(\.seq) == Array(1...50), "the dedup window's events, beyond what history caches")
        #expect(again.recover().isEmpty, "handed over once")
        let first = try #require(again.event(at: 1), "read back from the segment, beyond the cache")
        #expect(first.seq == 1 && first.id == "id-1" && first.source == "src" && first.jsonText == #"{"type":"t","n":1,"pad":""}"#)
        #expect(again.event(at: 51) == nil && again.recoveryNotes.isEmpty)
    }

    @Test(arguments: ["torn", "flipped", "garbage"])
    func aDamagedTailIsCutAndNeverRead(damage: String) throws {
        let directory = Directory()
        defer { directory.cleanup() }
        let reports = Reports()
        let log = try open(directory, reports)
        for n in 1...10 { _ = log.append(event(log, n), now: 1) }
        #expect(reports.wait(for: 10))
        log.close()
        let segment = directory.logPath + "/" + directory.files()[0]
        var info = stat()
        stat(segment, &info)
        let size = Int(info.st_size)
        let fd = Glibc.open(segment, O_RDWR)
        switch damage {
        case "torn": ftruncate(fd, off_t(size - 7))  // the last record loses its end
        case "flipped":
            var byte: UInt8 = 0
            pread(fd, &byte, 1, off_t(size - 3))
            byte ^= 0x10
            pwrite(fd, &byte, 1, off_t(size - 3))  // one bit of the last record's JSON
        default:
            let junk = [UInt8](repeating: 0xAB, count: 40)
            _ = junk.withUnsafeBytes { pwrite(fd, $0.baseAddress, 40, off_t(size)) }  // bytes after the last record
        }
        close(fd)

        let again = try open(directory, Reports())
        let kept = damage == "garbage" ? 10 : 9
        #expect(again.nextPosition == UInt64(kept + 1) && again.retainedCount == kept)
        #expect(again.recoveryNotes.count == 1 && again.recoveryNotes[0].hasPrefix("cut "), "\(again.recoveryNotes)")
        #expect(again.event(at: UInt64(kept))?.jsonText == #"{"type":"t","n":\#(kept),"pad":""}"#)
        #expect(again.event(at: UInt64(kept + 1)) == nil)
        again.close()
        // The next event takes the cut one's place, and survives another reopen.
        let reports2 = Reports()
        let third = try open(directory, reports2)
        #expect(third.append(event(third, 100), now: 1) == .pending && reports2.wait(for: UInt64(kept + 1)))
        third.close()
        let fourth = try open(directory, Reports())
        defer { fourth.close() }
        #expect(fourth.event(at: UInt64(kept + 1))?.id == "id-100" && fourth.recoveryNotes.isEmpty)
    }

    @Test func segmentsRollAndRetentionDeletesTheOldestWholeSegments() throws {
        let directory = Directory()
        defer { directory.cleanup() }
        let reports = Reports()
        let log = try open(directory, reports, segmentBytes: 64 << 10, maxBytes: 1 << 20, history: HistoryLimits(maxEvents: 5))
        for n in 1...600 { _ = log.append(event(log, n, padding: 2000), now: 1) }  // ~1.2 MB, ~20 segments
        #expect(reports.wait(for: 600))
        let segmentsBefore = directory.files().count
        #expect(segmentsBefore > 15)
        log.expire(now: 1)
        let oldest = try #require(log.oldestPosition)
        #expect(oldest > 1 && log.retainedBytes <= 1 << 20 && log.event(at: oldest - 1) == nil && log.event(at: oldest)?.seq == oldest)
        // The deletions run on the writer thread, after the appends.
        _ = log.append(event(log, 601), now: 1)
        #expect(reports.wait(for: 601))
        log.close()
        #expect(directory.files().count < segmentsBefore)
        let again = try open(directory, Reports())
        defer { again.close() }
        #expect(again.oldestPosition == oldest && again.nextPosition == 602 && again.recoveryNotes.isEmpty)
    }

    @Test func retentionByAgeDeletesSegmentsWhoseNewestEventIsTooOld() throws {
        let directory = Directory()
        defer { directory.cleanup() }
        let reports = Reports()
        let log = try open(directory, reports, segmentBytes: 64 << 10, maxAgeSeconds: 60, history: HistoryLimits(maxEvents: 5))
        // Three segments of events two minutes old, then one of events of now.
        for n in 1...90 { _ = log.append(event(log, n, padding: 2000, ageSeconds: 120), now: 1) }
        let firstFresh = log.nextPosition
        for n in 91...120 { _ = log.append(event(log, n, padding: 2000), now: 1) }
        #expect(reports.wait(for: 120))
        log.expire(now: 1)
        let oldest = try #require(log.oldestPosition)
        // Whole segments: the one holding the first fresh event stays, with its older events.
        #expect(oldest > 31 && oldest <= firstFresh && firstFresh - oldest < 31, "segments of old events only went")
        #expect(log.retainedCount == Int(121 - oldest) && log.event(at: oldest - 1) == nil && log.event(at: oldest) != nil)
        // Where old and fresh events share the segment being written, it stays whole.
        _ = log.append(event(log, 121, ageSeconds: 120), now: 1)
        log.expire(now: 1)
        #expect(log.oldestPosition == oldest)
        log.close()
    }

    @Test func segmentsWithoutTheirEpochAreRefused() throws {
        let directory = Directory()
        defer { directory.cleanup() }
        let reports = Reports()
        let log = try open(directory, reports)
        _ = log.append(event(log, 1), now: 1)
        #expect(reports.wait(for: 1))
        log.close()
        unlink(directory.logPath + "/epoch")
        #expect { try open(directory, Reports()) } throws: { ($0 as? HeraldError)?.code == .storageUnavailable }
    }

    @Test func aDirectoryThatCannotBeWrittenIsAClearError() {
        var settings = HeraldConfig.Storage()
        settings.path = "/proc/herald-cannot-be-here"
        #expect {
            try FileEventLog(settings: settings, history: HistoryLimits(), onDurable: { _ in }, onFailure: { _ in })
        } throws: { ($0 as? HeraldError)?.code == .storageUnavailable }
    }
}
