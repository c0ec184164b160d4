/// How an ingest body is framed, decided from its `Content-Type`.
public enum IngestFormat: Sendable, Equatable {
    /// `application/json`: one event object or an array of them.
    case json
    /// `application/cloudevents+json`: one CloudEvent in structured mode.
    case cloudEvent
    /// `application/cloudevents-batch+json`: an array of CloudEvents.
    case cloudEventBatch

    /// The format for a `Content-Type` header value, or nil when Herald does not accept it.
    public init?(contentType: String) {
        let mediaType =
            contentType.split(separator: ";", maxSplits: 1).first.map {
                $0.trimmingSpaces().lowercased()
            } ?? ""
        switch mediaType {
        case "application/json": self = .json
        case "application/cloudevents+json": self = .cloudEvent
        case "application/cloudevents-batch+json": self = .cloudEventBatch
        default: return nil
        }
    }
}

/// Size limits applied to an ingest body after it was read.
public struct IngestLimits: Sendable, Equatable {
    public var maxEventBytes: Int
    public var maxBatchEvents: Int
    public var json: JSONLimits
    public init(maxEventBytes: Int = 256 * 1024, maxBatchEvents: Int = 500, json: JSONLimits = JSONLimits()) {
        self.maxEventBytes = maxEventBytes
        self.maxBatchEvents = maxBatchEvents
        self.json = json
    }
}

/// One validated event of an ingest body, not yet sequenced.
public struct IncomingEvent: Sendable {
    /// Index of the event object on the batch's tape (for matching in place).
    public var node: Int
    public var id: String
    /// False when Herald generated the id (such an event cannot be a retry).
    public var hasExplicitID: Bool
    public var source: String
    public var type: String
    /// The event as compact JSON.
    public var compactJSON: [UInt8]
    /// `type`, `eventType` or `detail-type` begins with `herald.` in any case: a name
    /// reserved for events the gateway itself emits (presence, gaps).
    public var usesReservedType: Bool
}

/// Turns an ingest body into validated events, all or nothing.
///
/// A batch is atomic: every event is validated (JSON, shape, identity fields, size) before
/// any of them is accepted, and the first fault rejects the whole body with its index and
/// byte offset.
public enum IngestParser {
    /// Validates `body` and returns its events. `tape` is filled with the body's nodes; the
    /// events' `node` indices point into it.
    public static func parse(
        _ body: UnsafeRawBufferPointer,
        format: IngestFormat,
        limits: IngestLimits,
        tape: inout JSONTape
    ) throws(HeraldError) -> [IncomingEvent] {
        tape.removeAll()
        try JSONScanner.scan(body, limits: limits.json, into: &tape)
        let root = tape.nodes[0]
        var roots: [Int] = []
        switch (root.kind, format) {
        case (.object, .json), (.object, .cloudEvent):
            roots = [0]
        case (.array, .json), (.array, .cloudEventBatch):
            guard root.count > 0 else { throw HeraldError(.emptyBatch, "the batch holds no events") }
            guard root.count <= limits.maxBatchEvents else {
                throw HeraldError(.batchTooLarge, "the batch holds \(root.count) events; the limit is \(limits.maxBatchEvents)")
            }
            roots.reserveCapacity(Int(root.count))
            tape.forEachElement(ofArrayAt: 0) { roots.append($0) }
        case (.object, .cloudEventBatch):
            throw HeraldError(.notAnObject, "a CloudEvents batch must be a JSON array", offset: Int(root.start))
        default:
            throw HeraldError(
                .notAnObject, "the body must be a JSON object or an array of objects, not \(root.kind)", offset: Int(root.start))
        }

        var events: [IncomingEvent] = []
        events.reserveCapacity(roots.count)
        let batchIndex: (Int) -> Int? = { root.kind == .array ? $0 : nil }
        for (position, node) in roots.enumerated() {
            let eventNode = tape.nodes[node]
            guard eventNode.kind == .object else {
                throw HeraldError(
                    .notAnObject, "each event must be a JSON object, not \(eventNode.kind)", offset: Int(eventNode.start),
                    index: batchIndex(position))
            }
            let size = Int(eventNode.end - eventNode.start)
            guard size <= limits.maxEventBytes else {
                throw HeraldError(
                    .eventTooLarge, "the event has \(size) bytes; the limit is \(limits.maxEventBytes)", offset: Int(eventNode.start),
                    index: batchIndex(position))
            }
            do throws(HeraldError) {
                events.append(try readEvent(at: node, tape: tape, body: body, cloudEvent: format != .json))
            } catch {
                var located = error
                located.index = batchIndex(position)
                throw located
            }
        }
        return events
    }

    private static func readEvent(
        at node: Int, tape: JSONTape, body: UnsafeRawBufferPointer, cloudEvent: Bool
    ) throws(HeraldError) -> IncomingEvent {
        func optionalString(_ key: String) throws(HeraldError) -> String? {
            guard let index = tape.member(key, inObjectAt: node, in: body) else { return nil }
            let value = tape.nodes[index]
            guard value.kind == .string else {
                throw HeraldError(
                    cloudEvent ? .invalidCloudEvent : .invalidEvent, "\"\(key)\" must be a string", offset: Int(value.start),
                    path: "$.\(key)")
            }
            return tape.string(at: index, in: body)
        }
        if cloudEvent {
            for attribute in ["specversion", "id", "source", "type"] {
                guard let value = try optionalString(attribute), !value.isEmpty else {
                    throw HeraldError(
                        .invalidCloudEvent, "a CloudEvent needs a non-empty string \"\(attribute)\"", offset: Int(tape.nodes[node].start),
                        path: "$.\(attribute)")
                }
                if attribute == "specversion", value != "1.0" {
                    throw HeraldError(
                        .invalidCloudEvent, "unsupported specversion \"\(value)\"; Herald accepts \"1.0\"", path: "$.specversion")
                }
            }
        }
        var id = try optionalString("id")
        if id == nil { id = try optionalString("eventId") }
        if let given = id, given.isEmpty {
            throw HeraldError(.invalidEvent, "the event id must not be empty", offset: Int(tape.nodes[node].start))
        }
        let source = try optionalString("source") ?? ""
        // `type` names the event for SSE and for permissions, so it is one string, never
        // an array that could carry a second (reserved or forbidden) type.
        _ = try optionalString("type")
        var type: String?
        var reserved = false
        for key in ["type", "eventType", "detail-type"] {
            if let index = tape.member(key, inObjectAt: node, in: body), tape.nodes[index].kind == .string {
                let value = tape.string(at: index, in: body)
                if value.utf8.count >= 7, value.prefix(7).lowercased() == "herald." { reserved = true }
                if type == nil, !value.isEmpty { type = value }
            }
        }
        let range = tape.nodes[node]
        return IncomingEvent(
            node: node,
            id: id ?? UUID4.generate(),
            hasExplicitID: id != nil,
            source: source,
            type: type ?? "message",
            compactJSON: compact(UnsafeRawBufferPointer(rebasing: body[Int(range.start)..<Int(range.end)])),
            usesReservedType: reserved
        )
    }

    /// Copies valid JSON text without its insignificant whitespace, so it fits on one SSE
    /// `data:` line. Only whitespace outside strings is removed.
    /// - Complexity: O(n) in the length of `json`.
    public static func compact(_ json: UnsafeRawBufferPointer) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(json.count)
        var inString = false
        var escaped = false
        for byte in json {
            if inString {
                out.append(byte)
                if escaped {
                    escaped = false
                } else if byte == UInt8(ascii: "\\") {
                    escaped = true
                } else if byte == UInt8(ascii: "\"") {
                    inString = false
                }
            } else {
                switch byte {
                case 0x20, 0x09, 0x0A, 0x0D: continue
                case UInt8(ascii: "\""):
                    inString = true
                    out.append(byte)
                default: out.append(byte)
                }
            }
        }
        return out
    }
}

/// Random (version 4) UUIDs for events that carry no id.
public enum UUID4 {
    /// A new lowercase UUID string such as `1b4e28ba-2fa1-41d2-883f-0016d3cca427`.
    public static func generate() -> String {
        var generator = SystemRandomNumberGenerator()
        var bytes = (0..<16).map { _ in UInt8.random(in: 0...255, using: &generator) }
        bytes[6] = (bytes[6] & 0x0F) | 0x40
        bytes[8] = (bytes[8] & 0x3F) | 0x80
        let hex = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(36)
        for (i, byte) in bytes.enumerated() {
            if i == 4 || i == 6 || i == 8 || i == 10 { out.append(UInt8(ascii: "-")) }
            out.append(hex[Int(byte >> 4)])
            out.append(hex[Int(byte & 0x0F)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}

extension StringProtocol {
    /// The text without leading and trailing spaces and tabs (no Foundation needed).
    public func trimmingSpaces() -> String {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" }
        guard let first = firstIndex(where: { !isSpace($0) }), let last = lastIndex(where: { !isSpace($0) }) else { return "" }
        return String(self[first...last])
    }
}
