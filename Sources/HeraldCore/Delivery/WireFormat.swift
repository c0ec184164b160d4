/// The server-to-client messages of both transports, encoded as bytes (DESIGN §4).
///
/// Only the cold messages are built here (acknowledgements, errors, gaps); the per-event
/// bytes are built once per event by `Event`.
public enum WireFormat {
    // MARK: WebSocket

    public static func subscribed(id: String, position: UInt64, epoch: StreamEpoch) -> [UInt8] {
        var out: [UInt8] = Array(#"{"type":"subscribed","id":"#.utf8)
        JSONWriter.writeString(id, into: &out)
        out.append(contentsOf: #","position":"#.utf8)
        JSONWriter.writeInteger(position, into: &out)
        appendEpoch(epoch, to: &out)
        out.append(UInt8(ascii: "}"))
        return out
    }

    public static func unsubscribed(id: String) -> [UInt8] {
        var out: [UInt8] = Array(#"{"type":"unsubscribed","id":"#.utf8)
        JSONWriter.writeString(id, into: &out)
        out.append(UInt8(ascii: "}"))
        return out
    }

    public static func published(id: String, seq: UInt64, epoch: StreamEpoch) -> [UInt8] {
        var out: [UInt8] = Array(#"{"type":"published","id":"#.utf8)
        JSONWriter.writeString(id, into: &out)
        out.append(contentsOf: #","seq":"#.utf8)
        JSONWriter.writeInteger(seq, into: &out)
        appendEpoch(epoch, to: &out)
        out.append(UInt8(ascii: "}"))
        return out
    }

    /// `{"type":"presence.joined"|"presence.left","group":…,"seq":…}`.
    public static func presenceReply(_ type: String, group: String, seq: UInt64) -> [UInt8] {
        var out: [UInt8] = Array(#"{"type":"#.utf8)
        JSONWriter.writeString(type, into: &out)
        out.append(contentsOf: #","group":"#.utf8)
        JSONWriter.writeString(group, into: &out)
        out.append(contentsOf: #","seq":"#.utf8)
        JSONWriter.writeInteger(seq, into: &out)
        out.append(UInt8(ascii: "}"))
        return out
    }

    public static let pong: [UInt8] = Array(#"{"type":"pong"}"#.utf8)

    /// `{"type":"authenticated","publisher":…,"subject":…,"expiresAt":…}` (null where
    /// unknown; `expiresAt` is the token's `exp`, by which it must be renewed).
    public static func authenticated(publisher: String?, subject: String?, expiresAt: Int64? = nil) -> [UInt8] {
        var out: [UInt8] = []
        JSONWriter.write(
            .object([
                .init("type", .string("authenticated")),
                .init("publisher", publisher.map(JSONValue.string) ?? .null),
                .init("subject", subject.map(JSONValue.string) ?? .null),
                .init("expiresAt", expiresAt.map { .number(Double($0)) } ?? .null),
            ]), into: &out)
        return out
    }

    /// `{"type":"error","id":…,"code":…,"message":…}` (id only when known).
    public static func webSocketError(_ error: HeraldError, id: String?) -> [UInt8] {
        var out: [UInt8] = Array(#"{"type":"error""#.utf8)
        if let id {
            out.append(contentsOf: #","id":"#.utf8)
            JSONWriter.writeString(id, into: &out)
        }
        out.append(contentsOf: #","code":"#.utf8)
        JSONWriter.writeString(error.code.rawValue, into: &out)
        out.append(contentsOf: #","message":"#.utf8)
        JSONWriter.writeString(error.message, into: &out)
        if let path = error.path {
            out.append(contentsOf: #","path":"#.utf8)
            JSONWriter.writeString(path, into: &out)
        }
        if let offset = error.offset {
            out.append(contentsOf: #","offset":"#.utf8)
            JSONWriter.writeInteger(offset, into: &out)
        }
        if let retryAfterMs = error.retryAfterMs {
            out.append(contentsOf: #","retryAfterMs":"#.utf8)
            JSONWriter.writeInteger(retryAfterMs, into: &out)
        }
        out.append(UInt8(ascii: "}"))
        return out
    }

    /// `{"type":"gap","subs":[…],"from":…,"to":…,"reason":…,"epoch":…}`; `subs` are the
    /// pre-encoded ids; `from`/`to` count in `epoch`.
    public static func webSocketGap(
        subscriptionIDs: [[UInt8]], from: UInt64, to: UInt64, reason: GapReason, epoch: StreamEpoch
    ) -> [UInt8] {
        var out: [UInt8] = Array(#"{"type":"gap","subs":["#.utf8)
        for (i, id) in subscriptionIDs.enumerated() {
            if i > 0 { out.append(UInt8(ascii: ",")) }
            out.append(contentsOf: id)
        }
        out.append(contentsOf: #"],"from":"#.utf8)
        JSONWriter.writeInteger(from, into: &out)
        out.append(contentsOf: #","to":"#.utf8)
        JSONWriter.writeInteger(to, into: &out)
        out.append(contentsOf: #","reason":"#.utf8)
        JSONWriter.writeString(reason.rawValue, into: &out)
        appendEpoch(epoch, to: &out)
        out.append(UInt8(ascii: "}"))
        return out
    }

    /// `,"epoch":"…"` (an epoch is `[0-9a-z]`: nothing to escape).
    private static func appendEpoch(_ epoch: StreamEpoch, to out: inout [UInt8]) {
        out.append(contentsOf: #","epoch":""#.utf8)
        out.append(contentsOf: epoch.text.utf8)
        out.append(UInt8(ascii: "\""))
    }

    // MARK: SSE

    /// `event: herald.gap` block: `{"from":…,"to":…,"reason":…,"epoch":…}`.
    public static func sseGap(from: UInt64, to: UInt64, reason: GapReason, epoch: StreamEpoch) -> [UInt8] {
        var out: [UInt8] = Array("event: herald.gap\ndata: {\"from\":".utf8)
        JSONWriter.writeInteger(from, into: &out)
        out.append(contentsOf: #","to":"#.utf8)
        JSONWriter.writeInteger(to, into: &out)
        out.append(contentsOf: #","reason":"#.utf8)
        JSONWriter.writeString(reason.rawValue, into: &out)
        appendEpoch(epoch, to: &out)
        out.append(contentsOf: "}\n\n".utf8)
        return out
    }

    /// The SSE comment heartbeat.
    public static let sseHeartbeat: [UInt8] = Array(": hb\n\n".utf8)

    // MARK: HTTP

    /// `{"error":{"code":…,"message":…,"index":…,"offset":…,"path":…}}`.
    public static func httpError(_ error: HeraldError) -> [UInt8] {
        var out: [UInt8] = Array(#"{"error":{"code":"#.utf8)
        JSONWriter.writeString(error.code.rawValue, into: &out)
        out.append(contentsOf: #","message":"#.utf8)
        JSONWriter.writeString(error.message, into: &out)
        if let index = error.index {
            out.append(contentsOf: #","index":"#.utf8)
            JSONWriter.writeInteger(index, into: &out)
        }
        if let offset = error.offset {
            out.append(contentsOf: #","offset":"#.utf8)
            JSONWriter.writeInteger(offset, into: &out)
        }
        if let path = error.path {
            out.append(contentsOf: #","path":"#.utf8)
            JSONWriter.writeString(path, into: &out)
        }
        if let retryAfterMs = error.retryAfterMs {
            out.append(contentsOf: #","retryAfterMs":"#.utf8)
            JSONWriter.writeInteger(retryAfterMs, into: &out)
        }
        out.append(contentsOf: "}}".utf8)
        return out
    }

    /// One entry of a `202 Accepted` answer.
    public struct Acceptance: Sendable, Equatable {
        public var id: String
        public var seq: UInt64
        public var duplicate: Bool
        public init(id: String, seq: UInt64, duplicate: Bool) {
            self.id = id
            self.seq = seq
            self.duplicate = duplicate
        }
    }

    /// `{"accepted":[{"id":…,"seq":…,"duplicate":…},…],"epoch":…}`: the seqs count in `epoch`.
    public static func accepted(_ entries: [Acceptance], epoch: StreamEpoch) -> [UInt8] {
        var out: [UInt8] = Array(#"{"accepted":["#.utf8)
        for (i, entry) in entries.enumerated() {
            if i > 0 { out.append(UInt8(ascii: ",")) }
            out.append(contentsOf: #"{"id":"#.utf8)
            JSONWriter.writeString(entry.id, into: &out)
            out.append(contentsOf: #","seq":"#.utf8)
            JSONWriter.writeInteger(entry.seq, into: &out)
            out.append(contentsOf: entry.duplicate ? #","duplicate":true}"#.utf8 : #","duplicate":false}"#.utf8)
        }
        out.append(UInt8(ascii: "]"))
        appendEpoch(epoch, to: &out)
        out.append(UInt8(ascii: "}"))
        return out
    }
}
