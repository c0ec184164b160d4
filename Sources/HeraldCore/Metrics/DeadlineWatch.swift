/// Whether a route is on time, from its share of missed deadlines against
/// `delivery.deadlineMissBudget`: red when it burned the budget over the last minute,
/// amber when over the last 10 s only (it is burning now), green otherwise. A window needs
/// at least `minimumMisses` misses to count as burning: one late delivery on a quiet
/// route is a share of 100 %, not a late route.
public enum DeadlineState: String, Sendable {
    case green, amber, red

    public static let minimumMisses: UInt64 = 5

    public init(last10s: StatsWindow.Timeliness?, last60s: StatsWindow.Timeliness?, budget: Double) {
        func burning(_ window: StatsWindow.Timeliness?) -> Bool {
            guard let window, window.missed >= Self.minimumMisses, let ratio = window.missedRatio else { return false }
            return ratio > budget
        }
        if burning(last60s) {
            self = .red
        } else if burning(last10s) {
            self = .amber
        } else {
            self = .green
        }
    }
}

/// Decides when a route's change of `DeadlineState` is logged: a change is reported at
/// once, then the route keeps quiet for `quietPeriod` — a route flapping around its budget
/// logs at most once per period, and what it settled on is reported when the period ends.
///
/// A state machine fed the states of every route each time they are evaluated; it
/// returns the changes to log and does nothing else.
public struct DeadlineWatch: Sendable {
    /// A route's state differs from the one last reported.
    public struct Change: Sendable, Equatable {
        public var route: Int
        public var from: DeadlineState
        public var to: DeadlineState

        public init(route: Int, from: DeadlineState, to: DeadlineState) {
            self.route = route
            self.from = from
            self.to = to
        }
    }

    public static let quietPeriod: UInt64 = 10_000_000_000

    private var reported: [DeadlineState]
    private var reportedAt: [UInt64?]

    /// Every route starts green, as nothing was late before the gateway started.
    public init(routes: Int) {
        reported = Array(repeating: .green, count: routes)
        reportedAt = Array(repeating: nil, count: routes)
    }

    /// The changes to report now, given each route's current state.
    public mutating func observe(_ states: [DeadlineState], now: UInt64) -> [Change] {
        var changes: [Change] = []
        for (route, state) in states.enumerated() where reported.indices.contains(route) && state != reported[route] {
            if let at = reportedAt[route], now &- at < Self.quietPeriod { continue }
            changes.append(Change(route: route, from: reported[route], to: state))
            reported[route] = state
            reportedAt[route] = now
        }
        return changes
    }
}
