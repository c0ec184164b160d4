import HeraldCore

/// A text with placeholders, rendered once per subscriber or per event without parsing
/// it again: `{i}` the subscriber's index, `{n}` the event's number, `{sentAt}` the
/// event's send time (monotonic nanoseconds, the clock latency is measured against).
///
/// Templates are how `herald bench` speaks to other gateways: a subscriber URL
/// `ws://127.0.0.1:8081/sub/{i}`, a publish URL `http://127.0.0.1:8081/pub/{i}`, an event
/// body `{"g":{i},"sentAt":{sentAt}}`.
public struct LoadTemplate: Sendable, Equatable, CustomStringConvertible {
    public enum Placeholder: String, Sendable, Equatable {
        case subscriber = "i"
        case number = "n"
        case sentAt
    }

    enum Part: Sendable, Equatable {
        case literal([UInt8])
        case placeholder(Placeholder)
    }

    let parts: [Part]
    public let description: String

    /// Parses `text`; braces that do not spell a placeholder stay literal (JSON is full of them).
    public init(_ text: String) {
        description = text
        var parts: [Part] = []
        var literal: [UInt8] = []
        let bytes = Array(text.utf8)
        var i = 0
        scan: while i < bytes.count {
            if bytes[i] == UInt8(ascii: "{") {
                for placeholder in [Placeholder.subscriber, .number, .sentAt] {
                    let name = Array("{\(placeholder.rawValue)}".utf8)
                    if bytes[i...].starts(with: name) {
                        if !literal.isEmpty { parts.append(.literal(literal)) }
                        literal = []
                        parts.append(.placeholder(placeholder))
                        i += name.count
                        continue scan
                    }
                }
            }
            literal.append(bytes[i])
            i += 1
        }
        if !literal.isEmpty { parts.append(.literal(literal)) }
        self.parts = parts
    }

    /// True when the template says `placeholder` somewhere.
    public func mentions(_ placeholder: Placeholder) -> Bool { parts.contains(.placeholder(placeholder)) }

    /// Appends the text for subscriber `i`, event `n` sent at `sentAt`.
    public func render(i: Int = 0, n: Int = 0, sentAt: UInt64 = 0, into out: inout [UInt8]) {
        for part in parts {
            switch part {
            case .literal(let bytes): out.append(contentsOf: bytes)
            case .placeholder(.subscriber): JSONWriter.writeInteger(i, into: &out)
            case .placeholder(.number): JSONWriter.writeInteger(n, into: &out)
            case .placeholder(.sentAt): JSONWriter.writeInteger(sentAt, into: &out)
            }
        }
    }

    /// The text for subscriber `i`.
    public func string(i: Int) -> String {
        var out: [UInt8] = []
        render(i: i, into: &out)
        return String(decoding: out, as: UTF8.self)
    }
}
