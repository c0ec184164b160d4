import DequeModule

/// A set of indices into `GatewayMetrics.routes` (configured routes and the ad-hoc entry),
/// two machine words like a set of subscription slots; config allows at most
/// `HeraldConfig.maxRoutes` routes so that every index fits.
public typealias RouteSet = SubscriptionSet

/// Every figure the gateway counts on its hot path (DESIGN §9).
///
/// Owned and updated by the loop thread as plain integers — no atomics, no locks, no
/// metric handles per event — and read by the same thread when `/metrics` or `/v1/stats`
/// is served.
public struct GatewayMetrics: Sendable {
    /// Counters of one named route (or of ad-hoc filters, the route "").
    public struct Route: Sendable {
        public let name: String
        public var matched: UInt64 = 0
        public var delivered: UInt64 = 0
        public var dropped: UInt64 = 0
        /// Its live deliveries against its delivery deadline.
        public var live: DeadlineTally

        public init(name: String, deadline: UInt64 = 100_000_000) {
            self.name = name
            live = DeadlineTally(deadline: deadline)
        }
    }

    /// Time the hot path (delivery latency, match duration); counters are always kept.
    public var timingEnabled: Bool
    public var accepted: UInt64 = 0
    public var duplicates: UInt64 = 0
    /// Refused ingest requests by error code.
    public var rejected: [String: UInt64] = [:]
    /// Events offered for publishing that passed validation and permission, by publisher
    /// key name (`""`: a JWT), over HTTP or a WebSocket; before de-duplication and storage.
    public var ingestedByKey: [String: UInt64] = [:]
    /// Connections answered 503 by admission, by `reason` (total, address).
    public var connectionsRefused: [String: UInt64] = [:]
    /// Requests and messages refused by a rate limit, by `limit` label.
    public var rateLimited: [String: UInt64] = [:]
    public var ingestBytes: UInt64 = 0
    /// Live events written to clients, per transport.
    public var delivered = PerTransport<UInt64>(0)
    public var droppedOverflow: UInt64 = 0
    public var droppedCoalesced: UInt64 = 0
    public var disconnectedOverflow: UInt64 = 0
    public var expiredGaps: UInt64 = 0
    /// Resumes from another epoch (each answered with a `reset` gap).
    public var resetGaps: UInt64 = 0
    /// Times the durable log failed to store events (each stops ingest until a restart).
    public var storageFailures: UInt64 = 0
    /// Requests and publishes refused because the log could not store them.
    public var storageRefusals: UInt64 = 0
    /// SIGHUP reloads of the TLS certificate that took, and that were refused (counted
    /// by the first loop only: every loop reads the same files).
    public var certificateReloads: UInt64 = 0
    public var certificateReloadFailures: UInt64 = 0
    /// Events sent from history to resuming clients (not live deliveries: no latency).
    public var replayed = PerTransport<UInt64>(0)
    public var deliveryLatency = Histogram.latency()
    public var matchDuration = Histogram.matchDuration()
    /// One entry per configured route, then one for ad-hoc filters (name "").
    public var routes: [Route]
    /// Ingest answers (202) against `ingest.deadlineMs`: from the request's last byte to
    /// its answer, the log's commit (or the cluster's sequencing) included.
    public var ingestAnswers: DeadlineTally

    /// `deadlines`: one per route, then one for ad-hoc filters (`HeraldConfig.routeDeadlines`).
    public init(routeNames: [String], deadlines: [UInt64]? = nil, ingestDeadline: UInt64 = 100_000_000, timingEnabled: Bool = true) {
        self.timingEnabled = timingEnabled
        ingestAnswers = DeadlineTally(deadline: ingestDeadline)
        let names = routeNames + [""]
        let deadlines = deadlines ?? Array(repeating: 100_000_000, count: names.count)
        precondition(deadlines.count == names.count, "one deadline per route and one for ad-hoc filters")
        routes = zip(names, deadlines).map { Route(name: $0, deadline: $1) }
    }

    /// Index of the ad-hoc ("") route entry.
    public var adHocRoute: Int { routes.count - 1 }

    /// Adds another loop's figures: the gateway's are the sum over its loops (a route's
    /// `matched` counts an event on one loop only: `RouteTally`).
    public mutating func add(_ other: GatewayMetrics) {
        accepted += other.accepted
        ingestedByKey.merge(other.ingestedByKey, uniquingKeysWith: +)
        connectionsRefused.merge(other.connectionsRefused, uniquingKeysWith: +)
        rateLimited.merge(other.rateLimited, uniquingKeysWith: +)
        duplicates += other.duplicates
        rejected.merge(other.rejected, uniquingKeysWith: +)
        ingestBytes += other.ingestBytes
        delivered.add(other.delivered)
        droppedOverflow += other.droppedOverflow
        droppedCoalesced += other.droppedCoalesced
        disconnectedOverflow += other.disconnectedOverflow
        expiredGaps += other.expiredGaps
        resetGaps += other.resetGaps
        storageFailures += other.storageFailures
        storageRefusals += other.storageRefusals
        certificateReloads += other.certificateReloads
        certificateReloadFailures += other.certificateReloadFailures
        replayed.add(other.replayed)
        deliveryLatency.add(other.deliveryLatency)
        matchDuration.add(other.matchDuration)
        ingestAnswers.add(other.ingestAnswers)
        for (index, route) in other.routes.enumerated() where routes.indices.contains(index) {
            routes[index].matched += route.matched
            routes[index].delivered += route.delivered
            routes[index].dropped += route.dropped
            routes[index].live.add(route.live)
        }
    }

    public var deliveredTotal: UInt64 { delivered.sum }
    public var dropped: UInt64 { droppedOverflow + droppedCoalesced }
    public var rejectedTotal: UInt64 { rejected.values.reduce(0, +) }
}

/// Whatever has a deadline — a route's live deliveries, ingest answers — counted against
/// it: how many were on time, how many late and why, their latencies (the deadline among
/// the bucket bounds, so that the histogram says exactly how many were within it) and the
/// slowest since the last `StatsWindow` snapshot (a maximum cannot be subtracted, so each
/// snapshot keeps its interval's).
public struct DeadlineTally: Sendable {
    /// The deadline, in nanoseconds.
    public let deadline: UInt64
    public var met: UInt64 = 0
    /// Late, split by where the time went: waiting in the client's queue behind earlier
    /// events after the connection had a write since this one arrived (a slow client), or
    /// before the first write since (a busy gateway).
    public var missedSlowClient: UInt64 = 0
    public var missedGateway: UInt64 = 0
    public var latency: Histogram
    public var slowestSinceSnapshot: UInt64 = 0

    public init(deadline: UInt64) {
        self.deadline = deadline
        latency = Histogram.latency(including: Double(deadline) / 1e9)
    }

    public var missed: UInt64 { missedSlowClient + missedGateway }

    /// Counts one of `nanoseconds`; returns whether it was within the deadline.
    @discardableResult
    public mutating func check(_ nanoseconds: UInt64, clientBehind: Bool = false) -> Bool {
        latency.observe(Double(nanoseconds) / 1e9)
        if nanoseconds > slowestSinceSnapshot { slowestSinceSnapshot = nanoseconds }
        if nanoseconds <= deadline {
            met += 1
            return true
        }
        if clientBehind { missedSlowClient += 1 } else { missedGateway += 1 }
        return false
    }

    /// Adds another loop's tally of the same deadline.
    public mutating func add(_ other: DeadlineTally) {
        met += other.met
        missedSlowClient += other.missedSlowClient
        missedGateway += other.missedGateway
        latency.add(other.latency)
        slowestSinceSnapshot = max(slowestSinceSnapshot, other.slowestSinceSnapshot)
    }
}

/// Rates over the last 1 s, 10 s and 60 s, from snapshots of the cumulative counters.
///
/// The loop records a snapshot at most once a second, whenever it is busy anyway (a
/// publish, a scrape); a rate over a window compares now with the newest snapshot at
/// least that old, so it is exact over the interval it reports.
public struct StatsWindow: Sendable {
    /// The cumulative figures at one instant.
    public struct Snapshot: Sendable {
        public var at: UInt64
        public var accepted: UInt64
        public var delivered: UInt64
        public var dropped: UInt64
        public var latency: Histogram
        /// Per route (in `GatewayMetrics.routes` order): live deliveries met and missed
        /// against its deadline, and their latencies.
        public var routes: [Timeliness]
        /// Ingest answers against `ingest.deadlineMs`.
        public var ingest: Timeliness
    }

    /// Figures of something with a deadline (`DeadlineTally`): cumulative in a snapshot
    /// (but `slowest` is the slowest since the snapshot before), the difference in a window
    /// (`slowest` over the window).
    public struct Timeliness: Sendable {
        public var met: UInt64
        public var missed: UInt64
        /// Of `missed`, those that waited in a slow client's queue (the rest: the gateway's).
        public var missedSlowClient: UInt64
        public var latency: Histogram
        /// Nanoseconds.
        public var slowest: UInt64

        init(_ tally: DeadlineTally) {
            self.init(
                met: tally.met, missed: tally.missed, missedSlowClient: tally.missedSlowClient, latency: tally.latency,
                slowest: tally.slowestSinceSnapshot)
        }

        init(met: UInt64, missed: UInt64, missedSlowClient: UInt64, latency: Histogram, slowest: UInt64) {
            self.met = met
            self.missed = missed
            self.missedSlowClient = missedSlowClient
            self.latency = latency
            self.slowest = slowest
        }

        /// The share that missed the deadline; nil when there was nothing.
        public var missedRatio: Double? { met + missed == 0 ? nil : Double(missed) / Double(met + missed) }

        /// What happened since `earlier`; `slowest` stays this one's (`window` sets it).
        func subtracting(_ earlier: Timeliness) -> Timeliness {
            Timeliness(
                met: met &- earlier.met, missed: missed &- earlier.missed, missedSlowClient: missedSlowClient &- earlier.missedSlowClient,
                latency: latency.subtracting(earlier.latency), slowest: slowest)
        }

        mutating func add(_ other: Timeliness) {
            met += other.met
            missed += other.missed
            missedSlowClient += other.missedSlowClient
            latency.add(other.latency)
            slowest = max(slowest, other.slowest)
        }
    }

    /// Rates over one window.
    public struct Rates: Sendable, Equatable {
        public var seconds: Double
        public var eventsIn: Double
        public var deliveries: Double
        public var drops: Double
        public var latencyP50: Double?
        public var latencyP99: Double?
    }

    private var snapshots: Deque<Snapshot> = []

    public init() {}

    public static func snapshot(of metrics: GatewayMetrics, at now: UInt64) -> Snapshot {
        Snapshot(
            at: now, accepted: metrics.accepted, delivered: metrics.deliveredTotal, dropped: metrics.dropped,
            latency: metrics.deliveryLatency, routes: metrics.routes.map { Timeliness($0.live) },
            ingest: Timeliness(metrics.ingestAnswers))
    }

    /// Records a snapshot unless one was taken less than a second ago; a recorded one
    /// takes the slowest figures since the one before, which start again.
    public mutating func record(_ metrics: inout GatewayMetrics, now: UInt64) {
        if let last = snapshots.last, now - last.at < 1_000_000_000 { return }
        snapshots.append(Self.snapshot(of: metrics, at: now))
        while snapshots.count > 70 { snapshots.removeFirst() }
        for index in metrics.routes.indices { metrics.routes[index].live.slowestSinceSnapshot = 0 }
        metrics.ingestAnswers.slowestSinceSnapshot = 0
    }

    /// What happened over one window: rates and the latencies sampled in it. Several
    /// loops' windows add up (rates add, latencies merge) before quantiles are read.
    public struct Window: Sendable {
        public var seconds: Double
        public var eventsIn: Double
        public var deliveries: Double
        public var drops: Double
        public var latency: Histogram
        /// Each route's deadline figures over the window.
        public var routes: [Timeliness]
        /// Ingest answers over the window.
        public var ingest: Timeliness

        public mutating func add(_ other: Window) {
            seconds = max(seconds, other.seconds)
            eventsIn += other.eventsIn
            deliveries += other.deliveries
            drops += other.drops
            latency.add(other.latency)
            for index in routes.indices where other.routes.indices.contains(index) { routes[index].add(other.routes[index]) }
            ingest.add(other.ingest)
        }

        public var rates: Rates {
            Rates(
                seconds: seconds, eventsIn: eventsIn, deliveries: deliveries, drops: drops, latencyP50: latency.quantile(0.5),
                latencyP99: latency.quantile(0.99))
        }
    }

    /// The window of the last `seconds` ending at `current`.
    public func window(over seconds: Int, current: Snapshot) -> Window {
        let window = UInt64(seconds) * 1_000_000_000
        let base = snapshots.last(where: { current.at - $0.at >= window }) ?? snapshots.first ?? current
        let elapsed = max(Double(current.at - base.at) / 1e9, 0.001)
        // The slowest over the window: each later snapshot's interval, and the current one's.
        let later = snapshots.lazy.filter { $0.at > base.at }
        func over(_ current: Timeliness, _ base: Timeliness, _ interval: (Snapshot) -> Timeliness) -> Timeliness {
            var figures = current.subtracting(base)
            figures.slowest = later.reduce(current.slowest) { max($0, interval($1).slowest) }
            return figures
        }
        return Window(
            seconds: elapsed,
            eventsIn: Double(current.accepted - base.accepted) / elapsed,
            deliveries: Double(current.delivered - base.delivered) / elapsed,
            drops: Double(current.dropped - base.dropped) / elapsed,
            latency: current.latency.subtracting(base.latency),
            routes: zip(current.routes, base.routes).enumerated().map { index, pair in over(pair.0, pair.1) { $0.routes[index] } },
            ingest: over(current.ingest, base.ingest) { $0.ingest })
    }

    /// Rates over the last `seconds` ending at `current`.
    public func rates(over seconds: Int, current: Snapshot) -> Rates { window(over: seconds, current: current).rates }
}

/// One value per transport, indexed by `TransportKind`: counters that follow the closed
/// set of transports without a field per transport.
public struct PerTransport<Value: Sendable>: Sendable {
    private var values: [Value]

    public init(_ initial: Value) { values = Array(repeating: initial, count: TransportKind.allCases.count) }

    public subscript(kind: TransportKind) -> Value {
        get { values[kind.index] }
        set { values[kind.index] = newValue }
    }
}

extension PerTransport where Value == UInt64 {
    public var sum: UInt64 { values.reduce(0, +) }

    public mutating func add(_ other: PerTransport<UInt64>) {
        for i in values.indices { values[i] += other.values[i] }
    }
}
