import CHiredis
public import HeraldCore

#if canImport(Glibc)
import Glibc
#endif

/// One blocking connection to Redis, through hiredis.
///
/// Why it exists: the cluster broker (`RedisStreamBroker`) appends each accepted batch to
/// the shared stream and reads it with `XREAD BLOCK` on threads of its own; this is the
/// connection those threads own. Replies come back as
/// Swift values and every failure as a `HeraldError` (`storage_unavailable`) that names
/// the server, so a dead Redis is reported, never crashes the gateway.
///
/// Owned by one thread at a time; not thread-safe.
public final class RedisConnection {
    /// A Redis reply, copied out of hiredis' memory.
    public enum Reply: Equatable, Sendable {
        case string([UInt8])
        case status(String)
        case integer(Int64)
        case array([Reply])
        case null
        /// An error reply (`-ERR …`): the command failed, the connection is fine.
        case error(String)
    }

    public let host: String
    public let port: Int
    private var context: UnsafeMutablePointer<redisContext>?

    /// Connects within `timeout`; commands then wait at most `timeout` for their reply.
    public init(host: String, port: Int, timeout: Duration = .seconds(5)) throws(HeraldError) {
        self.host = host
        self.port = port
        let (seconds, attoseconds) = timeout.components
        let limit = timeval(tv_sec: Int(seconds), tv_usec: Int(attoseconds / 1_000_000_000_000))
        guard let made = redisConnectWithTimeout(host, Int32(port), limit) else {
            throw HeraldError(.storageUnavailable, "cannot reach Redis at \(host):\(port): out of memory")
        }
        if made.pointee.err != 0 {
            let reason = Self.errorText(made)
            redisFree(made)
            throw HeraldError(.storageUnavailable, "cannot reach Redis at \(host):\(port): \(reason)")
        }
        redisSetTimeout(made, limit)
        context = made
    }

    deinit { close() }

    public func close() {
        if let context { redisFree(context) }
        context = nil
    }

    /// Runs one command (binary-safe arguments) and returns its reply. An I/O error
    /// closes the connection and throws; an error reply is returned as `.error`.
    public func command(_ arguments: [[UInt8]]) throws(HeraldError) -> Reply {
        try pipeline([arguments])[0]
    }

    /// Sends several commands in one write and returns their replies, in order (one round
    /// trip however many). An I/O error closes the connection and throws: then none of
    /// the replies is known, although Redis may have run some of the commands.
    public func pipeline(_ commands: [[[UInt8]]]) throws(HeraldError) -> [Reply] {
        guard let context else { throw HeraldError(.storageUnavailable, "the connection to Redis at \(host):\(port) is closed") }
        for arguments in commands {
            let appended = Self.withArgv(arguments) { count, argv, lengths in
                herald_redis_append(context, count, argv, lengths)
            }
            guard appended == REDIS_OK else { throw failure(context) }
        }
        var replies: [Reply] = []
        replies.reserveCapacity(commands.count)
        for _ in commands {
            guard let raw = herald_redis_next_reply(context) else { throw failure(context) }
            replies.append(Self.copy(raw))
            freeReplyObject(raw)
        }
        return replies
    }

    /// Closes the connection after an I/O error and says why.
    private func failure(_ context: UnsafeMutablePointer<redisContext>) -> HeraldError {
        let reason = Self.errorText(context)
        close()
        return HeraldError(.storageUnavailable, "Redis at \(host):\(port) failed: \(reason)")
    }

    /// Calls `body` with C argument vectors for binary-safe `arguments`.
    private static func withArgv<Result>(
        _ arguments: [[UInt8]], _ body: (Int32, UnsafeMutablePointer<UnsafePointer<CChar>?>, UnsafePointer<Int>) -> Result
    ) -> Result {
        let pointers = arguments.map { bytes -> UnsafeMutablePointer<CChar> in
            let copy = UnsafeMutablePointer<CChar>.allocate(capacity: max(bytes.count, 1))
            bytes.withUnsafeBytes { raw in
                if let base = raw.baseAddress { UnsafeMutableRawPointer(copy).copyMemory(from: base, byteCount: raw.count) }
            }
            return copy
        }
        defer { pointers.forEach { $0.deallocate() } }
        var argv = pointers.map { UnsafePointer<CChar>?($0) }
        let lengths = arguments.map(\.count)
        return body(Int32(arguments.count), &argv, lengths)
    }

    /// `command` with text arguments.
    public func command(_ arguments: String...) throws(HeraldError) -> Reply {
        try command(arguments.map { Array($0.utf8) })
    }

    private static func copy(_ reply: UnsafeMutablePointer<redisReply>) -> Reply {
        let r = reply.pointee
        func bytes() -> [UInt8] {
            guard let text = r.str, r.len > 0 else { return [] }
            return Array(UnsafeRawBufferPointer(start: text, count: Int(r.len)))
        }
        switch Int32(r.type) {
        case REDIS_REPLY_STRING: return .string(bytes())
        case REDIS_REPLY_STATUS: return .status(String(decoding: bytes(), as: UTF8.self))
        case REDIS_REPLY_ERROR: return .error(String(decoding: bytes(), as: UTF8.self))
        case REDIS_REPLY_INTEGER: return .integer(Int64(r.integer))
        case REDIS_REPLY_ARRAY:
            return .array((0..<Int(r.elements)).map { copy(r.element[$0]!) })
        default: return .null
        }
    }

    private static func errorText(_ context: UnsafeMutablePointer<redisContext>) -> String {
        withUnsafePointer(to: context.pointee.errstr) {
            $0.withMemoryRebound(to: CChar.self, capacity: 128) { String(cString: $0) }
        }
    }
}
