import ArgumentParser
import Foundation
import HeraldClient
import HeraldCore
import HeraldLoad
import HeraldServer
import Logging

/// `herald bench`: the load tool in the box. Thousands of WebSocket or SSE subscribers on
/// non-blocking sockets, a publisher at a fixed rate, latency from a timestamp in each
/// event, percentiles, losses, server memory per connection — against the gateway in this
/// process, another Herald, or any gateway by URL templates (`HeraldLoad`).
struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Load a gateway: N subscribers, events at a fixed rate, delivery latency percentiles and losses.",
        discussion: """
            Without --url it starts a gateway in this process on a free loopback port (its \
            memory and CPU then include the tool's). Events are shaped like an IoT reading \
            (~480 bytes) and carry "sentAt" (monotonic ns, the time each event was due): \
            latency is measured from it, so a slow gateway cannot hide behind a slowed \
            publisher. --routed gives every subscriber its own filter and sends each event \
            to one of them; otherwise every subscriber gets every event.

            Other gateways: give --subscribe-url, --publish-url and --event templates; {i} \
            is the subscriber's index, {n} the event's number, {sentAt} its due time. \
            Example (nchan): --subscribe-url 'ws://127.0.0.1:8081/sub/{i}' \
            --publish-url 'http://127.0.0.1:8081/pub/{i}' --event '{"n":{n},"sentAt":{sentAt}}'.

            Reconnect storm (Herald only): --storm N adds N broadcast subscribers that, \
            --storm-at seconds into publishing, all drop their connections and come back each \
            at a random moment within --storm-window seconds, resuming from the last position \
            they received (WebSocket since + epoch, SSE Last-Event-ID). Refusals (HTTP 503/429 \
            with Retry-After / retryAfterMs, WebSocket close 1013 with retryAfterMs=) are waited \
            out and retried. Every subscriber must end with every accepted event once, in seq \
            order, and no gap notice; the report gives refusals, retries, how long until the \
            last storm client caught up, the undisturbed subscribers' latency over the run and \
            during the storm, and the server's peak memory (sampled every 50 ms; without --url \
            that is this process). --max-server-rss and --max-p99 make bounds of them. Example: \
            --subscribers 100 --storm 5000 --rate 10 --duration 12 --batch 1 --sources 4 \
            --threads 2 --max-server-rss 200.
            """
    )

    @Option(help: "Gateway base URL (Herald, http:// or https://); omit to start one in-process.")
    var url: String?

    @Option(help: "PEM file of the certificates to trust for https:// and wss:// URLs (default: the system's).")
    var cacert: String?

    @Option(help: "Subscribe on this Herald node instead (base URL of another node of a cluster).")
    var subscribeNode: String?

    @Option(help: "Publisher key for --url (default: $HERALD_PUBLISHER_KEY).")
    var key: String?

    @Option(help: "Subscribers that read everything.")
    var subscribers: Int = 1

    @Option(help: "Extra subscribers that never read (they overflow by their policy); routed, each mirrors a reader's filter.")
    var stalled: Int = 0

    @Option(help: "Subscriber transport: ws or sse.")
    var transport: String = "ws"

    @Flag(help: "Each subscriber has its own filter; event n goes to subscriber n % subscribers.")
    var routed = false

    @Option(help: "Events to publish (default 100000; with --duration: rate × duration).")
    var events: Int?

    @Option(help: "Publish for this many seconds at --rate.")
    var duration: Double?

    @Option(help: "Events per second (0: as fast as the gateway acknowledges).")
    var rate: Double = 0

    @Option(help: "Events per POST (a JSON array when more than one).")
    var batch: Int = 100

    @Option(help: "Keep-alive publishing connections.")
    var publishers: Int = 4

    @Option(help: "Requests in flight per publishing connection (HTTP/1.1 pipelining).")
    var pipeline: Int = 8

    @Option(help: "Subscribers connect from 127.0.0.1 … 127.0.0.N (past 28k ephemeral ports per address).")
    var sources: Int = 1

    @Option(help: "Threads reading subscribers.")
    var threads: Int = 1

    @Flag(help: "Only open the subscribers and report the server's memory per connection.")
    var idle = false

    @Option(help: "A server process whose memory and CPU to report (repeatable: nginx master and workers).")
    var serverPid: [Int32] = []

    @Option(help: "Seconds deliveries may stall before the missing ones count as lost.")
    var drain: Double = 5

    @Flag(help: "Print one JSON object instead of text.")
    var json = false

    @Option(help: "Subscriber URL template (another gateway): ws://… or http://… (SSE), {i} per subscriber.")
    var subscribeURL: String?

    @Option(help: "Text each WebSocket subscriber sends once connected, {i} per subscriber.")
    var subscribeMessage: String?

    @Option(help: "WebSocket subprotocol to ask for.")
    var wsProtocol: String?

    @Option(help: "Publish URL template (another gateway), {i}: the subscriber the event is for.")
    var publishURL: String?

    @Option(help: "Event body template; must carry {sentAt}.")
    var event: String?

    @Option(help: "A request header for every POST, \"Name: value\" (repeatable).")
    var header: [String] = []

    @Option(help: "Per-client queue bound in messages for the in-process gateway (default: config default, 1000).")
    var queueMessages: Int?

    @Flag(help: "Turn off latency and match timing in the in-process gateway (metrics.timing: false).")
    var noTiming = false

    @Option(help: "Give the in-process gateway a durable log in this directory (storage.path; must not hold another log's events).")
    var storage: String?

    @Option(help: "storage.fsync for --storage: always, batch or never.")
    var fsync: String = "batch"

    @Option(help: "listen.loops for the in-process gateway (default: one per core; 1 with --storage).")
    var loops: Int?

    @Option(help: "Reconnect storm: this many more broadcast subscribers drop and resume (Herald only; --subscribers stay undisturbed).")
    var storm: Int = 0

    @Option(help: "Seconds into publishing when the storm clients drop (default: a third of the publishing time).")
    var stormAt: Double?

    @Option(help: "Seconds within which the storm clients come back, each at a uniformly random moment.")
    var stormWindow: Double = 1

    @Option(help: "Fail when the server's peak resident memory passes this many MiB (needs --server-pid with --url).")
    var maxServerRss: Int?

    @Option(
        help:
            "Fail when the p99 delivery latency (with --storm: of the undisturbed, over the run and during the storm) passes this many ms.")
    var maxP99: Double?

    @Option(
        help:
            "Deliveries later than this many ms after their event was due count as late (also the in-process gateway's delivery.deadlineMs)."
    )
    var deadlineMs: Double = 100

    func validate() throws {
        guard ["ws", "sse"].contains(transport) else { throw ValidationError("--transport must be ws or sse") }
        guard HeraldConfig.Storage.Fsync(rawValue: fsync) != nil else { throw ValidationError("--fsync must be always, batch or never") }
        guard storage == nil || url == nil else { throw ValidationError("--storage configures the in-process gateway: not with --url") }
        guard loops == nil || url == nil else { throw ValidationError("--loops configures the in-process gateway: not with --url") }
        if let loops, !(1...HeraldConfig.Listen.maxLoops).contains(loops) || (loops > 1 && storage != nil) {
            throw ValidationError("--loops must be in 1...\(HeraldConfig.Listen.maxLoops), and 1 with --storage")
        }
        guard subscribeNode == nil || url != nil else { throw ValidationError("--subscribe-node needs --url (both nodes of one cluster)") }
        guard duration == nil || (rate > 0 && duration! > 0) else { throw ValidationError("--duration needs a positive --rate") }
        guard events == nil || duration == nil else { throw ValidationError("--events or --duration, not both") }
        let custom = [subscribeURL, publishURL, event].filter { $0 != nil }.count
        guard custom == 0 || custom == 3 || url != nil else {
            throw ValidationError("--subscribe-url, --publish-url and --event describe another gateway: give all three")
        }
        guard !idle || url == nil || !serverPid.isEmpty else {
            throw ValidationError(
                "--idle measures the server's memory: give --server-pid (or omit --url to measure the gateway in this process)")
        }
        if storm > 0 {
            guard subscribeURL == nil, publishURL == nil, event == nil else {
                throw ValidationError("--storm uses Herald's resume protocol: not with --subscribe-url, --publish-url or --event")
            }
            guard !routed, !idle, rate > 0, events != nil || duration != nil else {
                throw ValidationError("--storm is a broadcast run at a --rate with --duration or --events")
            }
            guard stormWindow >= 0, (stormAt ?? 0) >= 0 else { throw ValidationError("--storm-at and --storm-window must not be negative") }
        }
        guard storm >= 0 else { throw ValidationError("--storm must not be negative") }
        guard deadlineMs >= 1, deadlineMs <= 600_000 else { throw ValidationError("--deadline-ms must be in 1...600000") }
        guard maxServerRss == nil || url == nil || !serverPid.isEmpty else {
            throw ValidationError("--max-server-rss needs --server-pid with --url")
        }
        for line in header where !line.contains(":") {
            throw ValidationError("--header \(line.debugDescription): expected \"Name: value\"")
        }
    }

    func run() throws {
        signal(SIGPIPE, SIG_IGN)
        let custom = subscribeURL != nil && publishURL != nil && event != nil
        var server: HeraldServer?
        var base = url ?? ""
        var publisherKey = key ?? ProcessInfo.processInfo.environment["HERALD_PUBLISHER_KEY"] ?? ""
        if url == nil && !custom {
            publisherKey = "bench-\(UUID4.generate())"
            let embedded = try startGateway(publisherKey: publisherKey)
            server = embedded
            base = "http://127.0.0.1:\(embedded.port)"
        } else if !custom {
            guard !publisherKey.isEmpty else { throw ValidationError("--url needs --key or HERALD_PUBLISHER_KEY") }
        }
        defer { server?.shutdown() }

        let plan = try makePlan(base: base, publisherKey: publisherKey, inProcess: server != nil)
        // Herald counts its own deadlines: read them around the run where deliveries happen.
        let deliveringNode = custom ? nil : subscribeNode ?? base
        let deadlinesBefore = deliveringNode.flatMap { try? GatewayDeadlines.scrape(baseURL: $0, tls: plan.tls) }
        var report: LoadReport
        do {
            report = try LoadRun.run(plan)
        } catch {
            throw CLIError("bench: \(error)")
        }
        if let deliveringNode, let deadlinesBefore, let after = try? GatewayDeadlines.scrape(baseURL: deliveringNode, tls: plan.tls) {
            let run = after.subtracting(deadlinesBefore)
            // A gateway without timing (metrics.timing false, --no-timing) counts nothing.
            if run.met + run.missed > 0 { report.gatewayDeadlines = run }
        }
        print(json ? report.json : report.text)
        if !report.failures.isEmpty || report.lost > 0 || report.refusedPosts > 0 { throw ExitCode(1) }
    }

    private func makePlan(base: String, publisherKey: String, inProcess: Bool) throws -> LoadPlan {
        let kind: LoadPlan.Transport = transport == "ws" ? .webSocket : .sse
        let count = events ?? duration.map { Int(rate * $0) } ?? 100_000
        var plan: LoadPlan
        if let subscribeURL, let publishURL, let event {
            plan = LoadPlan(
                subscribers: subscribers, transport: kind, subscribeURL: LoadTemplate(subscribeURL), publishURL: LoadTemplate(publishURL),
                event: LoadTemplate(event), events: count)
            plan.subscribeMessage = subscribeMessage.map(LoadTemplate.init)
            plan.webSocketProtocol = wsProtocol
        } else {
            let gateway = try EndpointURL(parsing: base)
            let node = try subscribeNode.map { try EndpointURL(parsing: $0) } ?? gateway
            let run = String(UUID4.generate().prefix(8))
            // A marker that percent-encoding leaves alone, replaced by {i} afterwards.
            let filter = routed ? #"{"bench":["\#(run)"],"g":[SUBSCRIBERINDEX]}"# : #"{"bench":["\#(run)"]}"#
            let subscribe: String
            if kind == .webSocket {
                subscribe = "\(node.scheme.asWebSocket.rawValue)://\(node.hostAndPort)/v1/ws"
                plan = LoadPlan(
                    subscribers: subscribers, transport: kind, subscribeURL: LoadTemplate(subscribe),
                    publishURL: LoadTemplate("\(gateway.scheme.asHTTP.rawValue)://\(gateway.hostAndPort)/v1/events"),
                    event: LoadTemplate(Self.eventTemplate(run: run, routed: routed, numbered: storm > 0)), events: count)
                plan.subscribeMessage = LoadTemplate(
                    #"{"op":"subscribe","id":"b","filter":\#(filter)}"#.replacingOccurrences(of: "SUBSCRIBERINDEX", with: "{i}"))
                plan.webSocketProtocol = "herald.v1"
            } else {
                let encoded = (filter.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "")
                    .replacingOccurrences(of: "SUBSCRIBERINDEX", with: "{i}")
                plan = LoadPlan(
                    subscribers: subscribers, transport: kind,
                    subscribeURL: LoadTemplate("\(node.scheme.asHTTP.rawValue)://\(node.hostAndPort)/v1/sse?filter=\(encoded)"),
                    publishURL: LoadTemplate("\(gateway.scheme.asHTTP.rawValue)://\(gateway.hostAndPort)/v1/events"),
                    event: LoadTemplate(Self.eventTemplate(run: run, routed: routed, numbered: storm > 0)), events: count)
            }
            plan.publishHeaders = [("Authorization", "Bearer \(publisherKey)"), ("Content-Type", "application/json")]
        }
        plan.publishHeaders += header.map { line in
            let colon = line.firstIndex(of: ":")!
            return (String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces))
        }
        plan.stalled = stalled
        plan.batch = batch
        plan.publishers = publishers
        plan.pipeline = pipeline
        plan.rate = rate
        plan.sources = sources
        plan.threads = threads
        plan.idle = idle
        plan.drainTimeout = drain
        plan.serverPIDs = inProcess ? [getpid()] : serverPid
        if storm > 0 {
            plan.storm = StormPlan(clients: storm, at: stormAt ?? Double(count) / rate / 3, window: stormWindow)
        }
        plan.maxServerResidentKB = maxServerRss.map { $0 * 1024 }
        plan.maxP99Milliseconds = maxP99
        plan.deadlineMilliseconds = deadlineMs
        if let cacert {
            guard LoadRun.isSecure(plan.subscribeURL.string(i: 0)) || LoadRun.isSecure(plan.publishURL.string(i: 0)) else {
                throw ValidationError("--cacert needs an https:// or wss:// URL")
            }
            do { plan.tls = try TLSClientContext(caFile: cacert) } catch { throw ValidationError(error.message) }
        }
        return plan
    }

    /// Starts the gateway this run measures, in this process.
    private func startGateway(publisherKey: String) throws -> HeraldServer {
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
        config.delivery.deadlineMs = Int(deadlineMs.rounded(.up))
        config.auth.publisherKeys = [.init(name: "bench", sha256: HeraldServer.sha256(of: publisherKey))]
        config.storage.path = storage
        config.storage.fsync = HeraldConfig.Storage.Fsync(rawValue: fsync) ?? .batch
        config.listen.loops = loops
        var logger = Logger(label: "herald.bench")
        logger.logLevel = .warning
        let embedded = try HeraldServer(config: config, logger: logger)
        embedded.start()
        return embedded
    }

    /// An IoT reading shaped like shared/examples/vibration-recorded.json (~480 bytes),
    /// unique per run (the gateway deduplicates (source, id) across runs), with `sentAt`
    /// last (the load tool finds it from the end); `numbered`, the event number just before
    /// it (a storm checks every client received every number).
    static func eventTemplate(run: String, routed: Bool, numbered: Bool = false) -> String {
        #"{"eventId":"b\#(run)-{n}","eventType":"VibrationRecorded","timestamp":"2023-09-29T16:30:25Z","source":"VibrationSensor","sensorLocation":"Motor Assembly Line B, Conveyor Unit 4","version":"v1.2","data":{"sensorId":"VB-42345","vibrationLevel":12.5,"baselineVibrationLevel":4.0,"unit":"m/s2","difference":8.5},"metadata":{"model":"VibroMonitor Pro X1","calibrationDate":"2023-06-15"},"systemMessage":"Vibration level recorded exceeds the acceptable threshold.","bench":"\#(run)",\#(routed ? #""g":{i},"# : "")\#(numbered ? #""n":{n},"# : "")"sentAt":{sentAt}}"#
    }
}
