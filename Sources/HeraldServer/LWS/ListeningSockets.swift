import HeraldCore

#if canImport(Glibc)
import Glibc
#endif

/// The gateway's listening sockets, one per loop, opened by Herald rather than by
/// libwebsockets.
///
/// Why: several loops share the port through `SO_REUSEPORT` (the kernel spreads new
/// connections over their sockets), and lws 4.1.6 as Debian builds it (`LWS_MAX_SMP` 1)
/// sets that option only for its own service threads. So each loop's context listens on
/// nothing (`CONTEXT_PORT_NO_LISTEN_SERVER`), watches its socket as an adopted file
/// descriptor, accepts itself and hands every connection to lws (`ServiceLoop.accept`).
enum ListeningSockets {
    /// Opens `count` non-blocking listening sockets on `host:port` (port 0: the kernel
    /// picks one, shared by all) and returns them with the bound port.
    static func open(host: String, port: Int, count: Int) throws(HeraldError) -> (sockets: [Int32], port: Int) {
        func failure(_ detail: String) -> HeraldError {
            HeraldError(.io, "could not listen on \(host):\(port) (\(detail))")
        }
        // SO_REUSEPORT would also join a port another process listens on: refuse that
        // as a plain listener would.
        if count > 1, port != 0, !isFree(host: host, port: port) { throw failure("address in use") }
        var hints = addrinfo()
        hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var found: UnsafeMutablePointer<addrinfo>?
        let anyFamily = host == "*" || host == "::"  // IPv6 and IPv4 on one socket
        let name = host == "*" ? "::" : host
        let resolved = getaddrinfo(name, "0", &hints, &found)
        guard resolved == 0, let address = found else { throw failure(String(cString: gai_strerror(resolved))) }
        defer { freeaddrinfo(found) }
        var sockets: [Int32] = []
        var boundPort = port
        for _ in 0..<count {
            let socket = Glibc.socket(
                address.pointee.ai_family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            guard socket >= 0 else {
                sockets.forEach { close($0) }
                throw failure(String(cString: strerror(errno)))
            }
            sockets.append(socket)
            enable(SO_REUSEADDR, level: SOL_SOCKET, on: socket)
            if count > 1 { enable(SO_REUSEPORT, level: SOL_SOCKET, on: socket) }
            enable(TCP_NODELAY, level: Int32(IPPROTO_TCP), on: socket)  // accepted sockets inherit it
            if anyFamily, address.pointee.ai_family == AF_INET6 {
                var off: Int32 = 0
                setsockopt(socket, Int32(IPPROTO_IPV6), IPV6_V6ONLY, &off, socklen_t(MemoryLayout<Int32>.size))
            }
            let bound = withPort(boundPort, of: address.pointee) { bind(socket, $0, $1) }
            guard bound == 0, listen(socket, 4096) == 0 else {
                let reason = errno == EADDRINUSE ? "address in use" : String(cString: strerror(errno))
                sockets.forEach { close($0) }
                throw failure(reason)
            }
            if boundPort == 0 { boundPort = localPort(of: socket) }
        }
        return (sockets, boundPort)
    }

    /// Whether a listener without `SO_REUSEPORT` could bind `host:port` now.
    private static func isFree(host: String, port: Int) -> Bool {
        guard let (sockets, _) = try? open(host: host, port: port, count: 1) else { return false }
        sockets.forEach { close($0) }
        return true
    }

    private static func enable(_ option: Int32, level: Int32, on socket: Int32) {
        var on: Int32 = 1
        setsockopt(socket, level, option, &on, socklen_t(MemoryLayout<Int32>.size))
    }

    /// Calls `body` with a copy of `address` whose port is `port`.
    private static func withPort(_ port: Int, of address: addrinfo, _ body: (UnsafePointer<sockaddr>, socklen_t) -> Int32) -> Int32 {
        var storage = sockaddr_storage()
        return withUnsafeMutableBytes(of: &storage) { raw in
            raw.copyMemory(from: UnsafeRawBufferPointer(start: address.ai_addr, count: Int(address.ai_addrlen)))
            let networkPort = in_port_t(UInt16(port).bigEndian)
            if address.ai_family == AF_INET6 {
                raw.withMemoryRebound(to: sockaddr_in6.self) { $0[0].sin6_port = networkPort }
            } else {
                raw.withMemoryRebound(to: sockaddr_in.self) { $0[0].sin_port = networkPort }
            }
            return body(raw.baseAddress!.assumingMemoryBound(to: sockaddr.self), address.ai_addrlen)
        }
    }

    private static func localPort(of socket: Int32) -> Int {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        return withUnsafeMutableBytes(of: &storage) { raw in
            guard getsockname(socket, raw.baseAddress!.assumingMemoryBound(to: sockaddr.self), &length) == 0 else { return 0 }
            if raw.load(as: sa_family_t.self) == AF_INET6 {
                return Int(UInt16(bigEndian: raw.load(as: sockaddr_in6.self).sin6_port))
            }
            return Int(UInt16(bigEndian: raw.load(as: sockaddr_in.self).sin_port))
        }
    }
}
