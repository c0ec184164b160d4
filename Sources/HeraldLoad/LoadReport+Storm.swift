#if canImport(Glibc)
import Glibc
#endif

extension LoadReport {
    /// Whether the measured server is this process (the in-process gateway).
    public var serverIsThisProcess: Bool { plan.serverPIDs == [getpid()] }

    /// The plan's bounds this run went past, said as failures.
    var boundsExceeded: [String] {
        var failures: [String] = []
        if let bound = plan.maxServerResidentKB, let server, server.residentKBPeak > bound {
            failures.append("server RSS peak \(server.residentKBPeak) KiB over the bound of \(bound) KiB")
        }
        if let bound = plan.maxP99Milliseconds {
            func p99(_ histogram: LatencyHistogram) -> Double { (Double(histogram.percentile(0.99)) / 1e4).rounded() / 100 }
            if p99(latencies) > bound { failures.append("p99 latency \(p99(latencies)) ms over the bound of \(bound) ms") }
            if let storm, p99(storm.undisturbedLatencies) > bound {
                failures.append("p99 latency during the storm \(p99(storm.undisturbedLatencies)) ms over the bound of \(bound) ms")
            }
        }
        return failures
    }

    static func jsonNumber(_ value: Double) -> String { value.isFinite ? "\((value * 1000).rounded() / 1000)" : "null" }

    static func jsonPercentiles(_ histogram: LatencyHistogram) -> String {
        "{" + milliseconds(histogram).map { "\"\($0.0)\":\(jsonNumber($0.1))" }.joined(separator: ",") + "}"
    }

    static func line(_ histogram: LatencyHistogram) -> String {
        milliseconds(histogram).map { "\($0.0) \($0.1)" }.joined(separator: "  ") + " ms"
    }
}

extension StormFigures {
    /// One JSON object (keys stable: scripts read them).
    var json: String {
        let number = LoadReport.jsonNumber
        let percentiles = LoadReport.jsonPercentiles
        let fields = [
            "\"clients\":\(plan.clients)", "\"at_s\":\(number(plan.at))", "\"window_s\":\(number(plan.window))",
            "\"resumes\":\(resumes)", "\"caught_up\":\(caughtUp)", "\"storm_s\":\(seconds.map(number) ?? "null")",
            "\"catch_up_ms\":\(percentiles(catchUp))", "\"storm_complete\":\(stormComplete)", "\"storm_incomplete\":\(stormIncomplete)",
            "\"undisturbed_complete\":\(undisturbedComplete)", "\"undisturbed_incomplete\":\(undisturbedIncomplete)",
            "\"out_of_order\":\(outOfOrder)", "\"out_of_order_clients\":\(outOfOrderClients)", "\"duplicates\":\(duplicates)",
            "\"duplicate_clients\":\(duplicateClients)", "\"unreadable\":\(unreadable)", "\"refusals\":\(refusals)",
            "\"refused_http_503\":\(refusedHTTP503)", "\"refused_http_429\":\(refusedHTTP429)", "\"closes_1013\":\(closes1013)",
            "\"refused_subscribes\":\(refusedSubscribes)", "\"refused_before_storm\":\(refusedBeforeStorm)", "\"retries\":\(retries)",
            "\"undisturbed_storm_latency_ms\":\(percentiles(undisturbedLatencies))",
            "\"undisturbed_storm_deliveries\":\(undisturbedLatencies.count)",
            "\"storm_client_latency_ms\":\(percentiles(clientLatencies))",
        ]
        return "{" + fields.joined(separator: ",") + "}"
    }

    /// A few lines for a person.
    func textLines(transport: LoadPlan.Transport) -> [String] {
        func seconds(_ nanoseconds: UInt64) -> String { "\((Double(nanoseconds) / 1e7).rounded() / 100) s" }
        let lasted = self.seconds.map { "the last \(seconds(UInt64($0 * 1e9))) after the drop" }
        return [
            "storm: \(plan.clients) \(transport.rawValue) clients dropped \(String(format1: plan.at)) s into publishing, back within \(String(format1: plan.window)) s: "
                + "\(resumes) resumes, \(caughtUp) caught up, " + (lasted ?? "not all caught up")
                + " (catch-up p50 \(seconds(catchUp.percentile(0.5))), p99 \(seconds(catchUp.percentile(0.99))), max \(seconds(catchUp.max)))",
            "storm clients \(stormComplete) complete, \(stormIncomplete) incomplete; undisturbed \(undisturbedComplete) complete, "
                + "\(undisturbedIncomplete) incomplete; \(outOfOrder) out of order, \(duplicates) duplicates, \(unreadable) unreadable",
            "refusals \(refusals) (HTTP 503: \(refusedHTTP503), HTTP 429: \(refusedHTTP429), close 1013: \(closes1013), "
                + "subscribe errors: \(refusedSubscribes); \(refusedBeforeStorm) of them before the storm), \(retries) retries",
            "latency of the undisturbed, during the storm (\(undisturbedLatencies.count) deliveries)  "
                + LoadReport.line(undisturbedLatencies),
            "latency of the storm clients (replays too)  " + LoadReport.line(clientLatencies),
        ]
    }
}
