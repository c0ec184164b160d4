import HeraldCore
import Logging

/// The life of a connection: bytes in, bytes out, timeouts, close. Requests are read and
/// answered here one at a time, in order, each exactly once (RFC 9112 §9.3.2 pipelining).
extension Gateway {
    // MARK: - Socket events

    func opened(_ socket: Socket, redirectsToTLS: Bool = false) -> Connection {
        let now = MonotonicClock.nanoseconds()
        let connection = Connection(
            id: nextConnectionID, socket: socket, now: now, headLimits: config.limits.head, redirectsToTLS: redirectsToTLS)
        nextConnectionID += 1
        connections[connection.id] = connection
        connection.admissionRefusal = admission.admit(peer: connection.peer)
        if let refusal = connection.admissionRefusal { count(refusal) } else { connection.countedPeer = true }
        return connection
    }

    /// Input arrived. Returns false when the connection must close at once.
    func received(_ bytes: UnsafeRawBufferPointer, on connection: Connection) -> Bool {
        // After a refusal or a close frame nothing the peer sends is read any more.
        if connection.closeAfterOutput { return true }
        switch connection.mode {
        case .http:
            connection.input.append(bytes)
            if case .awaitingHead = connection.http.phase, !connection.http.headStarted {
                connection.http.headStarted = true
                connection.http.since = MonotonicClock.nanoseconds()
                // lws' own timer from a TLS handshake ends: Herald's head timer runs now.
                if config.tls != nil { connection.socket.clearLibraryTimeout() }
            }
            serveHTTP(connection)
        case .stream(let transport):
            connection.input.append(bytes)
            transport.received(on: connection, in: self)
            updateReading(connection)
        }
        chargeInput(of: connection)
        return true
    }

    /// The socket can take more output: one write per callback. Returns false when the
    /// connection must close — only once an earlier write drained, so lws never drops
    /// the last bytes (a final response, a close frame).
    func writable(_ connection: Connection) -> Bool {
        if connection.closeAfterOutput && connection.isDoneSending { return false }
        if case .stream(let transport) = connection.mode, !connection.closeAfterOutput {
            if connection.output.isEmpty {
                guard writeStaged(transport, on: connection) else { return false }
            } else {
                fillStream(transport, on: connection, into: connection.output)
            }
        }
        guard flush(connection.output, of: connection) else { return false }
        if connection.output.isEmpty {
            // A stream's own buffer only held its response head or a backlog: once that is
            // sent, the stream writes through `streamStaging` again.
            if connection.transport != nil { connection.output.release() } else { connection.output.releaseIfLarge() }
            // The next piece of a file, the next pipelined request: made now, sent by the
            // WRITEABLE callback this asks for.
            if case .http = connection.mode {
                serveHTTP(connection)
                chargeInput(of: connection)
            }
        }
        if connection.closeAfterOutput && connection.isDoneSending { connection.socket.requestWritable() }
        if let transport = connection.transport, !connection.closeAfterOutput, hub.finishedWriting(transport.session) {
            connection.socket.requestWritable()
        }
        return true
    }

    func closed(_ connection: Connection) {
        connections[connection.id] = nil
        if connection.countedPeer { admission.release(peer: connection.peer) }
        releaseStream(on: connection)
        if case .http = connection.mode {
            if connection.http.listedAwaitingCommit { connectionsAwaitingCommit.removeAll { $0 === connection } }
            // Listed or not (a connection with full output is not), its submission goes with it.
            switch connection.http.phase {
            case .awaitingCommit(_, .sequencing(let ticket, _)): hub.forgetSubmission(ticket)
            case .awaitingCommit(_, .gathering(let token)): pendingQueries[token] = nil
            default: break
            }
        }
        closedSinceTrim += 1
        lastClosedAt = MonotonicClock.nanoseconds()
        pendingInputBytes -= connection.chargedInputBytes
        connection.chargedInputBytes = 0
        if let session = connection.transport?.session {
            streams[session.index] = nil
            hub.closeSession(session)
            logger.debug("\(session.transport.name) closed", metadata: ["client": "\(session.id)"])
        }
    }

    /// Writes a stream's next writes through the gateway's `streamStaging` buffer, for a
    /// stream whose own output is empty (a client that keeps up): it holds no buffer of its
    /// own, and nothing is allocated per write. What one write does not take (more than
    /// `writeBudget` was due) moves to the connection's own output, sent first next time.
    /// Returns false when the write failed.
    private func writeStaged(_ transport: any StreamTransport, on connection: Connection) -> Bool {
        let staged = streamStaging
        staged.reset()
        fillStream(transport, on: connection, into: staged)
        guard flush(staged, of: connection) else { return false }
        if !staged.isEmpty {
            connection.output.append(UnsafeRawBufferPointer(start: staged.unsent, count: staged.count))
            staged.reset()
        }
        // One huge event grew it: not kept for the loop's lifetime.
        if staged.capacity > 4 * writeBudget { staged.release() }
        return true
    }

    /// Hands at most `writeBudget` bytes of `output` (the connection's own, or the staging
    /// buffer) to the connection's socket in one write. Returns false when the write failed.
    func flush(_ output: WriteBuffer, of connection: Connection) -> Bool {
        guard !output.isEmpty else { return true }
        let count = min(output.count, writeBudget)
        guard connection.socket.write(output.unsent, count: count) else { return false }
        output.consume(count)
        connection.bytesWritten &+= UInt64(count)
        if !output.isEmpty { connection.socket.requestWritable() }
        return true
    }

    // MARK: - Requests

    /// Reads and answers requests from the connection's input until it needs more input,
    /// its output is a full write ahead, or it is to close.
    func serveHTTP(_ connection: Connection) {
        reading: while case .http = connection.mode, connection.output.count < writeBudget {
            if case .sendingFile(let sender) = connection.http.phase {
                guard sender.fill(connection.output, upTo: writeBudget) else {
                    connection.closeAfterOutput = true
                    connection.http.phase = .awaitingHead
                    break reading
                }
                if sender.isFinished { startAwaitingHead(connection) } else { break reading }
                continue
            }
            // After a response that closes the connection nothing more is read.
            guard !connection.closeAfterOutput else { break reading }
            switch connection.http.phase {
            case .sendingFile:
                break reading
            case .awaitingHead:
                guard !connection.input.isEmpty else { break reading }
                let decoded: (head: HTTPRequestHead, consumed: Int)?
                do throws(HeraldError) {
                    decoded = try connection.input.withUnread { (bytes) throws(HeraldError) in try connection.http.decoder.decodeHead(bytes)
                    }
                } catch {
                    respondAndClose(connection, errorResponse(error))
                    break reading
                }
                guard let decoded else { break reading }
                connection.input.consume(decoded.consumed)
                // The head is in: its timer stops; the next head's starts with its first byte.
                startAwaitingHead(connection)
                begin(Request(head: decoded.head, peer: connection.peer), on: connection)
            case .readingBody(var read):
                do throws(HeraldError) {
                    let complete = try readBody(&read, from: connection)
                    guard complete else {
                        connection.http.phase = .readingBody(read)
                        break reading
                    }
                } catch {
                    respondAndClose(connection, errorResponse(error))
                    break reading
                }
                startAwaitingHead(connection)
                switch read.handler.answer(read.request, gateway: self) {
                case .now(let response):
                    respond(connection, response, to: read.request)
                case .held(let held):
                    var request = read.request
                    request.body = []  // only the head is needed to answer it
                    connection.http.phase = .awaitingCommit(request, held)
                    continue reading
                }
            case .awaitingCommit(let request, let held):
                if let answer = answer(held: held) {
                    respond(connection, answer, to: request)
                } else {
                    // Served again when the log reports progress (it may report less first).
                    if !connection.http.listedAwaitingCommit {
                        connection.http.listedAwaitingCommit = true
                        connectionsAwaitingCommit.append(connection)
                    }
                    break reading
                }
                startAwaitingHead(connection)
            case .discardingBody(var reader):
                do throws(HeraldError) {
                    let consumed = try connection.input.withUnread { (bytes) throws(HeraldError) in try reader.read(bytes) { _ in } }
                    connection.input.consume(consumed)
                } catch {
                    connection.closeAfterOutput = true
                    break reading
                }
                guard reader.isComplete else {
                    connection.http.phase = .discardingBody(reader)
                    break reading
                }
                startAwaitingHead(connection)
            }
        }
        if !connection.output.isEmpty || connection.closeAfterOutput { connection.socket.requestWritable() }
        updateReading(connection)
    }

    /// Acts on a request whose head has been read.
    private func begin(_ request: Request, on connection: Connection) {
        let plan: RequestPlan
        if draining {
            plan = .close(errorResponse(HeraldError(.shuttingDown, "the gateway is shutting down")))
        } else if let refusal = connection.admissionRefusal ?? admitFirstRequest(request, on: connection) {
            plan = refusedPlan(refusal, for: request, on: connection)
        } else if connection.redirectsToTLS {
            plan = tlsRedirect(request)
        } else {
            plan = router.plan(request, connection: connection, gateway: self)
        }
        switch plan {
        case .respond(let response):
            respond(connection, response, to: request)
            skipBody(of: request, on: connection)
        case .close(let response):
            respondAndClose(connection, response, isHead: request.isHead)
        case .readBody(let handler, let limit):
            readBody(of: request, limit: limit, then: handler, on: connection)
        case .file(let sender, let response):
            if request.head.bodyFraming == .none {
                respond(connection, response, to: request)
            } else {
                // The body would have to be read before the file is sent after the head:
                // the file goes out and the connection closes, the body unread.
                respondAndClose(connection, response, isHead: request.isHead)
            }
            if !request.isHead { connection.http.phase = .sendingFile(sender) }
        case .stream(let transport, let head):
            connection.output.append(head)
            attach(transport, to: connection)
            if !connection.input.isEmpty { transport.received(on: connection, in: self) }
        case .held(let held):
            if request.head.bodyFraming == .none {
                connection.http.phase = .awaitingCommit(request, held)
            } else {
                if case .gathering(let token) = held { pendingQueries[token] = nil }
                respondAndClose(connection, errorResponse(HeraldError(.badRequest, "\(request.head.path) takes no request body")))
            }
        }
    }

    /// Starts collecting a body, or refuses it: too large (413), more unfinished input
    /// gateway-wide than `limits.maxPendingInputBytesTotal` (503).
    private func readBody(of request: Request, limit: Int, then handler: any BodyHandler, on connection: Connection) {
        let framing = request.head.bodyFraming
        if let length = framing.declaredLength, length > limit {
            handler.refused(.bodyTooLarge, gateway: self)
            let error = HeraldError(.bodyTooLarge, "the body has \(length) bytes; the limit is \(limit)")
            respondAndClose(connection, errorResponse(error))
            return
        }
        if pendingInputBytes + (framing.declaredLength ?? 0) > config.limits.maxPendingInputBytesTotal {
            refuseOverloaded(connection, handler)
            return
        }
        var read = BodyRead(request: request, reader: HTTPBodyReader(framing: framing), limit: limit, handler: handler)
        if case .length(let length) = framing { read.request.body.reserveCapacity(length) }
        if request.head.expectsContinue && framing != .none {
            connection.output.append(Array("HTTP/1.1 100 Continue\r\n\r\n".utf8))
        }
        connection.http.phase = .readingBody(read)
        connection.http.since = MonotonicClock.nanoseconds()
    }

    /// Moves body bytes from the input into `read`. Returns true once the body is complete.
    private func readBody(_ read: inout BodyRead, from connection: Connection) throws(HeraldError) -> Bool {
        let limit = read.limit
        var tooLarge = false
        let consumed = try connection.input.withUnread { (bytes) throws(HeraldError) in
            try read.reader.read(bytes) { chunk in
                if read.request.body.count + chunk.count > limit { tooLarge = true } else { read.request.body.append(contentsOf: chunk) }
            }
        }
        connection.input.consume(consumed)
        if tooLarge {
            read.handler.refused(.bodyTooLarge, gateway: self)
            throw HeraldError(.bodyTooLarge, "the body exceeds \(limit) bytes")
        }
        if !read.reader.isComplete,
            pendingInputBytes - connection.chargedInputBytes + read.request.body.count > config.limits.maxPendingInputBytesTotal
        {
            read.handler.refused(.overloaded, gateway: self)
            throw Self.tooMuchUnfinishedInput
        }
        return read.reader.isComplete
    }

    private func refuseOverloaded(_ connection: Connection, _ handler: any BodyHandler) {
        handler.refused(.overloaded, gateway: self)
        respondAndClose(connection, errorResponse(Self.tooMuchUnfinishedInput))
    }

    private static let tooMuchUnfinishedInput = HeraldError(.overloaded, "the gateway holds too much unfinished input; retry later")

    /// Drops the body of a request that was answered without it, so the next pipelined
    /// request can be read; a body too large to be worth reading (or one the client holds
    /// back for `100 Continue`) closes the connection after the answer instead.
    private func skipBody(of request: Request, on connection: Connection) {
        let framing = request.head.bodyFraming
        guard framing != .none else { return }
        if request.head.expectsContinue || (framing.declaredLength ?? 0) > config.limits.maxBodyBytes {
            connection.closeAfterOutput = true
            return
        }
        connection.http.phase = .discardingBody(HTTPBodyReader(framing: framing))
        connection.http.since = MonotonicClock.nanoseconds()
    }

    private func startAwaitingHead(_ connection: Connection) {
        connection.http.phase = .awaitingHead
        connection.http.headStarted = !connection.input.isEmpty
        connection.http.since = MonotonicClock.nanoseconds()
    }

    /// Queues a response; it says `Connection: close` (and the connection closes after it)
    /// when the client asked for that or the gateway is draining.
    func respond(_ connection: Connection, _ response: HTTPServerResponse, to request: Request) {
        let keepAlive = request.head.keepAlive && !draining
        var response = response
        response.fields = corsFields(response.fields, for: request.head)
        encode(response, into: connection.output, omitBody: request.isHead, keepAlive: keepAlive)
        if !keepAlive { connection.closeAfterOutput = true }
    }

    /// `fields` with the origin the answer may be read from (`cors.allowedOrigins`):
    /// `apiHeaders`' `*` when any origin may or the request names none (no page can read
    /// it cross-origin: a browser always sends `Origin` then), the request's own `Origin`
    /// when it may, none when it may not; with `Vary: Origin`, since the answer depends on it.
    func corsFields(_ fields: [(name: String, value: String)], for head: HTTPRequestHead) -> [(name: String, value: String)] {
        guard !cors.allowsAnyOrigin, let index = fields.firstIndex(where: { $0.name == "access-control-allow-origin" }) else {
            return fields
        }
        var fields = fields
        switch cors.decide(origin: head.field("origin"), host: head.field("host")) {
        case .noOrigin: break
        case .allowed(let origin): fields[index].value = origin
        case .refused: fields.remove(at: index)
        }
        fields.append(("vary", "origin"))
        return fields
    }

    /// Queues a final response and closes after it.
    func respondAndClose(_ connection: Connection, _ response: HTTPServerResponse, isHead: Bool = false) {
        encode(response, into: connection.output, omitBody: isHead, keepAlive: false)
        connection.closeAfterOutput = true
        connection.socket.requestWritable()
    }

    private func encode(_ response: HTTPServerResponse, into output: WriteBuffer, omitBody: Bool, keepAlive: Bool) {
        if response.status >= 500 { logger.warning("request failed", metadata: ["status": "\(response.status)"]) }
        responseScratch.removeAll(keepingCapacity: true)
        response.encode(into: &responseScratch, omitBody: omitBody, keepAlive: keepAlive)
        output.append(responseScratch)
    }

    // MARK: - Bounds on unfinished input

    /// Pauses reading while handled input waits for output to drain, and resumes it. A
    /// stream never pauses: its transport consumes what it reads (a WebSocket message is
    /// bounded by its own limit and deadline).
    private func updateReading(_ connection: Connection) {
        var shouldPause = false
        if case .http = connection.mode { shouldPause = connection.input.count >= Connection.maxWaitingInput }
        if shouldPause != connection.readingPaused {
            connection.readingPaused = shouldPause
            connection.socket.setReading(!shouldPause)
        }
    }

    /// Charges the connection's unfinished input (unread bytes, a body being collected, a
    /// partial WebSocket message) to the gateway-wide total; called after every change.
    func chargeInput(of connection: Connection) {
        var held = connection.input.count
        if case .http = connection.mode, case .readingBody(let read) = connection.http.phase {
            // A declared length is reserved whole (its buffer is allocated for it).
            held += max(read.request.body.count, read.request.head.bodyFraming.declaredLength ?? 0)
        }
        if let transport = connection.transport { held += transport.heldInputBytes }
        pendingInputBytes += held - connection.chargedInputBytes
        connection.chargedInputBytes = held
    }

    // MARK: - Timeouts

    /// Runs once a second:
    /// - an HTTP head or body that is late gets 408 (`limits.headTimeoutSeconds`,
    ///   `.bodyTimeoutSeconds`); a body being dropped after its answer just closes;
    /// - an idle keep-alive connection closes silently (`limits.keepAliveSeconds`);
    /// - a WebSocket message left unfinished for `limits.bodyTimeoutSeconds` closes the
    ///   socket with 1008, so no client holds input budget with a fragment for ever;
    /// - a connection that takes none of its output for `limits.sendTimeoutSeconds` is
    ///   dropped (a client that stopped reading: a file, a response, a final close frame).
    ///
    /// It also gives back the input and output buffers of connections that used neither
    /// since the last tick, so an idle connection holds no buffer.
    func expireConnections(now: UInt64) {
        let head = UInt64(config.limits.headTimeoutSeconds) * 1_000_000_000
        let body = UInt64(config.limits.bodyTimeoutSeconds) * 1_000_000_000
        let idle = UInt64(config.limits.keepAliveSeconds) * 1_000_000_000
        let send = UInt64(config.limits.sendTimeoutSeconds) * 1_000_000_000
        let storage = UInt64(config.limits.storageTimeoutSeconds) * 1_000_000_000
        for connection in connections.values {
            connection.input.releaseIfIdle()
            connection.output.releaseIfIdle()
            if stalledSending(connection, now: now, limit: send) {
                logger.debug("closing a connection that reads nothing", metadata: ["peer": "\(connection.peer)"])
                connection.socket.kill()
                continue
            }
            guard !connection.closeAfterOutput else { continue }
            if let transport = connection.transport {
                transport.expire(now: now, on: connection, in: self)
                continue
            }
            let age = now &- connection.http.since
            switch connection.http.phase {
            case .awaitingHead where connection.http.headStarted:
                if age > head { timeOut(connection, "the request head did not arrive within \(config.limits.headTimeoutSeconds) s") }
            case .awaitingHead:
                if age > idle && connection.output.isEmpty { connection.socket.kill() }
            case .readingBody:
                if age > body { timeOut(connection, "the request body did not arrive within \(config.limits.bodyTimeoutSeconds) s") }
            case .discardingBody:
                // Its answer is already queued: a second one would be a response too many.
                if age > body {
                    connection.closeAfterOutput = true
                    connection.socket.requestWritable()
                }
            case .awaitingCommit(let request, let held):
                if age > storage { giveUpWaiting(connection, request, held) }
            case .sendingFile:
                break  // the socket's pace: the send deadline watches output
            }
        }
    }

    /// An ingest answer that storage did not make within `limits.storageTimeoutSeconds` (a
    /// hung disk, a Redis that stopped answering): 503, and the connection reads on. The
    /// events may still be stored and delivered later; a retry with the same ids is
    /// answered as their duplicate.
    private func giveUpWaiting(_ connection: Connection, _ request: Request, _ held: HeldAnswer) {
        respond(connection, answer(held: held) ?? storageTimeout(held), to: request)
        startAwaitingHead(connection)
        serveHTTP(connection)
        chargeInput(of: connection)
    }

    /// The 503 for a held answer storage did not make in time (a stored one, only waiting
    /// behind unread output, gets its own answer instead).
    private func storageTimeout(_ held: HeldAnswer) -> HTTPServerResponse {
        switch held {
        case .sequencing(let ticket, _):
            hub.forgetSubmission(ticket)
        case .gathering(let token):
            pendingQueries[token] = nil
            let error = HeraldError(.overloaded, "the gateway's loops did not answer within \(config.limits.storageTimeoutSeconds) s")
            return errorResponse(error, fields: [("retry-after", "1")])
        case .commit:
            break
        }
        hub.metrics.rejected[HeraldError.Code.storageUnavailable.rawValue, default: 0] += 1
        let error = HeraldError(
            .storageUnavailable,
            "\(hub.storageName) did not store the events within \(config.limits.storageTimeoutSeconds) s; they may still be stored: retry with the same event ids"
        )
        return errorResponse(error, fields: [("retry-after", "1")])
    }

    /// True when the connection has output to send and the socket took none of it for
    /// `limit` (watched from one tick to the next by the count of bytes written).
    private func stalledSending(_ connection: Connection, now: UInt64, limit: UInt64) -> Bool {
        guard !connection.isDoneSending || connection.socket.holdsUnsentBytes else {
            connection.sendWatch = nil
            return false
        }
        if let watch = connection.sendWatch, watch.written == connection.bytesWritten {
            return now &- watch.since > limit
        }
        connection.sendWatch = (since: now, written: connection.bytesWritten)
        return false
    }

    private func timeOut(_ connection: Connection, _ message: String) {
        if case .readingBody(let read) = connection.http.phase { read.handler.refused(.requestTimeout, gateway: self) }
        respondAndClose(connection, errorResponse(HeraldError(.requestTimeout, message)))
    }
}

/// Most bytes one WRITEABLE callback hands to lws.
let writeBudget = 64 * 1024
