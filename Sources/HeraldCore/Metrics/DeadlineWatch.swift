/// Whether a route is on time, from its share of missed deadlines against
/// `delivery.deadlineMissBudget`: red when it burned the budget over the last minute,
/// amber when over the last 10 s only (it is burning now), green otherwise.
public enum DeadlineState: String, Sendable {
    case green, amber, red

    public init(last10s: Double?, last60s: Double?, budget: Double) {
        if let last60s, last60s > budget {
            self = .red
        } else if let last10s, last10s > budget {
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
