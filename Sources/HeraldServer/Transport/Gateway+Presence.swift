import HeraldCore
import Logging

/// Presence (DESIGN §4): `presence.join` / `presence.leave` over WebSocket, `?presence=` on
/// an SSE stream, `GET /v1/presence/{group}`.
///
/// Every change becomes an ordinary `herald.presence` event, published like an ingested
/// one, so subscribers route it by pattern and resume it from history. A join is allowed
/// when the connection's credentials may publish the join event it causes.
extension Gateway {
    /// Handles `{"op":"presence.join"}`: answers `presence.joined` with the event's seq.
    func joinPresence(_ client: WebSocketClient, group: String, info: JSONValue) {
        do throws(HeraldError) {
            let seq = try join(client, credentials: client.credentials, group: group, info: info, transport: "ws")
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
    func join(_ subscriber: Subscriber, credentials: Credentials, group: String, info: JSONValue, transport: String) throws(HeraldError) -> UInt64 {
        let isNew = !presence.isMember(subscriber.id, of: group)
        if isNew, presence.groups(of: subscriber.id).count >= config.limits.maxSubscriptionsPerConnection {
            throw HeraldError(.tooManyGroups, "a connection may be in at most \(config.limits.maxSubscriptionsPerConnection) presence groups")
        }
        var member = PresenceRegistry.Member(client: subscriber.id, info: info, transport: transport, joinedSeq: 0)
        let count = presence.members(of: group).count + (isNew ? 1 : 0)
        let body = presenceEvent(group: group, action: "join", member: member, reason: nil, count: count)
        member.joinedSeq = try publishPresence(body, credentials: credentials)
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

    /// `GET /v1/presence/{group}`: the members now and the position they are valid at.
    func presenceJSON(group: String) -> [UInt8] {
        let members = presence.members(of: group)
        var out: [UInt8] = []
        JSONWriter.write(.object([
            .init("group", .string(group)),
            .init("position", .number(Double(lastSeq))),
            .init("count", .number(Double(members.count))),
            .init("members", .array(members.map { member in
                .object([
                    .init("member", .string(String(member.client))),
                    .init("info", member.info),
                    .init("transport", .string(member.transport)),
                    .init("joinedSeq", .number(Double(member.joinedSeq))),
                ])
            })),
        ]), into: &out)
        return out
    }

    /// Publishes a leave; it needs no permission (the member is going either way).
    @discardableResult
    private func emitPresence(group: String, action: String, member: PresenceRegistry.Member, reason: String) -> UInt64 {
        let body = presenceEvent(group: group, action: action, member: member, reason: reason, count: presence.members(of: group).count)
        do throws(HeraldError) {
            return try publishPresence(body, credentials: nil)
        } catch {
            logger.error("could not publish a presence event", metadata: ["group": "\(group)", "error": "\(error)"])
            return lastSeq
        }
    }

    /// The `herald.presence` event for one change.
    private func presenceEvent(group: String, action: String, member: PresenceRegistry.Member, reason: String?, count: Int) -> [UInt8] {
        var members: [JSONValue.Member] = [
            .init("type", .string("herald.presence")),
            .init("source", .string("herald")),
            .init("group", .string(group)),
            .init("action", .string(action)),
            .init("member", .string(String(member.client))),
            .init("info", member.info),
            .init("count", .number(Double(count))),
        ]
        if let reason { members.append(.init("reason", .string(reason))) }
        var out: [UInt8] = []
        JSONWriter.write(.object(members), into: &out)
        return out
    }

    /// Sequences and delivers a presence event after checking `credentials` (nil: the
    /// gateway's own change) may cause it; returns its seq.
    private func publishPresence(_ body: [UInt8], credentials: Credentials?) throws(HeraldError) -> UInt64 {
        let outcome = body.withUnsafeBytes { bytes -> Result<UInt64, HeraldError> in
            do throws(HeraldError) {
                let events = try IngestParser.parse(bytes, format: .json, limits: config.limits.ingest, tape: &presenceTape)
                if let credentials, let refusal = credentials.publishRefusal(
                    EventView(tape: presenceTape, node: events[0].node, bytes: bytes), type: events[0].type, checkReserved: false) {
                    return .failure(refusal)
                }
                return .success(publish(events, tape: presenceTape, body: bytes)[0].seq)
            } catch {
                return .failure(error)
            }
        }
        return try outcome.get()
    }
}
