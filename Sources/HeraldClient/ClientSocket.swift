#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

// Top-level wrappers so that methods named `close`/`send`/`connect` can reach libc.
private func sysClose(_ fd: Int32) -> Int32 { close(fd) }
private func sysSend(_ fd: Int32, _ base: UnsafeRawPointer, _ count: Int, _ flags: Int32) -> Int {
    send(fd, base, count, flags)
}
private func sysConnect(_ fd: Int32, _ address: UnsafePointer<sockaddr>, _ length: socklen_t) -> Int32 {
    connect(fd, address, length)
}

/// A point in time by which a blocking operation must complete.
typealias Deadline = ContinuousClock.Instant

func deadline(after timeout: Duration) -> Deadline {
    // Clamp absurd timeouts (e.g. `.seconds(Int64.max)`) instead of overflowing.
    let capped = min(timeout, .seconds(100 * 365 * 24 * 3600))
    return ContinuousClock.now.advanced(by: max(capped, .zero))
}

/// Milliseconds left until `deadline`, rounded up, clamped to `Int32` (0 when passed).
func pollMilliseconds(until deadline: Deadline) -> Int32 {
    let remaining = deadline - ContinuousClock.now
    guard remaining > .zero else { return 0 }
    let (seconds, attoseconds) = remaining.components
    let millis = seconds.multipliedReportingOverflow(by: 1000)
    if millis.overflow { return Int32.max }
    let total = millis.partialValue + (attoseconds + 999_999_999_999_999) / 1_000_000_000_000_000
    return Int32(clamping: total)
}

func describeErrno(_ code: Int32) -> String {
    String(cString: strerror(code)) + " (errno \(code))"
}

/// A connected, non-blocking TCP socket, optionally under TLS, with an internal read
/// buffer. Every blocking operation takes a deadline and waits with `poll`. Owned by one
/// thread at a time.
final class ClientSocket {
    private(set) var fd: Int32
    let host: String
    let port: Int
    /// The TLS session when the endpoint is https:// or wss://; reads and writes go through it.
    private var tls: TLSSession?

    private var storage: UnsafeMutableBufferPointer<UInt8>
    private var readIndex = 0
    private var writeIndex = 0
    /// The peer has closed its side (a read returned 0).
    private(set) var sawEOF = false

    static let readChunk = 64 * 1024

    /// Resolves `host` and connects to the first address that accepts, before `deadline`;
    /// with `tls`, also completes a TLS handshake that verifies the server is `host`.
    init(host: String, port: Int, tls context: TLSClientContext? = nil, deadline: Deadline) throws(ClientError) {
        guard (1...65535).contains(port) else {
            throw ClientError(.invalidArgument, "invalid port \(port)")
        }
        self.host = host
        self.port = port
        self.fd = try ClientSocket.connect(host: host, port: port, deadline: deadline)
        self.storage = .allocate(capacity: ClientSocket.readChunk)
        if let context {
            do {
                let session = try TLSSession(context: context, fd: fd, host: host)
                tls = session
                try handshake(session, deadline: deadline)
            } catch {
                close()
                throw error
            }
        }
    }

    private func handshake(_ session: TLSSession, deadline: Deadline) throws(ClientError) {
        while true {
            switch try session.handshake() {
            case .done: return
            case .wantRead: try wait(for: Int32(POLLIN), deadline: deadline, what: "in the TLS handshake with \(host):\(port)")
            case .wantWrite: try wait(for: Int32(POLLOUT), deadline: deadline, what: "in the TLS handshake with \(host):\(port)")
            case .closed: throw ClientError(.closed, "\(host):\(port) closed the connection during the TLS handshake")
            }
        }
    }

    deinit {
        close()
        storage.deallocate()
    }

    var isOpen: Bool { fd >= 0 }

    // MARK: - Connect

    private static func connect(host: String, port: Int, deadline: Deadline) throws(ClientError) -> Int32 {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        #if canImport(Glibc)
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        #else
        hints.ai_socktype = SOCK_STREAM
        #endif
        hints.ai_flags = AI_NUMERICSERV
        var result: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(host, String(port), &hints, &result)
        guard rc == 0, let first = result else {
            let reason = rc == EAI_SYSTEM ? describeErrno(errno) : String(cString: gai_strerror(rc))
            throw ClientError(.connect, "cannot resolve \(host): \(reason)")
        }
        defer { freeaddrinfo(first) }

        var lastError = ClientError(.connect, "no usable address for \(host):\(port)")
        var current: UnsafeMutablePointer<addrinfo>? = first
        while let info = current {
            current = info.pointee.ai_next
            do {
                return try connect(info.pointee, host: host, port: port, deadline: deadline)
            } catch {
                lastError = error
                if error.kind == .timeout { break }
            }
        }
        throw lastError
    }

    private static func connect(
        _ info: addrinfo, host: String, port: Int, deadline: Deadline
    ) throws(ClientError)
        -> Int32
    {
        #if canImport(Glibc)
        let type = info.ai_socktype | Int32(SOCK_CLOEXEC.rawValue)
        #else
        let type = info.ai_socktype
        #endif
        let fd = socket(info.ai_family, type, info.ai_protocol)
        guard fd >= 0 else {
            throw ClientError(.connect, "socket(): \(describeErrno(errno))")
        }
        var ok = false
        defer { if !ok { _ = sysClose(fd) } }

        let flags = fcntl(fd, F_GETFL, 0)
        guard flags >= 0, fcntl(fd, F_SETFL, flags | O_NONBLOCK) == 0 else {
            throw ClientError(.connect, "fcntl(O_NONBLOCK): \(describeErrno(errno))")
        }
        var one: Int32 = 1
        _ = setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))

        let rc = sysConnect(fd, info.ai_addr, info.ai_addrlen)
        if rc != 0 {
            let code = errno
            guard code == EINPROGRESS || code == EINTR else {
                throw ClientError(.connect, "connect to \(host):\(port): \(describeErrno(code))")
            }
            // Wait for the handshake to finish, then read its outcome.
            while true {
                var pfd = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
                let ms = pollMilliseconds(until: deadline)
                let n = poll(&pfd, 1, ms)
                if n > 0 { break }
                if n < 0 {
                    if errno == EINTR { continue }
                    throw ClientError(.connect, "poll(): \(describeErrno(errno))")
                }
                if ms == 0 || ContinuousClock.now >= deadline {
                    throw ClientError(.timeout, "connect to \(host):\(port) timed out")
                }
            }
            var soError: Int32 = 0
            var length = socklen_t(MemoryLayout<Int32>.size)
            guard getsockopt(fd, SOL_SOCKET, SO_ERROR, &soError, &length) == 0 else {
                throw ClientError(.connect, "getsockopt(SO_ERROR): \(describeErrno(errno))")
            }
            if soError != 0 {
                throw ClientError(.connect, "connect to \(host):\(port): \(describeErrno(soError))")
            }
        }
        ok = true
        return fd
    }

    // MARK: - Waiting

    /// Waits until `events` (or an error/hangup) is reported for the socket; returns `revents`.
    @discardableResult
    func wait(for events: Int32, deadline: Deadline, what: @autoclosure () -> String) throws(ClientError) -> Int32 {
        guard fd >= 0 else { throw ClientError(.invalidArgument, "connection is closed") }
        while true {
            var pfd = pollfd(fd: fd, events: Int16(truncatingIfNeeded: events), revents: 0)
            let ms = pollMilliseconds(until: deadline)
            let n = poll(&pfd, 1, ms)
            if n > 0 { return Int32(pfd.revents) }
            if n < 0 {
                if errno == EINTR { continue }
                throw ClientError(.io, "poll(): \(describeErrno(errno))")
            }
            if ms == 0 || ContinuousClock.now >= deadline {
                throw ClientError(.timeout, "timed out \(what())")
            }
        }
    }

    // MARK: - Reading

    /// Number of received bytes not yet consumed.
    var buffered: Int { writeIndex - readIndex }

    /// Calls `body` with the unconsumed bytes (valid only inside `body`).
    func withBuffered<R, E: Error>(_ body: (UnsafeBufferPointer<UInt8>) throws(E) -> R) throws(E) -> R {
        let view = UnsafeBufferPointer(rebasing: storage[readIndex..<writeIndex])
        return try body(view)
    }

    /// Drops `count` unconsumed bytes.
    func consume(_ count: Int) {
        precondition(count >= 0 && count <= buffered)
        readIndex += count
        if readIndex == writeIndex {
            readIndex = 0
            writeIndex = 0
        }
    }

    /// Moves up to `maxCount` unconsumed bytes to the end of `output`; returns how many.
    @discardableResult
    func take(upTo maxCount: Int, appendingTo output: inout [UInt8]) -> Int {
        let n = min(maxCount, buffered)
        if n > 0 {
            output.append(contentsOf: UnsafeBufferPointer(rebasing: storage[readIndex..<(readIndex + n)]))
            consume(n)
        }
        return n
    }

    /// Makes room for at least `ReadChunk / 4` more bytes (compacting, then growing).
    private func reserveSpace() {
        let minimumSpace = ClientSocket.readChunk / 4
        if storage.count - writeIndex >= minimumSpace { return }
        let pending = buffered
        if readIndex > 0 {
            if pending > 0, let base = storage.baseAddress {
                _ = memmove(base, base + readIndex, pending)  // regions may overlap
            }
            readIndex = 0
            writeIndex = pending
        }
        if storage.count - writeIndex < minimumSpace {
            let newCapacity = max(storage.count * 2, pending + ClientSocket.readChunk)
            let bigger = UnsafeMutableBufferPointer<UInt8>.allocate(capacity: newCapacity)
            if pending > 0, let from = storage.baseAddress, let to = bigger.baseAddress {
                to.initialize(from: from, count: pending)
            }
            storage.deallocate()
            storage = bigger
        }
    }

    /// Gives back memory after a very large message once it has been consumed.
    func shrinkIfLarge() {
        if buffered == 0 && storage.count > 4 * ClientSocket.readChunk {
            storage.deallocate()
            storage = .allocate(capacity: ClientSocket.readChunk)
            readIndex = 0
            writeIndex = 0
        }
    }

    /// Receives more bytes into the buffer, waiting until `deadline`.
    /// Returns false on EOF (the peer closed its side); throws on timeout or error.
    func fill(deadline: Deadline, what: @autoclosure () -> String = "waiting for data") throws(ClientError) -> Bool {
        guard fd >= 0 else { throw ClientError(.invalidArgument, "connection is closed") }
        if sawEOF { return false }
        reserveSpace()
        if let tls { return try fill(through: tls, deadline: deadline, what: what()) }
        while true {
            let space = storage.count - writeIndex
            let n = recv(fd, storage.baseAddress! + writeIndex, space, 0)
            if n > 0 {
                writeIndex += n
                return true
            }
            if n == 0 {
                sawEOF = true
                return false
            }
            let code = errno
            switch code {
            case EINTR:
                continue
            case EAGAIN, EWOULDBLOCK:
                try wait(for: Int32(POLLIN), deadline: deadline, what: what())
            case ECONNRESET:
                throw ClientError(.closed, "connection reset by peer")
            default:
                throw ClientError(.io, "recv(): \(describeErrno(code))")
            }
        }
    }

    private func fill(through tls: TLSSession, deadline: Deadline, what: @autoclosure () -> String) throws(ClientError) -> Bool {
        while true {
            switch try tls.read(into: storage.baseAddress! + writeIndex, count: storage.count - writeIndex) {
            case .done(let n):
                writeIndex += n
                return true
            case .closed:
                sawEOF = true
                return false
            case .wantRead: try wait(for: Int32(POLLIN), deadline: deadline, what: what())
            case .wantWrite: try wait(for: Int32(POLLOUT), deadline: deadline, what: what())
            }
        }
    }

    /// True when the connection is unusable for a new request: closed by us, or the peer
    /// has closed / reset it while idle. Any unsolicited bytes stay in the buffer.
    func peerHasClosed() -> Bool {
        guard fd >= 0 else { return true }
        if sawEOF { return true }
        if let tls, tls.pending > 0 { return false }
        var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        var n: Int32
        repeat { n = poll(&pfd, 1, 0) } while n < 0 && errno == EINTR
        guard n > 0 else { return false }
        do {
            let gotData = try fill(deadline: ContinuousClock.now)
            return !gotData
        } catch {
            return error.kind != .timeout  // a spurious wakeup is not a close
        }
    }

    // MARK: - Writing

    /// Sends all of `bytes` before `deadline`.
    ///
    /// With `stopWhenReadable`, gives up (returning false) when the peer stops reading
    /// but has something to say — a server that answers early (413, 401) before
    /// consuming a large body. EPIPE / ECONNRESET throw a `.closed` error.
    @discardableResult
    func send(
        _ bytes: UnsafeRawBufferPointer, deadline: Deadline, stopWhenReadable: Bool = false
    ) throws(ClientError)
        -> Bool
    {
        guard fd >= 0 else { throw ClientError(.invalidArgument, "connection is closed") }
        guard let base = bytes.baseAddress else { return true }
        let readableStops = stopWhenReadable ? Int32(POLLOUT) | Int32(POLLIN) : Int32(POLLOUT)
        var offset = 0
        if let tls {
            while offset < bytes.count {
                switch try tls.write(base + offset, count: bytes.count - offset) {
                case .done(let n): offset += n
                case .closed: throw ClientError(.closed, "connection closed by peer while sending")
                case .wantRead: try wait(for: Int32(POLLIN), deadline: deadline, what: "sending \(bytes.count) bytes")
                case .wantWrite:
                    let revents = try wait(for: readableStops, deadline: deadline, what: "sending \(bytes.count) bytes")
                    if stopWhenReadable && revents & Int32(POLLIN) != 0 && revents & Int32(POLLOUT) == 0 { return false }
                }
            }
            return true
        }
        while offset < bytes.count {
            let n = sysSend(fd, base + offset, bytes.count - offset, Int32(MSG_NOSIGNAL))
            if n >= 0 {
                offset += n
                continue
            }
            let code = errno
            switch code {
            case EINTR:
                continue
            case EAGAIN, EWOULDBLOCK:
                let revents = try wait(for: readableStops, deadline: deadline, what: "sending \(bytes.count) bytes")
                if stopWhenReadable && revents & Int32(POLLIN) != 0 && revents & Int32(POLLOUT) == 0 {
                    return false
                }
            case EPIPE, ECONNRESET:
                throw ClientError(
                    .closed, "connection closed by peer while sending (\(describeErrno(code)))")
            default:
                throw ClientError(.io, "send(): \(describeErrno(code))")
            }
        }
        return true
    }

    @discardableResult
    func send(_ bytes: [UInt8], deadline: Deadline, stopWhenReadable: Bool = false) throws(ClientError) -> Bool {
        let result = bytes.withUnsafeBytes { raw in
            Result { () throws(ClientError) -> Bool in
                try send(raw, deadline: deadline, stopWhenReadable: stopWhenReadable)
            }
        }
        return try result.get()
    }

    // MARK: - Closing

    func shutdownWrite() {
        if fd >= 0 { _ = shutdown(fd, Int32(SHUT_WR)) }
    }

    func close() {
        tls = nil
        if fd >= 0 {
            _ = sysClose(fd)
            fd = -1
        }
    }
}

@available(*, unavailable)
extension ClientSocket: Sendable {}
