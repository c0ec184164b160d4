import Testing

@testable import HeraldServer

/// The per-connection buffers hold no storage while a connection is idle.
@Suite struct WriteBufferTests {
    @Test func storageIsAllocatedByTheFirstAppend() {
        let buffer = WriteBuffer()
        #expect(buffer.capacity == 0 && buffer.isEmpty)
        buffer.append(Array("hello".utf8))
        #expect(buffer.capacity >= Socket.headroom + 1024)
        #expect(buffer.count == 5)
        #expect(Array(UnsafeRawBufferPointer(start: buffer.unsent, count: 5)) == Array("hello".utf8))
    }

    @Test func anIdleBufferIsReleasedAfterAWholeTick() {
        let buffer = WriteBuffer()
        buffer.append(Array("event".utf8))
        buffer.consume(5)
        buffer.releaseIfIdle()  // used during this tick: kept
        #expect(buffer.capacity > 0)
        buffer.releaseIfIdle()  // nothing since: released
        #expect(buffer.capacity == 0)
        buffer.append(Array("again".utf8))
        buffer.releaseIfIdle()
        buffer.releaseIfIdle()  // not empty: kept
        #expect(buffer.capacity > 0 && buffer.count == 5)
    }

    @Test func aBufferGrowsPastItsFirstCapacity() {
        let buffer = WriteBuffer(capacity: 8)
        let payload = [UInt8](repeating: 7, count: 3000)
        buffer.appendWebSocketFrame(opcode: 1, payload: payload)
        #expect(buffer.count == 3004)
        buffer.consume(4)
        #expect(Array(UnsafeRawBufferPointer(start: buffer.unsent, count: buffer.count)) == payload)
    }

    @Test func anIdleInputBufferIsReleasedAfterAWholeTick() {
        var input = InputBuffer()
        Array("GET / HTTP/1.1\r\n\r\n".utf8).withUnsafeBytes { input.append($0) }
        input.consume(input.count)
        input.releaseIfIdle()
        #expect(input.capacity > 0)
        input.releaseIfIdle()
        #expect(input.capacity == 0)
    }
}
