import HeraldClient

/// One subscriber of the run, from connect to its last message.
struct Subscriber {
    enum Phase: Equatable {
        case connecting, handshaking, awaitingHead, awaitingReply, streaming, stalled, away, failed

        /// Whether its connection is being read.
        var reads: Bool { self != .failed && self != .stalled && self != .away }
        /// Whether it holds one of the fleet's `maxConnecting` slots.
        var isConnecting: Bool { [.connecting, .handshaking, .awaitingHead, .awaitingReply].contains(self) }
    }

    let index: Int
    let role: LoadPlan.Role
    var fd: Int32 = -1
    /// The TLS session of a wss:// or https:// subscriber.
    var tls: TLSSession?
    var phase = Phase.connecting
    /// Bytes read and not handled yet (a partial frame or SSE event).
    var input: [UInt8] = []
    /// SSE: the stream after de-chunking; its events are cut at blank lines.
    var decoded: [UInt8] = []
    var chunks: ChunkDecoder?
    /// A WebSocket message arriving in fragments.
    var fragments: [UInt8] = []
    /// Bytes the socket did not take yet (a handshake, a pong).
    var output = SocketOutput()
    var received = 0
    /// Storm runs: the deliveries checked for order and completeness across reconnects,
    /// and what coming back needs.
    var ledger: DeliveryLedger?
    var resume = ResumeState()

    /// Forgets the connection's bytes (a drop or a refusal): a new connection starts clean.
    mutating func clearConnection() {
        tls = nil
        input = []
        decoded = []
        chunks = nil
        fragments = []
        output = SocketOutput()
    }
}

/// What a subscriber of a storm run needs to come back where it left off, and how its
/// comeback went.
struct ResumeState {
    /// The epoch of the last position: from `subscribed` (WebSocket) or the last `id:` (SSE).
    var epoch: [UInt8] = []
    /// WebSocket: the position `subscribed` answered, where a resume starts before any
    /// event arrived.
    var position: UInt64?
    /// Whether it was subscribed once: coming back, it resumes.
    var wasReady = false
    /// Refusals in a row, and whether the next connect is a retry after one.
    var attempts = 0
    var retrying = false
    /// Whether it waits to come back after a drop or a refusal (counted in `LoadCounters.away`).
    var isAway = false
    /// Storm clients: when the resume was answered, when the first event published after
    /// that arrived (it had caught up), and when its last event arrived.
    var resumedAt: UInt64 = 0
    var caughtUpAt: UInt64 = 0
    var lastEventAt: UInt64 = 0
}
