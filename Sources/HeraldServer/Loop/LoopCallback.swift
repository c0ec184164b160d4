import CLibWebSockets
import Logging

/// The single libwebsockets callback of every Herald protocol.
///
/// It finds the `Gateway` through the context's user pointer (set once in
/// `HeraldServer.init`, the only `Unmanaged` hand-off) and forwards the event.
func heraldCallback(
    _ wsi: OpaquePointer?,
    _ reason: lws_callback_reasons,
    _ user: UnsafeMutableRawPointer?,
    _ input: UnsafeMutableRawPointer?,
    _ length: Int
) -> Int32 {
    guard let wsi, let context = lws_get_context(wsi), let opaque = lws_context_user(context) else {
        return lws_callback_http_dummy(wsi, reason, user, input, length)
    }
    let loop = Unmanaged<ServiceLoop>.fromOpaque(opaque).takeUnretainedValue()
    if reason == LWS_CALLBACK_EVENT_WAIT_CANCELLED {
        loop.wakeUp()
        return 0
    }
    return loop.gateway.handle(wsi, reason, user, input, length)
}

/// lws' log lines, routed to swift-log.
func heraldLWSLog(_ level: Int32, _ line: UnsafePointer<CChar>?) {
    guard let line else { return }
    var text = String(cString: line)
    while text.last == "\n" { text.removeLast() }
    // lws_http_mark_sse() reports this for every HTTP/1 SSE stream; it is expected there.
    if text.hasSuffix("lws_mux_mark_immortal: not h2 substream") { return }
    if level & herald_lll_err != 0 {
        lwsLogger.error("\(text)")
    } else if level & herald_lll_warn != 0 {
        lwsLogger.warning("\(text)")
    } else {
        lwsLogger.info("\(text)")
    }
}
