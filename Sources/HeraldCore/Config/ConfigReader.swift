/// Reads a `JSONValue` into a `HeraldConfig`, collecting every fault with its JSON path.
struct ConfigReader {
    private(set) var errors: [HeraldError] = []

    private mutating func fail(_ path: String, _ message: String) {
        errors.append(HeraldError(.invalidConfig, message, path: path))
    }

    /// The members of the object at `path`, checking that only `allowed` keys appear.
    private mutating func object(_ value: JSONValue, _ path: String, allowed: Set<String>) -> [JSONValue.Member] {
        guard case .object(let members) = value else {
            fail(path, "must be an object, not \(value.kindName)")
            return []
        }
        for member in members where !allowed.contains(member.key) {
            fail("\(path).\(member.key)", "unknown key (expected one of: \(allowed.sorted().joined(separator: ", ")))")
        }
        return members
    }

    private mutating func int(_ value: JSONValue, _ path: String, in range: ClosedRange<Int>) -> Int? {
        guard case .number(let d) = value, d == d.rounded(), d >= Double(range.lowerBound), d <= Double(range.upperBound) else {
            fail(path, "must be an integer in \(range.lowerBound)...\(range.upperBound)")
            return nil
        }
        return Int(d)
    }

    private mutating func string(_ value: JSONValue, _ path: String) -> String? {
        guard case .string(let s) = value else {
            fail(path, "must be a string, not \(value.kindName)")
            return nil
        }
        return s
    }

    private mutating func bool(_ value: JSONValue, _ path: String) -> Bool? {
        guard case .bool(let b) = value else {
            fail(path, "must be true or false, not \(value.kindName)")
            return nil
        }
        return b
    }

    mutating func read(_ root: JSONValue) -> HeraldConfig {
        var config = HeraldConfig()
        let sections: Set<String> = [
            "listen", "publicDirectory", "auth", "routes", "delivery", "ingest", "history", "dedup", "storage", "cluster", "limits", "log",
            "metrics", "tls", "cors", "$comment",
        ]
        // Limits and delivery first: routes are validated against them and inherit their queue.
        let first: Set<String> = ["limits", "delivery"]
        let members = object(root, "$", allowed: sections).sorted { (first.contains($0.key) ? 0 : 1) < (first.contains($1.key) ? 0 : 1) }
        for member in members {
            let path = "$.\(member.key)"
            switch member.key {
            case "listen": readListen(member.value, path, into: &config.listen)
            case "publicDirectory":
                if member.value == .null {
                    config.publicDirectory = nil
                } else if let s = string(member.value, path) {
                    config.publicDirectory = s
                }
            case "auth": readAuth(member.value, path, patternLimits: config.limits.pattern, into: &config.auth)
            case "routes":
                config.routes = readRoutes(member.value, path, patternLimits: config.limits.pattern, defaultQueue: config.delivery.queue)
            case "delivery": readDelivery(member.value, path, into: &config.delivery)
            case "ingest":
                for field in object(member.value, path, allowed: ["deadlineMs"]) where field.key == "deadlineMs" {
                    if let n = int(field.value, "\(path).deadlineMs", in: 1...600_000) { config.ingest.deadlineMs = n }
                }
            case "history": readHistory(member.value, path, into: &config.history)
            case "storage": readStorage(member.value, path, into: &config.storage)
            case "cluster": readCluster(member.value, path, into: &config.cluster)
            case "dedup": readDedup(member.value, path, into: &config.dedup)
            case "limits": readLimits(member.value, path, into: &config.limits)
            case "log": readLog(member.value, path, into: &config.log)
            case "tls": config.tls = readTLS(member.value, path)
            case "cors": readCORS(member.value, path, into: &config.cors)
            case "metrics":
                for field in object(member.value, path, allowed: ["timing"]) where field.key == "timing" {
                    if let b = bool(field.value, "\(path).timing") { config.metrics.timing = b }
                }
            default: break
            }
        }
        if let loops = config.listen.loops, loops > 1, config.needsSingleLoop {
            fail(
                "$.listen.loops",
                "must be 1 (or left out) with storage.path or cluster.redis: the file log and the cluster's Redis connections are served by one loop"
            )
        }
        if let redirect = config.tls?.redirectPort, redirect == config.listen.port {
            fail("$.tls.redirectPort", "must differ from listen.port (\(redirect)), which serves TLS")
        }
        if config.cluster.redis != nil, config.storage.path != nil {
            fail(
                "$.cluster.redis",
                "cannot be combined with storage.path: in a cluster the Redis stream is the log (make Redis durable with appendonly yes)")
        }
        return config
    }

    private mutating func readListen(_ value: JSONValue, _ path: String, into listen: inout HeraldConfig.Listen) {
        for member in object(value, path, allowed: ["host", "port", "eventLibrary", "loops"]) {
            let p = "\(path).\(member.key)"
            if member.key == "eventLibrary", let s = string(member.value, p) {
                if let library = HeraldConfig.Listen.EventLibrary(rawValue: s) {
                    listen.eventLibrary = library
                } else {
                    fail(p, "must be one of poll, libev")
                }
            }
            if member.key == "host", let s = string(member.value, p) {
                if s.isEmpty { fail(p, "must not be empty") } else { listen.host = s }
            }
            if member.key == "port", let n = int(member.value, p, in: 0...65535) { listen.port = n }
            if member.key == "loops" {
                if case .null = member.value {
                    listen.loops = nil  // one per core
                } else if let n = int(member.value, p, in: 1...HeraldConfig.Listen.maxLoops) {
                    listen.loops = n
                }
            }
        }
    }

    private mutating func readTLS(_ value: JSONValue, _ path: String) -> HeraldConfig.TLS? {
        if value == .null { return nil }
        var cert: String?
        var key: String?
        var redirectPort: Int?
        for member in object(value, path, allowed: ["cert", "key", "redirectPort"]) {
            let p = "\(path).\(member.key)"
            switch member.key {
            case "cert", "key":
                guard let file = string(member.value, p) else { continue }
                if file.isEmpty {
                    fail(p, "must be the path of a PEM file")
                } else if member.key == "cert" {
                    cert = file
                } else {
                    key = file
                }
            case "redirectPort": redirectPort = int(member.value, p, in: 1...65535)
            default: break
            }
        }
        if value.objectMembers != nil {
            if cert == nil, value["cert"] == nil { fail("\(path).cert", "is required (a PEM certificate chain)") }
            if key == nil, value["key"] == nil { fail("\(path).key", "is required (a PEM private key)") }
        }
        guard let cert, let key else { return nil }
        return HeraldConfig.TLS(cert: cert, key: key, redirectPort: redirectPort)
    }

    private mutating func readCORS(_ value: JSONValue, _ path: String, into cors: inout HeraldConfig.CORS) {
        for member in object(value, path, allowed: ["allowedOrigins"]) where member.key == "allowedOrigins" {
            let p = "\(path).allowedOrigins"
            guard case .array(let items) = member.value else {
                fail(p, "must be an array of origins (\"https://app.example.com\") or [\"*\"]")
                continue
            }
            cors.allowedOrigins = []
            for (index, item) in items.enumerated() {
                guard let origin = string(item, "\(p)[\(index)]") else { continue }
                guard origin == "*" || CORSPolicy.normalized(origin) != nil else {
                    fail(
                        "\(p)[\(index)]",
                        "must be \"*\" or an origin: scheme http or https, host, optional port, nothing after (\(origin.debugDescription))")
                    continue
                }
                cors.allowedOrigins.append(origin)
            }
        }
    }

    private mutating func readAuth(_ value: JSONValue, _ path: String, patternLimits: PatternLimits, into auth: inout HeraldConfig.Auth) {
        let allowed: Set<String> = ["anonymous", "publisherKeys", "adminKeys", "jwtSecret", "jwtAudience", "jwtIssuer", "jwtKeys", "demo"]
        for member in object(value, path, allowed: allowed) {
            let p = "\(path).\(member.key)"
            switch member.key {
            case "anonymous": if let b = bool(member.value, p) { auth.anonymous = b }
            case "publisherKeys": auth.publisherKeys = readKeys(member.value, p, publishLimits: patternLimits)
            case "adminKeys": auth.adminKeys = readKeys(member.value, p)
            case "jwtSecret":
                if let secret = string(member.value, p) {
                    if secret.utf8.count < HeraldConfig.minJWTSecretBytes {
                        fail(p, "must have at least \(HeraldConfig.minJWTSecretBytes) bytes (HS256 needs a secret as long as its hash)")
                    } else {
                        auth.jwtSecret = secret
                    }
                }
            case "jwtAudience": auth.jwtAudience = string(member.value, p)
            case "jwtIssuer": auth.jwtIssuer = string(member.value, p)
            case "jwtKeys": auth.jwtKeys = readJWTKeys(member.value, p)
            case "demo": if let b = bool(member.value, p) { auth.demo = b }
            default: break
            }
        }
    }

    private mutating func readJWTKeys(_ value: JSONValue, _ p: String) -> [HeraldConfig.JWTKey] {
        guard case .array(let items) = value else {
            fail(p, "must be an array of {\"kid\", \"alg\", \"secret\" or \"publicKey\"} objects")
            return []
        }
        var keys: [HeraldConfig.JWTKey] = []
        for (index, item) in items.enumerated() {
            let kp = "\(p)[\(index)]"
            var keyID: String?
            var algorithm: HeraldConfig.JWTKey.Algorithm?
            var secret: String?
            var publicKey: String?
            for field in object(item, kp, allowed: ["kid", "alg", "secret", "publicKey"]) {
                let fp = "\(kp).\(field.key)"
                switch field.key {
                case "kid": keyID = string(field.value, fp)
                case "alg":
                    guard let text = string(field.value, fp) else { continue }
                    algorithm = HeraldConfig.JWTKey.Algorithm(rawValue: text)
                    if algorithm == nil { fail(fp, "must be HS256, RS256 or ES256") }
                case "secret":
                    secret = string(field.value, fp)
                    if let s = secret, s.utf8.count < HeraldConfig.minJWTSecretBytes {
                        fail(fp, "must have at least \(HeraldConfig.minJWTSecretBytes) bytes (HS256 needs a secret as long as its hash)")
                    }
                case "publicKey": publicKey = string(field.value, fp)
                default: break
                }
            }
            guard item.objectMembers != nil else { continue }
            guard let algorithm else {
                if item["alg"] == nil { fail("\(kp).alg", "is required (HS256, RS256 or ES256)") }
                continue
            }
            if algorithm == .hs256, secret == nil || publicKey != nil {
                fail(kp, "an HS256 key needs \"secret\" and no \"publicKey\"")
            } else if algorithm != .hs256, publicKey == nil || secret != nil {
                fail(kp, "an \(algorithm.rawValue) key needs \"publicKey\" (the path of a PEM public key) and no \"secret\"")
            }
            if let keyID, keys.contains(where: { $0.keyID == keyID }) {
                fail("\(kp).kid", "\(keyID.debugDescription) names another key too")
            }
            keys.append(.init(keyID: keyID, algorithm: algorithm, secret: secret, publicKeyPath: publicKey))
        }
        return keys
    }

    /// Keys by name and digest; publisher keys (`publishLimits` given) may also carry a
    /// `publish` pattern, admin keys may not.
    private mutating func readKeys(_ value: JSONValue, _ p: String, publishLimits: PatternLimits? = nil) -> [HeraldConfig.PublisherKey] {
        guard case .array(let keys) = value else {
            fail(p, "must be an array of {\"name\",\"sha256\"} objects")
            return []
        }
        var result: [HeraldConfig.PublisherKey] = []
        for (i, key) in keys.enumerated() {
            let kp = "\(p)[\(i)]"
            var name: String?
            var digest: [UInt8]?
            var publish: Pattern?
            for field in object(key, kp, allowed: publishLimits == nil ? ["name", "sha256"] : ["name", "sha256", "publish"]) {
                if field.key == "name" { name = string(field.value, "\(kp).name") }
                if field.key == "publish", let publishLimits {
                    do throws(HeraldError) {
                        publish = try Pattern(field.value, limits: publishLimits)
                    } catch {
                        fail("\(kp).publish" + (error.path.map { String($0.dropFirst()) } ?? ""), error.message)
                    }
                }
                if field.key == "sha256", let hex = string(field.value, "\(kp).sha256") {
                    digest = Hex.decode(hex)
                    if digest?.count != 32 {
                        fail("\(kp).sha256", "must be 64 hexadecimal digits (the SHA-256 of the key)")
                        digest = nil
                    }
                }
            }
            if name == nil { fail("\(kp).name", "is required") }
            if let name, result.contains(where: { $0.name == name }) {
                fail("\(kp).name", "\(name.debugDescription) names another key too")
            }
            if let name, let digest { result.append(.init(name: name, sha256: digest, publish: publish)) }
        }
        return result
    }

    private mutating func readRoutes(
        _ value: JSONValue, _ path: String, patternLimits: PatternLimits, defaultQueue: QueueLimits
    ) -> [HeraldConfig.Route] {
        guard case .object(let members) = value else {
            fail(path, "must be an object of name → {\"pattern\": …}")
            return []
        }
        if members.count > HeraldConfig.maxRoutes { fail(path, "at most \(HeraldConfig.maxRoutes) routes") }
        var routes: [HeraldConfig.Route] = []
        for member in members {
            let p = "\(path).\(member.key)"
            if member.key.isEmpty {
                fail(p, "a route name must not be empty")
                continue
            }
            var pattern: Pattern?
            var queue: QueueLimits?
            var deadlineMs: Int?
            for field in object(member.value, p, allowed: ["pattern", "description", "queue", "deadlineMs"]) {
                if field.key == "deadlineMs" { deadlineMs = int(field.value, "\(p).deadlineMs", in: 1...600_000) }
                if field.key == "pattern" {
                    do throws(HeraldError) {
                        pattern = try Pattern(field.value, limits: patternLimits)
                    } catch {
                        fail("\(p).pattern" + (error.path.map { String($0.dropFirst()) } ?? ""), error.message)
                    }
                }
                if field.key == "queue" {
                    var limits = defaultQueue
                    readQueue(field.value, "\(p).queue", into: &limits)
                    queue = limits
                }
            }
            if let pattern {
                routes.append(.init(name: member.key, pattern: pattern, queue: queue, deadlineMs: deadlineMs))
            } else if member.value.objectMembers != nil, member.value["pattern"] == nil {
                fail("\(p).pattern", "is required")
            }
        }
        return routes
    }

    private mutating func readDelivery(_ value: JSONValue, _ path: String, into delivery: inout HeraldConfig.Delivery) {
        let keys: Set<String> = ["queue", "heartbeatSeconds", "pingSeconds", "idleTimeoutSeconds", "deadlineMs", "deadlineMissBudget"]
        for member in object(value, path, allowed: keys) {
            let p = "\(path).\(member.key)"
            switch member.key {
            case "deadlineMs": if let n = int(member.value, p, in: 1...600_000) { delivery.deadlineMs = n }
            case "deadlineMissBudget":
                if case .number(let share) = member.value, share >= 0, share <= 1 {
                    delivery.deadlineMissBudget = share
                } else {
                    fail(p, "must be a number in 0...1 (a share: 0.001 is 0.1 %)")
                }
            case "heartbeatSeconds": if let n = int(member.value, p, in: 1...3600) { delivery.heartbeatSeconds = n }
            case "pingSeconds": if let n = int(member.value, p, in: 1...3600) { delivery.pingSeconds = n }
            case "idleTimeoutSeconds": if let n = int(member.value, p, in: 2...86400) { delivery.idleTimeoutSeconds = n }
            case "queue": readQueue(member.value, p, into: &delivery.queue)
            default: break
            }
        }
        if delivery.idleTimeoutSeconds <= delivery.pingSeconds {
            fail("\(path).idleTimeoutSeconds", "must be longer than pingSeconds (\(delivery.pingSeconds))")
        }
    }

    private mutating func readQueue(_ value: JSONValue, _ path: String, into queue: inout QueueLimits) {
        for field in object(value, path, allowed: ["maxMessages", "maxBytes", "policy", "coalesceKey"]) {
            let fp = "\(path).\(field.key)"
            switch field.key {
            case "maxMessages": if let n = int(field.value, fp, in: 1...1_000_000) { queue.maxMessages = n }
            case "maxBytes": if let n = int(field.value, fp, in: 1024...(1 << 30)) { queue.maxBytes = n }
            case "policy":
                if let name = string(field.value, fp) {
                    if let policy = OverflowPolicy(rawValue: name) {
                        queue.policy = policy
                    } else {
                        fail(fp, "must be one of \(OverflowPolicy.allCases.map(\.rawValue).joined(separator: ", "))")
                    }
                }
            case "coalesceKey":
                if let key = string(field.value, fp) {
                    if FieldPath(key) == nil {
                        fail(fp, "must be a dotted field path such as \"symbol\" or \"data.sensorId\"")
                    } else {
                        queue.coalesceKey = key
                    }
                }
            default: break
            }
        }
        if queue.policy == .coalesce && queue.coalesceKey == nil {
            fail("\(path).coalesceKey", "is required with the coalesce policy")
        }
    }

    private mutating func readHistory(_ value: JSONValue, _ path: String, into history: inout HistoryLimits) {
        for member in object(value, path, allowed: ["maxEvents", "maxBytes", "maxAgeSeconds"]) {
            let p = "\(path).\(member.key)"
            switch member.key {
            case "maxEvents": if let n = int(member.value, p, in: 0...10_000_000) { history.maxEvents = n }
            case "maxBytes": if let n = int(member.value, p, in: 0...(16 << 30)) { history.maxBytes = n }
            case "maxAgeSeconds": if let n = int(member.value, p, in: 1...(30 * 86400)) { history.maxAgeSeconds = n }
            default: break
            }
        }
    }

    private mutating func readStorage(_ value: JSONValue, _ path: String, into storage: inout HeraldConfig.Storage) {
        let allowed: Set<String> = ["path", "fsync", "batchWindowMilliseconds", "segmentBytes", "maxBytes", "maxAgeSeconds"]
        for member in object(value, path, allowed: allowed) {
            let p = "\(path).\(member.key)"
            switch member.key {
            case "path":
                if member.value == .null {
                    storage.path = nil
                } else if let text = string(member.value, p) {
                    if text.isEmpty { fail(p, "must name a directory (or be null for memory only)") } else { storage.path = text }
                }
            case "fsync":
                if let text = string(member.value, p) {
                    if let policy = HeraldConfig.Storage.Fsync(rawValue: text) {
                        storage.fsync = policy
                    } else {
                        fail(p, "must be one of always, batch, never")
                    }
                }
            case "batchWindowMilliseconds": if let n = int(member.value, p, in: 0...1000) { storage.batchWindowMilliseconds = n }
            case "segmentBytes": if let n = int(member.value, p, in: (64 << 10)...(1 << 30)) { storage.segmentBytes = n }
            case "maxBytes": if let n = int(member.value, p, in: (1 << 20)...(1 << 40)) { storage.maxBytes = n }
            case "maxAgeSeconds": if let n = int(member.value, p, in: 60...(365 * 86400)) { storage.maxAgeSeconds = n }
            default: break
            }
        }
    }

    private mutating func readCluster(_ value: JSONValue, _ path: String, into cluster: inout HeraldConfig.Cluster) {
        for member in object(value, path, allowed: ["redis", "stream", "maxLength", "nodeTimeoutSeconds"]) {
            let p = "\(path).\(member.key)"
            switch member.key {
            case "redis":
                if member.value == .null {
                    cluster.redis = nil
                } else if let text = string(member.value, p) {
                    if let address = HeraldConfig.RedisAddress(url: text) {
                        cluster.redis = address
                    } else {
                        fail(p, "must be redis://host[:port] (or null for a single node)")
                    }
                }
            case "stream":
                if let text = string(member.value, p) {
                    let allowed = text.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7F }
                    if text.isEmpty || text.utf8.count > 100 || !allowed {
                        fail(p, "must be 1 to 100 printable ASCII characters without spaces")
                    } else {
                        cluster.stream = text
                    }
                }
            case "maxLength": if let n = int(member.value, p, in: 1000...1_000_000_000) { cluster.maxLength = n }
            case "nodeTimeoutSeconds": if let n = int(member.value, p, in: 3...3600) { cluster.nodeTimeoutSeconds = n }
            default: break
            }
        }
    }

    private mutating func readDedup(_ value: JSONValue, _ path: String, into dedup: inout HeraldConfig.Dedup) {
        for member in object(value, path, allowed: ["windowSeconds", "maxEntries"]) {
            let p = "\(path).\(member.key)"
            if member.key == "windowSeconds", let n = int(member.value, p, in: 0...(7 * 86400)) { dedup.windowSeconds = n }
            if member.key == "maxEntries", let n = int(member.value, p, in: 0...10_000_000) { dedup.maxEntries = n }
        }
    }

    private mutating func readLimits(_ value: JSONValue, _ path: String, into limits: inout HeraldConfig.Limits) {
        let keys: Set<String> = [
            "maxBodyBytes", "maxEventBytes", "maxBatchEvents", "maxJSONDepth", "maxSubscriptionsPerConnection", "maxQueuedBytesTotal",
            "maxPatternBytes", "maxPatternFields", "maxUnauthenticatedBodyBytes", "maxPendingInputBytesTotal", "headTimeoutSeconds",
            "bodyTimeoutSeconds", "keepAliveSeconds", "sendTimeoutSeconds", "storageTimeoutSeconds", "maxHeadBytes", "maxHeaderBytes",
            "maxTargetBytes", "maxConnections", "maxConnectionsPerAddress", "maxConnectionsPerSubject", "ingestEventsPerSecondPerKey",
            "ingestEventsPerSecondPerAddress", "webSocketMessagesPerSecond", "webSocketSubscribesPerSecond", "webSocketPublishesPerSecond",
            "newConnectionsPerSecond", "resumesPerSecond",
        ]
        for member in object(value, path, allowed: keys) {
            let p = "\(path).\(member.key)"
            switch member.key {
            case "maxBodyBytes": if let n = int(member.value, p, in: 1024...(64 << 20)) { limits.maxBodyBytes = n }
            case "maxEventBytes": if let n = int(member.value, p, in: 64...(64 << 20)) { limits.maxEventBytes = n }
            case "maxBatchEvents": if let n = int(member.value, p, in: 1...100_000) { limits.maxBatchEvents = n }
            case "maxJSONDepth": if let n = int(member.value, p, in: 1...1024) { limits.maxJSONDepth = n }
            case "maxSubscriptionsPerConnection":
                if let n = int(member.value, p, in: 1...SubscriptionSet.capacity) { limits.maxSubscriptionsPerConnection = n }
            case "maxQueuedBytesTotal": if let n = int(member.value, p, in: (1 << 20)...(64 << 30)) { limits.maxQueuedBytesTotal = n }
            case "maxPatternBytes": if let n = int(member.value, p, in: 16...(1 << 20)) { limits.pattern.maxBytes = n }
            case "maxPatternFields": if let n = int(member.value, p, in: 1...10_000) { limits.pattern.maxFields = n }
            case "maxUnauthenticatedBodyBytes":
                if let n = int(member.value, p, in: 1024...(64 << 20)) { limits.maxUnauthenticatedBodyBytes = n }
            case "maxPendingInputBytesTotal":
                if let n = int(member.value, p, in: (1 << 20)...(64 << 30)) { limits.maxPendingInputBytesTotal = n }
            case "headTimeoutSeconds": if let n = int(member.value, p, in: 1...600) { limits.headTimeoutSeconds = n }
            case "bodyTimeoutSeconds": if let n = int(member.value, p, in: 1...600) { limits.bodyTimeoutSeconds = n }
            case "keepAliveSeconds": if let n = int(member.value, p, in: 1...3600) { limits.keepAliveSeconds = n }
            case "sendTimeoutSeconds": if let n = int(member.value, p, in: 1...3600) { limits.sendTimeoutSeconds = n }
            case "storageTimeoutSeconds": if let n = int(member.value, p, in: 1...300) { limits.storageTimeoutSeconds = n }
            case "maxHeadBytes": if let n = int(member.value, p, in: 1024...(1 << 20)) { limits.head.maxHeadBytes = n }
            case "maxHeaderBytes": if let n = int(member.value, p, in: 256...(1 << 20)) { limits.head.maxFieldBytes = n }
            case "maxTargetBytes": if let n = int(member.value, p, in: 256...(1 << 20)) { limits.head.maxTargetBytes = n }
            case "maxConnections": if let n = int(member.value, p, in: 1...10_000_000) { limits.maxConnections = n }
            case "maxConnectionsPerAddress": if let n = int(member.value, p, in: 1...10_000_000) { limits.maxConnectionsPerAddress = n }
            case "maxConnectionsPerSubject": if let n = int(member.value, p, in: 1...10_000_000) { limits.maxConnectionsPerSubject = n }
            case "ingestEventsPerSecondPerKey":
                if let n = int(member.value, p, in: 1...100_000_000) { limits.ingestEventsPerSecondPerKey = n }
            case "ingestEventsPerSecondPerAddress":
                if let n = int(member.value, p, in: 1...100_000_000) { limits.ingestEventsPerSecondPerAddress = n }
            case "webSocketMessagesPerSecond": if let n = int(member.value, p, in: 1...1_000_000) { limits.webSocketMessagesPerSecond = n }
            case "webSocketSubscribesPerSecond":
                if let n = int(member.value, p, in: 1...1_000_000) { limits.webSocketSubscribesPerSecond = n }
            case "webSocketPublishesPerSecond":
                if let n = int(member.value, p, in: 1...1_000_000) { limits.webSocketPublishesPerSecond = n }
            case "newConnectionsPerSecond": if let n = int(member.value, p, in: 1...10_000_000) { limits.newConnectionsPerSecond = n }
            case "resumesPerSecond": if let n = int(member.value, p, in: 1...10_000_000) { limits.resumesPerSecond = n }
            default: break
            }
        }
    }

    private mutating func readLog(_ value: JSONValue, _ path: String, into log: inout HeraldConfig.Log) {
        let levels = ["trace", "debug", "info", "notice", "warning", "error", "critical"]
        let lwsLevels = ["none", "error", "warn", "notice", "info"]
        for member in object(value, path, allowed: ["level", "lwsLevel", "format"]) {
            let p = "\(path).\(member.key)"
            if member.key == "level", let s = string(member.value, p) {
                if levels.contains(s) { log.level = s } else { fail(p, "must be one of \(levels.joined(separator: ", "))") }
            }
            if member.key == "format", let s = string(member.value, p) {
                if ["text", "json"].contains(s) { log.format = s } else { fail(p, "must be text or json") }
            }
            if member.key == "lwsLevel", let s = string(member.value, p) {
                if lwsLevels.contains(s) { log.lwsLevel = s } else { fail(p, "must be one of \(lwsLevels.joined(separator: ", "))") }
            }
        }
    }
}

/// Hexadecimal text ↔ bytes.
public enum Hex {
    /// Bytes of an even-length hex string, or nil when it is not one.
    public static func decode(_ text: String) -> [UInt8]? {
        let digits = Array(text.utf8)
        guard digits.count % 2 == 0 else { return nil }
        func nibble(_ c: UInt8) -> UInt8? {
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): c - UInt8(ascii: "A") + 10
            default: nil
            }
        }
        var out: [UInt8] = []
        out.reserveCapacity(digits.count / 2)
        var i = 0
        while i < digits.count {
            guard let high = nibble(digits[i]), let low = nibble(digits[i + 1]) else { return nil }
            out.append(high << 4 | low)
            i += 2
        }
        return out
    }

    /// Lowercase hex text of `bytes`.
    public static func encode(_ bytes: some Sequence<UInt8>) -> String {
        let hex = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        for b in bytes {
            out.append(hex[Int(b >> 4)])
            out.append(hex[Int(b & 0xF)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}
