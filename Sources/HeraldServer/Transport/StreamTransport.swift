import HeraldCore

/// A streaming transport (DESIGN §4): how a Hub session's writes become bytes on a socket,
/// and what the client's input means.
///
/// The set is closed (`TransportKind`): Server-Sent Events and WebSocket today. Adding
/// one — HTTP long-polling, say — is a conforming type, a `TransportKind` case, and an
/// endpoint whose `RequestPlan.stream` switches the connection to it; the Hub, the queue
/// and the per-transport metrics follow from the kind.
protocol StreamTransport: AnyObject {
    /// The Hub session this transport carries.
    var session: Session { get }

    /// The client sent bytes (they are in `connection.input`).
    func received(on connection: Connection, in gateway: Gateway)

    /// Input the transport holds beyond `connection.input` (a partial message), charged
    /// to the gateway-wide bound on unfinished input.
    var heldInputBytes: Int { get }

    /// Once a second: ends what the client left unfinished too long.
    func expire(now: UInt64, on connection: Connection, in gateway: Gateway)

    /// Appends what the transport owes the client before the session's next writes
    /// (a WebSocket pong).
    func beginWrite(into buffer: WriteBuffer)

    /// Appends the bytes of one of the session's writes; `previousWriteAt`: when the
    /// connection's previous write began (see `Hub.recordDelivery`).
    func encode(_ write: SessionWrite, into buffer: WriteBuffer, gateway: Gateway, now: UInt64, previousWriteAt: UInt64)
}

extension Gateway {
    /// Appends the session's next writes to `output` (the connection's own, or the
    /// staging buffer), up to a write's worth; after a close nothing more is written and
    /// the connection closes once its output is sent.
    func fillStream(_ transport: any StreamTransport, on connection: Connection, into output: WriteBuffer) {
        transport.beginWrite(into: output)
        let now = MonotonicClock.nanoseconds()
        let previousWriteAt = connection.lastWriteAt
        connection.lastWriteAt = now
        while output.count < writeBudget {
            let write = hub.nextWrite(for: transport.session)
            if case .idle = write { break }
            transport.encode(write, into: output, gateway: self, now: now, previousWriteAt: previousWriteAt)
            if case .close = write {
                connection.closeAfterOutput = true
                break
            }
        }
    }

    /// Makes `connection` carry `transport`'s session.
    func attach(_ transport: any StreamTransport, to connection: Connection) {
        let index = transport.session.index
        while streams.count <= index { streams.append(nil) }
        streams[index] = connection
        connection.mode = .stream(transport)
        // What the request head needed is given back at once (the next connection reuses
        // it); a stream reads little, and only now and then.
        if connection.input.isEmpty { connection.input.release() }
    }
}
