public import HeraldClient

/// What a Herald gateway counted against its own delivery deadlines (`herald_deadline_*`
/// in `/metrics`, summed over routes): read before and after a run, the difference is the
/// run's. The gateway's view beside the tool's: it measures up to the kernel taking the
/// bytes, the tool up to reading them.
public struct GatewayDeadlines: Sendable, Equatable {
    public var met: UInt64 = 0
    public var missedSlowClient: UInt64 = 0
    public var missedGateway: UInt64 = 0

    public var missed: UInt64 { missedSlowClient + missedGateway }

    public init(met: UInt64 = 0, missedSlowClient: UInt64 = 0, missedGateway: UInt64 = 0) {
        self.met = met
        self.missedSlowClient = missedSlowClient
        self.missedGateway = missedGateway
    }

    /// The sums of the deadline samples of a Prometheus text exposition.
    public init(prometheusText text: String) {
        for line in text.split(separator: "\n") where line.hasPrefix("herald_deadline_") {
            guard let value = line.split(separator: " ").last.flatMap({ Double($0) }).map({ UInt64($0) }) else { continue }
            if line.hasPrefix("herald_deadline_deliveries_total{"), line.contains(#"result="met""#) {
                met += value
            } else if line.hasPrefix("herald_deadline_missed_total{") {
                if line.contains(#"cause="slow_client""#) { missedSlowClient += value }
                if line.contains(#"cause="gateway""#) { missedGateway += value }
            }
        }
    }

    /// Reads `/metrics` of the gateway at `baseURL`.
    public static func scrape(baseURL: String, tls: TLSClientContext?) throws(ClientError) -> GatewayDeadlines {
        let endpoint = try EndpointURL(parsing: baseURL)
        let url = "\(endpoint.scheme.asHTTP.rawValue)://\(endpoint.hostAndPort)/metrics"
        let response = try HTTPClient.request(url: url, tls: tls)
        guard response.status == 200 else {
            throw ClientError(.httpStatus, "GET /metrics answered \(response.status)", httpStatus: response.status)
        }
        return GatewayDeadlines(prometheusText: String(decoding: response.body, as: UTF8.self))
    }

    /// What was counted since `earlier`.
    public func subtracting(_ earlier: GatewayDeadlines) -> GatewayDeadlines {
        GatewayDeadlines(
            met: met &- earlier.met, missedSlowClient: missedSlowClient &- earlier.missedSlowClient,
            missedGateway: missedGateway &- earlier.missedGateway)
    }
}
