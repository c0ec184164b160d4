import HeraldCore

/// One accepted socket: the input not handled yet, the output not sent yet, and the
/// protocol it speaks now (HTTP requests, then perhaps an SSE stream or a WebSocket).
///
/// The loop thread owns it; lws keeps it alive from `opened` to `closed` (see
/// `heraldCallback`). Input is handled in order and exactly once: a request is answered
/// before the next pipelined one is read, and input that waits for its turn is bounded
/// (reading pauses past `Connection.maxWaitingInput`).
final class Connection {
    /// What the connection speaks now.
    enum Mode {
        /// Requests and responses.
        case http
        /// A streaming transport carrying a Hub session (SSE, WebSocket).
        case stream(any StreamTransport)
    }

    let id: UInt64
    let socket: Socket
    /// The peer's IP address.
    let peer: String
    /// Accepted on the plain-HTTP port `tls.redirectPort`: every request is redirected to HTTPS.
    let redirectsToTLS: Bool
    /// Why `Admission` refused it (past a connection count when it opened, or past the
    /// new-connection rate at its first request): its first request is answered with the
    /// refusal and it closes.
    var admissionRefusal: AdmissionRefusal?
    /// Counted in `Admission`'s connection counts when it opened (and counted out when it
    /// closes).
    var countedPeer = false
    /// Its first request has been looked at for `limits.newConnectionsPerSecond`.
    var rateChecked = false
    /// When the stream's latest write began: a delivery written in a later write than
    /// the first one after its event arrived waited behind earlier ones (a slow client).
    var lastWriteAt: UInt64 = 0
    /// The JWT subject this stream is counted for (`limits.maxConnectionsPerSubject`).
    var countedSubject: String?
    var mode: Mode = .http
    /// Requests and their bodies (while `mode` is `.http`).
    var http: HTTPState
    /// Input read from the socket and not handled yet.
    var input = InputBuffer()
    /// Output not handed to the socket yet.
    let output = WriteBuffer()
    /// Close once `output` is written: a response said `Connection: close`, or the peer
    /// broke the protocol. Input after that point is ignored.
    var closeAfterOutput = false
    /// Reading is paused because handled input is waiting for output to drain.
    var readingPaused = false
    /// Bytes of unfinished input this connection holds, as charged to the gateway-wide
    /// `limits.maxPendingInputBytesTotal`.
    var chargedInputBytes = 0
    /// Bytes handed to the socket so far, and what they were when a tick first saw output
    /// waiting: a count that does not move for `limits.sendTimeoutSeconds` is a client
    /// that stopped reading.
    var bytesWritten: UInt64 = 0
    var sendWatch: (since: UInt64, written: UInt64)?

    /// Unhandled input a connection may hold before reading pauses.
    static let maxWaitingInput = 64 * 1024

    init(id: UInt64, socket: Socket, now: UInt64, headLimits: HTTPHeadLimits, redirectsToTLS: Bool = false) {
        self.id = id
        self.redirectsToTLS = redirectsToTLS
        self.socket = socket
        self.peer = socket.peerAddress
        self.http = HTTPState(decoder: HTTPRequestDecoder(limits: headLimits), since: now)
    }

    /// Nothing more is to be sent: the output is empty and no file is being streamed.
    /// A connection that is to close closes only then.
    var isDoneSending: Bool {
        guard output.isEmpty else { return false }
        if case .http = mode, case .sendingFile = http.phase { return false }
        return true
    }

    /// The transport this connection streams with, if it became a stream.
    var transport: (any StreamTransport)? {
        if case .stream(let transport) = mode { return transport }
        return nil
    }
}

/// Where a connection is in its current HTTP request.
struct HTTPState {
    /// `indirect`: its payloads (a request being read, an answer held for storage) are
    /// two hundred bytes that every connection — most of them idle streams that will never
    /// read another request — would otherwise carry inline; a request with a body pays
    /// one small allocation instead.
    indirect enum Phase {
        /// Waiting for a request head (idle, or part of one has arrived).
        case awaitingHead
        /// Collecting a body for `request`.
        case readingBody(BodyRead)
        /// Dropping a body whose answer was already queued, to reach the next request.
        case discardingBody(HTTPBodyReader)
        /// Sending a static file in pieces as the socket drains.
        case sendingFile(FileSender)
        /// An answer that acknowledges events, held until they are stored (the log made
        /// them durable, or the cluster's stream has them); later requests wait behind it.
        case awaitingCommit(Request, HeldAnswer)
    }

    var decoder: HTTPRequestDecoder
    var phase: Phase = .awaitingHead
    /// When the current phase began (for the head, body and keep-alive timeouts).
    var since: UInt64
    /// True once part of a request head has arrived (the head timeout runs).
    var headStarted = false
    /// In `Gateway.connectionsAwaitingCommit` (served again when the log reports progress).
    var listedAwaitingCommit = false

    init(decoder: HTTPRequestDecoder, since: UInt64) {
        self.decoder = decoder
        self.since = since
    }
}

/// A request whose body is being collected.
struct BodyRead {
    var request: Request
    var reader: HTTPBodyReader
    /// The most body bytes this request may carry.
    var limit: Int
    /// What answers the request once the body is complete.
    var handler: any BodyHandler
}

/// A request as the endpoints see it: the head, the body once read, and who sent it.
struct Request {
    var head: HTTPRequestHead
    var body: [UInt8] = []
    let peer: String

    /// A HEAD request is answered with the head a GET would get, without the body.
    var isHead: Bool { head.method == .head }

    /// The decoded query argument, or nil when absent or malformed.
    func query(_ name: String) -> String? { (try? head.queryArgument(name)) ?? nil }
}

/// Bytes read from a socket and not handled yet, consumed from the front.
///
/// Its storage is kept while the connection reads (a read allocates nothing once it has
/// grown to the connection's usual input) and given back once it stayed empty for a whole
/// tick (`releaseIfIdle`): an idle stream would otherwise hold the capacity its request
/// head needed for as long as it is open.
struct InputBuffer {
    private var bytes: [UInt8] = []
    private var start = 0
    /// Something was appended since the last `releaseIfIdle`.
    private var usedSinceTick = false

    var count: Int { bytes.count - start }
    var isEmpty: Bool { start == bytes.count }
    /// Bytes allocated (for memory accounting).
    var capacity: Int { bytes.capacity }

    mutating func append(_ chunk: UnsafeRawBufferPointer) {
        usedSinceTick = true
        if start > 0 && start >= bytes.count / 2 {
            bytes.removeFirst(start)
            start = 0
        }
        bytes.append(contentsOf: chunk)
    }

    /// Calls `body` with the unhandled bytes.
    func withUnread<R, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
        let result: Result<R, E> = bytes.withUnsafeBytes { raw in
            Result { () throws(E) -> R in try body(UnsafeRawBufferPointer(rebasing: raw[start...])) }
        }
        return try result.get()
    }

    mutating func consume(_ n: Int) {
        start += n
        if start == bytes.count {
            // Keep a small buffer for the next read; give a large one back.
            if bytes.capacity > 64 * 1024 { bytes = [] } else { bytes.removeAll(keepingCapacity: true) }
            start = 0
        }
    }

    mutating func removeAll() { consume(count) }

    /// Frees the storage of an empty buffer.
    mutating func release() {
        guard isEmpty, bytes.capacity > 0 else { return }
        bytes = []
        start = 0
    }

    /// Once a tick: frees the storage of a buffer that is empty and took no bytes since
    /// the previous call.
    mutating func releaseIfIdle() {
        defer { usedSinceTick = false }
        guard !usedSinceTick else { return }
        release()
    }
}
