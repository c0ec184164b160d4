import Synchronization

/// What the threads of a run share: counts the coordinating thread watches, and the
/// first few failures, said as they happened.
final class LoadCounters: Sendable {
    let ready = Atomic<Int>(0)
    let failed = Atomic<Int>(0)
    let received = Atomic<Int>(0)
    let gaps = Atomic<Int>(0)
    let stop = Atomic<Bool>(false)
    /// When publishing started (monotonic ns; 0 before): a storm starts from it.
    let publishingSince = Atomic<UInt64>(0)
    /// Storm clients not caught up yet, and subscribers waiting to come back after a drop
    /// or a refusal.
    let stormPending = Atomic<Int>(0)
    let away = Atomic<Int>(0)
    private let failureSamples = Mutex<[String]>([])

    func fail(_ text: String) {
        failed.add(1, ordering: .relaxed)
        failureSamples.withLock { if $0.count < 5 { $0.append(text) } }
    }

    var failures: [String] { failureSamples.withLock { $0 } }
}
