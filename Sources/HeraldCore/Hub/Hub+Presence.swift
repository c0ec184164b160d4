/// Presence (DESIGN §4): who is in which group. Every change is an ordinary
/// `herald.presence` event, published through the pipeline, so subscribers route it by
/// pattern and resume it from history. A join is allowed when the session's credentials
/// may publish the join event it causes; a member is listed to a caller only when its
/// join event would be delivered to the caller.
///
/// In a cluster, members are named `<node>.<client>`, each change is stored in Redis with
/// the event announcing it (`PresenceChange`), and lists and counts are the cluster's:
/// every live node's members.
extension Hub {
    /// Adds `session` to `group` (or updates its info) and announces it; returns the
    /// join event's position.
    /// - Throws: `forbidden` when the credentials may not cause this join event,
    ///   `too_many_groups` past `limits.maxSubscriptionsPerConnection` groups.
    @discardableResult
    public func join(_ session: Session, group: String, info: RawJSON) throws(HeraldError) -> UInt64 {
        let isNew = !presence.isMember(session.id, of: group)
        if isNew, presence.groups(of: session.id).count >= config.limits.maxSubscriptionsPerConnection {
            throw HeraldError(
                .tooManyGroups, "a connection may be in at most \(config.limits.maxSubscriptionsPerConnection) presence groups")
        }
        var member = PresenceRegistry.Member(client: session.id, node: broker?.node ?? "", info: info, transport: session.transport.name)
        let others = allMembers(of: group, fresh: false).filter { $0.id != member.id }.count
        let body = presenceEvent(group: group, action: "join", member: member, reason: nil, count: others + 1)
        let change = PresenceChange.join(group: group, member: member.id, transport: member.transport, info: info)
        member.joinEvent = try publishPresence(
            body, credentials: session.credentials, change: change, answer: .presence(.join(group: group, client: session.id)))
        presence.join(group, member)
        return member.joinedSeq
    }

    /// Removes `session` from `group` and announces it; returns the leave event's
    /// position, or nil when the session was not a member.
    public func leave(_ session: Session, group: String) -> UInt64? {
        guard let member = presence.leave(group, client: session.id) else { return nil }
        return emitLeave(group: group, member: member, reason: "left")
    }

    /// Leaves every group of a session that went away (reason `disconnected`).
    func leaveAllPresence(_ session: Session) {
        for group in presence.groups(of: session.id) {
            guard let member = presence.leave(group, client: session.id) else { continue }
            emitLeave(group: group, member: member, reason: "disconnected")
        }
    }

    /// The members of `group` whose join event `credentials` would see (its scope).
    public func members(of group: String, visibleTo credentials: Credentials) -> [PresenceRegistry.Member] {
        // In join order, as every loop and node saw the joins: local and shared members
        // arrive in whichever order each list had them.
        allMembers(of: group, fresh: true).sorted { $0.joinedSeq < $1.joinedSeq }.filter { member in
            guard let scope = credentials.scope else { return true }
            guard let event = member.joinEvent else { return false }
            replayTape.removeAll()
            do throws(HeraldError) {
                try JSONScanner.scan(event.json, limits: JSONLimits(maxDepth: config.limits.maxJSONDepth), into: &replayTape)
            } catch {
                return false  // cannot happen: the event was validated when accepted
            }
            return scope.matches(EventView(tape: replayTape, node: 0, bytes: event.json))
        }
    }

    /// This node's members, or in a cluster every live node's, as the shared store lists
    /// them. A node's changes reach the store when the stream has their event, so for its
    /// own members this node's registry decides: one that left is not listed, one whose
    /// join is not stored yet is.
    private func allMembers(of group: String, fresh: Bool) -> [PresenceRegistry.Member] {
        let local = presence.members(of: group)
        guard let broker, let shared = broker.members(of: group, fresh: fresh) else { return local }
        let localIDs = Set(local.map(\.id))
        let sharedIDs = Set(shared.map(\.id))
        return shared.filter { !broker.isOwn($0) || localIDs.contains($0.id) } + local.filter { !sharedIDs.contains($0.id) }
    }

    /// A leave needs no permission: the member is going either way.
    @discardableResult
    func emitLeave(group: String, member: PresenceRegistry.Member, reason: String) -> UInt64 {
        let count = allMembers(of: group, fresh: false).filter { $0.id != member.id }.count
        let body = presenceEvent(group: group, action: "leave", member: member, reason: reason, count: count)
        do throws(HeraldError) {
            let change = PresenceChange.leave(group: group, member: member.id)
            let retry = Answer.presence(.leave(group: group, member: member, reason: reason))
            return try publishPresence(body, credentials: nil, change: change, answer: retry).seq
        } catch {
            // The cluster's stream is away: the leave is announced (and the shared list
            // mended) when it is back, never forgotten. (A failed file log stays failed.)
            if error.code == .storageUnavailable, isClustered { awaitStorage(.leave(group: group, member: member, reason: reason)) }
            return lastSeq
        }
    }

    /// Announces a join again that the cluster's stream could not store (the member list
    /// changed and the joiner was answered already), if the member is still there.
    func announceJoinAgain(group: String, client: UInt64) {
        guard let member = presence.members(of: group).first(where: { $0.client == client }) else { return }
        let others = allMembers(of: group, fresh: false).filter { $0.id != member.id }.count
        let body = presenceEvent(group: group, action: "join", member: member, reason: nil, count: others + 1)
        let change = PresenceChange.join(group: group, member: member.id, transport: member.transport, info: member.info)
        do throws(HeraldError) {
            _ = try publishPresence(body, credentials: nil, change: change, answer: .presence(.join(group: group, client: client)))
        } catch {
            awaitStorage(.join(group: group, client: client))  // away again: next time
        }
    }

    /// The `herald.presence` event for one change; `info` goes in exactly as sent.
    private func presenceEvent(group: String, action: String, member: PresenceRegistry.Member, reason: String?, count: Int) -> [UInt8] {
        var out: [UInt8] = Array(#"{"type":"herald.presence","source":"herald","group":"#.utf8)
        JSONWriter.writeString(group, into: &out)
        out.append(contentsOf: #","action":"#.utf8)
        JSONWriter.writeString(action, into: &out)
        out.append(contentsOf: #","member":"#.utf8)
        JSONWriter.writeString(member.id, into: &out)
        out.append(contentsOf: #","info":"#.utf8)
        out.append(contentsOf: member.info.bytes)
        out.append(contentsOf: #","count":"#.utf8)
        JSONWriter.writeInteger(count, into: &out)
        if let reason {
            out.append(contentsOf: #","reason":"#.utf8)
            JSONWriter.writeString(reason, into: &out)
        }
        out.append(UInt8(ascii: "}"))
        return out
    }

    /// Sequences and delivers a presence event after checking that `credentials` (nil:
    /// the gateway's own change) may cause it.
    private func publishPresence(
        _ body: [UInt8], credentials: Credentials?, change: PresenceChange, answer: Answer = .dropped
    ) throws(HeraldError) -> Event {
        // Nothing is accepted that cannot be stored (the member list itself still changes).
        if let failure = storageFailure { throw HeraldError(.storageUnavailable, "\(storageName) cannot store events: \(failure)") }
        let outcome = body.withUnsafeBytes { bytes -> Result<Event, HeraldError> in
            do throws(HeraldError) {
                let events = try IngestParser.parse(bytes, format: .json, limits: config.limits.ingest, tape: &presenceTape)
                let view = EventView(tape: presenceTape, node: events[0].node, bytes: bytes)
                if let credentials,
                    let refusal = credentials.publishRefusal(view, reservedType: events[0].usesReservedType, checkReserved: false)
                {
                    return .failure(refusal)
                }
                if isClustered {
                    // Positioned by the stream, delivered when it comes back; the member
                    // keeps this copy for visibility checks (its position: the earliest it
                    // can get).
                    submit(events, answer: answer, presence: change)
                    return .success(
                        Event(
                            epoch: epoch, seq: committedThrough + 1, id: events[0].id, source: events[0].source, type: events[0].type,
                            acceptedAt: clock.now(), json: bytes))
                }
                return .success(accept(events[0], tape: presenceTape, body: bytes, now: clock.now()))
            } catch {
                return .failure(error)
            }
        }
        return try outcome.get()
    }
}
