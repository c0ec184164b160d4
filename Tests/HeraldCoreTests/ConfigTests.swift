import HeraldCore
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `config.json` validation: defaults, the shipped file, and every error with its path.
@Suite struct ConfigTests {
    @Test func anEmptyObjectIsTheDefaults() throws {
        let config = try HeraldConfig(parsing: Array("{}".utf8))
        #expect(config.listen.port == 8080)
        #expect(config.delivery.queue == QueueLimits(maxMessages: 1000, maxBytes: 1 << 20))
        #expect(config.limits.maxBatchEvents == 500)
        #expect(config.auth.anonymous)
    }

    @Test func theShippedConfigIsValid() throws {
        // The repository's config.json, read relative to this file.
        let path = String(#filePath).split(separator: "/").dropLast(3).joined(separator: "/")
        let file = fopen("/" + path + "/config.json", "r")
        try #require(file != nil)
        var bytes: [UInt8] = []
        while case let c = fgetc(file), c != EOF { bytes.append(UInt8(c)) }
        fclose(file)
        let config = try HeraldConfig(parsing: bytes)
        #expect(config.route(named: "chat") != nil)
        #expect(config.auth.publisherKeys.count == 1)
    }

    @Test func everyErrorIsReportedWithItsPath() {
        let text = #"""
            {"listen":{"port":70000,"hots":"x"},"routes":{"bad":{"pattern":{"a":"b"}},"none":{}},
             "auth":{"publisherKeys":[{"name":"k","sha256":"abc"}]},"limits":{"maxSubscriptionsPerConnection":500},
             "log":{"level":"loud"},"extra":1}
            """#
        #expect { try HeraldConfig(parsing: Array(text.utf8)) } throws: { error in
            guard let errors = error as? HeraldConfig.ValidationErrors else { return false }
            let paths = Set(errors.errors.compactMap(\.path))
            return paths == [
                "$.listen.port", "$.listen.hots", "$.routes.bad.pattern.a", "$.routes.none.pattern",
                "$.auth.publisherKeys[0].sha256", "$.limits.maxSubscriptionsPerConnection", "$.log.level", "$.extra",
            ]
        }
    }

    @Test func deliveryHistoryAndDedupAreRead() throws {
        let text = #"""
            {"delivery":{"queue":{"maxMessages":5,"policy":"coalesce","coalesceKey":"data.symbol"},"pingSeconds":5,"idleTimeoutSeconds":12},
             "routes":{"ticks":{"pattern":{"type":["tick"]},"queue":{"policy":"disconnect"}}},
             "history":{"maxEvents":0},"dedup":{"windowSeconds":60,"maxEntries":10},"limits":{"maxQueuedBytesTotal":1048576}}
            """#
        let config = try HeraldConfig(parsing: Array(text.utf8))
        #expect(config.delivery.queue == QueueLimits(maxMessages: 5, policy: .coalesce, coalesceKey: "data.symbol"))
        #expect(config.route(named: "ticks")?.queue?.policy == .disconnect)
        #expect(config.route(named: "ticks")?.queue?.maxMessages == 5, "a route's queue starts from delivery.queue")
        #expect(config.history.maxEvents == 0)
        #expect(config.dedup.windowSeconds == 60)
        #expect(config.limits.maxQueuedBytesTotal == 1 << 20)
    }

    @Test func deadlinesAreReadPerRouteWithTheDeliveryDefault() throws {
        let text = #"""
            {"delivery":{"deadlineMs":40,"deadlineMissBudget":0.01},"ingest":{"deadlineMs":250},
             "routes":{"fast":{"pattern":{"type":["tick"]},"deadlineMs":5},"plain":{"pattern":{"type":["x"]}}}}
            """#
        let config = try HeraldConfig(parsing: Array(text.utf8))
        #expect(config.route(named: "fast")?.deadlineMs == 5 && config.route(named: "plain")?.deadlineMs == nil)
        #expect(config.delivery.deadlineMissBudget == 0.01 && config.ingest.deadlineMs == 250)
        #expect(config.routeDeadlines == [5_000_000, 40_000_000, 40_000_000], "each route, then ad-hoc filters")
        let defaults = try HeraldConfig(parsing: Array("{}".utf8))
        #expect(defaults.delivery.deadlineMs == 100 && defaults.delivery.deadlineMissBudget == 0.001 && defaults.ingest.deadlineMs == 100)
        let bad = #"""
            {"delivery":{"deadlineMs":0,"deadlineMissBudget":2},"ingest":{"deadlineMs":[5],"late":1},
             "routes":{"r":{"pattern":{"a":[1]},"deadlineMs":"5"}}}
            """#
        #expect { try HeraldConfig(parsing: Array(bad.utf8)) } throws: { error in
            let paths = Set((error as? HeraldConfig.ValidationErrors)?.errors.compactMap(\.path) ?? [])
            return paths == [
                "$.delivery.deadlineMs", "$.delivery.deadlineMissBudget", "$.routes.r.deadlineMs", "$.ingest.deadlineMs", "$.ingest.late",
            ]
        }
    }

    @Test func badDeliverySettingsNameTheirPath() {
        let text = #"""
            {"delivery":{"queue":{"policy":"shrug"},"pingSeconds":30,"idleTimeoutSeconds":10},
             "routes":{"r":{"pattern":{"a":[1]},"queue":{"policy":"coalesce"}}},"history":{"maxEvents":-1}}
            """#
        #expect { try HeraldConfig(parsing: Array(text.utf8)) } throws: { error in
            let paths = Set((error as? HeraldConfig.ValidationErrors)?.errors.compactMap(\.path) ?? [])
            return paths == [
                "$.delivery.queue.policy", "$.delivery.idleTimeoutSeconds", "$.routes.r.queue.coalesceKey", "$.history.maxEvents",
            ]
        }
    }

    @Test func storageIsReadAndBadValuesNameTheirPath() throws {
        let good =
            #"{"storage":{"path":"/var/lib/herald","fsync":"always","segmentBytes":1048576,"maxBytes":10485760,"maxAgeSeconds":3600}}"#
        let config = try HeraldConfig(parsing: Array(good.utf8))
        #expect(config.storage.path == "/var/lib/herald" && config.storage.fsync == .always)
        #expect(config.storage.segmentBytes == 1 << 20 && config.storage.maxBytes == 10 << 20 && config.storage.maxAgeSeconds == 3600)
        #expect(try HeraldConfig(parsing: Array("{}".utf8)).storage.path == nil, "memory only by default")
        #expect(try HeraldConfig(parsing: Array("{}".utf8)).storage.fsync == .batch)
        let bad = #"{"storage":{"path":"","fsync":"sometimes","segmentBytes":10,"maxBytes":[1],"batchWindowMilliseconds":-1,"size":1}}"#
        #expect { try HeraldConfig(parsing: Array(bad.utf8)) } throws: { error in
            let paths = Set((error as? HeraldConfig.ValidationErrors)?.errors.compactMap(\.path) ?? [])
            return paths == [
                "$.storage.path", "$.storage.fsync", "$.storage.segmentBytes", "$.storage.maxBytes",
                "$.storage.batchWindowMilliseconds", "$.storage.size",
            ]
        }
    }

    @Test func clusterIsReadAndBadValuesNameTheirPath() throws {
        let config = try HeraldConfig(
            parsing: Array(#"{"cluster":{"redis":"redis://10.0.0.5:6380/","stream":"app-1","maxLength":5000}}"#.utf8))
        #expect(config.cluster.redis == HeraldConfig.RedisAddress(host: "10.0.0.5", port: 6380))
        #expect(config.cluster.stream == "app-1" && config.cluster.maxLength == 5000)
        #expect(HeraldConfig.RedisAddress(url: "redis://cache")?.port == 6379)
        for bad in ["redis://", "redis://h:0", "redis://h:70000", "redis://u:p@h", "http://h:6379", "redis://h/1", "redis://h:x"] {
            #expect(HeraldConfig.RedisAddress(url: bad) == nil, "\(bad)")
        }
        #expect(try HeraldConfig(parsing: Array("{}".utf8)).cluster.redis == nil, "a single node by default")
        #expect(try HeraldConfig(parsing: Array("{}".utf8)).listen.eventLibrary == .libev)
        #expect(try HeraldConfig(parsing: Array(#"{"listen":{"eventLibrary":"poll"}}"#.utf8)).listen.eventLibrary == .poll)
        #expect { try HeraldConfig(parsing: Array(#"{"listen":{"eventLibrary":"epoll"}}"#.utf8)) } throws: {
            ($0 as? HeraldConfig.ValidationErrors)?.errors.map(\.path) == ["$.listen.eventLibrary"]
        }
        #expect(try HeraldConfig(parsing: Array(#"{"limits":{"storageTimeoutSeconds":3}}"#.utf8)).limits.storageTimeoutSeconds == 3)
        let bad = #"{"cluster":{"redis":"localhost","stream":"a b","maxLength":10,"nodes":3}}"#
        #expect { try HeraldConfig(parsing: Array(bad.utf8)) } throws: { error in
            let paths = Set((error as? HeraldConfig.ValidationErrors)?.errors.compactMap(\.path) ?? [])
            return paths == ["$.cluster.redis", "$.cluster.stream", "$.cluster.maxLength", "$.cluster.nodes"]
        }
        let both = #"{"cluster":{"redis":"redis://h"},"storage":{"path":"/var/lib/herald"}}"#
        #expect { try HeraldConfig(parsing: Array(both.utf8)) } throws: { error in
            (error as? HeraldConfig.ValidationErrors)?.errors.map(\.path) == ["$.cluster.redis"]
        }
    }

    @Test func atMost127Routes() {
        let routes = (0...HeraldConfig.maxRoutes).map { #""r\#($0)":{"pattern":{"n":[\#($0)]}}"# }.joined(separator: ",")
        #expect { try HeraldConfig(parsing: Array("{\"routes\":{\(routes)}}".utf8)) } throws: {
            (($0 as? HeraldConfig.ValidationErrors)?.errors.map(\.path)) == ["$.routes"]
        }
    }

    @Test func invalidJSONIsOneError() {
        #expect { try HeraldConfig(parsing: Array("{".utf8)) } throws: {
            ($0 as? HeraldConfig.ValidationErrors)?.errors.count == 1
        }
    }
}

@Suite struct TextPositionTests {
    @Test func anOffsetIsALineAndAColumnCountedInCharacters() {
        let text = Array("{\n  \"name\": \"Zoë\",\n  \"port\": 80,\n}".utf8)
        let comma = text.lastIndex(of: UInt8(ascii: "}"))!
        #expect(TextPosition(offset: comma, in: text) == TextPosition(line: 4, column: 1, lineText: "}"))
        let after = text.firstIndex(of: UInt8(ascii: ","))!  // after "Zoë": ë is two bytes, one column
        #expect(TextPosition(offset: after, in: text) == TextPosition(line: 2, column: 16, lineText: "  \"name\": \"Zoë\","))
        #expect(TextPosition(offset: 0, in: text).line == 1 && TextPosition(offset: 0, in: text).column == 1)
        #expect(TextPosition(offset: 10_000, in: text).line == 4, "past the end is the end")
        #expect(TextPosition(offset: 0, in: []) == TextPosition(line: 1, column: 1, lineText: ""))
    }

    @Test func aSyntaxErrorInAConfigurationSaysWhere() {
        let text = Array("{\"listen\": {\"port\": 80,}\n}".utf8)
        #expect { try HeraldConfig(parsing: text) } throws: { error in
            guard let fault = (error as? HeraldConfig.ValidationErrors)?.errors.first, let offset = fault.offset else { return false }
            let position = TextPosition(offset: offset, in: text)
            return position.line == 1 && position.column == 23 && fault.message.contains("trailing comma")  // at the comma
        }
    }
}
