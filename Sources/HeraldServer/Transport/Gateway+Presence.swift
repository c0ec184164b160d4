import HeraldCore
import Logging

/// Presence (DESIGN §4): `presence.join` / `presence.leave` over WebSocket, `?presence=` on
/// an SSE stream, `GET /v1/presence/{group}`.
///
/// Every change becomes an ordinary `herald.presence` event, published like an ingested
/// one, so subscribers route it by pattern and resume it from history. A join is allowed
/// when the connection's credentials may publish the join event it causes, and a member
/// is listed only to callers its join event would be delivered to.
extension Gateway {
    /// Handles `{"op":"presence.join"}`: answers `presence.joined` with the event's seq.
    func joinPresence(_ client: WebSocketClient, group: String, info: RawJSON) {
        do throws(HeraldError) {
            let seq = try join(client, credentials: client.credentials, group: group, info: info)
            send(client, WireFormat.presenceReply("presence.joined", group: group, seq: seq))
        } catch {
            send(client, WireFormat.webSocketError(error, id: nil))
        }
    }

    /// Handles `{"op":"presence.leave"}`: answers `presence.left` with the event's seq.
    func leavePresence(_ client: WebSocketClient, group: String) {
        guard let member = presence.leave(group, client: client.id) else {
            let error = HeraldError(.notAMember, "this connection is not in presence group \"\(group)\"", path: "$.group")
            send(client, WireFormat.webSocketError(error, id: nil))
            return
        }
        let seq = emitPresence(group: group, action: "leave", member: member, reason: "left")
        send(client, WireFormat.presenceReply("presence.left", group: group, seq: seq))
    }

    /// Adds `subscriber` to `group` (or updates its info) and announces it.
    /// - Throws: `forbidden` when the credentials may not cause this join event,
    ///   `too_many_groups` past `limits.maxSubscriptionsPerConnection` groups.
    @discardableResult
    func join(_ subscriber: Subscriber, credentials: Credentials, group: String, info: RawJSON) throws(HeraldError) -> UInt64 {
        let isNew = !presence.isMember(subscriber.id, of: group)
        if isNew, presence.groups(of: subscriber.id).count >= config.limits.maxSubscriptionsPerConnection {
            throw HeraldError(.tooManyGroups, "a connection may be in at most \(config.limits.maxSubscriptionsPerConnection) presence groups")
        }
        var member = PresenceRegistry.Member(client: subscriber.id, info: info, transport: subscriber.transport.name)
        let count = presence.members(of: group).count + (isNew ? 1 : 0)
        let body = presenceEvent(group: group, action: "join", member: member, reason: nil, count: count)
        member.joinEvent = try publishPresence(body, credentials: credentials)
        presence.join(group, member)
        return member.joinedSeq
    }

    /// Leaves every group of a client that went away, announcing each with reason `disconnected`.
    func leaveAllPresence(_ subscriber: Subscriber) {
        for group in presence.groups(of: subscriber.id) {
            guard let member = presence.leave(group, client: subscriber.id) else { continue }
            emitPresence(group: group, action: "leave", member: member, reason: "disconnected")
        }
    }

    /// `GET /v1/presence/{group}`: the members the caller may see now, and the position
    /// the list is valid at. A member is listed when its join event would be delivered to
    /// the caller (the caller's token scope matches it), exactly as a subscription would.
    func presenceList(_ request: Request, group: String) -> HTTPServerResponse {
        let credentials: Credentials
        let name: String
        do throws(HeraldError) {
            credentials = try authenticate(requestToken(request))
            name = try ClientMessage.presenceGroup(.string(group))
        } catch {
            return errorResponse(error)
        }
        let visible = presence.members(of: name).filter { member in
            guard let scope = credentials.scope else { return true }
            guard let event = member.joinEvent else { return false }
            return matches(scope, event)
        }
        var out: [UInt8] = Array(#"{"group":"#.utf8)
        JSONWriter.writeString(name, into: &out)
        out.append(contentsOf: #","position":"#.utf8)
        JSONWriter.writeInteger(lastSeq, into: &out)
        out.append(contentsOf: #","count":"#.utf8)
        JSONWriter.writeInteger(visible.count, into: &out)
        out.append(contentsOf: #","members":["#.utf8)
        for (i, member) in visible.enumerated() {
            if i > 0 { out.append(UInt8(ascii: ",")) }
            out.append(contentsOf: #"{"member":"#.utf8)
            JSONWriter.writeString(String(member.client), into: &out)
            out.append(contentsOf: #","info":"#.utf8)
            out.append(contentsOf: member.info.bytes)
            out.append(contentsOf: #","transport":"#.utf8)
            JSONWriter.writeString(member.transport, into: &out)
            out.append(contentsOf: #","joinedSeq":"#.utf8)
            JSONWriter.writeInteger(member.joinedSeq, into: &out)
            out.append(UInt8(ascii: "}"))
        }
        out.append(contentsOf: "]}".utf8)
        return json(200, out)
    }

    /// Whether an accepted event satisfies `pattern` (cold paths: presence lists).
    func matches(_ pattern: Pattern, _ event: Event) -> Bool {
        replayTape.removeAll()
        do throws(HeraldError) {
            try JSONScanner.scan(event.json, limits: JSONLimits(maxDepth: config.limits.maxJSONDepth), into: &replayTape)
        } catch {
            return false  // cannot happen: the event was validated on ingest
        }
        return pattern.matches(EventView(tape: replayTape, node: 0, bytes: event.json))
    }

    /// Publishes a leave; it needs no permission (the member is going either way).
    @discardableResult
    private func emitPresence(group: String, action: String, member: PresenceRegistry.Member, reason: String) -> UInt64 {
        let body = presenceEvent(group: group, action: action, member: member, reason: reason, count: presence.members(of: group).count)
        do throws(HeraldError) {
            return try publishPresence(body, credentials: nil).seq
        } catch {
            logger.error("could not publish a presence event", metadata: ["group": "\(group)", "error": "\(error)"])
            return lastSeq
        }
    }

    /// The `herald.presence` event for one change; `info` goes in exactly as the member sent it.
    private func presenceEvent(group: String, action: String, member: PresenceRegistry.Member, reason: String?, count: Int) -> [UInt8] {
        var out: [UInt8] = Array(#"{"type":"herald.presence","source":"herald","group":"#.utf8)
        JSONWriter.writeString(group, into: &out)
        out.append(contentsOf: #","action":"#.utf8)
        JSONWriter.writeString(action, into: &out)
        out.append(contentsOf: #","member":"#.utf8)
        JSONWriter.writeString(String(member.client), into: &out)
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

    /// Sequences and delivers a presence event after checking `credentials` (nil: the
    /// gateway's own change) may cause it; returns the accepted event.
    private func publishPresence(_ body: [UInt8], credentials: Credentials?) throws(HeraldError) -> Event {
        let outcome = body.withUnsafeBytes { bytes -> Result<Event, HeraldError> in
            do throws(HeraldError) {
                let events = try IngestParser.parse(bytes, format: .json, limits: config.limits.ingest, tape: &presenceTape)
                let view = EventView(tape: presenceTape, node: events[0].node, bytes: bytes)
                if let credentials, let refusal = credentials.publishRefusal(view, reservedType: events[0].usesReservedType, checkReserved: false) {
                    return .failure(refusal)
                }
                return .success(accept(events[0], tape: presenceTape, body: bytes, now: MonotonicClock.nanoseconds()))
            } catch {
                return .failure(error)
            }
        }
        return try outcome.get()
    }
}
