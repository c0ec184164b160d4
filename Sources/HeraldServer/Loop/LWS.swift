import CLibWebSockets
import HeraldCore

/// Thin wrappers over the raw libwebsockets calls Herald makes on a connection.
///
/// Every call here must run on the loop thread that owns the context; nothing in this
/// file keeps state. Raw pointers and C return codes stop here.
enum LWS {
    /// Bytes of headroom every `lws_write` buffer needs in front of it.
    static let pre = Int(herald_lws_pre)

    /// The value of a well-known header, or nil when absent.
    static func header(_ wsi: OpaquePointer, _ token: lws_token_indexes, maxLength: Int = 8192) -> String? {
        let length = Int(lws_hdr_total_length(wsi, token))
        guard length > 0, length <= maxLength else { return nil }
        return withUnsafeTemporaryAllocation(of: CChar.self, capacity: length + 1) { buffer in
            let copied = lws_hdr_copy(wsi, buffer.baseAddress, Int32(length + 1), token)
            guard copied >= 0 else { return nil }
            return String(decoding: UnsafeRawBufferPointer(start: buffer.baseAddress, count: Int(copied)), as: UTF8.self)
        }
    }

    /// True when the request carries the header at all (even empty).
    static func hasHeader(_ wsi: OpaquePointer, _ token: lws_token_indexes) -> Bool {
        lws_hdr_total_length(wsi, token) > 0
    }

    /// A header lws has no token for (`name` is lowercase with the trailing colon: "ce-id:").
    static func customHeader(_ wsi: OpaquePointer, _ name: String, maxLength: Int = 8192) -> String? {
        name.withCString { cName -> String? in
            let nameLength = Int32(name.utf8.count)
            let length = Int(lws_hdr_custom_length(wsi, cName, nameLength))
            guard length > 0, length <= maxLength else { return nil }
            return withUnsafeTemporaryAllocation(of: CChar.self, capacity: length + 1) { buffer in
                let copied = lws_hdr_custom_copy(wsi, buffer.baseAddress, Int32(length + 1), cName, nameLength)
                guard copied >= 0 else { return nil }
                return String(decoding: UnsafeRawBufferPointer(start: buffer.baseAddress, count: Int(copied)), as: UTF8.self)
            }
        }
    }

    /// The url-decoded value of query argument `name`, or nil. The buffer holds the whole
    /// query, so no argument is ever cut short.
    static func queryArgument(_ wsi: OpaquePointer, _ name: String) -> String? {
        let capacity = Int(lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_URI_ARGS)) + name.utf8.count + 2
        return withUnsafeTemporaryAllocation(of: CChar.self, capacity: capacity) { buffer in
            guard let value = lws_get_urlarg_by_name(wsi, name + "=", buffer.baseAddress, Int32(capacity)) else { return nil }
            return String(cString: value)
        }
    }

    /// The request method, from which URI token lws filled in.
    static func method(_ wsi: OpaquePointer) -> String {
        let methods: [(lws_token_indexes, String)] = [
            (WSI_TOKEN_GET_URI, "GET"), (WSI_TOKEN_POST_URI, "POST"), (WSI_TOKEN_OPTIONS_URI, "OPTIONS"),
            (WSI_TOKEN_HEAD_URI, "HEAD"), (WSI_TOKEN_PUT_URI, "PUT"), (WSI_TOKEN_DELETE_URI, "DELETE"),
            (WSI_TOKEN_PATCH_URI, "PATCH"),
        ]
        for (token, name) in methods where hasHeader(wsi, token) { return name }
        return "UNKNOWN"
    }

    /// The peer's IP address as text.
    static func peerAddress(_ wsi: OpaquePointer) -> String {
        withUnsafeTemporaryAllocation(of: CChar.self, capacity: 64) { buffer in
            buffer.initialize(repeating: 0)
            _ = lws_get_peer_simple(wsi, buffer.baseAddress, 64)
            return String(cString: buffer.baseAddress!)
        }
    }

    /// True when the socket has input waiting (end-of-stream included), peeked without
    /// consuming it. An SSE client has nothing more to send after its request, so for an
    /// SSE stream this means the peer closed (or misbehaves); see `Gateway.sweepStreams`.
    static func hasPendingInput(_ wsi: OpaquePointer) -> Bool {
        let fd = lws_get_socket_fd(wsi)
        guard fd >= 0 else { return true }
        var byte: UInt8 = 0
        return recv(fd, &byte, 1, Int32(MSG_PEEK | MSG_DONTWAIT)) >= 0
    }

    /// Writes `count` bytes at `start`, which must have `pre` writable bytes in front.
    /// - Returns: false when the connection failed and must be closed.
    static func write(_ wsi: OpaquePointer, _ start: UnsafeMutableRawPointer, _ count: Int, _ kind: lws_write_protocol) -> Bool {
        lws_write(wsi, start.assumingMemoryBound(to: UInt8.self), count, kind) >= count
    }

    /// Asks lws for a WRITEABLE callback on this connection.
    static func requestWritable(_ wsi: OpaquePointer) {
        lws_callback_on_writable(wsi)
    }

    /// Writes an HTTP response head: status, content type and length, extra headers.
    /// - Returns: false when the head could not be built or written.
    static func writeHead(_ wsi: OpaquePointer, status: Int, contentType: String, contentLength: Int?, headers: [(String, String)]) -> Bool {
        let capacity = pre + 2048 + headers.reduce(0) { $0 + $1.0.utf8.count + $1.1.utf8.count + 8 }
        return withUnsafeTemporaryAllocation(of: UInt8.self, capacity: capacity) { buffer in
            let start = buffer.baseAddress! + pre
            let end = buffer.baseAddress! + capacity - 1
            var cursor: UnsafeMutablePointer<UInt8>? = start
            let length = contentLength.map { lws_filepos_t($0) } ?? herald_lws_illegal_content_length
            if lws_add_http_common_headers(wsi, UInt32(status), contentType, length, &cursor, end) != 0 { return false }
            for (name, value) in headers {
                let added = (name.lowercased() + ":").withCString { cName in
                    value.withCString { cValue in
                        lws_add_http_header_by_name(wsi, UnsafeRawPointer(cName).assumingMemoryBound(to: UInt8.self),
                                                    UnsafeRawPointer(cValue).assumingMemoryBound(to: UInt8.self),
                                                    Int32(value.utf8.count), &cursor, end)
                    }
                }
                if added != 0 { return false }
            }
            return lws_finalize_write_http_header(wsi, start, &cursor, end) == 0
        }
    }

    /// Sets the close code and reason sent when this WebSocket is closed by returning -1.
    static func setCloseReason(_ wsi: OpaquePointer, code: UInt16, reason: String) {
        var bytes = Array(reason.utf8.prefix(120))
        bytes.withUnsafeMutableBufferPointer { buffer in
            lws_close_reason(wsi, lws_close_status(rawValue: UInt32(code)), buffer.baseAddress, buffer.count)
        }
    }

    /// The libwebsockets version string.
    static var version: String { String(cString: lws_get_library_version()) }

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

/// A growable byte buffer with `LWS.pre` bytes of headroom, reused for every write of one
/// connection so that sending does not allocate.
final class WriteBuffer {
    private var storage: UnsafeMutableRawBufferPointer
    /// Bytes written after the headroom.
    private(set) var count = 0

    init(capacity: Int = 1024) {
        storage = .allocate(byteCount: LWS.pre + capacity, alignment: 16)
    }

    deinit { storage.deallocate() }

    /// The first byte after the headroom.
    var start: UnsafeMutableRawPointer { storage.baseAddress! + LWS.pre }

    func reset() { count = 0 }

    private func reserve(_ extra: Int) {
        let needed = LWS.pre + count + extra
        guard needed > storage.count else { return }
        let grown = UnsafeMutableRawBufferPointer.allocate(byteCount: max(needed, storage.count * 2), alignment: 16)
        grown.copyMemory(from: UnsafeRawBufferPointer(rebasing: storage[0..<(LWS.pre + count)]))
        storage.deallocate()
        storage = grown
    }

    func append(_ bytes: UnsafeRawBufferPointer) {
        reserve(bytes.count)
        if let base = bytes.baseAddress, bytes.count > 0 { (start + count).copyMemory(from: base, byteCount: bytes.count) }
        count += bytes.count
    }

    func append(_ bytes: [UInt8]) { bytes.withUnsafeBytes { append($0) } }

    func append(_ text: StaticString) { append(UnsafeRawBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount)) }

    func append(byte: UInt8) {
        reserve(1)
        (start + count).storeBytes(of: byte, as: UInt8.self)
        count += 1
    }

    /// Appends the header of an unmasked, final WebSocket text frame (RFC 6455 §5.2).
    func appendWebSocketTextHeader(length: Int) {
        append(byte: 0x81)
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
}
