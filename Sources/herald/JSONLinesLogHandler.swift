import Foundation
import HeraldCore
import Logging

/// A swift-log handler that writes one JSON object per line to standard error, for log
/// pipelines (`log.format: "json"`).
struct JSONLinesLogHandler: LogHandler {
    let label: String
    var logLevel: Logger.Level
    var metadata: Logger.Metadata = [:]

    init(label: String, level: Logger.Level) {
        self.label = label
        self.logLevel = level
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var members: [JSONValue.Member] = [
            .init("time", .string(ISO8601DateFormatter().string(from: Date()))),
            .init("level", .string(event.level.rawValue)),
            .init("label", .string(label)),
            .init("message", .string(event.message.description)),
        ]
        for (key, value) in metadata.merging(event.metadata ?? [:], uniquingKeysWith: { $1 }).sorted(by: { $0.key < $1.key }) {
            members.append(.init(key, .string(value.description)))
        }
        var line: [UInt8] = []
        JSONWriter.write(.object(members), into: &line)
        line.append(0x0A)
        FileHandle.standardError.write(Data(line))
    }
}
