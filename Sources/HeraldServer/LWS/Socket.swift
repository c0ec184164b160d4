import CLibWebSockets
import HeraldCore

#if canImport(Glibc)
import Glibc
#endif

/// One accepted TCP connection as libwebsockets knows it: a raw socket that Herald reads
/// and writes bytes on. HTTP and WebSocket are Herald's own (see `HTTPRequestDecoder`).
///
/// A `Socket` is valid on the loop thread from its `opened` event to its `closed` event;
/// every call must come from that thread. Raw pointers and C return codes stop here.
struct Socket: Hashable {
    let wsi: OpaquePointer

    /// Hands `count` bytes at `start` to lws in one `lws_write`; `start` must have
    /// `Socket.headroom` writable bytes in front of it. lws keeps what the kernel does
    /// not take yet and sends it before the next WRITEABLE callback.
    /// - Returns: false when the connection failed and must be closed.
    func write(_ start: UnsafeMutableRawPointer, count: Int) -> Bool {
        lws_write(wsi, start.assumingMemoryBound(to: UInt8.self), count, herald_write_raw) >= count
    }

    /// lws still holds bytes of an earlier write that the kernel did not take.
    var holdsUnsentBytes: Bool { lws_partial_buffered(wsi) != 0 }

    /// Asks for a WRITEABLE callback.
    func requestWritable() {
        lws_callback_on_writable(wsi)
    }

    /// Stops or resumes reading input (the kernel then pushes back on the client).
    func setReading(_ enabled: Bool) {
        _ = lws_rx_flow_control(wsi, enabled ? 1 : 0)
    }

    /// Closes the connection from outside its own callbacks (lws closes it at once, on
    /// this thread, and then reports `closed`).
    func kill() {
        lws_set_timeout(wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC)
    }

    /// Cancels lws' own timeout on the connection (the one it sets once a TLS handshake
    /// completes, for a request to arrive); Herald's timers govern from then on.
    func clearLibraryTimeout() {
        lws_set_timeout(wsi, NO_PENDING_TIMEOUT, 0)
    }

    /// The peer's IP address as text.
    var peerAddress: String {
        withUnsafeTemporaryAllocation(of: CChar.self, capacity: 64) { buffer in
            buffer.initialize(repeating: 0)
            _ = lws_get_peer_simple(wsi, buffer.baseAddress, 64)
            return String(cString: buffer.baseAddress!)
        }
    }

    /// Bytes of headroom lws needs in front of every buffer passed to `write`.
    static let headroom = Int(herald_lws_pre)

    /// Returns the allocator's free memory to the system (after a wave of disconnects).
    static func releaseFreeMemory() { herald_release_free_memory() }

    /// The libwebsockets version string.
    static var libraryVersion: String { String(cString: lws_get_library_version()) }

    /// Maps the config's lws log level name to lws' bit mask.
    static func logMask(_ name: String) -> Int32 {
        switch name {
        case "none": 0
        case "error": herald_lll_err
        case "warn": herald_lll_err | herald_lll_warn
        case "notice": herald_lll_err | herald_lll_warn | herald_lll_notice
        default: herald_lll_err | herald_lll_warn | herald_lll_notice | herald_lll_info
        }
    }
}
