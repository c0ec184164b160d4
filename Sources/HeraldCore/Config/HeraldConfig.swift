/// Herald's configuration: the validated contents of `config.json` (DESIGN §10).
///
/// Every key has a default, so `{}` is a valid configuration. Validation collects every
/// fault with its JSON path instead of stopping at the first, so `herald check-config`
/// can list them all at once.
public struct HeraldConfig: Sendable {
    /// Where the gateway listens.
    public struct Listen: Sendable, Equatable {
        public var host = "0.0.0.0"
        public var port = 8080
        /// How the loop waits for its sockets.
        public enum EventLibrary: String, Sendable, Equatable, CaseIterable {
            /// `poll()` over every open socket per iteration: O(open connections).
            case poll
            /// libev (epoll): O(ready connections) per iteration.
            case libev
        }
        public var eventLibrary = EventLibrary.libev
        /// Loops, each on a thread of its own with its own listening socket on the port
        /// (`SO_REUSEPORT`): nil means one per core (one with `storage.path` or
        /// `cluster.redis`, which a single loop serves for now).
        public var loops: Int?
        /// Most loops config accepts.
        public static let maxLoops = 64

        /// The loops to run on a machine with `cores` cores.
        public func loopCount(cores: Int, singleLoopStorage: Bool) -> Int {
            if let loops { return loops }
            return singleLoopStorage ? 1 : max(1, min(cores, Self.maxLoops))
        }
    }

    /// TLS for every connection on `listen.port` (HTTPS, WSS, SSE over TLS).
    public struct TLS: Sendable, Equatable {
        /// PEM certificate chain (leaf first) and PEM private key; both are read again
        /// on SIGHUP, for connections made after it.
        public var cert: String
        public var key: String
        /// A plain-HTTP port whose every request is redirected (308) to HTTPS on
        /// `listen.port`; nil: none.
        public var redirectPort: Int?
        public init(cert: String, key: String, redirectPort: Int? = nil) {
            self.cert = cert
            self.key = key
            self.redirectPort = redirectPort
        }
    }
    public var tls: TLS?

    /// Which web pages may use the API from a browser (`CORSPolicy`).
    public struct CORS: Sendable, Equatable {
        /// Origins (`https://app.example.com`) besides the gateway's own, or `*` for any;
        /// empty: only the gateway's own pages.
        public var allowedOrigins: [String] = []
        public init(allowedOrigins: [String] = []) { self.allowedOrigins = allowedOrigins }
        public var policy: CORSPolicy { CORSPolicy(allowedOrigins: allowedOrigins) }
    }
    public var cors = CORS()

    /// Whether events are stored somewhere a single loop must own (a file log, the
    /// cluster's Redis connections): such a gateway runs one loop.
    public var needsSingleLoop: Bool { storage.path != nil || cluster.redis != nil }

    /// The number of loops to run on a machine with `cores` cores.
    public func loopCount(cores: Int) -> Int { listen.loopCount(cores: cores, singleLoopStorage: needsSingleLoop) }

    /// A publisher key, kept only as its SHA-256 digest.
    public struct PublisherKey: Sendable, Equatable {
        /// How logs, metrics (`herald_ingest_events_total{key}`) and `/v1/clients` name it.
        public var name: String
        public var sha256: [UInt8]
        /// What the key may publish, as a permission (every value an event holds at each
        /// path the pattern constrains must satisfy it); nil: anything a client may.
        public var publish: Pattern?
        public init(name: String, sha256: [UInt8], publish: Pattern? = nil) {
            self.name = name
            self.sha256 = sha256
            self.publish = publish
        }
    }

    /// Who may publish and subscribe.
    public struct Auth: Sendable, Equatable {
        /// Token-less subscribers are allowed (the demo).
        public var anonymous = true
        public var publisherKeys: [PublisherKey] = []
        /// Keys for the admin endpoints (`/v1/clients`), same form as publisher keys.
        public var adminKeys: [PublisherKey] = []
        /// HS256 secret for subscriber JWTs (at least 32 bytes); `HERALD_JWT_SECRET` overrides.
        public var jwtSecret: String?
        /// When set, a JWT's `aud` must contain it.
        public var jwtAudience: String?
        /// When set, a JWT's `iss` must equal it.
        public var jwtIssuer: String?
        /// Keys JWTs may be signed with besides `jwtSecret`: several at once while keys
        /// rotate, chosen by the token's `kid` (every key of its `alg` when it has none).
        public var jwtKeys: [JWTKey] = []
        /// Serve anonymous demo tokens at `GET /v1/demo/token` (never in production).
        public var demo = false
    }

    /// One key subscriber JWTs may be signed with: an HS256 secret, or the path of an RSA
    /// (RS256, 2048 bits or more) or P-256 (ES256) public key in PEM.
    public struct JWTKey: Sendable, Equatable {
        public enum Algorithm: String, Sendable, Equatable, CaseIterable {
            case hs256 = "HS256"
            case rs256 = "RS256"
            case es256 = "ES256"
        }
        public var keyID: String?
        public var algorithm: Algorithm
        /// HS256: the secret (at least 32 bytes).
        public var secret: String?
        /// RS256 / ES256: a PEM file of the public key (or a certificate holding it).
        public var publicKeyPath: String?
        public init(keyID: String?, algorithm: Algorithm, secret: String? = nil, publicKeyPath: String? = nil) {
            self.keyID = keyID
            self.algorithm = algorithm
            self.secret = secret
            self.publicKeyPath = publicKeyPath
        }
    }

    /// The deadline of each route, then of ad-hoc filters, in nanoseconds: the order of
    /// `GatewayMetrics.routes`.
    public var routeDeadlines: [UInt64] {
        (routes.map { $0.deadlineMs ?? delivery.deadlineMs } + [delivery.deadlineMs]).map { UInt64($0) * 1_000_000 }
    }

    /// A named pattern clients subscribe to by name.
    public struct Route: Sendable, Equatable {
        public var name: String
        public var pattern: Pattern
        /// Queue bound and policy for clients that subscribe through this route, when set.
        public var queue: QueueLimits?
        /// The delivery deadline of the route (`delivery.deadlineMs` when unset).
        public var deadlineMs: Int?
        public init(name: String, pattern: Pattern, queue: QueueLimits? = nil, deadlineMs: Int? = nil) {
            self.name = name
            self.pattern = pattern
            self.queue = queue
            self.deadlineMs = deadlineMs
        }
    }

    /// Delivery defaults.
    public struct Delivery: Sendable, Equatable {
        public var queue = QueueLimits()
        /// SSE comment heartbeat interval.
        public var heartbeatSeconds = 15
        /// WebSocket ping interval.
        public var pingSeconds = 20
        /// A WebSocket that sends nothing (not even a pong) for this long is closed.
        public var idleTimeoutSeconds = 60
        /// What "on time" means: a live delivery should reach the client's socket (the
        /// kernel accepting its bytes) within this of the event's acceptance. Routes may
        /// state their own; this one holds for ad-hoc filters and routes without one.
        public var deadlineMs = 100
        /// The share of a route's live deliveries that may miss its deadline (0.001 =
        /// 0.1 %) before the route counts as late.
        public var deadlineMissBudget = 0.001
    }

    /// The ingest API's promise.
    public struct Ingest: Sendable, Equatable {
        /// Each 202 should be answered within this of the request's last byte (the log's
        /// commit or the cluster's sequencing included).
        public var deadlineMs = 100
    }

    /// Input limits (DESIGN §8).
    public struct Limits: Sendable, Equatable {
        public var maxBodyBytes = 1 << 20
        public var maxEventBytes = 256 * 1024
        public var maxBatchEvents = 500
        public var maxJSONDepth = 64
        public var maxSubscriptionsPerConnection = 100
        /// All client queues together; past it the largest queues shed first.
        public var maxQueuedBytesTotal = 256 << 20
        public var pattern = PatternLimits()
        /// The largest body (or WebSocket message) from a client that proved nothing: an
        /// anonymous subscriber, `POST /v1/patterns/test`.
        public var maxUnauthenticatedBodyBytes = 64 * 1024
        /// Bytes held for unfinished input of all connections together (partial heads,
        /// request bodies being read, partial WebSocket messages); past it new bodies get
        /// 503 with `Retry-After`.
        public var maxPendingInputBytesTotal = 64 << 20
        /// A request head must arrive within this many seconds of its first byte.
        public var headTimeoutSeconds = 10
        /// A request body must arrive within this many seconds of its head.
        public var bodyTimeoutSeconds = 5
        /// An idle keep-alive connection is closed after this many seconds.
        public var keepAliveSeconds = 60
        /// A connection with output waiting that takes none of it for this many seconds
        /// (the client stopped reading) is dropped.
        public var sendTimeoutSeconds = 60
        /// An ingest answer held for storage (the log's fsync, the cluster's Redis) waits at
        /// most this long; then 503 (the events may still be stored: retry with their ids).
        public var storageTimeoutSeconds = 10
        /// Request head limits (414, 431).
        public var head = HTTPHeadLimits()
        /// Connections the gateway holds at once, in all and per client address (an IPv6
        /// client per /64); past them a request gets 503 with `Retry-After`.
        public var maxConnections = 100_000
        public var maxConnectionsPerAddress = 10_000
        /// WebSockets and SSE streams one JWT subject (`sub`) may hold at once; past it a
        /// WebSocket is closed with 1013 and an SSE request gets 503, both with a wait.
        public var maxConnectionsPerSubject = 100
        /// Ingest rates (token buckets, burst = one second's worth): events per second per
        /// publisher key (or JWT subject) and per client address, over HTTP and WebSocket
        /// publishes; past them 429 with `Retry-After` / a `rate_limited` error frame.
        public var ingestEventsPerSecondPerKey = 1_000_000
        public var ingestEventsPerSecondPerAddress = 1_000_000
        /// WebSocket messages (ops) a connection may send per second (burst: two seconds'
        /// worth); past it each gets a `rate_limited` error frame, and a connection that
        /// goes on regardless is closed (1008).
        public var webSocketMessagesPerSecond = 1_000
        /// Of those, `subscribe` and `publish` ops per second (burst: two seconds' worth).
        public var webSocketSubscribesPerSecond = 100
        public var webSocketPublishesPerSecond = 500
        /// Reconnect storms, node-wide (burst: one second's worth): new connections (at
        /// their first request; probes are free), and resumes (an SSE stream or WebSocket
        /// subscription whose position asks for history; the `since`s a WebSocket sends
        /// within a second of its first resume share its token). Past them 503 / close
        /// 1013 with a wait jittered over the wave.
        public var newConnectionsPerSecond = 20_000
        public var resumesPerSecond = 1_000

        public var ingest: IngestLimits {
            IngestLimits(maxEventBytes: maxEventBytes, maxBatchEvents: maxBatchEvents, json: JSONLimits(maxDepth: maxJSONDepth))
        }
    }

    /// Logging.
    public struct Log: Sendable, Equatable {
        /// swift-log level: trace, debug, info, notice, warning, error, critical.
        public var level = "info"
        /// libwebsockets' own log: "none", "error", "warn", "notice", "info".
        public var lwsLevel = "warn"
        /// "text" (one human-readable line per record) or "json" (JSON Lines).
        public var format = "text"
    }

    /// Metrics settings.
    public struct Metrics: Sendable, Equatable {
        /// Time every delivery and every match (the latency and match histograms).
        public var timing = true
    }

    public var listen = Listen()
    /// Directory of static files served at `/` (relative to the working directory), or nil.
    public var publicDirectory: String? = "public"
    public var auth = Auth()
    public var routes: [Route] = []
    /// Most routes a configuration may name (one route index is kept for ad-hoc filters,
    /// and route indices live in a `RouteSet`).
    public static let maxRoutes = SubscriptionSet.capacity - 1
    public var delivery = Delivery()
    public var ingest = Ingest()
    /// Shortest accepted `auth.jwtSecret`.
    public static let minJWTSecretBytes = 32
    public var history = HistoryLimits()
    /// Idempotent ingest window.
    public struct Dedup: Sendable, Equatable {
        public var windowSeconds = 300
        public var maxEntries = 100_000
        public init() {}
    }
    public var dedup = Dedup()
    /// The durable event log (DESIGN §5); without `path` events live in memory only.
    public struct Storage: Sendable, Equatable {
        /// When to fsync before acknowledging an event.
        public enum Fsync: String, Sendable, Equatable, CaseIterable {
            /// Every batch the writer takes is fsynced at once, before its acks.
            case always
            /// Group commit: appends within `batchWindowMilliseconds` share one fsync.
            case batch
            /// Written but never fsynced: a machine crash may lose acknowledged events.
            case never
        }
        /// The log's directory (created if missing); nil: memory only.
        public var path: String?
        public var fsync = Fsync.batch
        /// How long a group commit waits for more appends before its fsync.
        public var batchWindowMilliseconds = 2
        /// A segment file is closed and a new one started past this size.
        public var segmentBytes = 64 << 20
        /// Retention: whole segments are deleted, oldest first, past this total …
        public var maxBytes = 1 << 30
        /// … or once their newest event is older than this.
        public var maxAgeSeconds = 7 * 86400
        public init() {}
    }
    public var storage = Storage()
    /// Several nodes as one gateway through a Redis stream; without `redis` a single node.
    public struct Cluster: Sendable, Equatable {
        /// Where Redis listens (`redis://host:port`); nil: a single node.
        public var redis: RedisAddress?
        /// The prefix of the keys the nodes share (the stream `<stream>`, its counter
        /// `<stream>:seq`, its epoch `<stream>:epoch`, dedup keys `<stream>:dedup:…`): one
        /// gateway per prefix.
        public var stream = "herald"
        /// The stream is trimmed to about this many events (`XADD … MAXLEN ~`): how far back
        /// any node can resume a client.
        public var maxLength = 1_000_000
        /// A node that has not renewed its heartbeat for this long is gone: its presence
        /// members are no longer listed.
        public var nodeTimeoutSeconds = 15
        public init() {}
    }
    /// `redis://host[:port]` (port 6379 when omitted).
    public struct RedisAddress: Sendable, Equatable, CustomStringConvertible {
        public var host: String
        public var port: Int
        public init(host: String, port: Int) {
            self.host = host
            self.port = port
        }
        /// Parses `redis://host[:port][/]`; nil for anything else.
        public init?(url: String) {
            guard url.hasPrefix("redis://") else { return nil }
            var rest = Substring(url.dropFirst("redis://".count))
            if rest.hasSuffix("/") { rest = rest.dropLast() }
            guard !rest.isEmpty, !rest.contains("/"), !rest.contains("@") else { return nil }
            if let colon = rest.lastIndex(of: ":") {
                guard let port = Int(rest[rest.index(after: colon)...]), (1...65535).contains(port) else { return nil }
                self.port = port
                rest = rest[..<colon]
            } else {
                self.port = 6379
            }
            guard !rest.isEmpty else { return nil }
            host = String(rest)
        }
        public var description: String { "redis://\(host):\(port)" }
    }
    public var cluster = Cluster()
    public var limits = Limits()
    public var log = Log()
    public var metrics = Metrics()

    public init() {}

    /// The route named `name`, if configured.
    public func route(named name: String) -> Route? { routes.first { $0.name == name } }

    /// Every fault found in a configuration file.
    public struct ValidationErrors: Error, Sendable, CustomStringConvertible {
        public var errors: [HeraldError]
        public var description: String { errors.map { "\($0.path ?? "$"): \($0.message)" }.joined(separator: "\n") }
    }

    /// Parses and validates configuration JSON text.
    public init(parsing text: [UInt8]) throws(ValidationErrors) {
        let value: JSONValue
        do throws(HeraldError) {
            value = try JSONValue(parsing: text)
        } catch {
            throw ValidationErrors(errors: [
                HeraldError(.invalidConfig, "not valid JSON: \(error.message)", offset: error.offset, path: "$")
            ])
        }
        var reader = ConfigReader()
        self = reader.read(value)
        if !reader.errors.isEmpty { throw ValidationErrors(errors: reader.errors) }
    }
}
