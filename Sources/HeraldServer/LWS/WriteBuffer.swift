/// The bytes a connection has yet to send, with `Socket.headroom` writable bytes in front
/// of the first unsent byte (what `lws_write` requires).
///
/// One buffer per connection, reused for every response and every batch of events, so
/// sending allocates nothing once it has grown to the connection's usual burst. Its storage
/// is allocated by the first append, not with the connection: most of a gateway's
/// connections are idle subscribers, and 1 KiB each is a third of what an idle WebSocket
/// costs. A buffer that grew for one large response is given back when it empties
/// (`releaseIfLarge`), and one that stayed empty for a whole tick is given back entirely
/// (`releaseIfIdle`), so memory follows the live load rather than the largest burst ever
/// seen, while a busy connection keeps its buffer from one write to the next.
final class WriteBuffer {
    /// No storage: `baseAddress` is nil until the first append.
    private static var unallocated: UnsafeMutableRawBufferPointer { UnsafeMutableRawBufferPointer(start: nil, count: 0) }

    private var storage = WriteBuffer.unallocated
    /// Offsets after the headroom: bytes `sent..<count` are still to be written.
    private var sent = 0
    private var end = 0
    private let initialCapacity: Int
    /// Something was appended since the last `releaseIfIdle`.
    private var usedSinceTick = false

    init(capacity: Int = 1024) {
        initialCapacity = capacity
    }

    deinit { if storage.baseAddress != nil { storage.deallocate() } }

    /// Unsent bytes.
    var count: Int { end - sent }
    var isEmpty: Bool { end == sent }
    /// Bytes allocated (for memory accounting).
    var capacity: Int { storage.count }

    /// The first unsent byte; `Socket.headroom` writable bytes precede it. Only for a
    /// buffer that is not empty.
    var unsent: UnsafeMutableRawPointer { storage.baseAddress! + Socket.headroom + sent }

    /// Marks `n` bytes as handed to the socket.
    func consume(_ n: Int) {
        sent += n
        if sent == end {
            sent = 0
            end = 0
        }
    }

    /// Drops everything unsent.
    func reset() {
        sent = 0
        end = 0
    }

    /// Frees a buffer that grew past 64 KiB once it is empty.
    func releaseIfLarge() {
        guard isEmpty, storage.count > Socket.headroom + 64 * 1024 else { return }
        storage.deallocate()
        storage = Self.unallocated
    }

    /// Frees the storage of an empty buffer.
    func release() {
        guard isEmpty, storage.baseAddress != nil else { return }
        storage.deallocate()
        storage = Self.unallocated
    }

    /// Once a tick: frees the storage of a buffer that is empty and took no bytes since
    /// the previous call (an idle stream, a keep-alive connection between requests). A
    /// connection that writes at least once a tick keeps its buffer, so the send path
    /// allocates nothing per event.
    func releaseIfIdle() {
        defer { usedSinceTick = false }
        guard !usedSinceTick else { return }
        release()
    }

    private func reserve(_ extra: Int) {
        usedSinceTick = true
        guard Socket.headroom + end + extra > storage.count else { return }
        let needed = Socket.headroom + count + extra
        if storage.baseAddress == nil {
            storage = .allocate(byteCount: max(needed, Socket.headroom + initialCapacity), alignment: 16)
            end = 0
            sent = 0
            return
        } else if needed <= storage.count {
            // Room enough once the sent bytes are dropped.
            (storage.baseAddress! + Socket.headroom).copyMemory(from: unsent, byteCount: count)
        } else {
            let grown = UnsafeMutableRawBufferPointer.allocate(byteCount: max(needed, storage.count * 2), alignment: 16)
            (grown.baseAddress! + Socket.headroom).copyMemory(from: unsent, byteCount: count)
            storage.deallocate()
            storage = grown
        }
        end = count
        sent = 0
    }

    func append(_ bytes: UnsafeRawBufferPointer) {
        reserve(bytes.count)
        if let base = bytes.baseAddress, bytes.count > 0 {
            (storage.baseAddress! + Socket.headroom + end).copyMemory(from: base, byteCount: bytes.count)
        }
        end += bytes.count
    }

    func append(_ bytes: [UInt8]) { bytes.withUnsafeBytes { append($0) } }

    /// Lets `body` write up to `capacity` bytes at the end (a file read straight into the
    /// buffer); `body` returns how many it wrote, or a negative number on failure.
    func appendWriting(upTo capacity: Int, _ body: (UnsafeMutableRawBufferPointer) -> Int) -> Int {
        reserve(capacity)
        let written = body(UnsafeMutableRawBufferPointer(start: storage.baseAddress! + Socket.headroom + end, count: capacity))
        if written > 0 { end += written }
        return written
    }

    func append(_ text: StaticString) { append(UnsafeRawBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount)) }

    func append(byte: UInt8) {
        reserve(1)
        (storage.baseAddress! + Socket.headroom + end).storeBytes(of: byte, as: UInt8.self)
        end += 1
    }

    /// Appends the header of an unmasked, final server frame (RFC 6455 §5.2).
    func appendWebSocketHeader(opcode: UInt8, length: Int) {
        append(byte: 0x80 | opcode)
        if length < 126 {
            append(byte: UInt8(length))
        } else if length < 65536 {
            append(byte: 126)
            append(byte: UInt8(length >> 8))
            append(byte: UInt8(length & 0xFF))
        } else {
            append(byte: 127)
            for shift in stride(from: 56, through: 0, by: -8) { append(byte: UInt8((UInt64(length) >> UInt64(shift)) & 0xFF)) }
        }
    }

    /// Appends a whole unmasked server frame.
    func appendWebSocketFrame(opcode: UInt8, payload: [UInt8]) {
        appendWebSocketHeader(opcode: opcode, length: payload.count)
        append(payload)
    }
}
