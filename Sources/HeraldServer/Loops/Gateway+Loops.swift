import HeraldCore
import Logging

/// What one loop asks the others when a request needs the whole gateway's figures (each
/// loop owns its sessions and counters, so only its own thread may read them).
enum LoopQuery: Sendable {
    case figures(LoopFigures.Detail)
    /// Disconnect client `id` (asked of the loop whose Hub gave out the id).
    case disconnect(UInt64)
    /// Explain who would receive the event of an explain request `body` (validated by
    /// the loop that asks).
    case explain(body: [UInt8], client: UInt64?)
}

/// One loop's answer to a `LoopQuery`.
enum LoopAnswer: Sendable {
    case figures(LoopFigures)
    case disconnected(found: Bool)
    case explained(ExplainPart)
}

/// Every loop of the process as one loop sees them: their inboxes, by loop index.
struct LoopGroup: Sendable {
    let index: Int
    let inboxes: [Inbox<LoopMessage>]

    static let single = LoopGroup(index: 0, inboxes: [])

    var count: Int { max(inboxes.count, 1) }
    /// Every loop but this one.
    var others: [Int] { inboxes.indices.filter { $0 != index } }
}

/// What one loop contributes to `/metrics`, `/v1/stats` and `/v1/clients`; the gateway's
/// figures are the sum over its loops (`add`).
struct LoopFigures: Sendable {
    enum Detail: Sendable {
        /// Counters, gauges and queue depths (`/metrics`).
        case counts
        /// Also the rates over 1 s / 10 s / 60 s (`/v1/stats`).
        case rates
        /// Also one row per client (`/v1/clients`).
        case clients
        /// Counters and the windows only, without a look at each client (the deadline
        /// watch, every second).
        case windows
    }

    /// One client's row in `/v1/clients`, with what it is ordered by.
    struct ClientRow: Sendable {
        var id: UInt64
        var queueDepth: Int
        var sent: UInt64
        var missedDeadlines: UInt64
        var slowestDelivery: UInt64
        var json: JSONValue
    }

    var metrics: GatewayMetrics
    var sessions = PerTransport<UInt64>(0)
    var subscriptions = PerTransport<UInt64>(0)
    var presenceGroups: Set<String> = []
    var presenceMembers = 0
    /// Every session's queue depth.
    var queueDepths: [Int] = []
    var queuedBytes = 0
    var pendingInputBytes = 0
    var openConnections = 0
    /// The windows of 1 s, 10 s and 60 s (`.rates`).
    var windows: [StatsWindow.Window] = []
    var clients: [ClientRow] = []

    static let windowSeconds = [1, 10, 60]

    mutating func add(_ other: LoopFigures) {
        metrics.add(other.metrics)
        sessions.add(other.sessions)
        subscriptions.add(other.subscriptions)
        presenceGroups.formUnion(other.presenceGroups)
        presenceMembers += other.presenceMembers
        queueDepths += other.queueDepths
        queuedBytes += other.queuedBytes
        pendingInputBytes += other.pendingInputBytes
        openConnections += other.openConnections
        for index in windows.indices where other.windows.indices.contains(index) { windows[index].add(other.windows[index]) }
        clients += other.clients
    }
}

/// A question to other loops waiting for their answers: a request's, or the gateway's own.
struct PendingQuery {
    /// What is done once every loop asked has answered.
    enum Completion {
        /// Make the response of the request held for it (`HeldAnswer.gathering`).
        case respond((Gateway, [LoopAnswer]) -> HTTPServerResponse)
        /// Act on the answers; no request waits (the deadline watch).
        case run((Gateway, [LoopAnswer]) -> Void)
    }

    var remaining: Int
    var answers: [LoopAnswer] = []
    /// Answered with this instead (the gateway began shutting down: the loops asked may
    /// stop before they answer).
    var refusal: HeraldError?
    let completion: Completion
}

extension Gateway {
    /// This loop's figures, in the detail asked for (on this loop's thread).
    func figures(_ detail: LoopFigures.Detail) -> LoopFigures {
        let now = MonotonicClock.nanoseconds()
        let withWindows: Bool
        switch detail {
        case .rates, .windows: withWindows = true
        case .counts, .clients: withWindows = false
        }
        // A snapshot first (it starts the interval maxima again), then one copy of the counters.
        if withWindows { statsWindow.record(&hub.metrics, now: now) }
        var figures = LoopFigures(metrics: hub.metrics)
        if withWindows {
            let current = StatsWindow.snapshot(of: hub.metrics, at: now)
            figures.windows = LoopFigures.windowSeconds.map { statsWindow.window(over: $0, current: current) }
        }
        if case .clients = detail { figures.clients = clientRows() }
        figures.queuedBytes = hub.queuedBytesTotal
        figures.pendingInputBytes = pendingInputBytes
        figures.openConnections = connections.count
        if case .windows = detail { return figures }  // the deadline watch: no look at each client
        for case let session? in hub.sessions {
            figures.sessions[session.transport] += 1
            figures.subscriptions[session.transport] += UInt64(session.subscriptionCount)
            figures.queueDepths.append(session.queue.count)
        }
        figures.presenceGroups = Set(hub.presence.groupNames)
        figures.presenceMembers = hub.presence.memberCount
        return figures
    }

    /// Asks the other loops for their figures; `respond` makes the answer from the sum of
    /// every loop's (this one's read last, when the others have answered).
    func gatherFigures(_ detail: LoopFigures.Detail, respond: @escaping (Gateway, LoopFigures) -> HTTPServerResponse) -> RequestPlan {
        .held(
            ask(.figures(detail), of: loops.others) { gateway, answers in respond(gateway, gateway.figures(detail, adding: answers)) })
    }

    /// This loop's figures (read last, when the others have answered) plus theirs.
    private func figures(_ detail: LoopFigures.Detail, adding answers: [LoopAnswer]) -> LoopFigures {
        var all = figures(detail)
        for case .figures(let figures) in answers { all.add(figures) }
        return all
    }

    /// Asks the other loops for their figures and runs `then` with the sum once all have
    /// answered (at once with one loop); nothing is held for it.
    func withGatheredFigures(_ detail: LoopFigures.Detail, run then: @escaping (Gateway, LoopFigures) -> Void) {
        guard !loops.others.isEmpty else { return then(self, figures(detail)) }
        _ = post(.figures(detail), to: loops.others, .run { gateway, answers in then(gateway, gateway.figures(detail, adding: answers)) })
    }

    /// Posts `query` to `targets` and holds the request until each has answered (at once
    /// when there are none).
    func ask(_ query: LoopQuery, of targets: [Int], respond: @escaping (Gateway, [LoopAnswer]) -> HTTPServerResponse) -> HeldAnswer {
        .gathering(token: post(query, to: targets, .respond(respond)))
    }

    private func post(_ query: LoopQuery, to targets: [Int], _ completion: PendingQuery.Completion) -> UInt64 {
        let token = nextQueryToken
        nextQueryToken += 1
        pendingQueries[token] = PendingQuery(remaining: targets.count, completion: completion)
        for target in targets { loops.inboxes[target].post(.ask(query, token: token, from: loops.index)) }
        return token
    }

    /// Another loop's query, answered on this loop's thread.
    func answer(_ query: LoopQuery) -> LoopAnswer {
        switch query {
        case .figures(let detail):
            return .figures(figures(detail))
        case .disconnect(let id):
            return .disconnected(found: disconnectClient(id))
        case .explain(let body, let client):
            return .explained(explainPart(body: body, client: client))
        }
    }

    /// Another loop answered query `token`.
    func collect(_ answer: LoopAnswer, token: UInt64) {
        guard var pending = pendingQueries[token] else { return }  // its connection went away
        pending.remaining -= 1
        pending.answers.append(answer)
        if pending.remaining == 0, case .run(let run) = pending.completion {
            pendingQueries[token] = nil
            run(self, pending.answers)
        } else {
            pendingQueries[token] = pending
        }
    }

    /// The response to a gathering request once every loop asked has answered; nil before.
    func gatheredAnswer(_ token: UInt64) -> HTTPServerResponse? {
        guard let pending = pendingQueries[token], pending.remaining == 0 || pending.refusal != nil,
            case .respond(let respond) = pending.completion
        else { return nil }
        pendingQueries[token] = nil
        if let refusal = pending.refusal { return errorResponse(refusal) }
        return respond(self, pending.answers)
    }

    /// Shutting down: requests still waiting for other loops are answered 503 (those loops
    /// may stop first).
    func refusePendingQueries() {
        for token in pendingQueries.keys {
            pendingQueries[token]?.refusal = HeraldError(.shuttingDown, "the gateway is shutting down")
        }
    }

    /// Closes the session of client `id` on this loop; false when there is none.
    func disconnectClient(_ id: UInt64) -> Bool {
        guard let session = hub.session(id: id) else { return false }
        hub.close(session, code: .policyViolation, reason: "disconnected by an administrator", immediately: true)
        logger.info("client disconnected by an administrator", metadata: ["client": "\(id)"])
        return true
    }
}
