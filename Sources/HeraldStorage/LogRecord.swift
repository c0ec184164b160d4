public import HeraldCore

/// One event as the durable log stores it, and the reading back of a segment's bytes.
///
/// Why this layout: a record must say by itself whether it is whole. Each one is
/// `[u32 payload length][u32 CRC-32C of the payload][payload]`, little-endian; a crash
/// mid-write leaves a short or mismatching record at the tail, which recovery cuts. The
/// payload: `u64 seq, u64 accepted-at (Unix ns), u32 × 4 lengths (id, source, type, json),
/// the four byte strings`.
public enum LogRecord {
    public static let headerBytes = 8
    static let fixedPayloadBytes = 32
    /// The largest payload the format allows: part of the format, not of the
    /// configuration, so that a record stays valid whatever the limits are later (an event
    /// is at most 64 MiB of JSON, and its id, source and type come from it).
    public static let maxPayloadBytes = 256 << 20

    /// The record of `event`, accepted at `unixNanos`.
    public static func encode(_ event: Event, unixNanos: UInt64) -> [UInt8] {
        let id = event.id.utf8, source = event.source.utf8, type = event.type.utf8
        let json = event.json
        let payloadLength = fixedPayloadBytes + id.count + source.count + type.count + json.count
        var out: [UInt8] = []
        out.reserveCapacity(headerBytes + payloadLength)
        put32(UInt32(payloadLength), &out)
        put32(0, &out)  // the checksum, filled in below
        put64(event.seq, &out)
        put64(unixNanos, &out)
        for count in [id.count, source.count, type.count, json.count] { put32(UInt32(count), &out) }
        out.append(contentsOf: id)
        out.append(contentsOf: source)
        out.append(contentsOf: type)
        out.append(contentsOf: json)
        let crc = out.withUnsafeBytes { CRC32C.checksum(UnsafeRawBufferPointer(rebasing: $0[headerBytes...])) }
        withUnsafeBytes(of: crc.littleEndian) { out.replaceSubrange(4..<8, with: $0) }
        return out
    }

    /// What a record holds, read in place.
    public struct Fields {
        public var seq: UInt64
        public var unixNanos: UInt64
        public var id: String
        public var source: String
        public var type: String
        public var json: UnsafeRawBufferPointer

        /// The event these fields describe (`acceptedAt` on the loop's monotonic clock).
        public func event(epoch: StreamEpoch, acceptedAt: UInt64) -> Event {
            Event(epoch: epoch, seq: seq, id: id, source: source, type: type, acceptedAt: acceptedAt, json: json)
        }
    }

    /// The length of the whole record that starts `bytes`, when it is whole and its
    /// checksum holds; nil for a torn or corrupt record (or too few bytes).
    public static func validLength(_ bytes: UnsafeRawBufferPointer) -> Int? {
        guard bytes.count >= headerBytes else { return nil }
        let payload = Int(get32(bytes, 0))
        guard payload >= fixedPayloadBytes, payload <= maxPayloadBytes, headerBytes + payload <= bytes.count else { return nil }
        let body = UnsafeRawBufferPointer(rebasing: bytes[headerBytes..<(headerBytes + payload)])
        guard CRC32C.checksum(body) == get32(bytes, 4) else { return nil }
        let lengths = (0..<4).map { Int(get32(body, 16 + 4 * $0)) }
        guard fixedPayloadBytes + lengths.reduce(0, +) == payload else { return nil }
        return headerBytes + payload
    }

    /// Reads a record that `validLength` accepted.
    public static func fields(_ record: UnsafeRawBufferPointer) -> Fields {
        let body = UnsafeRawBufferPointer(rebasing: record[headerBytes...])
        let lengths = (0..<4).map { Int(get32(body, 16 + 4 * $0)) }
        var cursor = fixedPayloadBytes
        func take(_ count: Int) -> UnsafeRawBufferPointer {
            defer { cursor += count }
            return UnsafeRawBufferPointer(rebasing: body[cursor..<(cursor + count)])
        }
        let id = String(decoding: take(lengths[0]), as: UTF8.self)
        let source = String(decoding: take(lengths[1]), as: UTF8.self)
        let type = String(decoding: take(lengths[2]), as: UTF8.self)
        return Fields(seq: get64(body, 0), unixNanos: get64(body, 8), id: id, source: source, type: type, json: take(lengths[3]))
    }

    private static func put32(_ value: UInt32, _ out: inout [UInt8]) {
        withUnsafeBytes(of: value.littleEndian) { out.append(contentsOf: $0) }
    }

    private static func put64(_ value: UInt64, _ out: inout [UInt8]) {
        withUnsafeBytes(of: value.littleEndian) { out.append(contentsOf: $0) }
    }

    static func get32(_ bytes: UnsafeRawBufferPointer, _ offset: Int) -> UInt32 {
        UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
    }

    static func get64(_ bytes: UnsafeRawBufferPointer, _ offset: Int) -> UInt64 {
        UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
    }
}
