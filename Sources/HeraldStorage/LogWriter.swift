import HeraldCore

#if canImport(Glibc)
import Glibc
#endif

/// The thread that writes and fsyncs the log, so that the loop never waits for a disk.
///
/// The loop submits commands in log order (append the records through seq N, start the
/// segment that begins at seq N, delete a retired segment); the writer takes what has
/// accumulated, writes it with one `write` per segment, fsyncs as `storage.fsync` says,
/// and reports the last durable position (`onDurable`), which the server posts to the
/// loop's inbox. Group commit falls out: whatever the loop submitted while the previous
/// fsync ran shares the next one. `always` fsyncs as soon as there is something to write.
/// `batch` adds a wait where it pays: when the last fsync took more than a quarter of
/// `batchWindow` (a disk where fsync is dear), appends that arrive within the window after
/// it wait for the window to end and share one fsync, bounding the fsync rate at the cost
/// of up to one window of acknowledgement latency; where fsync is cheap, waiting would only
/// add latency, so it behaves like `always`. An I/O error is
/// reported once (`onFailure`) and the writer stops: nothing later is written or
/// acknowledged.
final class LogWriter: @unchecked Sendable {
    enum Command {
        /// Records (encoded, back to back) ending with seq `through`.
        case append([UInt8], through: UInt64)
        /// Close the current segment; later records go to a new file at `path`.
        case roll(path: String)
        case delete(path: String)
    }

    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let condition = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private var commands: [Command] = []
    private var stopping = false
    private var thread: pthread_t?

    private let fsync: HeraldConfig.Storage.Fsync
    private let batchWindowNanos: UInt64
    private let directory: String
    private var file: Int32 = -1
    private var filePath: String
    private var failed = false
    /// When the last fsync finished and how long it took (monotonic ns), for `batch`.
    private var lastSync: UInt64 = 0
    private var lastSyncDuration: UInt64 = 0
    /// Bytes were written to `file` since its last fsync.
    private var unsynced = false
    private let onDurable: @Sendable (UInt64) -> Void
    private let onFailure: @Sendable (String) -> Void

    /// - Parameter activePath: the segment appends go to first (created if missing).
    init(
        directory: String, activePath: String, fsync: HeraldConfig.Storage.Fsync, batchWindowMilliseconds: Int,
        onDurable: @escaping @Sendable (UInt64) -> Void, onFailure: @escaping @Sendable (String) -> Void
    ) throws(HeraldError) {
        self.directory = directory
        self.filePath = activePath
        self.fsync = fsync
        self.batchWindowNanos = UInt64(batchWindowMilliseconds) * 1_000_000
        self.onDurable = onDurable
        self.onFailure = onFailure
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(condition, nil)
        file = open(activePath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard file >= 0 else { throw Files.error("cannot open", activePath) }
        try Files.syncDirectory(directory)
    }

    deinit {
        pthread_mutex_destroy(mutex)
        pthread_cond_destroy(condition)
        mutex.deallocate()
        condition.deallocate()
    }

    func start() {
        let box = Unmanaged.passRetained(self)
        var handle = pthread_t()
        let result = pthread_create(
            &handle, nil,
            { argument in
                let writer = Unmanaged<LogWriter>.fromOpaque(argument!).takeRetainedValue()
                writer.run()
                return nil
            }, box.toOpaque())
        precondition(result == 0, "could not start the log writer thread")
        thread = handle
    }

    func submit(_ command: Command) {
        pthread_mutex_lock(mutex)
        commands.append(command)
        pthread_cond_signal(condition)
        pthread_mutex_unlock(mutex)
    }

    /// Writes what was submitted, then ends the thread.
    func stop() {
        pthread_mutex_lock(mutex)
        stopping = true
        pthread_cond_signal(condition)
        pthread_mutex_unlock(mutex)
        if let thread { pthread_join(thread, nil) }
        thread = nil
        if file >= 0 { close(file) }
        file = -1
    }

    private func run() {
        while true {
            pthread_mutex_lock(mutex)
            while commands.isEmpty && !stopping { pthread_cond_wait(condition, mutex) }
            if commands.isEmpty && stopping {
                pthread_mutex_unlock(mutex)
                return
            }
            let sinceSync = Files.monotonicNanos() &- lastSync
            if fsync == .batch && lastSyncDuration > batchWindowNanos / 4 && sinceSync < batchWindowNanos && !stopping {
                pthread_mutex_unlock(mutex)
                var pause = timespec(tv_sec: 0, tv_nsec: Int(batchWindowNanos - sinceSync))
                nanosleep(&pause, nil)
                pthread_mutex_lock(mutex)
            }
            let batch = commands
            commands.removeAll(keepingCapacity: true)
            pthread_mutex_unlock(mutex)
            if !failed { process(batch) }
        }
    }

    private func process(_ batch: [Command]) {
        var pending: [UInt8] = []
        var through: UInt64 = 0
        do throws(HeraldError) {
            for command in batch {
                switch command {
                case .append(let bytes, let last):
                    pending.append(contentsOf: bytes)
                    through = last
                case .roll(let path):
                    try write(&pending)
                    try sync()
                    close(file)
                    file = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
                    filePath = path
                    guard file >= 0 else { throw Files.error("cannot create", path) }
                    try Files.syncDirectory(directory)
                case .delete(let path):
                    // A retired segment that cannot be deleted only costs space (it is
                    // read again, as older events, after a restart): not a write failure.
                    try? Files.remove(path)
                }
            }
            try write(&pending)
            try sync()
        } catch {
            failed = true
            onFailure(error.message)
            return
        }
        if through > 0 { onDurable(through) }
    }

    private func write(_ pending: inout [UInt8]) throws(HeraldError) {
        guard !pending.isEmpty else { return }
        let ok = pending.withUnsafeBytes { Files.writeAll(file, $0) }
        guard ok else { throw Files.error("cannot write", filePath) }
        pending.removeAll(keepingCapacity: true)
        unsynced = true
    }

    /// Fsyncs what was written to the current segment (nothing to do for a fresh one: the
    /// directory's fsync made its creation durable).
    private func sync() throws(HeraldError) {
        guard fsync != .never, unsynced else { return }
        let start = Files.monotonicNanos()
        guard fdatasync(file) == 0 else { throw Files.error("cannot fsync", filePath) }
        unsynced = false
        lastSync = Files.monotonicNanos()
        lastSyncDuration = lastSync &- start
    }
}
