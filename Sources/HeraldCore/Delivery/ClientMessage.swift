/// A message a WebSocket client sends (DESIGN §4), decoded and validated.
///
/// Decoding is separate from acting so the protocol can be tested without sockets: the
/// server turns each `ClientMessage` into actions on the connection.
public enum ClientMessage: Sendable, Equatable {
    case subscribe(id: String, filter: JSONValue?, route: String?, since: ResumePosition?)
    case unsubscribe(id: String)
    /// The event exactly as sent (compacted); the server validates it like an ingest body.
    case publish(event: RawJSON)
    case ping
    case auth(token: String)
    /// Join a presence group, or update this connection's `info` in it.
    case presenceJoin(group: String, info: RawJSON)
    case presenceLeave(group: String)

    /// Longest accepted subscription id.
    public static let maxSubscriptionIDLength = 128
    /// Longest accepted presence group name.
    public static let maxGroupLength = 128
    /// Largest accepted presence `info`, serialized.
    public static let maxPresenceInfoBytes = 1024

    /// Decodes one text frame.
    /// - Throws: `invalid_message` (not JSON, not an object, a field of the wrong type) or
    ///   `unknown_op`; the error's `path` names the faulty field.
    public init(decoding text: [UInt8], limits: JSONLimits = JSONLimits()) throws(HeraldError) {
        let tape: JSONTape
        do throws(HeraldError) {
            tape = try JSONScanner.scan(text, limits: limits)
        } catch {
            throw HeraldError(.invalidMessage, "the message is not valid JSON: \(error.message)", offset: error.offset)
        }
        let value = text.withUnsafeBytes { JSONValue(tape: tape, index: 0, bytes: $0) }
        /// The member `key` of the message exactly as sent.
        func raw(_ key: StaticString) -> RawJSON? {
            text.withUnsafeBytes { bytes in
                tape.member(key, inObjectAt: 0, in: bytes).map { RawJSON(tape: tape, index: $0, bytes: bytes) }
            }
        }
        guard case .object = value else {
            throw HeraldError(.invalidMessage, "a message must be a JSON object, not \(value.kindName)", path: "$")
        }
        guard let op = value["op"]?.stringValue else {
            throw HeraldError(.invalidMessage, "a message needs a string \"op\"", path: "$.op")
        }
        func subscriptionID() throws(HeraldError) -> String {
            guard let id = value["id"]?.stringValue, !id.isEmpty, id.utf8.count <= Self.maxSubscriptionIDLength else {
                throw HeraldError(
                    .invalidMessage, "\"\(op)\" needs a string \"id\" of 1 to \(Self.maxSubscriptionIDLength) bytes", path: "$.id")
            }
            return id
        }
        switch op {
        case "subscribe":
            let id = try subscriptionID()
            var route: String?
            if let r = value["route"] {
                guard case .string(let name) = r else { throw HeraldError(.invalidMessage, "\"route\" must be a string", path: "$.route") }
                route = name
            }
            var filter: JSONValue?
            if let f = value["filter"], f != .null { filter = f }
            var since: ResumePosition?
            if let s = value["since"], s != .null {
                guard case .number(let n) = s, n >= 0, n == n.rounded(), n < 9.0e15 else {
                    throw HeraldError(.invalidMessage, "\"since\" must be a non-negative integer sequence number", path: "$.since")
                }
                since = ResumePosition(epoch: nil, seq: UInt64(n))
            }
            if let e = value["epoch"], e != .null {
                guard case .string(let text) = e, let epoch = StreamEpoch(text) else {
                    throw HeraldError(.invalidMessage, "\"epoch\" must be the epoch string a \"subscribed\" reply gave", path: "$.epoch")
                }
                // An epoch without `since` names no position: there is nothing to resume.
                since?.epoch = epoch
            }
            guard filter != nil || route != nil else {
                throw HeraldError(
                    .invalidMessage, "a subscription needs a \"filter\" or a \"route\" (use \"filter\":{} for every event)", path: "$")
            }
            self = .subscribe(id: id, filter: filter, route: route, since: since)
        case "unsubscribe":
            self = .unsubscribe(id: try subscriptionID())
        case "publish":
            guard let event = raw("event") else {
                throw HeraldError(.invalidMessage, "\"publish\" needs an \"event\" object", path: "$.event")
            }
            guard event.isObject else {
                throw HeraldError(
                    .notAnObject, "\"event\" must be a JSON object, not \(value["event"]?.kindName ?? "nothing")", path: "$.event")
            }
            self = .publish(event: event)
        case "ping":
            self = .ping
        case "auth":
            guard let token = value["token"]?.stringValue else {
                throw HeraldError(.invalidMessage, "\"auth\" needs a string \"token\"", path: "$.token")
            }
            self = .auth(token: token)
        case "presence.join":
            let group = try Self.presenceGroup(value["group"])
            let info = raw("info") ?? RawJSON.emptyObject
            try Self.validatePresenceInfo(info, path: "$.info")
            self = .presenceJoin(group: group, info: info)
        case "presence.leave":
            self = .presenceLeave(group: try Self.presenceGroup(value["group"]))
        default:
            throw HeraldError(
                .unknownOp, "unknown op \"\(op)\" (expected subscribe, unsubscribe, publish, ping, auth, presence.join or presence.leave)",
                path: "$.op")
        }
    }

    /// A presence group name: a string of 1 to `maxGroupLength` bytes.
    public static func presenceGroup(_ value: JSONValue?) throws(HeraldError) -> String {
        guard let group = value?.stringValue, !group.isEmpty, group.utf8.count <= maxGroupLength else {
            throw HeraldError(.invalidMessage, "presence needs a string \"group\" of 1 to \(maxGroupLength) bytes", path: "$.group")
        }
        return group
    }

    /// Presence `info` is a JSON object of at most `maxPresenceInfoBytes`.
    public static func validatePresenceInfo(_ info: RawJSON, path: String) throws(HeraldError) {
        guard info.isObject else {
            throw HeraldError(.invalidMessage, "presence \"info\" must be a JSON object, not \(info.value.kindName)", path: path)
        }
        guard info.bytes.count <= maxPresenceInfoBytes else {
            throw HeraldError(
                .invalidMessage, "presence \"info\" has \(info.bytes.count) bytes; the limit is \(maxPresenceInfoBytes)", path: path)
        }
    }

    /// The `id` the message refers to, if any (echoed in error frames).
    public static func subscriptionID(in text: [UInt8]) -> String? {
        (try? JSONValue(parsing: text))?["id"]?.stringValue
    }
}
