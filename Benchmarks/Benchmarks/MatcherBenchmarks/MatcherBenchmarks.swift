import Benchmark
import HeraldCore

// Throughput of the subscription matcher (SubscriptionIndex) on events shaped like
// shared/examples/vibration-recorded.json (minified, 470–490 bytes).
//
// - "parse+match": JSONScanner.scan into a reused tape, then SubscriptionIndex.match —
//   what the gateway does per event. "match": the tape is prepared outside the loop.
// - `.throughput` with `scalingFactor: .kilo` is thousands of events per second.
// - Exact: subscription i is {"source":["VibrationSensor"],"data":{"sensorId":["VB-i"]}};
//   events cycle through 4,096 sensor ids spread over the subscription range, so each
//   event matches one subscription.
// - Mixed: six kinds in rotation — prefix, anything-but + exact, numeric range,
//   exists + exact, wildcard, equals-ignore-case — each event matches a few.
// - Add: building an index of 100K subscriptions from compiled patterns; custom metrics
//   give the longest single add and the index's bytes per subscription.
// - Corpus: events/s per operator family (CorpusBenchmarks.swift).
//
// Run from Benchmarks/:
//     swift package --scratch-path .build-bench benchmark --target MatcherBenchmarks

/// A minified vibration reading for sensor `sensor`.
func vibrationEvent(sensor: Int, level: Double, unit: Int) -> [UInt8] {
    let text =
        #"{"eventId":"a1b2c3d4-5678-90ef-\#(100_000_000_000 + sensor)","eventType":"VibrationRecorded","#
        + #""timestamp":"2023-09-29T16:30:25Z","source":"VibrationSensor","#
        + #""sensorLocation":"Motor Assembly Line B, Conveyor Unit \#(unit)","version":"v1.2","#
        + #""data":{"sensorId":"VB-\#(sensor)","vibrationLevel":\#(level),"baselineVibrationLevel":4.0,"#
        + #""unit":"m/s²","difference":\#(level - 4)},"metadata":{"model":"VibroMonitor Pro X1","#
        + #""calibrationDate":"2023-06-15"},"systemMessage":"Vibration level recorded exceeds the "#
        + #"acceptable threshold. Immediate inspection required."}"#
    return Array(text.utf8)
}

/// 4,096 events whose sensor ids are spread over `0..<range`.
func events(range: Int) -> [[UInt8]] {
    (0..<4096).map { k in
        let sensor = (k &* 2_654_435_761) % range
        return vibrationEvent(sensor: sensor, level: Double(k % 200) / 10, unit: k % 50)
    }
}

func pattern(_ text: String) -> Pattern {
    do {
        return try Pattern(parsing: Array(text.utf8))
    } catch {
        fatalError("\(error): \(text)")
    }
}

func exactPattern(_ i: Int) -> Pattern {
    pattern(#"{"source":["VibrationSensor"],"data":{"sensorId":["VB-\#(i)"]}}"#)
}

func mixedPattern(_ i: Int) -> Pattern {
    switch i % 6 {
    case 0: return pattern(#"{"data":{"sensorId":[{"prefix":"VB-\#(i)"}]}}"#)
    case 1: return pattern(#"{"data":{"sensorId":["VB-\#(i)"]},"eventType":[{"anything-but":["DeviceReady","Calibrated"]}]}"#)
    case 2:
        let low = Double(i % 2000) / 100
        return pattern(#"{"data":{"vibrationLevel":[{"numeric":[">=",\#(low),"<",\#(low + 0.01)]}]}}"#)
    case 3: return pattern(#"{"data":{"sensorId":["VB-\#(i)"]},"systemMessage":[{"exists":true}]}"#)
    case 4: return pattern(#"{"eventId":[{"wildcard":"*-\#(100_000_000_000 + i)"}]}"#)
    default: return pattern(#"{"data":{"sensorId":[{"equals-ignore-case":"vb-\#(i)"}]}}"#)
    }
}

func index(_ patterns: [Pattern]) -> SubscriptionIndex {
    var index = SubscriptionIndex()
    for (i, p) in patterns.enumerated() { index.add(owner: UInt64(i), slot: 0, patterns: [p]) }
    return index
}

/// Matches the events round-robin, `benchmark.scaledIterations` per measured iteration.
func matchRepeatedly(_ benchmark: Benchmark, _ index: SubscriptionIndex, _ events: [[UInt8]], parse: Bool) {
    var tapes: [JSONTape] = []
    if !parse {
        tapes = events.map { try! JSONScanner.scan($0) }
    }
    var tape = JSONTape()
    var results: [SubscriptionIndex.Match] = []
    results.reserveCapacity(64)
    var matched = 0
    var k = 0
    // Warm the scratch buffers outside the measurement.
    events[0].withUnsafeBytes { bytes in
        try! JSONScanner.scan(bytes, into: &tape)
        index.match(EventView(tape: tape, node: 0, bytes: bytes), into: &results)
    }
    benchmark.startMeasurement()
    for _ in benchmark.scaledIterations {
        let event = events[k & 4095]
        event.withUnsafeBytes { bytes in
            results.removeAll(keepingCapacity: true)
            if parse {
                tape.removeAll()
                do {
                    try JSONScanner.scan(bytes, into: &tape)
                } catch {
                    fatalError("\(error)")
                }
                index.match(EventView(tape: tape, node: 0, bytes: bytes), into: &results)
            } else {
                index.match(EventView(tape: tapes[k & 4095], node: 0, bytes: bytes), into: &results)
            }
            matched += results.count
        }
        k += 1
    }
    benchmark.stopMeasurement()
    blackHole(matched)
}

/// Compiled patterns and indexes, built once per process (outside any measurement).
nonisolated(unsafe) var exactPatterns: [Int: [Pattern]] = [:]
nonisolated(unsafe) var exactIndexes: [Int: SubscriptionIndex] = [:]
nonisolated(unsafe) var mixedIndexes: [Int: SubscriptionIndex] = [:]
nonisolated(unsafe) var eventSets: [Int: [[UInt8]]] = [:]

func exactIndex(_ n: Int) -> SubscriptionIndex {
    if let built = exactIndexes[n] { return built }
    let built = index((0..<n).map(exactPattern))
    exactIndexes[n] = built
    return built
}

func mixedIndex(_ n: Int) -> SubscriptionIndex {
    if let built = mixedIndexes[n] { return built }
    let built = index((0..<n).map(mixedPattern))
    mixedIndexes[n] = built
    return built
}

func eventSet(_ n: Int) -> [[UInt8]] {
    if let built = eventSets[n] { return built }
    let built = events(range: n)
    eventSets[n] = built
    return built
}

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.throughput, .wallClock, .mallocCountTotal],
        scalingFactor: .kilo,
        maxDuration: .seconds(3),
        maxIterations: 1_000
    )

    for n in [1_000, 10_000, 100_000, 1_000_000] {
        let label = n >= 1_000_000 ? "\(n / 1_000_000)M" : "\(n / 1000)K"
        Benchmark("exact \(label) subscriptions, parse+match") { benchmark in
            matchRepeatedly(benchmark, exactIndex(n), eventSet(n), parse: true)
        }
        Benchmark("exact \(label) subscriptions, match") { benchmark in
            matchRepeatedly(benchmark, exactIndex(n), eventSet(n), parse: false)
        }
    }
    for n in [1_000, 10_000, 100_000] {
        Benchmark("mixed \(n / 1000)K subscriptions, parse+match") { benchmark in
            matchRepeatedly(benchmark, mixedIndex(n), eventSet(n), parse: true)
        }
    }

    registerCorpusBenchmarks()

    let longestAdd = BenchmarkMetric.custom("longest add (µs)", polarity: .prefersSmaller, useScalingFactor: false)
    let bytesPerSubscription = BenchmarkMetric.custom("bytes per subscription", polarity: .prefersSmaller, useScalingFactor: false)
    for (name, make) in [("exact", exactPattern as @Sendable (Int) -> Pattern), ("mixed", mixedPattern)] {
        Benchmark(
            "add 100K \(name) subscriptions",
            configuration: .init(
                metrics: [.wallClock, .peakMemoryResidentDelta, longestAdd, bytesPerSubscription], scalingFactor: .one,
                maxDuration: .seconds(20), maxIterations: 5)
        ) { benchmark in
            let patterns = (0..<100_000).map(make)
            let clock = ContinuousClock()
            var index = SubscriptionIndex()
            var longest = Duration.zero
            benchmark.startMeasurement()
            for (i, p) in patterns.enumerated() {
                let start = clock.now
                index.add(owner: UInt64(i), slot: 0, patterns: [p])
                let took = clock.now - start
                if took > longest { longest = took }
            }
            benchmark.stopMeasurement()
            benchmark.measurement(longestAdd, Int(longest / .microseconds(1)))
            benchmark.measurement(bytesPerSubscription, index.statistics.bytes / index.count)
            blackHole(index.count)
        }
    }
}
