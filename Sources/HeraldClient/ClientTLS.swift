import COpenSSL

/// The trust the built-in client gives servers over TLS (https://, wss://): OpenSSL with
/// Herald's policy (TLS 1.2+, forward-secret AEAD ciphers), verifying every server
/// against `caFile` or the system's certificate authorities. One context serves any
/// number of connections on any thread; it is never changed after `init`.
public final class TLSClientContext: @unchecked Sendable {
    let context: UnsafeMutableRawPointer

    /// - Parameter caFile: a PEM file of the certificates to trust (a private CA or a
    ///   self-signed server certificate); nil trusts the system's authorities.
    public init(caFile: String? = nil) throws(ClientError) {
        var reason = [CChar](repeating: 0, count: 512)
        guard let made = herald_tls_client_context(caFile, &reason, reason.count) else {
            throw ClientError(.tls, text(of: reason))
        }
        context = made
    }

    deinit { herald_tls_context_free(context) }

    /// The context for `endpoint`: `given` (or the system's trust) when it is https/wss,
    /// nil for plain http/ws.
    package static func forEndpoint(_ endpoint: EndpointURL, given: TLSClientContext?) throws(ClientError) -> TLSClientContext? {
        guard endpoint.scheme.isSecure else { return nil }
        if let given { return given }
        return try TLSClientContext()
    }
}

/// One TLS session over a connected non-blocking socket. Each call says what it needs
/// before it can go on (`Step`), so the owner waits with `poll` or epoll as for plain TCP.
/// (Also the load tool's, for https:// and wss:// subscribers and publishers.)
package final class TLSSession {
    private let session: UnsafeMutableRawPointer
    private var reason = [CChar](repeating: 0, count: 512)

    package init(context: TLSClientContext, fd: Int32, host: String) throws(ClientError) {
        guard let made = herald_tls_client_session(context.context, fd, host, isIPLiteral(host) ? 1 : 0) else {
            throw ClientError(.tls, "cannot start a TLS session for \(host)")
        }
        session = made
    }

    deinit { herald_tls_session_free(session) }

    /// The outcome of one non-blocking TLS call.
    package enum Step {
        case done(Int)
        case wantRead
        case wantWrite
        /// The peer ended the TLS stream (close_notify, or TCP EOF).
        case closed
    }

    package func handshake() throws(ClientError) -> Step {
        try step(Int(herald_tls_handshake(session, &reason, reason.count)), what: "TLS handshake")
    }

    package func read(into buffer: UnsafeMutableRawPointer, count: Int) throws(ClientError) -> Step {
        try step(herald_tls_read(session, buffer, Int32(clamping: count), &reason, reason.count), what: "TLS read")
    }

    package func write(_ buffer: UnsafeRawPointer, count: Int) throws(ClientError) -> Step {
        try step(herald_tls_write(session, buffer, Int32(clamping: count), &reason, reason.count), what: "TLS write")
    }

    /// Decrypted bytes waiting inside the session (poll cannot see them).
    package var pending: Int { Int(herald_tls_pending(session)) }

    private func step(_ result: Int, what: String) throws(ClientError) -> Step {
        switch result {
        case Int(HERALD_TLS_WANT_READ): return .wantRead
        case Int(HERALD_TLS_WANT_WRITE): return .wantWrite
        case Int(HERALD_TLS_FAILED):
            throw ClientError(.tls, "\(what): \(text(of: reason))")
        case Int(HERALD_TLS_BROKEN):
            throw ClientError(.closed, "connection closed by peer during \(what) (\(text(of: reason)))")
        case 0: return .closed
        default: return .done(result)
        }
    }
}

/// The NUL-terminated text OpenSSL's helpers wrote into `buffer`.
private func text(of buffer: [CChar]) -> String {
    String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

/// "127.0.0.1" or "::1" rather than a DNS name (certificates name them differently).
private func isIPLiteral(_ host: String) -> Bool {
    host.contains(":") || (!host.isEmpty && host.allSatisfy { $0 == "." || ($0.isASCII && $0.isNumber) })
}
