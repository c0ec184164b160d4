import CEpoll
import HeraldClient
import HeraldCore
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Publishes a run's events over keep-alive connections, at a fixed rate free of
/// coordinated omission: event `n` is due at `start + n / rate` and carries that time as
/// its `sentAt`, so a gateway that answers late makes latency grow instead of making the
/// publisher quietly send less. Without a rate each connection sends its next request as
/// soon as one of its `pipeline` slots is free, and `sentAt` is the actual send time.
final class Publisher: @unchecked Sendable {  // touched by its thread only, until `run` returns
    private struct Connection {
        var fd: Int32 = -1
        /// The TLS session of an https:// publish URL.
        var tls: TLSSession?
        var input: [UInt8] = []
        var output = SocketOutput()
        /// Requests in flight, oldest first: their event counts and send times.
        var inFlight: [(first: Int, events: Int, sentAt: UInt64)] = []
        var head: ResponseHead?
        var chunks: ChunkDecoder?
    }

    /// A gateway that answers none of the POSTs in flight for this long ends the run.
    static let answerTimeout: UInt64 = 60_000_000_000

    private let plan: LoadPlan
    private let address: sockaddr_in
    /// The trust for an https:// publish URL, and the name its server must hold.
    private let tls: (context: TLSClientContext, host: String)?
    private let counters: LoadCounters
    private let poller = Poller()
    private var connections: [Connection]
    private var posts: Int
    private var nextPost = 0
    private var body: [UInt8] = []
    private var request: [UInt8] = []
    private var scratch = [UInt8](repeating: 0, count: 64 * 1024)

    private(set) var acknowledgements = LatencyHistogram()
    private(set) var acceptedEvents = 0
    /// Events that were acknowledged, per subscriber, in a routed run.
    private(set) var acceptedBySubscriber: [Int]
    private(set) var refusedPosts = 0
    private(set) var refusals: [String] = []
    private(set) var started: UInt64 = 0
    private(set) var finished: UInt64 = 0
    /// How far behind schedule the publisher was at worst (it had no free slot in time).
    private(set) var worstLag: UInt64 = 0

    init(plan: LoadPlan, address: sockaddr_in, tls: (context: TLSClientContext, host: String)?, counters: LoadCounters) {
        self.plan = plan
        self.address = address
        self.tls = tls
        self.counters = counters
        connections = Array(repeating: Connection(), count: plan.publishers)
        posts = (plan.events + plan.batch - 1) / plan.batch
        acceptedBySubscriber = plan.isRouted ? Array(repeating: 0, count: plan.subscribers) : []
        let (host, path) = SubscriberFleet.hostAndPath(of: plan.publishURL.string(i: 0))
        fixedPath = plan.publishURL.mentions(.subscriber) ? nil : Array(path.utf8)
        var lines = "Host: \(host)\r\n"
        for (name, value) in plan.publishHeaders { lines += "\(name): \(value)\r\n" }
        headerLines = Array(lines.utf8)
    }

    /// What every request head says after its request line (Host, the plan's headers),
    /// and its path when the URL does not name a subscriber: rendered once, not per POST.
    private let headerLines: [UInt8]
    private let fixedPath: [UInt8]?

    func run() {
        for k in connections.indices {
            switch LoadSocket.connect(to: address, from: nil) {
            case .success(let fd):
                connections[k].fd = fd
                if let tls {
                    do throws(LoadFailure) {
                        connections[k].tls = try LoadSocket.secure(fd, context: tls.context, host: tls.host)
                    } catch {
                        refuse("publisher connection: \(error)")
                    }
                }
                poller.add(fd, events: Poller.readable, token: k)
            case .failure(let failure):
                refuse("publisher connection: \(failure)")
            }
        }
        started = monotonicNanoseconds()
        counters.publishingSince.store(started, ordering: .relaxed)
        var answered = 0
        while answered < posts, !counters.stop.load(ordering: .relaxed) {
            let now = monotonicNanoseconds()
            if let oldest = oldestInFlight, now - oldest > Self.answerTimeout {
                refuse("no answer to a POST for \(Self.answerTimeout / 1_000_000_000) s")
                break
            }
            var due = posts
            if plan.rate > 0 { due = min(posts, duePosts(at: now)) }
            sending: while nextPost < due {
                guard let k = connections.indices.min(by: { connections[$0].inFlight.count < connections[$1].inFlight.count }),
                    connections[k].inFlight.count < plan.pipeline
                else { break sending }
                send(post: nextPost, on: k)
                nextPost += 1
            }
            var wait: Int32 = 100
            if plan.rate > 0, nextPost < posts, nextPost >= due {
                let next = dueTime(ofPost: nextPost)
                let remaining = next > now ? next - now : 0
                if remaining < 1_000_000 {
                    // epoll waits whole milliseconds: sleep the rest, then look at answers.
                    var pause = timespec(tv_sec: 0, tv_nsec: Int(remaining))
                    nanosleep(&pause, nil)
                    wait = 0
                } else {
                    wait = Int32(min(100, remaining / 1_000_000))
                }
            }
            poller.wait(milliseconds: wait) { token, events in answered += self.service(token, events: events) }
        }
        finished = monotonicNanoseconds()
        for connection in connections where connection.fd >= 0 { close(connection.fd) }
    }

    /// When the oldest request still waiting for its answer was sent.
    private var oldestInFlight: UInt64? {
        var oldest: UInt64?
        for connection in connections {
            if let sent = connection.inFlight.first?.sentAt, sent < oldest ?? .max { oldest = sent }
        }
        return oldest
    }

    /// When event `n` is due (rate runs).
    private func dueTime(ofEvent n: Int) -> UInt64 { started + UInt64(Double(n) * 1e9 / plan.rate) }
    /// A POST is due when its last event is; all its events carry that time, so the
    /// wait for a batch to fill is not counted as the gateway's.
    private func dueTime(ofPost post: Int) -> UInt64 { dueTime(ofEvent: min(plan.events, (post + 1) * plan.batch) - 1) }
    private func duePosts(at now: UInt64) -> Int {
        let dueEvents = Int(Double(now - started) * plan.rate / 1e9) + 1
        return dueEvents >= plan.events ? posts : dueEvents / plan.batch
    }

    private func send(post: Int, on k: Int) {
        let first = post * plan.batch
        let count = min(plan.batch, plan.events - first)
        let now = monotonicNanoseconds()
        let due = plan.rate > 0 ? dueTime(ofPost: post) : nil
        if let due, now > due { worstLag = max(worstLag, now - due) }  // late: no free slot, or this thread ran late
        body.removeAll(keepingCapacity: true)
        if plan.batch > 1 { body.append(UInt8(ascii: "[")) }
        for n in first..<(first + count) {
            if n > first { body.append(UInt8(ascii: ",")) }
            plan.event.render(i: plan.target(of: n), n: n, sentAt: due ?? now, into: &body)
        }
        if plan.batch > 1 { body.append(UInt8(ascii: "]")) }
        request.removeAll(keepingCapacity: true)
        request.append(contentsOf: "POST ".utf8)
        if let fixedPath {
            request.append(contentsOf: fixedPath)
        } else {
            request.append(contentsOf: SubscriberFleet.hostAndPath(of: plan.publishURL.string(i: plan.target(of: first))).1.utf8)
        }
        request.append(contentsOf: " HTTP/1.1\r\n".utf8)
        request.append(contentsOf: headerLines)
        request.append(contentsOf: "Content-Length: ".utf8)
        JSONWriter.writeInteger(body.count, into: &request)
        request.append(contentsOf: "\r\n\r\n".utf8)
        request.append(contentsOf: body)
        connections[k].inFlight.append((first, count, now))
        write(request, on: k)
    }

    private func write(_ bytes: [UInt8], on k: Int) {
        do throws(LoadFailure) {
            try connections[k].output.write(
                bytes, fd: connections[k].fd, tls: connections[k].tls, poller: poller, token: k, reading: true)
        } catch {
            refuse("publisher \(error)")
        }
    }

    /// Reads answers; returns how many POSTs were answered.
    private func service(_ k: Int, events: UInt32) -> Int {
        if events & Poller.writable != 0, !connections[k].output.isEmpty { write([], on: k) }
        guard events & (Poller.readable | EPOLLHUP.rawValue | EPOLLERR.rawValue) != 0 else { return 0 }
        let fd = connections[k].fd
        repeat {  // TLS may hold decrypted bytes epoll cannot see
            switch scratch.withUnsafeMutableBytes({ LoadSocket.receive(fd, connections[k].tls, into: $0) }) {
            case .bytes(let n): connections[k].input.append(contentsOf: scratch[0..<n])
            case .wouldBlock: return 0
            case .closed:
                refuse("the server closed a publisher connection")
                return 0
            case .failed(let text):
                refuse("publisher \(text)")
                return 0
            }
        } while connections[k].tls?.pending ?? 0 > 0
        let now = monotonicNanoseconds()
        var answered = 0
        while let status = nextAnswer(on: k) {
            if (100..<200).contains(status.code) { continue }  // interim: its request's answer follows
            guard !connections[k].inFlight.isEmpty else {
                refuse("publisher: an answer to no request (HTTP \(status.code))")
                return answered
            }
            let (first, count, sentAt) = connections[k].inFlight.removeFirst()
            acknowledgements.record(now - sentAt)
            if (200..<300).contains(status.code) {
                acceptedEvents += count
                if plan.isRouted { for n in first..<(first + count) { acceptedBySubscriber[plan.target(of: n)] += 1 } }
            } else {
                refusedPosts += 1
                if refusals.count < 5 { refusals.append("HTTP \(status.code): \(status.body)") }
            }
            answered += 1
        }
        return answered
    }

    /// The next complete answer in the connection's input (consumed), or nil.
    private func nextAnswer(on k: Int) -> (code: Int, body: String)? {
        var head = connections[k].head
        var chunks = connections[k].chunks
        let answer = connections[k].input.withUnsafeBytes { bytes -> (code: Int, body: String, used: Int)? in
            do throws(LoadFailure) {
                if head == nil {
                    guard let parsed = try ResponseHead.parse(bytes, method: "POST") else { return nil }
                    if (100..<200).contains(parsed.status) {  // interim (100 Continue): the answer follows
                        return (parsed.status, "", parsed.length)
                    }
                    if parsed.framing == .untilClose { throw LoadFailure("an answer without a length: keep-alive impossible") }
                    head = parsed
                    if parsed.framing == .chunked { chunks = ChunkDecoder() }
                }
                guard let head else { return nil }
                let rest = UnsafeRawBufferPointer(rebasing: bytes[head.length...])
                var body: [UInt8] = []
                let used: Int
                if var decoder = chunks {
                    // Answers are small: an incomplete one is decoded again from its start.
                    used = try decoder.feed(rest, into: &body)
                    guard decoder.isDone else { return nil }
                } else {
                    used = head.framing.contentLength
                    guard rest.count >= used else { return nil }
                    body = Array(rest[0..<used])
                }
                return (head.status, String(decoding: body.prefix(300), as: UTF8.self), head.length + used)
            } catch {
                refuse("publisher: \(error)")
                return nil
            }
        }
        guard let answer else {
            connections[k].head = head
            connections[k].chunks = chunks
            return nil
        }
        connections[k].input.removeFirst(answer.used)
        connections[k].head = nil
        connections[k].chunks = nil
        return (answer.code, answer.body)
    }

    private func refuse(_ text: String) {
        counters.fail(text)
        counters.stop.store(true, ordering: .relaxed)
    }
}
