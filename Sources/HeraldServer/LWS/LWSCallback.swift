import CLibWebSockets
import Logging

/// The single libwebsockets callback: it turns lws' raw-socket reasons into calls on the
/// `Gateway` and returns what lws must do (non-zero closes the connection). After each,
/// the sessions the Hub woke are asked for WRITEABLE callbacks.
///
/// The gateway is found through the context's user pointer (set once in `ServiceLoop`).
/// Each connection's `Connection` object is retained in the socket's opaque user data from
/// `RAW_ADOPT` to `RAW_CLOSE`: those are the only `Unmanaged` hand-offs of a connection.
func heraldCallback(
    _ wsi: OpaquePointer?,
    _ reason: lws_callback_reasons,
    _ user: UnsafeMutableRawPointer?,
    _ input: UnsafeMutableRawPointer?,
    _ length: Int
) -> Int32 {
    guard let wsi, let context = lws_get_context(wsi), let opaque = lws_context_user(context) else { return 0 }
    let loop = Unmanaged<ServiceLoop>.fromOpaque(opaque).takeUnretainedValue()
    let gateway = loop.gateway
    // Whatever the event did, the sessions it gave something to write get a WRITEABLE.
    defer { gateway.applyWakes() }
    switch reason {
    case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
        loop.drainInbox()
        return 0
    case LWS_CALLBACK_RAW_RX_FILE:  // the only files a loop watches: its listening sockets
        loop.acceptConnections(watchedBy: wsi)
        return 0
    case LWS_CALLBACK_OPENSSL_LOAD_EXTRA_SERVER_VERIFY_CERTS:  // `user` is the vhost's new SSL_CTX
        guard let user else { return 1 }
        return loop.adoptTLSContext(user) ? 0 : 1
    case LWS_CALLBACK_RAW_ADOPT:
        let connection = gateway.opened(Socket(wsi: wsi), redirectsToTLS: loop.adoptingRedirect)
        lws_set_opaque_user_data(wsi, Unmanaged.passRetained(connection).toOpaque())
        return 0
    case LWS_CALLBACK_RAW_RX:
        guard let connection = connection(of: wsi) else { return -1 }
        return gateway.received(UnsafeRawBufferPointer(start: input, count: length), on: connection) ? 0 : -1
    case LWS_CALLBACK_RAW_WRITEABLE:
        guard let connection = connection(of: wsi) else { return -1 }
        return gateway.writable(connection) ? 0 : -1
    case LWS_CALLBACK_RAW_CLOSE:
        guard let pointer = lws_get_opaque_user_data(wsi) else { return 0 }
        lws_set_opaque_user_data(wsi, nil)
        gateway.closed(Unmanaged<Connection>.fromOpaque(pointer).takeRetainedValue())
        return 0
    default:
        return 0
    }
}

private func connection(of wsi: OpaquePointer) -> Connection? {
    lws_get_opaque_user_data(wsi).map { Unmanaged<Connection>.fromOpaque($0).takeUnretainedValue() }
}

/// lws' log lines, routed to swift-log.
func heraldLWSLog(_ level: Int32, _ line: UnsafePointer<CChar>?) {
    guard let line else { return }
    var text = String(cString: line)
    while text.last == "\n" { text.removeLast() }
    if level & herald_lll_err != 0 {
        lwsLogger.error("\(text)")
    } else if level & herald_lll_warn != 0 {
        lwsLogger.warning("\(text)")
    } else {
        lwsLogger.info("\(text)")
    }
}
