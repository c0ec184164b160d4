import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The servers' resident memory sampled every `interval` on a thread of its own, keeping
/// the peak: what a storm costs is a transient (thousands of connections opening while
/// thousands close, their replays queued), which samples before and after the run miss.
final class MemorySampler: Sendable {
    private let pids: [Int32]
    private let intervalMicroseconds: UInt32
    private let peak = Atomic<Int>(0)
    private let samples = Atomic<Int>(0)
    private let running = Atomic<Bool>(true)

    init(pids: [Int32], intervalMilliseconds: Int = 50) {
        self.pids = pids
        intervalMicroseconds = UInt32(intervalMilliseconds * 1000)
    }

    /// Samples until `stop`; run it on a thread of its own.
    func run() {
        while running.load(ordering: .relaxed) {
            let resident = ProcessSample.residentKB(of: pids)
            if resident > peak.load(ordering: .relaxed) { peak.store(resident, ordering: .relaxed) }
            samples.add(1, ordering: .relaxed)
            usleep(intervalMicroseconds)
        }
    }

    func stop() { running.store(false, ordering: .relaxed) }

    /// The highest sum of VmRSS seen, in KiB, and how many samples were taken.
    var peakKB: Int { peak.load(ordering: .relaxed) }
    var sampleCount: Int { samples.load(ordering: .relaxed) }
}
