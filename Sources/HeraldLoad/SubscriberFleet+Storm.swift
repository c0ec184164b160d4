import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// What one fleet saw of a storm: refusals by kind, retries, how long each storm client
/// took to catch up, and the latencies of the storm's two sides.
struct StormTally {
    enum Refusal {
        case http503, http429, close1013, errorReply
    }

    var http503 = 0
    var http429 = 0
    var close1013 = 0
    var errorReplies = 0
    /// Refusals before the storm started (of the first connections).
    var beforeStorm = 0
    var retries = 0
    var resumes = 0
    /// Per storm client, from the storm's start until it caught up.
    var catchUp = LatencyHistogram()
    /// Undisturbed readers from the storm's start until every storm client caught up.
    var undisturbedDuringStorm = LatencyHistogram()
    /// Storm clients over the run, history replays included.
    var stormClients = LatencyHistogram()

    mutating func count(_ refusal: Refusal) {
        switch refusal {
        case .http503: http503 += 1
        case .http429: http429 += 1
        case .close1013: close1013 += 1
        case .errorReply: errorReplies += 1
        }
    }
}

extension SubscriberFleet {
    /// Once per loop: drops the storm clients when the storm is due, and reconnects those
    /// whose moment came (at most `maxConnecting` connecting at once, as at the start).
    func serviceStorm(_ storm: StormPlan) {
        let now = monotonicNanoseconds()
        if stormStart == 0 {
            let since = counters.publishingSince.load(ordering: .relaxed)
            if since != 0 { stormStart = since + UInt64(storm.at * 1e9) }
        }
        if stormStart != 0, !stormed, now >= stormStart {
            stormed = true
            // (One already away after a refusal keeps the moment it was given.)
            for token in subscribers.indices
            where subscribers[token].role == .storm && subscribers[token].phase != .failed && subscribers[token].phase != .away {
                disconnect(token)
                schedule.add(token, at: stormStart + UInt64(Double.random(in: 0..<1) * storm.window * 1e9))
            }
        }
        while connecting < Self.maxConnecting, let token = schedule.popDue(now) {
            guard subscribers[token].phase == .away else { continue }  // failed meanwhile
            if subscribers[token].resume.retrying { tally.retries += 1 }
            subscribers[token].resume.retrying = false
            open(token)
        }
    }

    /// Closes a subscriber's connection (a plain close(): no close frame, no goodbye) and
    /// leaves it waiting to come back.
    func disconnect(_ token: Int) {
        if subscribers[token].phase.isConnecting { connecting -= 1 }
        let fd = subscribers[token].fd
        if fd >= 0 {
            poller.remove(fd)
            close(fd)
            subscribers[token].fd = -1
        }
        subscribers[token].clearConnection()
        subscribers[token].phase = .away
        if !subscribers[token].resume.isAway {
            subscribers[token].resume.isAway = true
            counters.away.add(1, ordering: .relaxed)
        }
    }

    /// The gateway said "not now": waits what it asked (else backs off with full jitter)
    /// and comes back, resuming; fails after `maxAttempts` refusals in a row.
    func refused(_ token: Int, _ refusal: StormTally.Refusal, waitMilliseconds: Int?, now: UInt64) {
        tally.count(refusal)
        if !stormed { tally.beforeStorm += 1 }
        subscribers[token].resume.attempts += 1
        let attempts = subscribers[token].resume.attempts
        guard let storm = plan.storm, attempts <= storm.maxAttempts else {
            return fail(token, "refused \(attempts) times in a row (last: \(refusal))")
        }
        disconnect(token)
        let wait =
            waitMilliseconds.map { UInt64($0) * 1_000_000 }
            ?? StormPlan.backoffNanoseconds(attempt: attempts, random: Double.random(in: 0...1))
        subscribers[token].resume.retrying = true
        schedule.add(token, at: now + wait)
    }

    /// A subscriber that was ready before is again: its resume was answered.
    func cameBack(_ token: Int, now: UInt64) {
        subscribers[token].resume.resumedAt = now
        tally.resumes += 1
    }

    /// Keeps the position and epoch of a WebSocket `subscribed` answer.
    func noteSubscribed(_ answer: UnsafeRawBufferPointer, token: Int) {
        let (position, epoch) = HeraldWire.subscribed(answer)
        if let position { subscribers[token].resume.position = position }
        if let epoch { subscribers[token].resume.epoch = epoch }
    }

    /// Checks an event against the subscriber's ledger and records its latency: an
    /// undisturbed reader's over the run and during the storm, a storm client's apart.
    /// A storm client has caught up at the first event published after its resume was
    /// answered: that event comes after everything history held for it.
    func track(_ bytes: UnsafeRawBufferPointer, sentAt: UInt64, latency: UInt64, token: Int, now: UInt64) {
        let seq: UInt64?
        if plan.transport == .webSocket {
            seq = HeraldWire.webSocketSeq(in: bytes)
        } else if let id = HeraldWire.sseID(in: bytes) {
            seq = id.seq
            let epoch = UnsafeRawBufferPointer(rebasing: bytes[id.epoch])
            if !subscribers[token].resume.epoch.elementsEqual(epoch) { subscribers[token].resume.epoch = Array(epoch) }
        } else {
            seq = nil
        }
        subscribers[token].ledger?.record(seq: seq, number: HeraldWire.eventNumber(in: bytes))
        guard subscribers[token].role == .storm else {
            latencies.record(latency)
            if stormStart != 0, now >= stormStart, counters.stormPending.load(ordering: .relaxed) > 0 {
                tally.undisturbedDuringStorm.record(latency)
            }
            return
        }
        tally.stormClients.record(latency)
        subscribers[token].resume.lastEventAt = now
        let resume = subscribers[token].resume
        if resume.resumedAt != 0, resume.caughtUpAt == 0, sentAt >= resume.resumedAt {
            subscribers[token].resume.caughtUpAt = now
            counters.stormPending.subtract(1, ordering: .relaxed)
            tally.catchUp.record(now - stormStart)
        }
    }

    /// Appends `"since"` and `"epoch"` to a WebSocket subscribe op (a JSON object) of a
    /// subscriber coming back: the last seq it received, else the position `subscribed`
    /// answered.
    func appendResume(of token: Int, toSubscribe text: inout [UInt8]) {
        let subscriber = subscribers[token]
        guard plan.storm != nil, subscriber.resume.wasReady, text.last == UInt8(ascii: "}"),
            let since = subscriber.ledger?.lastSeq ?? subscriber.resume.position
        else { return }
        text.removeLast()
        text.append(contentsOf: #","since":\#(since)"#.utf8)
        if !subscriber.resume.epoch.isEmpty {
            text.append(contentsOf: #","epoch":""#.utf8)
            text.append(contentsOf: subscriber.resume.epoch)
            text.append(UInt8(ascii: "\""))
        }
        text.append(UInt8(ascii: "}"))
    }

    /// The `Last-Event-ID` of an SSE subscriber coming back: `<epoch>:<seq>` of the last
    /// event it received, or 0 (all that history holds) when none had arrived.
    func lastEventID(of token: Int) -> String? {
        let subscriber = subscribers[token]
        guard plan.storm != nil, subscriber.resume.wasReady else { return nil }
        let seq = subscriber.ledger?.lastSeq ?? 0
        return subscriber.resume.epoch.isEmpty ? "\(seq)" : String(decoding: subscriber.resume.epoch, as: UTF8.self) + ":\(seq)"
    }
}
