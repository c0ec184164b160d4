import CEpoll
import HeraldClient
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The subscribers one thread reads, on one epoll instance: connects them at most
/// `maxConnecting` at a time, upgrades or opens the stream, subscribes, then counts each
/// event and its latency (`now - sentAt`) until told to stop. In a storm run it also
/// drops and resumes the storm clients (`SubscriberFleet+Storm`).
final class SubscriberFleet: @unchecked Sendable {  // state is touched by its thread only, until `run` returns
    let plan: LoadPlan
    private let address: sockaddr_in
    private let sources: [in_addr]?
    /// The trust for wss:// and https:// subscribe URLs, and the name their server must hold.
    private let tls: (context: TLSClientContext, host: String)?
    let counters: LoadCounters
    var subscribers: [Subscriber]
    let poller = Poller()
    /// Latencies of the readers (in a storm run: the undisturbed ones).
    var latencies = LatencyHistogram()
    /// When this fleet's last event arrived.
    private(set) var lastDelivery: UInt64 = 0
    var connecting = 0
    private var nextToConnect = 0
    /// Storm runs: when the storm clients drop (0 until publishing starts), whether they
    /// did, the reconnects waiting for their moment, and what the storm counted.
    var stormStart: UInt64 = 0
    var stormed = false
    var schedule = ReconnectSchedule()
    var tally = StormTally()
    private var scratch = [UInt8](repeating: 0, count: 64 * 1024)
    static let maxConnecting = 256

    init(
        plan: LoadPlan, indices: [Int], address: sockaddr_in, sources: [in_addr]?, tls: (context: TLSClientContext, host: String)?,
        counters: LoadCounters
    ) {
        self.plan = plan
        self.address = address
        self.sources = sources
        self.tls = tls
        self.counters = counters
        subscribers = indices.map { index in
            let role = plan.role(of: index)
            var subscriber = Subscriber(index: index, role: role)
            if plan.storm != nil, role != .stalled { subscriber.ledger = DeliveryLedger(events: plan.events) }
            return subscriber
        }
    }

    /// Events each subscriber received, by subscriber index.
    var receivedBySubscriber: [(index: Int, received: Int)] { subscribers.map { ($0.index, $0.received) } }

    func run() {
        while !counters.stop.load(ordering: .relaxed) {
            if let storm = plan.storm { serviceStorm(storm) }
            while connecting < Self.maxConnecting, nextToConnect < subscribers.count {
                open(nextToConnect)
                nextToConnect += 1
            }
            var received = 0
            var gaps = 0
            poller.wait(milliseconds: 5) { token, events in
                self.service(token, events: events, received: &received, gaps: &gaps)
            }
            if received > 0 { counters.received.add(received, ordering: .relaxed) }
            if gaps > 0 { counters.gaps.add(gaps, ordering: .relaxed) }
        }
        for subscriber in subscribers where subscriber.fd >= 0 { close(subscriber.fd) }
    }

    func open(_ token: Int) {
        let source = sources.map { $0[subscribers[token].index % $0.count] }
        connecting += 1  // until it is ready, failed or dropped (each counts it down)
        subscribers[token].phase = .connecting
        switch LoadSocket.connect(to: address, from: source) {
        case .success(let fd):
            subscribers[token].fd = fd
            poller.add(fd, events: Poller.writable, token: token)
        case .failure(let failure):
            fail(token, failure.description)
        }
    }

    private func service(_ token: Int, events: UInt32, received: inout Int, gaps: inout Int) {
        let fd = subscribers[token].fd
        switch subscribers[token].phase {
        case .failed, .stalled, .away:
            return
        case .connecting:
            let error = LoadSocket.connectError(fd)
            guard error == 0 else { return fail(token, "connect: \(String(cString: strerror(error)))") }
            guard let tls else { return startStream(token) }
            do throws(ClientError) {
                subscribers[token].tls = try TLSSession(context: tls.context, fd: fd, host: tls.host)
            } catch {
                return fail(token, "TLS: \(error.message)")
            }
            subscribers[token].phase = .handshaking
            return continueHandshake(token)
        case .handshaking:
            return continueHandshake(token)
        default:
            break
        }
        if events & Poller.writable != 0, !subscribers[token].output.isEmpty { send([], on: token) }
        guard events & (Poller.readable | EPOLLHUP.rawValue | EPOLLERR.rawValue) != 0 else { return }
        repeat {
            readOnce(token, fd: fd, received: &received, gaps: &gaps)
            // Bytes TLS already decrypted are not in the socket: epoll would not report them.
        } while subscribers[token].phase.reads && subscribers[token].tls?.pending ?? 0 > 0
    }

    private func readOnce(_ token: Int, fd: Int32, received: inout Int, gaps: inout Int) {
        let n: Int
        switch scratch.withUnsafeMutableBytes({ LoadSocket.receive(fd, subscribers[token].tls, into: $0) }) {
        case .bytes(let count): n = count
        case .wouldBlock: return
        case .closed: return fail(token, "the server closed the connection")
        case .failed(let text): return fail(token, text)
        }
        let now = monotonicNanoseconds()
        var input = subscribers[token].input
        subscribers[token].input = []
        scratch.withUnsafeBytes { chunk in
            let bytes = UnsafeRawBufferPointer(rebasing: chunk[0..<n])
            if input.isEmpty {
                let used = handle(bytes, token: token, now: now, received: &received, gaps: &gaps)
                input.append(contentsOf: bytes[used...])
            } else {
                input.append(contentsOf: bytes)
                let used = input.withUnsafeBytes { handle($0, token: token, now: now, received: &received, gaps: &gaps) }
                input.removeFirst(used)
            }
        }
        if subscribers[token].phase.reads { subscribers[token].input = input }
    }

    /// Handles what `bytes` holds in full; returns the bytes used.
    private func handle(_ bytes: UnsafeRawBufferPointer, token: Int, now: UInt64, received: inout Int, gaps: inout Int) -> Int {
        var used = 0
        if subscribers[token].phase == .awaitingHead {
            let head: ResponseHead
            do throws(LoadFailure) {
                guard let parsed = try ResponseHead.parse(bytes, method: "GET") else { return 0 }
                head = parsed
            } catch {
                fail(token, error.description)
                return bytes.count
            }
            let expected = plan.transport == .webSocket ? 101 : 200
            if plan.storm != nil, [503, 429].contains(head.status) {
                // Herald's storm admission: the body (or Retry-After) says when to come back.
                let end = head.length + head.framing.contentLength
                guard bytes.count >= end else { return 0 }
                let wait =
                    HeraldWire.retryAfterMilliseconds(in: UnsafeRawBufferPointer(rebasing: bytes[head.length..<end]))
                    ?? head.retryAfterSeconds.map { $0 * 1000 }
                refused(token, head.status == 503 ? .http503 : .http429, waitMilliseconds: wait, now: now)
                return bytes.count
            }
            guard head.status == expected else {
                let body = String(decoding: bytes[head.length...].prefix(200), as: UTF8.self)
                fail(token, "HTTP \(head.status) instead of \(expected): \(body)")
                return bytes.count
            }
            used = head.length
            if head.framing == .chunked { subscribers[token].chunks = ChunkDecoder() }
            if let message = plan.subscribeMessage {
                var text: [UInt8] = []
                message.render(i: plan.templateIndex(of: subscribers[token].index), into: &text)
                appendResume(of: token, toSubscribe: &text)
                var frame: [UInt8] = []
                text.withUnsafeBytes { ServerFrame.appendClientFrame(opcode: ServerFrame.text, payload: $0, to: &frame) }
                send(frame, on: token)
                if plan.awaitsSubscribeReply {
                    subscribers[token].phase = .awaitingReply
                } else {
                    becomeReady(token, now: now)
                }
            } else {
                becomeReady(token, now: now)
            }
        }
        let rest = UnsafeRawBufferPointer(rebasing: bytes[used...])
        switch plan.transport {
        case .webSocket: used += handleFrames(rest, token: token, now: now, received: &received, gaps: &gaps)
        case .sse: used += handleSSE(rest, token: token, now: now, received: &received, gaps: &gaps)
        }
        return used
    }

    private func handleFrames(_ bytes: UnsafeRawBufferPointer, token: Int, now: UInt64, received: inout Int, gaps: inout Int) -> Int {
        var used = 0
        while subscribers[token].phase.reads {
            let rest = UnsafeRawBufferPointer(rebasing: bytes[used...])
            let frame: ServerFrame
            do throws(LoadFailure) {
                guard let parsed = try ServerFrame.parse(rest) else { break }
                frame = parsed
            } catch {
                fail(token, error.description)
                return bytes.count
            }
            used += frame.length
            let payload = UnsafeRawBufferPointer(rebasing: rest[frame.payload])
            switch frame.opcode {
            case ServerFrame.text, ServerFrame.binary, ServerFrame.continuation:
                if frame.fin && subscribers[token].fragments.isEmpty {
                    message(payload, token: token, now: now, received: &received, gaps: &gaps)
                } else {
                    subscribers[token].fragments.append(contentsOf: payload)
                    if frame.fin {
                        let whole = subscribers[token].fragments
                        subscribers[token].fragments = []
                        whole.withUnsafeBytes { message($0, token: token, now: now, received: &received, gaps: &gaps) }
                    }
                }
            case ServerFrame.ping:
                var pong: [UInt8] = []
                ServerFrame.appendClientFrame(opcode: ServerFrame.pong, payload: payload, to: &pong)
                send(pong, on: token)
            case ServerFrame.close:
                let code = payload.count >= 2 ? Int(payload[0]) << 8 | Int(payload[1]) : 1005
                if code == 1013, plan.storm != nil {  // try again later: its reason says when
                    refused(token, .close1013, waitMilliseconds: HeraldWire.retryAfterMilliseconds(in: payload), now: now)
                    return bytes.count
                }
                let reason = String(decoding: payload.dropFirst(2), as: UTF8.self)
                fail(token, "the server closed the WebSocket: \(code) \(reason)")
            default:
                break
            }
        }
        return used
    }

    private func handleSSE(_ bytes: UnsafeRawBufferPointer, token: Int, now: UInt64, received: inout Int, gaps: inout Int) -> Int {
        var decoded = subscribers[token].decoded
        subscribers[token].decoded = []
        if var chunks = subscribers[token].chunks {
            do throws(LoadFailure) {
                _ = try chunks.feed(bytes, into: &decoded)
            } catch {
                fail(token, error.description)
                return bytes.count
            }
            subscribers[token].chunks = chunks
        } else {
            decoded.append(contentsOf: bytes)
        }
        let used = decoded.withUnsafeBytes { stream -> Int in
            var start = 0
            while let (end, next) = Self.sseEventEnd(in: stream, from: start) {
                message(UnsafeRawBufferPointer(rebasing: stream[start..<end]), token: token, now: now, received: &received, gaps: &gaps)
                start = next
            }
            return start
        }
        decoded.removeFirst(used)
        subscribers[token].decoded = decoded
        return bytes.count
    }

    /// Where the SSE event starting at `start` ends (a blank line: LF LF, LF CR LF, or
    /// CR CR), and where the next begins; nil while it is incomplete.
    static func sseEventEnd(in stream: UnsafeRawBufferPointer, from start: Int) -> (end: Int, next: Int)? {
        var i = start
        while i + 1 < stream.count {
            let byte = stream[i]
            if byte == 10 {
                if stream[i + 1] == 10 { return (i, i + 2) }
                if stream[i + 1] == 13, i + 2 < stream.count, stream[i + 2] == 10 { return (i, i + 3) }
            } else if byte == 13, stream[i + 1] == 13 {
                return (i, i + 2)
            }
            i += 1
        }
        return nil
    }

    private func message(_ bytes: UnsafeRawBufferPointer, token: Int, now: UInt64, received: inout Int, gaps: inout Int) {
        if subscribers[token].phase == .awaitingReply {
            if find(Array(#""error""#.utf8), in: bytes) != nil {
                if plan.storm != nil, let wait = HeraldWire.retryAfterMilliseconds(in: bytes) {
                    return refused(token, .errorReply, waitMilliseconds: wait, now: now)
                }
                return fail(token, "the subscription was refused: \(String(decoding: bytes.prefix(300), as: UTF8.self))")
            }
            if plan.storm != nil { noteSubscribed(bytes, token: token) }
            return becomeReady(token, now: now)
        }
        switch MessageKind.of(bytes) {
        case .event(let sentAt):
            let latency = now > sentAt ? now - sentAt : 0
            if subscribers[token].ledger != nil {
                track(bytes, sentAt: sentAt, latency: latency, token: token, now: now)
            } else {
                latencies.record(latency)
            }
            subscribers[token].received += 1
            received += 1
            lastDelivery = now
        case .gap:
            gaps += 1
        case .other:
            break
        }
    }

    private func becomeReady(_ token: Int, now: UInt64) {
        connecting -= 1
        if subscribers[token].resume.wasReady {
            cameBack(token, now: now)
        } else {
            subscribers[token].resume.wasReady = true
            counters.ready.add(1, ordering: .relaxed)
        }
        subscribers[token].resume.attempts = 0
        if subscribers[token].resume.isAway {
            subscribers[token].resume.isAway = false
            counters.away.subtract(1, ordering: .relaxed)
        }
        if subscribers[token].role == .stalled {
            subscribers[token].phase = .stalled
            poller.remove(subscribers[token].fd)  // never read again: its buffers fill, then its queue
        } else {
            subscribers[token].phase = .streaming
        }
    }

    func fail(_ token: Int, _ text: String) {
        let subscriber = subscribers[token]
        if subscriber.phase == .failed { return }
        if subscriber.phase.isConnecting { connecting -= 1 }
        if subscriber.resume.isAway { counters.away.subtract(1, ordering: .relaxed) }
        subscribers[token].resume.isAway = false
        subscribers[token].phase = .failed
        subscribers[token].input = []
        subscribers[token].decoded = []
        if subscriber.fd >= 0 {
            poller.remove(subscriber.fd)
            close(subscriber.fd)
            subscribers[token].fd = -1
        }
        if !counters.stop.load(ordering: .relaxed) { counters.fail("subscriber \(subscriber.index): \(text)") }
    }

    /// Drives a subscriber's TLS handshake; once it is done, opens the stream.
    private func continueHandshake(_ token: Int) {
        do throws(LoadFailure) {
            if let waitFor = try LoadSocket.handshake(subscribers[token].tls!) {
                return poller.modify(subscribers[token].fd, events: waitFor, token: token)
            }
        } catch {
            return fail(token, "\(error)")
        }
        startStream(token)
    }

    /// Sends the upgrade or SSE request of a connected subscriber.
    private func startStream(_ token: Int) {
        var request: [UInt8] = []
        appendRequest(for: token, to: &request)
        subscribers[token].phase = .awaitingHead
        poller.modify(subscribers[token].fd, events: Poller.readable, token: token)
        send(request, on: token)
    }

    /// Writes what the socket takes now; the rest waits for EPOLLOUT.
    private func send(_ bytes: [UInt8], on token: Int) {
        let reading = subscribers[token].phase != .stalled
        do throws(LoadFailure) {
            try subscribers[token].output.write(
                bytes, fd: subscribers[token].fd, tls: subscribers[token].tls, poller: poller, token: token, reading: reading)
        } catch {
            fail(token, error.description)
        }
    }

    private func appendRequest(for token: Int, to out: inout [UInt8]) {
        let url = plan.subscribeURL.string(i: plan.templateIndex(of: subscribers[token].index))
        let (host, path) = Self.hostAndPath(of: url)
        var head = "GET \(path) HTTP/1.1\r\nHost: \(host)\r\n"
        switch plan.transport {
        case .webSocket:
            head +=
                "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: aGVyYWxkLWJlbmNoLWtleQ==\r\nSec-WebSocket-Version: 13\r\n"
            if let name = plan.webSocketProtocol { head += "Sec-WebSocket-Protocol: \(name)\r\n" }
        case .sse:
            head += "Accept: text/event-stream\r\n"
            if let position = lastEventID(of: token) { head += "Last-Event-ID: \(position)\r\n" }
        }
        out.append(contentsOf: (head + "\r\n").utf8)
    }

    /// "host:port" and "/path?query" of an absolute URL (already checked by the planner).
    static func hostAndPath(of url: String) -> (String, String) {
        let afterScheme = url.firstRange(of: "://").map { url[$0.upperBound...] } ?? Substring(url)
        let slash = afterScheme.firstIndex(where: { $0 == "/" || $0 == "?" }) ?? afterScheme.endIndex
        let path = afterScheme[slash...]
        return (String(afterScheme[..<slash]), path.hasPrefix("/") ? String(path) : "/" + path)
    }
}
