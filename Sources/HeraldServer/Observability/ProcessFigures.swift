import HeraldCore

#if canImport(Glibc)
import Glibc
#endif

/// The process figures Prometheus users expect of every exporter (`process_cpu_seconds_total`,
/// `process_resident_memory_bytes`, …), read from the kernel when `/metrics` is scraped.
///
/// Not through swift-metrics/swift-prometheus: Herald's figures are plain integers owned by
/// each loop thread and summed at scrape time, with no metric objects, locks or atomics on
/// the hot path; these few are read once per scrape, which needs no registry either.
struct ProcessFigures: Sendable {
    var cpuSeconds: Double
    var residentBytes: Int
    var virtualBytes: Int
    var openFileDescriptors: Int
    var maxFileDescriptors: Int
    var startTimeSeconds: Double

    /// When this process started, in seconds since the Unix epoch: the kernel's start
    /// time of the process (clock ticks since boot) placed on the wall clock through
    /// CLOCK_BOOTTIME — without /proc/stat, which a hardened unit (ProcSubset=pid) hides.
    static let startTime: Double = {
        guard let stat = readSmallFile("/proc/self/stat"), let close = stat.lastIndex(of: UInt8(ascii: ")")) else { return 0 }
        // Fields after "(comm)": state is field 3; starttime is field 22.
        let fields = stat[(close + 2)...].split(separator: UInt8(ascii: " "))
        guard fields.count > 19, let ticks = Double(String(decoding: fields[19], as: UTF8.self)) else { return 0 }
        func seconds(_ clock: clockid_t) -> Double {
            var now = timespec()
            clock_gettime(clock, &now)
            return Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
        }
        let sinceStart = seconds(CLOCK_BOOTTIME) - ticks / Double(sysconf(Int32(_SC_CLK_TCK)))
        return seconds(CLOCK_REALTIME) - sinceStart
    }()

    /// Reads them now.
    static func current() -> ProcessFigures {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        let cpu =
            Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) / 1e6 + Double(usage.ru_stime.tv_sec)
            + Double(usage.ru_stime.tv_usec) / 1e6
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        var pages: [Int] = []
        if let statm = readSmallFile("/proc/self/statm") {
            pages = statm.split(separator: UInt8(ascii: " ")).prefix(2).compactMap { Int(String(decoding: $0, as: UTF8.self)) }
        }
        var limit = rlimit()
        let maxFDs = getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 ? Int(clamping: limit.rlim_cur) : 0
        return ProcessFigures(
            cpuSeconds: cpu, residentBytes: pages.count == 2 ? pages[1] * page : 0, virtualBytes: pages.first.map { $0 * page } ?? 0,
            openFileDescriptors: openDescriptors(), maxFileDescriptors: maxFDs, startTimeSeconds: startTime)
    }

    /// Entries of /proc/self/fd, less the one the count itself opens.
    private static func openDescriptors() -> Int {
        guard let directory = opendir("/proc/self/fd") else { return 0 }
        defer { closedir(directory) }
        var count = 0
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { Array($0.prefix(2)) }
            if name[0] != UInt8(ascii: ".") { count += 1 }
        }
        return max(0, count - 1)
    }

    /// A /proc file's bytes (they have no size to stat: read until the end).
    private static func readSmallFile(_ path: String, limit: Int = 4096) -> [UInt8]? {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { return nil }
        defer { close(descriptor) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while bytes.count < limit {
            let count = chunk.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            if count <= 0 { break }
            bytes += chunk[..<count]
        }
        return bytes
    }
}

extension PrometheusText {
    /// The standard `process_*` families.
    mutating func process(_ figures: ProcessFigures) {
        family("process_cpu_seconds_total", type: "counter", help: "Total user and system CPU time spent in seconds.")
        sample("process_cpu_seconds_total", [], figures.cpuSeconds)
        family("process_resident_memory_bytes", type: "gauge", help: "Resident memory size in bytes.")
        sample("process_resident_memory_bytes", [], Double(figures.residentBytes))
        family("process_virtual_memory_bytes", type: "gauge", help: "Virtual memory size in bytes.")
        sample("process_virtual_memory_bytes", [], Double(figures.virtualBytes))
        family("process_open_fds", type: "gauge", help: "Number of open file descriptors.")
        sample("process_open_fds", [], Double(figures.openFileDescriptors))
        family("process_max_fds", type: "gauge", help: "Maximum number of open file descriptors.")
        sample("process_max_fds", [], Double(figures.maxFileDescriptors))
        family("process_start_time_seconds", type: "gauge", help: "Start time of the process since unix epoch in seconds.")
        sample("process_start_time_seconds", [], figures.startTimeSeconds)
    }
}
