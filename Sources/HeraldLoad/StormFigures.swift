/// What a reconnect storm did to a run: whether every client, storm or undisturbed, ended
/// with every event once and in order; what the gateway refused; how long the storm
/// lasted until the last client had caught up; and the undisturbed readers' latency
/// while it did.
public struct StormFigures: Sendable {
    public let plan: StormPlan
    /// Storm clients whose resume was answered (retries included), and those caught up.
    public var resumes = 0
    public var caughtUp = 0
    /// Clients that ended with every accepted event once, in order (and those that did not).
    public var stormComplete = 0
    public var stormIncomplete = 0
    public var undisturbedComplete = 0
    public var undisturbedIncomplete = 0
    /// Events (and clients with any) out of seq order, repeated, or unreadable.
    public var outOfOrder = 0
    public var outOfOrderClients = 0
    public var duplicates = 0
    public var duplicateClients = 0
    public var unreadable = 0
    /// Refusals by kind (HTTP 503, HTTP 429, WebSocket close 1013, an error answer to
    /// the subscribe op), and the reconnects that followed them.
    public var refusedHTTP503 = 0
    public var refusedHTTP429 = 0
    public var closes1013 = 0
    public var refusedSubscribes = 0
    /// Of the refusals, those of the first connections, before the storm.
    public var refusedBeforeStorm = 0
    public var retries = 0
    /// Per storm client: from the storm's start until it caught up.
    public var catchUp = LatencyHistogram()
    /// From the storm's start until the last storm client caught up (nil: one never did).
    public var seconds: Double?
    /// Undisturbed readers while the storm lasted; storm clients over the run.
    public var undisturbedLatencies = LatencyHistogram()
    public var clientLatencies = LatencyHistogram()

    public var refusals: Int { refusedHTTP503 + refusedHTTP429 + closes1013 + refusedSubscribes }

    /// Gathers the fleets' ledgers and tallies; `accepted` events were owed to each client.
    init(plan: StormPlan, fleets: [SubscriberFleet], accepted: Int) {
        self.plan = plan
        var stormStart: UInt64 = 0
        var lastCaughtUp: UInt64 = 0
        for fleet in fleets {
            stormStart = max(stormStart, fleet.stormStart)
            let tally = fleet.tally
            refusedHTTP503 += tally.http503
            refusedHTTP429 += tally.http429
            closes1013 += tally.close1013
            refusedSubscribes += tally.errorReplies
            refusedBeforeStorm += tally.beforeStorm
            retries += tally.retries
            resumes += tally.resumes
            catchUp.add(tally.catchUp)
            undisturbedLatencies.add(tally.undisturbedDuringStorm)
            clientLatencies.add(tally.stormClients)
        }
        for fleet in fleets {
            for subscriber in fleet.subscribers {
                guard let ledger = subscriber.ledger else { continue }
                let complete = ledger.isComplete(accepted: accepted)
                outOfOrder += ledger.outOfOrder
                outOfOrderClients += ledger.outOfOrder > 0 ? 1 : 0
                duplicates += ledger.duplicates
                duplicateClients += ledger.duplicates > 0 ? 1 : 0
                unreadable += ledger.unreadable
                guard subscriber.role == .storm else {
                    if complete { undisturbedComplete += 1 } else { undisturbedIncomplete += 1 }
                    continue
                }
                if complete { stormComplete += 1 } else { stormIncomplete += 1 }
                var caught = subscriber.resume.caughtUpAt
                if caught == 0, complete, subscriber.resume.resumedAt != 0 {
                    // Publishing ended before it came back: caught up with its last event.
                    caught = max(subscriber.resume.resumedAt, subscriber.resume.lastEventAt)
                    catchUp.record(caught > stormStart ? caught - stormStart : 0)
                }
                if caught != 0 {
                    caughtUp += 1
                    lastCaughtUp = max(lastCaughtUp, caught)
                }
            }
        }
        if caughtUp == plan.clients, stormStart != 0 {
            seconds = Double(lastCaughtUp > stormStart ? lastCaughtUp - stormStart : 0) / 1e9
        }
    }

    /// What makes the run fail: a client incomplete, out of order or with a repeat.
    var failures: [String] {
        var failures: [String] = []
        if stormIncomplete > 0 { failures.append("\(stormIncomplete) of \(plan.clients) storm clients incomplete") }
        if undisturbedIncomplete > 0 { failures.append("\(undisturbedIncomplete) undisturbed subscribers incomplete") }
        if outOfOrder > 0 { failures.append("\(outOfOrder) events out of seq order at \(outOfOrderClients) clients") }
        if duplicates > 0 { failures.append("\(duplicates) events received twice at \(duplicateClients) clients") }
        if unreadable > 0 { failures.append("\(unreadable) events without a readable seq or number") }
        if caughtUp < plan.clients { failures.append("\(plan.clients - caughtUp) storm clients never caught up") }
        return failures
    }
}
