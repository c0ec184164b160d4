import Benchmark
import HeraldCore

// Throughput of the strict JSON scanner on Herald's reference event.
//
// The `.throughput` metric is events per second; with `scalingFactor: .kilo` each
// measured iteration scans the event 1,000 times and the table shows K events/s.
// MB/s = (K events/s) × 1,000 × bytes per event / 1,000,000:
//   - vibration-recorded, pretty (as in shared/examples): 601 bytes per event
//   - vibration-recorded, minified:                       515 bytes per event
// e.g. 600 K events/s × 601 B = 360 MB/s.
//
// Run from Benchmarks/:
//     swift package --scratch-path .build-bench benchmark --target JSONScannerBenchmarks

/// shared/examples/vibration-recorded.json, byte for byte (601 bytes, trailing newline included).
let vibrationRecordedPretty = """
    {
      "eventId": "a1b2c3d4-5678-90ef-ghij-klmnopqrstuv",
      "eventType": "VibrationRecorded",
      "timestamp": "2023-09-29T16:30:25Z",
      "source": "VibrationSensor",
      "sensorLocation": "Motor Assembly Line B, Conveyor Unit 4",
      "version": "v1.2",
      "data": {
        "sensorId": "VB-42345",
        "vibrationLevel": 12.5,
        "baselineVibrationLevel": 4.0,
        "unit": "m/s²",
        "difference": 8.5
      },
      "metadata": {
        "model": "VibroMonitor Pro X1",
        "calibrationDate": "2023-06-15"
      },
      "systemMessage": "Vibration level recorded exceeds the acceptable threshold. Immediate inspection required."
    }

    """

/// The same event without insignificant whitespace (515 bytes), as most publishers send it.
let vibrationRecordedMinified =
    #"{"eventId":"a1b2c3d4-5678-90ef-ghij-klmnopqrstuv","eventType":"VibrationRecorded","#
    + #""timestamp":"2023-09-29T16:30:25Z","source":"VibrationSensor","#
    + #""sensorLocation":"Motor Assembly Line B, Conveyor Unit 4","version":"v1.2","#
    + #""data":{"sensorId":"VB-42345","vibrationLevel":12.5,"baselineVibrationLevel":4.0,"#
    + #""unit":"m/s²","difference":8.5},"metadata":{"model":"VibroMonitor Pro X1","#
    + #""calibrationDate":"2023-06-15"},"systemMessage":"Vibration level recorded exceeds the "#
    + #"acceptable threshold. Immediate inspection required."}"#

/// Scans `event` `benchmark.scaledIterations` times with one reused tape, as an ingest
/// loop thread does. The bytes live in one raw allocation for the whole run.
func scanRepeatedly(_ benchmark: Benchmark, _ event: [UInt8], lookups: Bool) {
    event.withUnsafeBytes { bytes in
        var tape = JSONTape()
        try! JSONScanner.scan(bytes, into: &tape)  // grow the tape once, outside the measurement
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            tape.removeAll()
            do {
                try JSONScanner.scan(bytes, into: &tape)
            } catch {
                fatalError("\(error)")
            }
            if lookups {
                let source = tape.member("source", inObjectAt: 0, in: bytes)
                let data = tape.member("data", inObjectAt: 0, in: bytes)
                let sensorId = data.flatMap { tape.member("sensorId", inObjectAt: $0, in: bytes) }
                let level = data.flatMap { tape.member("vibrationLevel", inObjectAt: $0, in: bytes) }
                blackHole(source)
                blackHole(sensorId)
                blackHole(level.map { tape.number(at: $0, in: bytes) })
            }
            blackHole(tape.nodes.count)
        }
        benchmark.stopMeasurement()
    }
}

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.throughput, .wallClock, .mallocCountTotal],
        scalingFactor: .kilo,
        maxDuration: .seconds(3),
        maxIterations: 1_000
    )

    let pretty = Array(vibrationRecordedPretty.utf8)
    let minified = Array(vibrationRecordedMinified.utf8)
    precondition(pretty.count == 601 && minified.count == 515, "update the byte counts in the comments")

    Benchmark("scan vibration-recorded pretty 601 B") { benchmark in
        scanRepeatedly(benchmark, pretty, lookups: false)
    }
    Benchmark("scan vibration-recorded minified 515 B") { benchmark in
        scanRepeatedly(benchmark, minified, lookups: false)
    }
    Benchmark("scan + 4 member lookups, pretty 601 B") { benchmark in
        scanRepeatedly(benchmark, pretty, lookups: true)
    }
}
