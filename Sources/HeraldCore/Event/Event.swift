import Synchronization

/// An accepted event: immutable, sequenced, and encoded once for every transport.
///
/// Herald's fan-out cost per client must be a queue slot and a socket write, never a
/// re-encoding. So when an event is accepted its wire forms are built once, into one
/// allocation, and every recipient's queue holds a reference to this object:
/// - the SSE block `id: <epoch>:<seq>\nevent: <type>\ndata: <json>\n\n`;
/// - the tail of the WebSocket message `"seq":<seq>,"event":<json>}`, which follows the
///   small per-connection head `{"type":"event","subs":[…],`.
///
/// - Note: `@unchecked Sendable`: every stored property is immutable after `init`, and the
///   bytes behind `storage` are written only there.
public final class Event: @unchecked Sendable {
    /// Gateway sequence number, strictly increasing.
    public let seq: UInt64
    /// Event identity: CloudEvents `id`, else `eventId`, else a generated UUID.
    public let id: String
    /// `source` of the event, or "" when it has none.
    public let source: String
    /// The event type used as the SSE `event:` name.
    public let type: String
    /// When the gateway accepted the event (monotonic nanoseconds, for latency metrics).
    public let acceptedAt: UInt64
    /// Hashes of the values at the gateway's coalesce-key paths (nil: no such field), for
    /// the `coalesce` overflow policy. Indexed by the gateway's coalesce slot.
    public let coalesceKeys: [UInt64?]
    /// The routes this event matched a subscription of on any loop (several loops match
    /// it each against its own subscriptions); nil with one loop.
    public let routeTally: RouteTally?

    private let storage: UnsafeMutableRawBufferPointer
    private let sseLength: Int
    private let wsTailOffset: Int
    private let wsTailLength: Int
    private let jsonOffset: Int
    private let jsonLength: Int

    /// Builds the event and its encodings from the compact JSON text of the event.
    ///
    /// - Parameter json: the event as compact JSON (one line, no insignificant whitespace).
    public init(
        epoch: StreamEpoch, seq: UInt64, id: String, source: String, type: String, acceptedAt: UInt64, json: UnsafeRawBufferPointer,
        coalesceKeys: [UInt64?] = [], routeTally: RouteTally? = nil
    ) {
        self.seq = seq
        self.coalesceKeys = coalesceKeys
        self.routeTally = routeTally
        self.id = id
        self.source = source
        self.type = type
        self.acceptedAt = acceptedAt

        var head: [UInt8] = []
        head.reserveCapacity(80 + type.utf8.count)
        head.append(contentsOf: "id: ".utf8)
        head.append(contentsOf: epoch.text.utf8)
        head.append(UInt8(ascii: ":"))
        JSONWriter.writeInteger(seq, into: &head)
        head.append(contentsOf: "\nevent: ".utf8)
        for byte in type.utf8 { head.append(byte == 0x0A || byte == 0x0D ? 0x20 : byte) }
        head.append(contentsOf: "\ndata: ".utf8)

        var tailHead: [UInt8] = Array("\"seq\":".utf8)
        JSONWriter.writeInteger(seq, into: &tailHead)
        tailHead.append(contentsOf: ",\"event\":".utf8)

        sseLength = head.count + json.count + 2
        wsTailOffset = sseLength
        wsTailLength = tailHead.count + json.count + 1
        jsonOffset = head.count
        jsonLength = json.count

        storage = .allocate(byteCount: wsTailOffset + wsTailLength, alignment: 16)
        var cursor = 0
        func put(_ bytes: some Collection<UInt8>) {
            for b in bytes {
                storage[cursor] = b
                cursor += 1
            }
        }
        func put(raw: UnsafeRawBufferPointer) {
            if let base = raw.baseAddress, raw.count > 0 {
                (storage.baseAddress! + cursor).copyMemory(from: base, byteCount: raw.count)
            }
            cursor += raw.count
        }
        put(head)
        put(raw: json)
        put([0x0A, 0x0A])
        put(tailHead)
        put(raw: json)
        put([UInt8(ascii: "}")])
        assert(cursor == storage.count)
    }

    deinit { storage.deallocate() }

    /// The compact JSON text of the event.
    public var json: UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: storage[jsonOffset..<(jsonOffset + jsonLength)])
    }

    /// The SSE block.
    public var sseFrame: UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: storage[0..<sseLength])
    }

    /// The shared tail of the WebSocket `event` message.
    public var webSocketTail: UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: storage[wsTailOffset..<(wsTailOffset + wsTailLength)])
    }

    /// Bytes this event holds in memory (both encodings; what history charges).
    public var byteCount: Int { storage.count }

    /// Bytes one client of `transport` is sent for this event (what its queue charges):
    /// the SSE block, or the shared WebSocket tail plus a typical per-connection head.
    public func wireBytes(for transport: TransportKind) -> Int {
        switch transport {
        case .sse: sseLength
        case .webSocket: wsTailLength + Self.webSocketHeadAllowance
        }
    }

    /// The frame header and `{"type":"event","subs":["…"],` of a WebSocket event message.
    static let webSocketHeadAllowance = 40

    /// The event JSON as a String (tests and cold paths).
    public var jsonText: String { String(decoding: json, as: UTF8.self) }
}

/// Which routes an event matched on any loop, so that `herald_route_matched_total` counts
/// an event once per route however many loops matched it: the first loop to mark a route
/// counts it. One relaxed atomic OR per matched route per loop.
public final class RouteTally: Sendable {
    private let low = Atomic<UInt64>(0)
    private let high = Atomic<UInt64>(0)

    public init() {}

    /// Marks `route`; true when no loop had marked it before.
    public func mark(_ route: Int) -> Bool {
        let bit: UInt64 = 1 << UInt64(route % 64)
        let old = route < 64 ? low.bitwiseOr(bit, ordering: .relaxed).oldValue : high.bitwiseOr(bit, ordering: .relaxed).oldValue
        return old & bit == 0
    }
}
