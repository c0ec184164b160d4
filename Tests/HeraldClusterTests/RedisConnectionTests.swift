import HeraldCluster
import HeraldCore
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The hiredis connection against a real `redis-server` (Debian's, started here on a free
/// port, without persistence): commands and replies, stream appends and reads, and a dead
/// server reported as an error, not a crash.
@Suite(.serialized) struct RedisConnectionTests {
    /// A `redis-server` of its own, stopped by `stop()`.
    final class RedisServer: @unchecked Sendable {
        private var pid: pid_t = 0
        let port: Int

        init() throws {
            // A port the kernel just handed out and released (the server binds it at once).
            let probe = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            var length = socklen_t(MemoryLayout<sockaddr_in>.size)
            _ = withUnsafeMutablePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(probe, $0, length) }
            }
            _ = withUnsafeMutablePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(probe, $0, &length) }
            }
            port = Int(UInt16(bigEndian: address.sin_port))
            close(probe)
            let arguments = [
                "redis-server", "--port", "\(port)", "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--logfile", "/dev/null",
            ]
            var argv = arguments.map { strdup($0) } + [nil]
            defer { argv.forEach { free($0) } }
            guard posix_spawn(&pid, "/usr/bin/redis-server", nil, nil, &argv, environ) == 0 else {
                throw HeraldError(.io, "cannot start /usr/bin/redis-server (apt-get install redis-server)")
            }
        }

        /// A connection, retried while the server starts.
        func connect() throws -> RedisConnection {
            var last: (any Error)?
            for _ in 0..<100 {
                do { return try RedisConnection(host: "127.0.0.1", port: port, timeout: .seconds(2)) } catch {
                    last = error
                    usleep(20_000)
                }
            }
            throw last!
        }

        func stop() {
            guard pid > 0 else { return }
            kill(pid, SIGKILL)
            var status: Int32 = 0
            waitpid(pid, &status, 0)
            pid = 0
        }
    }

    @Test func commandsRepliesAndStreams() throws {
        let server = try RedisServer()
        defer { server.stop() }
        let redis = try server.connect()
        #expect(try redis.command("PING") == .status("PONG"))
        #expect(try redis.command("SET", "k", "v\u{0}binary") == .status("OK"))
        #expect(try redis.command("GET", "k") == .string(Array("v\u{0}binary".utf8)))
        #expect(try redis.command("GET", "missing") == .null)
        #expect(try redis.command("INCR", "n") == .integer(1))
        guard case .error(let message) = try redis.command("INCR", "k") else { throw CancellationError() }
        #expect(message.contains("not an integer"), "an error reply, the connection still usable")
        #expect(try redis.command("PING") == .status("PONG"))
        // A stream: what the cluster broker appends and reads.
        guard case .string(let id) = try redis.command("XADD", "herald", "*", "event", #"{"n":1}"#) else {
            throw CancellationError()
        }
        let read = try redis.command("XREAD", "COUNT", "10", "STREAMS", "herald", "0")
        #expect(
            read
                == .array([
                    .array([
                        .string(Array("herald".utf8)),
                        .array([.array([.string(id), .array([.string(Array("event".utf8)), .string(Array(#"{"n":1}"#.utf8))])])]),
                    ])
                ]))
    }

    @Test func pipelinedRepliesComeBackInOrder() throws {
        let server = try RedisServer()
        defer { server.stop() }
        let redis = try server.connect()
        let replies = try redis.pipeline((1...50).map { _ in [Array("INCR".utf8), Array("n".utf8)] } + [[Array("NOPE".utf8)]])
        #expect(replies.dropLast() == (1...50).map { .integer($0) })
        guard case .error = replies.last else { throw CancellationError() }
    }

    @Test func aDeadServerIsAnErrorThatNamesIt() throws {
        let server = try RedisServer()
        let redis = try server.connect()
        server.stop()
        #expect { try redis.command("PING") } throws: { error in
            (error as? HeraldError)?.code == .storageUnavailable && "\(error)".contains("127.0.0.1:\(server.port)")
        }
        #expect { try redis.command("PING") } throws: { "\($0)".contains("closed") }
        #expect { try RedisConnection(host: "127.0.0.1", port: server.port, timeout: .milliseconds(500)) } throws: {
            "\($0)".contains("cannot reach Redis")
        }
    }
}
