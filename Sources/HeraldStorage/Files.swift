import HeraldCore

#if canImport(Glibc)
import Glibc
#endif

/// The few POSIX file operations the log needs, with errors as `HeraldError`s that say
/// which file and why.
enum Files {
    static func error(_ what: String, _ path: String) -> HeraldError {
        HeraldError(.storageUnavailable, "\(what) \(path): \(String(cString: strerror(errno)))")
    }

    /// Creates the directory unless it exists.
    static func makeDirectory(_ path: String) throws(HeraldError) {
        if mkdir(path, 0o755) != 0 && errno != EEXIST { throw error("cannot create the directory", path) }
        var info = stat()
        guard stat(path, &info) == 0, info.st_mode & S_IFMT == S_IFDIR else {
            throw HeraldError(.storageUnavailable, "\(path) is not a directory")
        }
    }

    /// Opens (creating) `path` and takes an exclusive `flock` on it, held until the
    /// returned descriptor is closed; a clear error when another process holds it.
    static func lockExclusively(_ path: String) throws(HeraldError) -> Int32 {
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw error("cannot open", path) }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            close(fd)
            throw HeraldError(.storageUnavailable, "another process uses the event log (\(path) is locked)")
        }
        return fd
    }

    /// The names in a directory.
    static func list(_ path: String) throws(HeraldError) -> [String] {
        guard let dir = opendir(path) else { throw error("cannot list", path) }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafePointer(to: entry.pointee.d_name) {
                $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    /// The whole file; nil when it does not exist.
    static func read(_ path: String) throws(HeraldError) -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 {
            if errno == ENOENT { return nil }
            throw error("cannot open", path)
        }
        defer { close(fd) }
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw error("cannot read", path)
            }
            if n == 0 { break }
            out.append(contentsOf: chunk[0..<n])
        }
        return out
    }

    /// Writes a small file atomically and durably: a temporary file, fsync, rename, fsync
    /// of the directory.
    static func writeDurably(_ bytes: [UInt8], to path: String, directory: String) throws(HeraldError) {
        let temporary = path + ".tmp"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw error("cannot create", temporary) }
        let written = bytes.withUnsafeBytes { writeAll(fd, $0) }
        let synced = fsync(fd) == 0
        close(fd)
        guard written, synced else { throw error("cannot write", temporary) }
        guard rename(temporary, path) == 0 else { throw error("cannot rename", temporary) }
        try syncDirectory(directory)
    }

    static func syncDirectory(_ path: String) throws(HeraldError) {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw error("cannot open", path) }
        defer { close(fd) }
        guard fsync(fd) == 0 else { throw error("cannot fsync", path) }
    }

    /// Writes every byte (retrying short writes and EINTR); false on an error (errno set).
    static func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let n = Glibc.write(fd, bytes.baseAddress! + offset, bytes.count - offset)
            if n < 0 {
                if errno == EINTR { continue }
                return false
            }
            offset += n
        }
        return true
    }

    /// Reads `count` bytes at `offset`; false when fewer could be read.
    static func readAll(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer, at offset: Int) -> Bool {
        var done = 0
        while done < buffer.count {
            let n = pread(fd, buffer.baseAddress! + done, buffer.count - done, off_t(offset + done))
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return false }
            done += n
        }
        return true
    }

    static func truncate(_ path: String, to length: Int) throws(HeraldError) {
        let fd = open(path, O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else { throw error("cannot open", path) }
        defer { close(fd) }
        guard ftruncate(fd, off_t(length)) == 0, fsync(fd) == 0 else { throw error("cannot truncate", path) }
    }

    static func remove(_ path: String) throws(HeraldError) {
        guard unlink(path) == 0 || errno == ENOENT else { throw error("cannot delete", path) }
    }

    /// Wall-clock nanoseconds since the Unix epoch.
    static func unixNanos() -> UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return UInt64(now.tv_sec) &* 1_000_000_000 &+ UInt64(now.tv_nsec)
    }

    /// Monotonic nanoseconds (the loop's clock).
    static func monotonicNanos() -> UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return UInt64(now.tv_sec) &* 1_000_000_000 &+ UInt64(now.tv_nsec)
    }
}
