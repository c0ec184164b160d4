import CEpoll
import HeraldClient

#if canImport(Glibc)
import Glibc
#endif

/// An epoll instance: the load tool waits on thousands of sockets at O(ready) cost, as the
/// gateways it measures do (a poll() over 10,000 sockets would measure the tool).
struct Poller: ~Copyable {
    let fd: Int32
    private var ready: UnsafeMutablePointer<epoll_event>
    static let batch = 512

    init() {
        fd = epoll_create1(Int32(EPOLL_CLOEXEC))
        precondition(fd >= 0, "epoll_create1 failed: errno \(errno)")
        ready = .allocate(capacity: Self.batch)
    }

    deinit {
        close(fd)
        ready.deallocate()
    }

    static let readable = EPOLLIN.rawValue | EPOLLRDHUP.rawValue
    static let writable = EPOLLOUT.rawValue

    /// Watches `socket` for `events`, reported with `token`.
    func add(_ socket: Int32, events: UInt32, token: Int) {
        var event = epoll_event()
        event.events = events
        event.data.u64 = UInt64(token)
        _ = epoll_ctl(fd, EPOLL_CTL_ADD, socket, &event)
    }

    func modify(_ socket: Int32, events: UInt32, token: Int) {
        var event = epoll_event()
        event.events = events
        event.data.u64 = UInt64(token)
        _ = epoll_ctl(fd, EPOLL_CTL_MOD, socket, &event)
    }

    func remove(_ socket: Int32) { _ = epoll_ctl(fd, EPOLL_CTL_DEL, socket, nil) }

    /// Waits at most `milliseconds` (-1: forever) and calls `body(token, events)` for each
    /// ready socket.
    func wait(milliseconds: Int32, _ body: (Int, UInt32) -> Void) {
        let n = epoll_wait(fd, ready, Int32(Self.batch), milliseconds)
        guard n > 0 else { return }
        for k in 0..<Int(n) { body(Int(ready[k].data.u64), ready[k].events) }
    }
}

/// Output a non-blocking socket did not take yet: kept in order behind what waits, with
/// the poller asked to report the socket writable until it is all gone.
struct SocketOutput {
    private(set) var unsent: [UInt8] = []
    private var watchingWrites = false

    var isEmpty: Bool { unsent.isEmpty }

    /// Queues `bytes` and writes what the socket (or its TLS session) takes now.
    mutating func write(
        _ bytes: [UInt8], fd: Int32, tls: TLSSession? = nil, poller: borrowing Poller, token: Int, reading: Bool
    ) throws(LoadFailure) {
        unsent.append(contentsOf: bytes)
        try flush(fd: fd, tls: tls, poller: poller, token: token, reading: reading)
    }

    /// Writes what waits; `reading` says whether the socket is also watched for input.
    mutating func flush(fd: Int32, tls: TLSSession?, poller: borrowing Poller, token: Int, reading: Bool) throws(LoadFailure) {
        var written = 0
        while written < unsent.count {
            let n = try unsent.withUnsafeBytes { bytes in
                Result { () throws(LoadFailure) in
                    try LoadSocket.transmit(fd, tls, bytes.baseAddress! + written, count: bytes.count - written)
                }
            }.get()
            if n == 0 { break }
            written += n
        }
        if written == unsent.count { unsent.removeAll(keepingCapacity: true) } else { unsent.removeFirst(written) }
        let watch = !unsent.isEmpty
        guard watch != watchingWrites else { return }
        watchingWrites = watch
        poller.modify(fd, events: (reading ? Poller.readable : 0) | (watch ? Poller.writable : 0), token: token)
    }
}

enum LoadSocket {
    /// A non-blocking TCP socket connecting to `address` from `source` (an IPv4 address
    /// of this host, e.g. 127.0.0.2: each source has its own 28k ephemeral ports), with
    /// Nagle off. Returns the socket, or an error text.
    static func connect(to address: sockaddr_in, from source: in_addr?) -> Result<Int32, LoadFailure> {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return .failure(LoadFailure("socket: \(errnoText())")) }
        var one: Int32 = 1
        _ = setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        if let source {
            // Choose the port at connect time, per destination: more connections per source.
            _ = setsockopt(fd, Int32(IPPROTO_IP), 24 /* IP_BIND_ADDRESS_NO_PORT */, &one, socklen_t(MemoryLayout<Int32>.size))
            var local = sockaddr_in()
            local.sin_family = sa_family_t(AF_INET)
            local.sin_addr = source
            let bound = withUnsafePointer(to: &local) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            guard bound == 0 else {
                let text = errnoText()
                close(fd)
                return .failure(LoadFailure("bind to a source address: \(text)"))
            }
        }
        var target = address
        let result = withUnsafePointer(to: &target) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard result == 0 || errno == EINPROGRESS else {
            let text = errnoText()
            close(fd)
            return .failure(LoadFailure("connect: \(text)"))
        }
        return .success(fd)
    }

    /// What one non-blocking read gave.
    enum Received {
        case bytes(Int)
        case wouldBlock
        case closed
        case failed(String)
    }

    /// Reads what the socket (or its TLS session) has into `buffer`.
    static func receive(_ fd: Int32, _ tls: TLSSession?, into buffer: UnsafeMutableRawBufferPointer) -> Received {
        guard let tls else {
            let n = read(fd, buffer.baseAddress, buffer.count)
            if n > 0 { return .bytes(n) }
            if n == 0 { return .closed }
            return errno == EAGAIN ? .wouldBlock : .failed("read: \(errnoText())")
        }
        do throws(ClientError) {
            switch try tls.read(into: buffer.baseAddress!, count: buffer.count) {
            case .done(let n): return .bytes(n)
            case .wantRead, .wantWrite: return .wouldBlock
            case .closed: return .closed
            }
        } catch {
            return .failed(error.message)
        }
    }

    /// Writes what the socket (or its TLS session) takes now; 0 when it takes nothing.
    static func transmit(_ fd: Int32, _ tls: TLSSession?, _ base: UnsafeRawPointer, count: Int) throws(LoadFailure) -> Int {
        guard let tls else {
            let n = send(fd, base, count, Int32(MSG_NOSIGNAL))
            if n >= 0 { return n }
            if errno == EAGAIN { return 0 }
            throw LoadFailure("write: \(errnoText())")
        }
        do throws(ClientError) {
            switch try tls.write(base, count: count) {
            case .done(let n): return n
            case .wantRead, .wantWrite: return 0
            case .closed: throw ClientError(.closed, "the server closed the TLS session")
            }
        } catch {
            throw LoadFailure("write: \(error.message)")
        }
    }

    /// One step of a TLS handshake on a connected socket: nil when it is done, else the
    /// epoll events to wait for.
    static func handshake(_ tls: TLSSession) throws(LoadFailure) -> UInt32? {
        do throws(ClientError) {
            switch try tls.handshake() {
            case .done: return nil
            case .wantRead: return Poller.readable
            case .wantWrite: return Poller.writable
            case .closed: throw ClientError(.closed, "the server closed the connection during the TLS handshake")
            }
        } catch {
            throw LoadFailure(error.message)
        }
    }

    /// A TLS session on a socket whose connect is under way, handshaken before it returns
    /// (waiting at most 10 s): the few publisher connections start this way.
    static func secure(_ fd: Int32, context: TLSClientContext, host: String) throws(LoadFailure) -> TLSSession {
        let session: TLSSession
        do throws(ClientError) {
            session = try TLSSession(context: context, fd: fd, host: host)
        } catch {
            throw LoadFailure("TLS: \(error.message)")
        }
        let deadline = monotonicNanoseconds() + 10_000_000_000
        var waitFor = Poller.writable  // the connect first
        while true {
            var pfd = pollfd(
                fd: fd, events: Int16(truncatingIfNeeded: waitFor & Poller.writable != 0 ? UInt32(POLLOUT) : UInt32(POLLIN)), revents: 0)
            guard monotonicNanoseconds() < deadline, poll(&pfd, 1, 100) >= 0 || errno == EINTR else {
                throw LoadFailure("TLS handshake: no answer in 10 s")
            }
            if pfd.revents == 0 { continue }
            let failure = connectError(fd)
            guard failure == 0 else { throw LoadFailure("connect: \(String(cString: strerror(failure)))") }
            guard let next = try handshake(session) else { return session }
            waitFor = next
        }
    }

    /// The outcome of a non-blocking connect, once the socket is writable.
    static func connectError(_ fd: Int32) -> Int32 {
        var error: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        _ = getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length)
        return error
    }

    /// The IPv4 address of `host` (a dotted quad or a name), port `port`.
    static func resolve(_ host: String, port: Int) throws(LoadFailure) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        if inet_pton(AF_INET, host, &address.sin_addr) == 1 { return address }
        var hints = addrinfo()
        hints.ai_family = AF_INET
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, nil, &hints, &list) == 0, let first = list, let found = first.pointee.ai_addr else {
            throw LoadFailure("cannot resolve \(host) to an IPv4 address")
        }
        defer { freeaddrinfo(list) }
        address.sin_addr = found.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { $0.pointee.sin_addr }
        return address
    }

    /// `count` source addresses 127.0.0.1, 127.0.0.2, …: nil for one (the kernel chooses).
    static func loopbackSources(_ count: Int) -> [in_addr]? {
        guard count > 1 else { return nil }
        return (1...count).map { in_addr(s_addr: (UInt32(127) << 24 | UInt32($0)).bigEndian) }
    }

    static func errnoText() -> String { String(cString: strerror(errno)) }
}

/// What went wrong in a load run, said for the person running it.
public struct LoadFailure: Error, Sendable, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// The monotonic clock in nanoseconds: the time every `sentAt` and latency is measured in.
@inline(__always)
public func monotonicNanoseconds() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}
