/// A presence change the cluster's stream could not store yet.
public enum PresenceAwaitingStorage: Sendable {
    /// Announced again if the client is still a member then.
    case join(group: String, client: UInt64)
    case leave(group: String, member: PresenceRegistry.Member, reason: String)
}

/// A clustered node's half of the publish pipeline (see `EventBroker`): submit to the
/// shared stream, answer when the broker says where the events went, deliver what the
/// stream brings back — this node's events and every other node's — in the stream's order.
extension Hub {
    /// A submission between `submit` and the caller taking its answer.
    struct Submitted {
        /// The submitted JSON bytes (counted in `pendingBytes` until answered).
        var bytes: Int
        var answer: Answer
        var result: SequencingResult?
    }

    /// Who is answered when the broker has placed a submission.
    public enum Answer {
        /// The caller (an ingest request) takes it with `takeSequencingResult`.
        case taken
        /// The Hub answers this WebSocket client: a `published` per event, or an error.
        case published(to: Session)
        /// Nobody.
        case dropped
        /// Nobody, but a presence change that could not be stored is announced again once
        /// the stream is back (the member list changed already, the member was answered).
        case presence(PresenceAwaitingStorage)
    }

    /// Bytes of events positioned but not yet delivered by the slowest loop (0 unless
    /// several loops share a sequencer).
    public var deliveryBacklogBytes: Int { broker?.backlogBytes ?? 0 }

    /// Whether events are positioned by a cluster's stream rather than by this node.
    public var isClustered: Bool { broker != nil }

    /// Where events are stored, as messages name it.
    public var storageName: String { broker?.storageName ?? "the event log" }

    /// Hands validated, authorized events to the broker and returns the ticket its answer
    /// will carry (see `Answer` for who gets it). Nothing is delivered here: the events
    /// come back through `receive` like every other node's.
    @discardableResult
    public func submit(_ events: [IncomingEvent], answer: Answer, presence change: PresenceChange? = nil) -> UInt64 {
        guard let broker else { preconditionFailure("submit is for a clustered hub; a single node publishes") }
        let ticket = nextTicket
        nextTicket += 1
        let proposed = events.map {
            ProposedEvent(id: $0.id, source: $0.source, type: $0.type, hasExplicitID: $0.hasExplicitID, json: $0.compactJSON)
        }
        let bytes = proposed.reduce(0) { $0 + $1.json.count }
        submissions[ticket] = Submitted(bytes: bytes, answer: answer)
        pendingBytes += bytes
        if let result = broker.submit(Submission(ticket: ticket, events: proposed, presence: change)) {
            // Positioned at once (another loop of this process): the events come through
            // the inbox later, and a WebSocket publisher's `published` waits for them, as
            // it would on a single loop.
            sequenced(ticket: ticket, result: result, beforeDelivery: true)
        }
        return ticket
    }

    /// The broker's answer to submission `ticket`, from the loop's inbox (or from `submit`
    /// itself, `beforeDelivery`).
    public func sequenced(ticket: UInt64, result: SequencingResult, beforeDelivery: Bool = false) {
        guard let submitted = submissions[ticket] else { return }  // its connection went away
        pendingBytes -= submitted.bytes
        switch result {
        case .accepted(let acceptances, _):
            for acceptance in acceptances {
                if acceptance.duplicate { metrics.duplicates += 1 } else { metrics.accepted += 1 }
            }
        case .failed:
            metrics.storageRefusals += 1
        }
        answer(submitted, ticket: ticket, with: result, beforeDelivery: beforeDelivery)
        // The stream stores again (after an error reply, which changes no health, too):
        // presence changes it could not store are retried.
        if case .accepted = result, storageFailure == nil { announcePresenceAwaitingStorage() }
    }

    private func answer(_ submitted: Submitted, ticket: UInt64, with result: SequencingResult, beforeDelivery: Bool) {
        guard case .published(let session) = submitted.answer else {
            switch (submitted.answer, result) {
            case (.taken, _):
                submissions[ticket]?.result = result
            case (.presence(let change), .failed):
                submissions[ticket] = nil
                awaitStorage(change)
            default:
                submissions[ticket] = nil
            }
            return
        }
        submissions[ticket] = nil
        guard sessions.indices.contains(session.index), sessions[session.index] === session, session.closing == nil else { return }
        switch result {
        case .accepted(let acceptances, let streamEpoch):
            for acceptance in acceptances {
                let reply = WireFormat.published(id: acceptance.id, seq: acceptance.seq, epoch: streamEpoch)
                if beforeDelivery { send(session, control: reply, after: acceptance.seq) } else { send(session, control: reply) }
            }
        case .failed(let reason):
            let error = HeraldError(.storageUnavailable, "the cluster's stream cannot store events: \(reason); this event was not stored")
            send(session, control: WireFormat.webSocketError(error, id: nil))
        }
    }

    /// The answer to an ingest submission, once (nil while the broker has not answered).
    public func takeSequencingResult(_ ticket: UInt64) -> SequencingResult? {
        guard let result = submissions[ticket]?.result else { return nil }
        submissions[ticket] = nil
        return result
    }

    /// Forgets a submission whose requester went away (its answer is dropped on arrival).
    public func forgetSubmission(_ ticket: UInt64) {
        guard let submitted = submissions.removeValue(forKey: ticket) else { return }
        if submitted.result == nil { pendingBytes -= submitted.bytes }
    }

    /// Delivers events read from the shared stream, in its order: this node's and other
    /// nodes'. Positions at or before this hub's last one were seen already and are
    /// skipped; a position past the next one means the stream trimmed what this node had
    /// not read (the log continues after the hole; resumers get an `expired` gap). When the
    /// stream started again under another epoch (Redis lost its data), every streaming
    /// client is closed with 1012 so that it reconnects and resumes into a `reset` gap,
    /// rather than see positions that count from 1 again.
    public func receive(_ events: [Event], epoch streamEpoch: StreamEpoch) {
        broker?.received(events)
        let now = clock.now()
        if streamEpoch != log.epoch {
            log.follow(epoch: streamEpoch)
            committedThrough = log.nextPosition - 1
            for case let session? in sessions {
                close(session, code: .serviceRestart, reason: "the event stream was reset; resume", immediately: false)
            }
            broker?.restore(presence.everyMember)  // the shared lists went with the old data
        }
        for event in events where event.seq >= log.nextPosition {
            if event.seq > log.nextPosition, log.nextPosition > 1 { announceTrimmed(log.nextPosition..<event.seq) }
            if event.type == "herald.presence" { broker?.presenceChanged() }
            log.follow(event, now: now)
            committedThrough = event.seq
            routeRescanning(withCoalesceKeys(event))
        }
        releaseRepliesAwaitingCommit()
    }

    /// Positions the stream trimmed before this node read them (it fell more than
    /// `cluster.maxLength` behind): every live subscriber is told with an `expired` gap —
    /// a resuming one meets the hole in the log and is told then.
    private func announceTrimmed(_ positions: Range<UInt64>) {
        for case let session? in sessions where session.catchUp == nil && session.closing == nil && !session.subscriptionSlots.isEmpty {
            let slots = session.subscriptionSlots
            changeQueue(of: session) {
                $0.enqueueGap(from: positions.lowerBound, to: positions.upperBound - 1, subscriptions: slots, reason: .expired)
            }
            metrics.expiredGaps += 1
            wake(session)
        }
    }

    /// The cluster's stream can be reached again: ingest is accepted again.
    public func storageRecovered() {
        storageFailure = nil
        // Redis may have lost or rewound the shared lists meanwhile: this node's go back.
        broker?.restore(presence.everyMember)
        announcePresenceAwaitingStorage()
    }

    func awaitStorage(_ change: PresenceAwaitingStorage) {
        if presenceAwaitingStorage.count >= Self.maxPresenceAwaitingStorage { presenceAwaitingStorage.removeFirst() }
        presenceAwaitingStorage.append(change)
    }

    func announcePresenceAwaitingStorage() {
        guard !presenceAwaitingStorage.isEmpty else { return }
        let waiting = presenceAwaitingStorage
        presenceAwaitingStorage = []
        for change in waiting {
            switch change {
            case .join(let group, let client): announceJoinAgain(group: group, client: client)
            case .leave(let group, let member, let reason): emitLeave(group: group, member: member, reason: reason)
            }
        }
    }

    /// An event from the stream with the coalescing keys of this node's configuration
    /// (another node's configuration decides nothing here).
    private func withCoalesceKeys(_ event: Event) -> Event {
        guard !coalescePaths.isEmpty else { return event }
        replayTape.removeAll()
        do throws(HeraldError) {
            try JSONScanner.scan(event.json, limits: JSONLimits(maxDepth: config.limits.maxJSONDepth), into: &replayTape)
        } catch {
            return event  // cannot happen: the event was validated when it was accepted
        }
        let keys = coalescePaths.map { $0.valueHash(in: replayTape, node: 0, bytes: event.json) }
        return Event(
            epoch: log.epoch, seq: event.seq, id: event.id, source: event.source, type: event.type, acceptedAt: event.acceptedAt,
            json: event.json, coalesceKeys: keys, routeTally: event.routeTally)
    }
}
