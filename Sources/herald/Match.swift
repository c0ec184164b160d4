import ArgumentParser
import Foundation
import HeraldCore

/// `herald match`: test event patterns against events, offline.
///
/// One pattern against one event answers with the exit status (like EventBridge's
/// TestEventPattern); files of patterns and events are loaded into one
/// `SubscriptionIndex`, so `--stats` measures the same matcher the gateway runs and can be
/// compared with other engines on the same files.
struct MatchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "match",
        abstract: "Match events against event patterns (exit 0: match, 1: no match, 2: invalid input).",
        discussion: """
            Patterns and events are JSON text, or @FILE to read one from a file. \
            --events and --patterns read JSON Lines files (one JSON value per line; blank lines \
            are skipped but counted, so numbers are file line numbers).

              --pattern P --event E      exit status only
              --pattern P --events F     prints the line numbers of the matching events
              --patterns F --event E     prints the line numbers of the matching patterns
              --patterns F --events G    prints "event-line: pattern-line …" for every event
              --stats (with files)       prints instead one JSON object: {"patterns":N,"events":M, \
            "matches":K,"load_s":…,"events_per_s":…,"rss_mb":…}; matches counts (event, pattern) \
            pairs, load_s is the time to compile and index the patterns, events_per_s is parsing \
            plus matching after the load (best of several passes), rss_mb the resident memory.

            Exit status: 0 when something matched, 1 when nothing did, 2 with a message on \
            standard error when a pattern or an event is invalid (or a file cannot be read).
            """
    )

    @Option(help: "One pattern: JSON text or @file.")
    var pattern: String?

    @Option(help: "A JSON Lines file of patterns, one per line.")
    var patterns: String?

    @Option(help: "One event: JSON text or @file.")
    var event: String?

    @Option(help: "A JSON Lines file of events, one per line.")
    var events: String?

    @Flag(help: "Print load and matching statistics as one JSON object instead of the matches.")
    var stats = false

    @Option(help: "Passes over the events for --stats (the best one is reported).")
    var passes: Int = 5

    func validate() throws {
        guard (pattern == nil) != (patterns == nil) else { throw ValidationError("give exactly one of --pattern and --patterns") }
        guard (event == nil) != (events == nil) else { throw ValidationError("give exactly one of --event and --events") }
        guard !stats || events != nil else { throw ValidationError("--stats needs --events") }
        guard passes > 0 else { throw ValidationError("--passes must be positive") }
    }

    func run() throws {
        // Patterns: (line number, compiled).
        let loadStart = ContinuousClock.now
        var patternList: [(line: Int, pattern: Pattern)] = []
        if let pattern {
            patternList = [(1, try compile(try Self.text(pattern), where: "the pattern"))]
        } else if let patterns {
            for (line, text) in try Self.lines(patterns) {
                patternList.append((line, try compile(text, where: "\(patterns):\(line)")))
            }
        }
        var index = SubscriptionIndex()
        for (i, p) in patternList.enumerated() { index.add(owner: UInt64(i), slot: 0, patterns: [p.pattern]) }
        let patternLines = patternList.map(\.line)
        patternList = []  // the index keeps what it needs
        let loadSeconds = Self.seconds(ContinuousClock.now - loadStart)

        // Events: (line number, bytes).
        var eventList: [(line: Int, bytes: [UInt8])] = []
        if let event {
            eventList = [(1, try Self.text(event))]
        } else if let events {
            eventList = try Self.lines(events)
        }
        let source = events ?? "the event"

        if stats {
            try printStats(index: index, patternCount: patternLines.count, events: eventList, source: source, loadSeconds: loadSeconds)
            return
        }

        var tape = JSONTape()
        var results: [SubscriptionIndex.Match] = []
        var anyMatch = false
        var output = ""
        for (line, bytes) in eventList {
            try scan(bytes, into: &tape, where: events == nil ? source : "\(source):\(line)")
            results.removeAll(keepingCapacity: true)
            bytes.withUnsafeBytes { index.match(EventView(tape: tape, node: 0, bytes: $0), into: &results) }
            let matched = results.map { patternLines[Int($0.owner)] }.sorted()
            anyMatch = anyMatch || !matched.isEmpty
            switch (pattern != nil, events != nil) {
            case (true, false): break  // exit status only
            case (true, true): if !matched.isEmpty { output += "\(line)\n" }
            case (false, false): output += matched.map(String.init).joined(separator: " ") + "\n"
            case (false, true): output += "\(line):" + matched.map { " \($0)" }.joined() + "\n"
            }
            if output.utf8.count > 1 << 16 {
                FileHandle.standardOutput.write(Data(output.utf8))
                output = ""
            }
        }
        FileHandle.standardOutput.write(Data(output.utf8))
        if !anyMatch { throw ExitCode(1) }
    }

    private func printStats(
        index: SubscriptionIndex, patternCount: Int, events: [(line: Int, bytes: [UInt8])], source: String, loadSeconds: Double
    ) throws {
        var tape = JSONTape()
        var results: [SubscriptionIndex.Match] = []
        var matches = 0
        var best = Double.infinity
        for pass in 0..<passes {
            var passMatches = 0
            let start = ContinuousClock.now
            for (line, bytes) in events {
                let failure: HeraldError? = bytes.withUnsafeBytes { raw in
                    tape.removeAll()
                    do throws(HeraldError) {
                        try JSONScanner.scan(raw, into: &tape)
                    } catch {
                        return error
                    }
                    results.removeAll(keepingCapacity: true)
                    index.match(EventView(tape: tape, node: 0, bytes: raw), into: &results)
                    return nil
                }
                if let failure { Self.fail("\(source):\(line): invalid event: \(failure.message)") }
                passMatches += results.count
            }
            best = min(best, Self.seconds(ContinuousClock.now - start))
            if pass == 0 { matches = passMatches }
        }
        let eventsPerSecond = events.isEmpty ? 0 : Double(events.count) / max(best, 1e-9)
        let statsLine =
            #"{"patterns":\#(patternCount),"events":\#(events.count),"matches":\#(matches),"#
            + #""load_s":\#(Self.format(loadSeconds, 3)),"events_per_s":\#(Int(eventsPerSecond.rounded())),"#
            + #""rss_mb":\#(Self.format(Self.residentMegabytes(), 1))}"#
        print(statsLine)
        if matches == 0 { throw ExitCode(1) }
    }

    // MARK: - Input

    private func compile(_ text: [UInt8], where place: String) throws -> Pattern {
        do throws(HeraldError) {
            return try Pattern(parsing: text)
        } catch {
            Self.fail("\(place): invalid pattern: \(error.message)" + (error.path.map { " at \($0)" } ?? ""))
        }
    }

    private func scan(_ bytes: [UInt8], into tape: inout JSONTape, where place: String) throws {
        tape.removeAll()
        let failure: HeraldError? = bytes.withUnsafeBytes { raw in
            do throws(HeraldError) {
                try JSONScanner.scan(raw, into: &tape)
                return nil
            } catch {
                return error
            }
        }
        if let failure {
            Self.fail("\(place): invalid event: \(failure.message)" + (failure.offset.map { " (byte \($0))" } ?? ""))
        }
        if tape.nodes.first?.kind != .object { Self.fail("\(place): invalid event: an event must be a JSON object") }
    }

    /// JSON text given inline, or read from the file after `@`.
    static func text(_ argument: String) throws -> [UInt8] {
        guard argument.hasPrefix("@") else { return Array(argument.utf8) }
        return try read(String(argument.dropFirst()))
    }

    static func read(_ path: String) throws -> [UInt8] {
        guard let data = FileManager.default.contents(atPath: path) else { fail("cannot read \(path)") }
        return Array(data)
    }

    /// The non-blank lines of a JSON Lines file with their 1-based line numbers.
    static func lines(_ path: String) throws -> [(line: Int, bytes: [UInt8])] {
        let data = try read(path)
        var out: [(Int, [UInt8])] = []
        var line = 1
        var start = 0
        func take(_ end: Int) {
            var e = end
            if e > start && data[e - 1] == UInt8(ascii: "\r") { e -= 1 }
            let slice = data[start..<e]
            if slice.contains(where: { $0 != 0x20 && $0 != 0x09 }) { out.append((line, Array(slice))) }
        }
        for (i, byte) in data.enumerated() where byte == UInt8(ascii: "\n") {
            take(i)
            start = i + 1
            line += 1
        }
        if start < data.count { take(data.count) }
        return out
    }

    static func fail(_ message: String) -> Never {
        FileHandle.standardError.write(Data("herald match: \(message)\n".utf8))
        Foundation.exit(2)
    }

    static func seconds(_ d: Duration) -> Double {
        Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
    }

    static func format(_ value: Double, _ decimals: Int) -> String {
        String(format: "%.\(decimals)f", value)
    }

    /// Resident set size from /proc/self/status (Linux), in MiB; 0 where unavailable.
    static func residentMegabytes() -> Double {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
            let kb = Double(line.split(separator: " ").dropFirst().first ?? "")
        else { return 0 }
        return kb / 1024
    }
}
