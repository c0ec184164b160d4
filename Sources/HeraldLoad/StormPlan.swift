/// A reconnect storm, on top of a broadcast run against Herald: `clients` more subscribers
/// (same transport, same filter) that, `at` seconds after publishing starts, all drop
/// their connections with a plain close() and come back each at a uniformly random moment
/// within `window` seconds, resuming from the last position they received (WebSocket
/// `since` + `epoch`, SSE `Last-Event-ID`).
///
/// It exists to test what a gateway promises when everyone comes back at once: every
/// client ends with every event once and in order, the undisturbed subscribers keep
/// their latency, and memory stays bounded. It speaks Herald's resume protocol, so it is
/// Herald-only; refusals Herald answers a storm with (HTTP 503/429 with `Retry-After` and
/// `retryAfterMs`, a WebSocket close 1013 whose reason says `retryAfterMs=<n>`) are waited
/// out and retried, as herald.js does.
public struct StormPlan: Sendable {
    /// Subscribers that drop and resume; the plan's `subscribers` stay undisturbed.
    public var clients: Int
    /// Seconds after publishing starts when every storm client drops.
    public var at: Double
    /// Seconds within which they come back, each at a uniformly random moment.
    public var window: Double
    /// Refusals in a row a client waits out before it counts as failed: bounds a run
    /// against a gateway that never lets it back.
    public var maxAttempts = 30

    public init(clients: Int, at: Double, window: Double) {
        self.clients = clients
        self.at = at
        self.window = window
    }

    /// The wait before attempt `attempt` when a refusal named none: full jitter, anywhere
    /// between 0 and an exponential step (500 ms doubling, at most 15 s), as herald.js does.
    static func backoffNanoseconds(attempt: Int, random: Double) -> UInt64 {
        let step = min(15_000.0, 500.0 * Double(1 << min(attempt, 16)))
        return UInt64(step * random * 1e6)
    }
}
