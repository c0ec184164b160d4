import HeraldClient
import HeraldCore
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Runs a `LoadPlan`: opens the subscribers on `threads` fleets, waits until every one is
/// subscribed, publishes on a thread of its own, waits until every delivery arrived (or
/// stopped arriving for `drainTimeout`), and reports.
public enum LoadRun {
    public static func run(_ plan: LoadPlan) throws(LoadFailure) -> LoadReport {
        try plan.validate()
        let subscribeAt = try endpoint(of: plan.subscribeURL.string(i: 0))
        let publishAt = try endpoint(of: plan.publishURL.string(i: 0))
        let subscribeTLS = try trust(for: plan.subscribeURL.string(i: 0), given: plan.tls)
        let publishTLS = try trust(for: plan.publishURL.string(i: 0), given: plan.tls)
        let sources = LoadSocket.loopbackSources(plan.sources)
        raiseOpenFileLimit()

        let counters = LoadCounters()
        let total = plan.connections
        let serverBefore = ProcessSample(plan.serverPIDs)
        let sampler = MemorySampler(pids: plan.serverPIDs)
        let samplerThread = plan.serverPIDs.isEmpty ? nil : PosixThread { sampler.run() }
        defer {
            sampler.stop()
            samplerThread?.join()
        }
        let toolBefore = ProcessSample.ownCPU()
        let fleets = (0..<plan.threads).map { t in
            SubscriberFleet(
                plan: plan, indices: Array(stride(from: t, to: total, by: plan.threads)), address: subscribeAt, sources: sources,
                tls: subscribeTLS, counters: counters)
        }
        let fleetThreads = fleets.map { fleet in PosixThread { fleet.run() } }
        func stopFleets() {
            counters.stop.store(true, ordering: .relaxed)
            fleetThreads.forEach { $0.join() }
        }

        // Every subscriber subscribed before the first event.
        let connectStart = monotonicNanoseconds()
        while counters.ready.load(ordering: .relaxed) + counters.failed.load(ordering: .relaxed) < total {
            if monotonicNanoseconds() - connectStart > UInt64(plan.connectTimeout * 1e9) {
                stopFleets()
                throw LoadFailure(
                    "only \(counters.ready.load(ordering: .relaxed)) of \(total) subscribers were ready after \(plan.connectTimeout) s")
            }
            usleep(2000)
        }
        let connectSeconds = Double(monotonicNanoseconds() - connectStart) / 1e9
        if counters.failed.load(ordering: .relaxed) > 0 {
            stopFleets()
            throw LoadFailure(
                "\(counters.failed.load(ordering: .relaxed)) subscribers failed: \(counters.failures.joined(separator: "; "))")
        }

        var report = LoadReport(plan: plan)
        report.connectSeconds = connectSeconds
        if plan.idle {
            usleep(1_000_000)  // let the server settle what it allocates per connection
            if !plan.serverPIDs.isEmpty {
                report.server = ServerFigures(
                    before: serverBefore, after: ProcessSample(plan.serverPIDs), peakKB: sampler.peakKB, connections: total)
            }
            stopFleets()
            return report
        }

        let publisher = Publisher(plan: plan, address: publishAt, tls: publishTLS, counters: counters)
        counters.stormPending.store(plan.storm?.clients ?? 0, ordering: .relaxed)
        PosixThread { publisher.run() }.join()
        // Deliveries still on their way: wait until all arrived or none arrived for a while
        // (not while subscribers wait to come back, for at most `comebackAllowance` more).
        let owedTo = plan.subscribers + (plan.storm?.clients ?? 0)
        let expected = plan.isRouted ? publisher.acceptedEvents : publisher.acceptedEvents * owedTo
        let deadline = monotonicNanoseconds() + UInt64((plan.drainTimeout + Self.comebackAllowance) * 1e9)
        var lastCount = -1
        var lastChange = monotonicNanoseconds()
        while !counters.stop.load(ordering: .relaxed), monotonicNanoseconds() < deadline {
            let received = counters.received.load(ordering: .relaxed)
            let away = counters.away.load(ordering: .relaxed)
            if received >= expected, away == 0 { break }
            if received != lastCount || away > 0 {
                lastCount = received
                lastChange = monotonicNanoseconds()
            } else if monotonicNanoseconds() - lastChange > UInt64(plan.drainTimeout * 1e9) {
                break
            }
            usleep(1000)
        }
        stopFleets()

        if !plan.serverPIDs.isEmpty {
            report.server = ServerFigures(
                before: serverBefore, after: ProcessSample(plan.serverPIDs), peakKB: sampler.peakKB, connections: total)
        }
        report.toolCPUSeconds = ProcessSample.ownCPU() - toolBefore
        report.acceptedEvents = publisher.acceptedEvents
        report.refusedPosts = publisher.refusedPosts
        report.publishSeconds = Double(publisher.finished - publisher.started) / 1e9
        report.worstLagMilliseconds = Double(publisher.worstLag) / 1e6
        report.acknowledgements = publisher.acknowledgements
        let lastDelivery = fleets.map(\.lastDelivery).max() ?? publisher.finished
        report.deliverySeconds = Double(max(lastDelivery, publisher.finished) - publisher.started) / 1e9
        report.gaps = counters.gaps.load(ordering: .relaxed)
        report.failures = counters.failures + publisher.refusals
        for fleet in fleets {
            report.latencies.add(fleet.latencies)
            for (index, received) in fleet.receivedBySubscriber where plan.role(of: index) != .stalled {
                let owed = plan.isRouted ? publisher.acceptedBySubscriber[index] : publisher.acceptedEvents
                report.delivered += received
                report.expected += owed
                report.lost += max(0, owed - received)
                report.unexpected += max(0, received - owed)
            }
        }
        if let storm = plan.storm {
            let figures = StormFigures(plan: storm, fleets: fleets, accepted: publisher.acceptedEvents)
            report.storm = figures
            report.failures += figures.failures
            if report.gaps > 0 { report.failures.append("\(report.gaps) gap notices: history should have covered the storm") }
        }
        report.failures += report.boundsExceeded
        return report
    }

    /// Seconds the drain waits beyond `drainTimeout` for subscribers still coming back
    /// after a refusal (whose waits the gateway chose).
    static let comebackAllowance = 30.0

    /// The IPv4 address a URL points at.
    static func endpoint(of url: String) throws(LoadFailure) -> sockaddr_in {
        let (authority, _) = SubscriberFleet.hostAndPath(of: url)
        guard ["http://", "ws://", "https://", "wss://"].contains(where: { url.hasPrefix($0) }) else {
            throw LoadFailure("\(url): only http://, https://, ws:// and wss:// URLs")
        }
        var host = authority
        var port = isSecure(url) ? 443 : 80
        if let colon = authority.lastIndex(of: ":") {
            guard let parsed = Int(authority[authority.index(after: colon)...]), (1...65535).contains(parsed) else {
                throw LoadFailure("\(url): the port is not a number 1…65535")
            }
            host = String(authority[..<colon])
            port = parsed
        }
        return try LoadSocket.resolve(host, port: port)
    }

    /// Whether `url` is https:// or wss:// (spoken over TLS).
    public static func isSecure(_ url: String) -> Bool { url.hasPrefix("https://") || url.hasPrefix("wss://") }

    /// The trust and server name for an https:// or wss:// URL (nil for plain ones):
    /// `given`, or the system's authorities.
    static func trust(for url: String, given: TLSClientContext?) throws(LoadFailure) -> (context: TLSClientContext, host: String)? {
        guard isSecure(url) else { return nil }
        do throws(ClientError) {
            let endpoint = try EndpointURL(parsing: url)
            if let given { return (given, endpoint.host) }
            return (try TLSClientContext(), endpoint.host)
        } catch {
            throw LoadFailure("\(url): \(error.message)")
        }
    }

    /// 10,000 subscribers need 10,000 descriptors: the soft limit goes up to the hard one.
    static func raiseOpenFileLimit() {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0, limit.rlim_cur < limit.rlim_max else { return }
        limit.rlim_cur = limit.rlim_max
        _ = setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
    }
}

/// Memory and CPU of a set of processes at one moment, from /proc.
struct ProcessSample: Sendable {
    var residentKB = 0
    var cpuSeconds = 0.0

    init(_ pids: [Int32]) {
        let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
        residentKB = Self.residentKB(of: pids)
        for pid in pids {
            // Fields after the command's closing parenthesis: utime and stime are 12th and 13th.
            if let stat = Self.read("/proc/\(pid)/stat"), let close = stat.lastIndex(of: ")") {
                let fields = stat[stat.index(after: close)...].split(separator: " ")
                if fields.count > 12 { cpuSeconds += (Double(fields[11]) ?? 0) / ticks + (Double(fields[12]) ?? 0) / ticks }
            }
        }
    }

    /// The sum of the processes' VmRSS, in KiB.
    static func residentKB(of pids: [Int32]) -> Int {
        var total = 0
        for pid in pids {
            if let status = read("/proc/\(pid)/status"),
                let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") })
            {
                total += Int(line.split(separator: " ").dropFirst().first ?? "0") ?? 0
            }
        }
        return total
    }

    static func ownCPU() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) / 1e6 + Double(usage.ru_stime.tv_sec)
            + Double(usage.ru_stime.tv_usec) / 1e6
    }

    static func read(_ path: String) -> String? {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n <= 0 { break }
            bytes += buffer[0..<n]
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// The server's side of a run (when its processes were named).
public struct ServerFigures: Sendable {
    public var residentKBBefore: Int
    public var residentKBAfter: Int
    /// The highest resident memory sampled during the run (every 50 ms).
    public var residentKBPeak: Int
    public var cpuSeconds: Double
    public var connections: Int

    init(before: ProcessSample, after: ProcessSample, peakKB: Int, connections: Int) {
        residentKBBefore = before.residentKB
        residentKBAfter = after.residentKB
        residentKBPeak = max(peakKB, before.residentKB, after.residentKB)
        cpuSeconds = after.cpuSeconds - before.cpuSeconds
        self.connections = connections
    }

    /// Server memory per open connection, in KB (1,000 bytes).
    public var kilobytesPerConnection: Double {
        connections == 0 ? 0 : Double(residentKBAfter - residentKBBefore) * 1024 / 1000 / Double(connections)
    }
}

/// What a run measured.
public struct LoadReport: Sendable {
    public let plan: LoadPlan
    public var connectSeconds = 0.0
    public var acceptedEvents = 0
    public var refusedPosts = 0
    public var publishSeconds = 0.0
    public var deliverySeconds = 0.0
    public var worstLagMilliseconds = 0.0
    public var expected = 0
    public var delivered = 0
    public var lost = 0
    /// Deliveries beyond what a subscriber was owed (duplicates, misrouted events).
    public var unexpected = 0
    public var gaps = 0
    public var latencies = LatencyHistogram()
    public var acknowledgements = LatencyHistogram()
    public var toolCPUSeconds = 0.0
    public var server: ServerFigures?
    /// The storm's figures, in a storm run.
    public var storm: StormFigures?
    /// What a Herald gateway counted against its own deadlines during the run (nil for
    /// other gateways, or when its `/metrics` could not be read).
    public var gatewayDeadlines: GatewayDeadlines?
    public var failures: [String] = []

    init(plan: LoadPlan) { self.plan = plan }

    /// Events the gateway accepted per second of publishing.
    public var achievedRate: Double { publishSeconds > 0 ? Double(acceptedEvents) / publishSeconds : 0 }
    public var deliveriesPerSecond: Double { deliverySeconds > 0 ? Double(delivered) / deliverySeconds : 0 }
    /// Deliveries later than `plan.deadlineMilliseconds` after their event was due.
    public var lateDeliveries: UInt64 { latencies.count(over: UInt64(plan.deadlineMilliseconds * 1e6)) }

    static let percentiles: [(String, Double)] = [("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("p99.9", 0.999), ("max", 1)]

    static func milliseconds(_ histogram: LatencyHistogram) -> [(String, Double)] {
        percentiles.map { ($0.0, (Double(histogram.percentile($0.1)) / 1e4).rounded() / 100) }
    }

    /// One JSON object (keys stable: scripts read them).
    public var json: String {
        func number(_ value: Double) -> String { Self.jsonNumber(value) }
        func percentiles(_ histogram: LatencyHistogram) -> String { Self.jsonPercentiles(histogram) }
        var fields: [String] = [
            "\"transport\":\"\(plan.transport.rawValue)\"", "\"routed\":\(plan.isRouted)", "\"subscribers\":\(plan.subscribers)",
            "\"stalled\":\(plan.stalled)", "\"connect_s\":\(number(connectSeconds))",
        ]
        if !plan.idle {
            fields += [
                "\"events\":\(plan.events)", "\"batch\":\(plan.batch)", "\"publishers\":\(plan.publishers)",
                "\"target_rate\":\(number(plan.rate))", "\"accepted_events\":\(acceptedEvents)", "\"refused_posts\":\(refusedPosts)",
                "\"achieved_rate\":\(number(achievedRate))", "\"publish_s\":\(number(publishSeconds))",
                "\"worst_lag_ms\":\(number(worstLagMilliseconds))", "\"expected\":\(expected)", "\"delivered\":\(delivered)",
                "\"lost\":\(lost)", "\"unexpected\":\(unexpected)", "\"gaps\":\(gaps)",
                "\"deliveries_per_s\":\(number(deliveriesPerSecond))", "\"latency_ms\":\(percentiles(latencies))",
                "\"ack_ms\":\(percentiles(acknowledgements))", "\"tool_cpu_s\":\(number(toolCPUSeconds))",
                "\"deadline_ms\":\(number(plan.deadlineMilliseconds))", "\"late_deliveries\":\(lateDeliveries)",
            ]
            if let gateway = gatewayDeadlines {
                fields.append(
                    "\"gateway_deadlines\":{\"met\":\(gateway.met),\"missed_slow_client\":\(gateway.missedSlowClient),\"missed_gateway\":\(gateway.missedGateway)}"
                )
            }
        }
        if let server {
            fields += [
                "\"server_rss_kb_before\":\(server.residentKBBefore)", "\"server_rss_kb_after\":\(server.residentKBAfter)",
                "\"server_kb_per_connection\":\(number(server.kilobytesPerConnection))",
                "\"server_cpu_s\":\(number(server.cpuSeconds))", "\"server_rss_kb_peak\":\(server.residentKBPeak)",
                "\"server_in_process\":\(serverIsThisProcess)",
            ]
        }
        if let storm { fields.append("\"storm\":" + storm.json) }
        var failureList: [UInt8] = []
        JSONWriter.write(.array(failures.map(JSONValue.string)), into: &failureList)
        fields.append("\"failures\":" + String(decoding: failureList, as: UTF8.self))
        return "{" + fields.joined(separator: ",") + "}"
    }

    /// A few lines for a person.
    public var text: String {
        func line(_ histogram: LatencyHistogram) -> String { Self.line(histogram) }
        var lines = [
            "\(plan.subscribers) \(plan.transport.rawValue) subscribers\(plan.stalled > 0 ? " (+\(plan.stalled) stalled)" : "")"
                + (plan.storm.map { " (+\($0.clients) storm clients)" } ?? "")
                + ", \(plan.isRouted ? "routed" : "broadcast"), connected in \(String(format1: connectSeconds)) s"
        ]
        if !plan.idle {
            let target = plan.rate > 0 ? "\(Int(plan.rate)) ev/s target" : "as fast as acknowledged"
            lines += [
                "published \(acceptedEvents) events (\(target), batch \(plan.batch)): \(Int(achievedRate)) ev/s achieved"
                    + (refusedPosts > 0 ? ", \(refusedPosts) POSTs refused" : ""),
                "delivered \(delivered) of \(expected) (\(lost) lost, \(unexpected) unexpected, \(gaps) gap notices), \(Int(deliveriesPerSecond)) deliveries/s",
                (storm == nil ? "latency  " : "latency of the undisturbed, whole run  ") + line(latencies),
                "ack      " + line(acknowledgements),
                deadlineLine,
                "tool CPU \(String(format1: toolCPUSeconds)) s",
            ]
        }
        if let storm { lines += storm.textLines(transport: plan.transport) }
        if let server {
            lines.append(
                "server RSS \(server.residentKBBefore) → \(server.residentKBAfter) KiB (\(String(format1: server.kilobytesPerConnection)) KB per connection), CPU \(String(format1: server.cpuSeconds)) s"
            )
            lines.append(
                "server RSS peak \(server.residentKBPeak) KiB (sampled every 50 ms)"
                    + (serverIsThisProcess ? "; the gateway runs in this process: its memory includes the tool's" : ""))
        }
        lines += failures.map { "failure: \($0)" }
        return lines.joined(separator: "\n")
    }
}

extension LoadReport {
    /// Late deliveries as the tool saw them, and as the gateway counted them when it is Herald.
    var deadlineLine: String {
        let total = latencies.count
        let share = total > 0 ? " (\((Double(lateDeliveries) * 100_000 / Double(total)).rounded() / 1000) %)" : ""
        let readers = storm == nil ? "deliveries" : "deliveries to the undisturbed"
        var line = "deadline \(String(format1: plan.deadlineMilliseconds)) ms: \(lateDeliveries) of \(total) \(readers) late\(share)"
        if let gateway = gatewayDeadlines {
            line +=
                "; the gateway counted \(gateway.missed) of \(gateway.met + gateway.missed) past its deadlines\(storm == nil ? "" : " (every client)") (\(gateway.missedSlowClient) slow client, \(gateway.missedGateway) gateway)"
        }
        return line
    }
}

extension String {
    /// `value` with one decimal.
    init(format1 value: Double) { self = "\((value * 10).rounded() / 10)" }
}
