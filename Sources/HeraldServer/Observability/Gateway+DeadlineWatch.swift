import HeraldCore
import Logging

extension Gateway {
    /// Once a second on the first loop: the whole gateway's route states (every loop's
    /// windows added up), and a log line for each route whose state changed — at most
    /// one per route per 10 s (`DeadlineWatch`). One question is out at a time; a loop
    /// that is slow to answer delays the next look, never stacks them.
    func watchDeadlines() {
        guard loops.index == 0, hub.metrics.timingEnabled, !watchingDeadlines else { return }
        watchingDeadlines = true
        withGatheredFigures(.windows) { gateway, figures in
            gateway.watchingDeadlines = false
            gateway.logDeadlineChanges(figures)
        }
    }

    private func logDeadlineChanges(_ figures: LoopFigures) {
        let changes = deadlineWatch.observe(deadlineStates(figures), now: MonotonicClock.nanoseconds())
        guard !changes.isEmpty, let minute = LoopFigures.windowSeconds.firstIndex(of: 60),
            let tenSeconds = LoopFigures.windowSeconds.firstIndex(of: 10), figures.windows.indices.contains(minute)
        else { return }
        for change in changes {
            let route = figures.metrics.routes[change.route]
            let name = route.name.isEmpty ? "(ad-hoc filters)" : route.name
            func share(_ window: Int) -> String {
                figures.windows[window].routes[change.route].missedRatio.map { "\(($0 * 100_000).rounded() / 1000) %" } ?? "none delivered"
            }
            logger.log(
                level: change.to == .green ? .info : .warning,
                "route \(name) is \(change.to.rawValue) (was \(change.from.rawValue)): missed deadlines against a budget of \(config.delivery.deadlineMissBudget * 100) %",
                metadata: [
                    "route": "\(name)", "state": "\(change.to.rawValue)", "previous": "\(change.from.rawValue)",
                    "deadlineMs": "\(route.live.deadline / 1_000_000)", "missed10s": "\(share(tenSeconds))",
                    "missed60s": "\(share(minute))",
                ])
        }
    }
}
