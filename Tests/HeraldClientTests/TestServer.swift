// A tiny blocking TCP server on 127.0.0.1:<ephemeral> running on its own pthread, so the
// client can be exercised over real sockets without the Herald server.

import HeraldClient
import HeraldCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

private func sysClose(_ fd: Int32) { _ = close(fd) }

/// One accepted connection, blocking, with a 5 s receive timeout.
final class TestConnection {
    let fd: Int32
    private var buffer: [UInt8] = []

    init(fd: Int32) {
        self.fd = fd
        var tv = timeval(tv_sec: 5, tv_usec: 0)
        _ = setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var one: Int32 = 1
        _ = setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
    }

    /// Reads more bytes into the buffer; false on EOF/error/timeout.
    private func fill() -> Bool {
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n > 0 {
                buffer.append(contentsOf: chunk[0..<n])
                return true
            }
            if n < 0 && errno == EINTR { continue }
            return false
        }
    }

    /// Reads a request/response head up to and including the blank line.
    func readHead() -> String? {
        while true {
            if let end = findHeadEnd() {
                let head = String(decoding: buffer[0..<end], as: UTF8.self)
                buffer.removeFirst(end)
                return head
            }
            guard fill() else { return nil }
        }
    }

    private func findHeadEnd() -> Int? {
        guard buffer.count >= 4 else { return nil }
        for i in 0...(buffer.count - 4)
        where buffer[i] == 13 && buffer[i + 1] == 10 && buffer[i + 2] == 13 && buffer[i + 3] == 10 {
            return i + 4
        }
        return nil
    }

    func readExactly(_ count: Int) -> [UInt8]? {
        while buffer.count < count {
            guard fill() else { return nil }
        }
        let out = Array(buffer[0..<count])
        buffer.removeFirst(count)
        return out
    }

    /// Reads one WebSocket frame (using the client's own codec); nil on EOF or garbage.
    func readFrame() -> WebSocketFrame? {
        while true {
            switch try? WebSocketFrame.decode(buffer) {
            case nil:
                return nil
            case .frame(let frame, let consumed):
                buffer.removeFirst(consumed)
                return frame
            case .needMore:
                guard fill() else { return nil }
            }
        }
    }

    func write(_ bytes: [UInt8]) {
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n > 0 {
                offset += n
            } else if n < 0 && errno == EINTR {
                continue
            } else {
                return
            }
        }
    }

    func write(_ text: String) { write(Array(text.utf8)) }

    /// Waits (up to 5 s) until the peer closes; true if EOF was seen.
    func waitForEOF() -> Bool {
        while fill() { buffer.removeAll() }
        return true
    }

    func close() { sysClose(fd) }
}

final class TestServer: @unchecked Sendable {
    // @unchecked: `listenFD` and `port` are written once before the thread starts;
    // `thread` is only touched by the creating test.
    let listenFD: Int32
    let port: Int
    private var thread: pthread_t?

    /// Listens on 127.0.0.1:0 and serves up to `connections` connections one after the
    /// other, calling `handler(connection, index)` for each.
    init(connections: Int = 1, handler: @escaping @Sendable (TestConnection, Int) -> Void) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        precondition(fd >= 0)
        var one: Int32 = 1
        _ = setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        precondition(bound == 0, "bind failed")
        precondition(listen(fd, 16) == 0)
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        listenFD = fd
        port = Int(UInt16(bigEndian: address.sin_port))

        let body: @Sendable () -> Void = {
            for index in 0..<connections {
                let client = accept(fd, nil, nil)
                if client < 0 { return }
                let connection = TestConnection(fd: client)
                handler(connection, index)
                connection.close()
            }
        }
        let box = Unmanaged.passRetained(ThreadBody(body)).toOpaque()
        var tid = pthread_t()
        let rc = pthread_create(
            &tid, nil,
            { raw in
                let body = Unmanaged<ThreadBody>.fromOpaque(raw!).takeRetainedValue()
                body.run()
                return nil
            }, box)
        precondition(rc == 0)
        thread = tid
    }

    /// Stops accepting and waits for the handler thread to finish.
    func stop() {
        _ = shutdown(listenFD, Int32(SHUT_RDWR))
        if let thread {
            _ = pthread_join(thread, nil)
            self.thread = nil
        }
        sysClose(listenFD)
    }
}

private final class ThreadBody: Sendable {
    let run: @Sendable () -> Void
    init(_ run: @escaping @Sendable () -> Void) { self.run = run }
}

/// A port on which nothing listens (bound then closed).
func unusedPort() -> Int {
    let server = TestServer(connections: 0) { _, _ in }
    let port = server.port
    server.stop()
    return port
}
