import ArgumentParser
import Foundation
import HeraldClient
import HeraldCore
import HeraldServer
import Logging

/// `herald bench`: end-to-end throughput and latency, POST → socket, over real sockets.
struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure end-to-end ingest and delivery: events/s and POST-to-socket latency.",
        discussion: """
            Opens --subscribers WebSocket (or SSE) subscribers with a filter that matches \
            only this run's events, POSTs --events events shaped like an IoT reading \
            (~480 bytes) in batches of --batch over one keep-alive connection, and waits \
            until every subscriber has received every event. Without --url it starts a \
            gateway in this process on a free loopback port. Prints one JSON object.
            """
    )

    @Option(help: "Gateway base URL; omit to start one in-process.")
    var url: String?

    @Option(help: "Subscribe on this gateway instead (another node of a cluster): events go through Redis to it.")
    var subscribeURL: String?

    @Option(help: "Publisher key for --url (default: $HERALD_PUBLISHER_KEY).")
    var key: String?

    @Option(help: "Events to publish.")
    var events: Int = 100_000

    @Option(help: "Events per POST.")
    var batch: Int = 100

    @Option(help: "Number of subscribers.")
    var subscribers: Int = 1

    @Option(help: "Subscriber transport: ws or sse.")
    var transport: String = "ws"

    @Option(help: "Extra WebSocket subscribers that never read (they overflow by their policy).")
    var stalled: Int = 0

    @Option(help: "Publish at most this many events per second (0: as fast as the gateway accepts).")
    var rate: Int = 0

    @Option(help: "Per-client queue bound in messages for the in-process gateway (default: config default, 1000).")
    var queueMessages: Int?

    @Flag(help: "Turn off latency and match timing in the in-process gateway (metrics.timing: false).")
    var noTiming = false

    @Option(help: "Give the in-process gateway a durable log in this directory (storage.path; must not hold another log's events).")
    var storage: String?

    @Option(help: "storage.fsync for --storage: always, batch or never.")
    var fsync: String = "batch"

    func validate() throws {
        guard events > 0, batch > 0, subscribers >= 0 else { throw ValidationError("--events and --batch must be positive") }
        guard ["ws", "sse"].contains(transport) else { throw ValidationError("--transport must be ws or sse") }
        guard HeraldConfig.Storage.Fsync(rawValue: fsync) != nil else { throw ValidationError("--fsync must be always, batch or never") }
        guard storage == nil || url == nil else { throw ValidationError("--storage configures the in-process gateway: not with --url") }
        guard subscribeURL == nil || url != nil else { throw ValidationError("--subscribe-url needs --url (both nodes of one cluster)") }
    }

    func run() throws {
        signal(SIGPIPE, SIG_IGN)
        var server: HeraldServer?
        var host = "127.0.0.1"
        var port = 0
        var publisherKey = key ?? ProcessInfo.processInfo.environment["HERALD_PUBLISHER_KEY"] ?? ""
        if let url {
            let endpoint = try EndpointURL(parsing: url)
            host = endpoint.host
            port = endpoint.port
            guard !publisherKey.isEmpty else { throw ValidationError("--url needs --key or HERALD_PUBLISHER_KEY") }
        } else {
            publisherKey = "bench-\(UUID4.generate())"
            var config = HeraldConfig()
            config.listen.host = "127.0.0.1"
            config.listen.port = 0
            config.publicDirectory = nil
            if let queueMessages {
                config.delivery.queue = QueueLimits(maxMessages: queueMessages, maxBytes: max(1 << 20, queueMessages * 1024))
            }
            config.limits.maxBatchEvents = max(batch, 500)
            config.limits.maxBodyBytes = max(1 << 20, batch * 1024)
            config.log.lwsLevel = "error"
            config.metrics.timing = !noTiming
            config.auth.publisherKeys = [.init(name: "bench", sha256: HeraldServer.sha256(of: publisherKey))]
            config.storage.path = storage
            config.storage.fsync = HeraldConfig.Storage.Fsync(rawValue: fsync) ?? .batch
            var logger = Logger(label: "herald.bench")
            logger.logLevel = .warning
            let embedded = try HeraldServer(config: config, logger: logger)
            embedded.start()
            server = embedded
            port = embedded.port
        }
        defer { server?.shutdown() }

        let run = UUID4.generate()
        let filter = #"{"bench":["\#(run)"]}"#
        let subscribeAt = try subscribeURL.map { try EndpointURL(parsing: $0) }
        let receivers = try (0..<subscribers).map { _ in
            try Receiver(
                host: subscribeAt?.host ?? host, port: subscribeAt?.port ?? port, transport: transport, filter: filter, expected: events)
        }
        let threads = receivers.map { receiver in Thread { receiver.run() } }
        threads.forEach { $0.start() }
        // Subscribers that never read: their socket buffers fill, then their queues.
        let stalledClients = try (0..<stalled).map { _ in
            let ws = try WebSocketClient(host: host, port: port, path: "/v1/ws", subprotocols: ["herald.v1"], timeout: .seconds(30))
            try ws.send(text: #"{"op":"subscribe","id":"stalled","filter":\#(filter)}"#)
            return ws
        }

        let connection = try HTTPConnection(host: host, port: port, timeout: .seconds(30))
        let headers = [("Authorization", "Bearer \(publisherKey)"), ("Content-Type", "application/json")]
        let start = MonotonicTime.now()
        var sent = 0
        var acks: [UInt64] = []  // POST → 202 round trips: the acknowledgement latency
        var body: [UInt8] = []
        body.reserveCapacity(batch * 520)
        while sent < events {
            let count = min(batch, events - sent)
            body.removeAll(keepingCapacity: true)
            body.append(UInt8(ascii: "["))
            for i in 0..<count {
                if i > 0 { body.append(UInt8(ascii: ",")) }
                Self.appendEvent(number: sent + i, run: run, sentAt: MonotonicTime.now(), to: &body)
            }
            body.append(UInt8(ascii: "]"))
            let posted = MonotonicTime.now()
            let response = try connection.request("POST", "/v1/events", headers: headers, body: body)
            acks.append(MonotonicTime.now() - posted)
            guard response.status == 202 else {
                throw CLIError("the gateway refused a batch: HTTP \(response.status) \(response.bodyText)")
            }
            sent += count
            if rate > 0 {
                let due = start + UInt64(sent) * 1_000_000_000 / UInt64(rate)
                let now = MonotonicTime.now()
                if due > now { usleep(UInt32((due - now) / 1000)) }
            }
        }
        let published = MonotonicTime.now()
        receivers.forEach { $0.done.wait() }
        let finished = MonotonicTime.now()
        let rss = residentMegabytes()
        withExtendedLifetime(stalledClients) {}

        var latencies = receivers.flatMap(\.latencies).sorted()
        let failures = receivers.compactMap(\.failure)
        if latencies.isEmpty { latencies = [0] }
        func percentile(_ p: Double) -> Double { Double(latencies[min(latencies.count - 1, Int(Double(latencies.count) * p))]) / 1e6 }
        acks.sort()
        func ack(_ p: Double) -> Double { Double(acks[min(acks.count - 1, Int(Double(acks.count) * p))]) / 1e6 }
        let publishSeconds = Double(published - start) / 1e9
        let totalSeconds = Double(finished - start) / 1e9
        let delivered = receivers.reduce(0) { $0 + $1.received }
        let droppedEvents = receivers.reduce(0) { $0 + $1.dropped }
        let eventBytes = {
            var b: [UInt8] = []
            Self.appendEvent(number: 0, run: run, sentAt: 0, to: &b)
            return b.count
        }()
        print(
            """
            {"transport":"\(transport)","subscribers":\(subscribers),"stalled":\(stalled),"events":\(events),"batch":\(batch),"rate":\(rate),"event_bytes":\(eventBytes),\
            "ingest_events_per_s":\(Int(Double(events) / publishSeconds)),\
            "deliveries":\(delivered),"dropped":\(droppedEvents),"deliveries_per_s":\(Int(Double(delivered) / totalSeconds)),\
            "elapsed_s":\((totalSeconds * 1000).rounded() / 1000),\
            "latency_ms":{"p50":\(percentile(0.5)),"p99":\(percentile(0.99)),"max":\(percentile(1.0))},\
            "ack_ms":{"p50":\(ack(0.5)),"p99":\(ack(0.99)),"max":\(ack(1.0))},"storage":\(storage == nil ? "null" : "\"\(fsync)\""),\
            "process_rss_mb":\(rss),"queue_entry_bytes":\(MemoryLayout<Outgoing>.stride),"errors":\(failures.count)}
            """)
        for failure in failures { FileHandle.standardError.write(Data("subscriber failed: \(failure)\n".utf8)) }
        if !failures.isEmpty { throw ExitCode(1) }
    }

    /// An IoT reading shaped like shared/examples/vibration-recorded.json (~480 bytes).
    static func appendEvent(number: Int, run: String, sentAt: UInt64, to out: inout [UInt8]) {
        // Ids unique per run (the gateway deduplicates (source, id) across runs) and short
        // enough (at most 15 bytes) to stay Swift small strings, as the ids of earlier
        // runs did, so that numbers stay comparable.
        out.append(contentsOf: #"{"eventId":"b"#.utf8)
        out.append(contentsOf: run.utf8.prefix(6))
        out.append(UInt8(ascii: "-"))
        JSONWriter.writeInteger(number, into: &out)
        out.append(
            contentsOf:
                #"","eventType":"VibrationRecorded","timestamp":"2023-09-29T16:30:25Z","source":"VibrationSensor","sensorLocation":"Motor Assembly Line B, Conveyor Unit 4","version":"v1.2","data":{"sensorId":"VB-42345","vibrationLevel":12.5,"baselineVibrationLevel":4.0,"unit":"m/s2","difference":8.5},"metadata":{"model":"VibroMonitor Pro X1","calibrationDate":"2023-06-15"},"systemMessage":"Vibration level recorded exceeds the acceptable threshold.","bench":""#
                .utf8)
        out.append(contentsOf: run.utf8)
        out.append(contentsOf: #"","sentAt":"#.utf8)
        JSONWriter.writeInteger(sentAt, into: &out)
        out.append(UInt8(ascii: "}"))
    }
}

/// One subscriber of the benchmark, read on its own thread.
private final class Receiver: @unchecked Sendable {  // owned by its thread until `done` is signalled
    let expected: Int
    let done = DispatchSemaphore(value: 0)
    var received = 0
    /// Events reported in gap notices (dropped by the queue's overflow policy).
    var dropped = 0
    var latencies: [UInt64] = []
    var failure: String?
    private let webSocket: WebSocketClient?
    private let stream: SSEStream?

    init(host: String, port: Int, transport: String, filter: String, expected: Int) throws {
        self.expected = expected
        latencies.reserveCapacity(expected)
        if transport == "ws" {
            let ws = try WebSocketClient(host: host, port: port, path: "/v1/ws", subprotocols: ["herald.v1"], timeout: .seconds(30))
            try ws.send(text: #"{"op":"subscribe","id":"b","filter":\#(filter)}"#)
            guard case .text(let reply) = try ws.receive(timeout: .seconds(10)), reply.contains("subscribed") else {
                throw CLIError("subscription refused")
            }
            webSocket = ws
            stream = nil
        } else {
            let encoded = filter.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? ""
            let sse = try SSEStream(host: host, port: port, path: "/v1/sse?filter=\(encoded)", timeout: .seconds(30))
            guard sse.status == 200 else { throw CLIError("SSE refused: \(sse.status) \(sse.errorBodyText)") }
            stream = sse
            webSocket = nil
        }
    }

    func run() {
        defer { done.signal() }
        do {
            while received + dropped < expected {
                let text: String
                if let webSocket {
                    guard case .text(let message) = try webSocket.receive(timeout: .seconds(30)) else {
                        failure = "unexpected frame"
                        return
                    }
                    text = message
                } else {
                    guard let event = try stream?.next(timeout: .seconds(30)) else {
                        failure = "stream ended"
                        return
                    }
                    text = event.data
                }
                let now = MonotonicTime.now()
                if text.hasPrefix(#"{"type":"gap""#) || text.hasPrefix(#"{"from":"#) {
                    dropped += Self.gapSize(text)
                    continue
                }
                guard let sentAt = Self.sentAt(in: text) else { continue }
                latencies.append(now &- sentAt)
                received += 1
            }
        } catch {
            failure = "\(error) after \(received) events"
        }
    }

    /// The number of events a gap notice covers (`to - from + 1`).
    static func gapSize(_ text: String) -> Int {
        guard let value = try? JSONValue(parsing: text), case .number(let from)? = value["from"], case .number(let to)? = value["to"] else {
            return 0
        }
        return Int(to - from) + 1
    }

    /// The `"sentAt":<n>` value of a message, found by a byte scan (no JSON parse).
    static func sentAt(in text: String) -> UInt64? {
        var copy = text
        return copy.withUTF8 { bytes -> UInt64? in
            let marker: [UInt8] = Array(#""sentAt":"#.utf8)
            guard bytes.count > marker.count else { return nil }
            var i = bytes.count - marker.count
            while i >= 0 {  // the field is written last: search from the end
                if bytes[i] == marker[0], bytes[i + 1] == marker[1], bytes[i + 2] == marker[2] {
                    var match = true
                    for k in 3..<marker.count where bytes[i + k] != marker[k] {
                        match = false
                        break
                    }
                    if match {
                        var value: UInt64 = 0
                        var j = i + marker.count
                        while j < bytes.count, bytes[j] >= 0x30, bytes[j] <= 0x39 {
                            value = value * 10 + UInt64(bytes[j] - 0x30)
                            j += 1
                        }
                        return value
                    }
                }
                i -= 1
            }
            return nil
        }
    }
}

/// This process's resident set size in MiB.
func residentMegabytes() -> Int {
    guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
        let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") })
    else { return 0 }
    return (Int(line.split(separator: " ").dropFirst().first ?? "0") ?? 0) / 1024
}

/// The monotonic clock, in nanoseconds.
enum MonotonicTime {
    static func now() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }
}
