/// The identity of one sequence of positions (DESIGN §4, "Positions").
///
/// Why it exists: `seq` alone does not say which stream it counts in. After a restart
/// without storage the sequence starts again at 1, and a client resuming with an old
/// `seq` would be told "nothing missed" while it silently skipped, or dropped as
/// duplicates, everything new. A position is therefore (epoch, seq): the epoch is a
/// random id made when an event log is created (kept with the log when storage is on),
/// and a client resuming from another epoch gets a `reset` gap instead of a silent skip.
///
/// Text form: 1 to 32 characters `[0-9a-z]`; Herald makes 16 hex digits.
public struct StreamEpoch: Hashable, Sendable, CustomStringConvertible {
    public let text: String

    /// Accepts the text form; nil for anything else.
    public init?(_ text: some StringProtocol) {
        guard (1...32).contains(text.utf8.count),
            text.utf8.allSatisfy({ (0x30...0x39).contains($0) || (0x61...0x7A).contains($0) })
        else { return nil }
        self.text = String(text)
    }

    /// A fresh epoch: 64 random bits as 16 lowercase hex digits.
    public static func random() -> StreamEpoch {
        var generator = SystemRandomNumberGenerator()
        return random(using: &generator)
    }

    public static func random(using generator: inout some RandomNumberGenerator) -> StreamEpoch {
        let bits = generator.next() as UInt64
        let hex = String(bits, radix: 16)
        return StreamEpoch(String(repeating: "0", count: 16 - hex.count) + hex)!
    }

    public var description: String { text }
}

/// A client's resume position: where it stopped, and in which epoch (nil: the current one).
public struct ResumePosition: Equatable, Sendable {
    public var epoch: StreamEpoch?
    public var seq: UInt64

    public init(epoch: StreamEpoch?, seq: UInt64) {
        self.epoch = epoch
        self.seq = seq
    }

    /// Parses an SSE `Last-Event-ID`: `<epoch>:<seq>`, or a bare `<seq>` meaning the
    /// current epoch (what clients of earlier versions send).
    public init(lastEventID text: String) throws(HeraldError) {
        let trimmed = text.trimmingSpaces()
        let parts = trimmed.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
        let invalid = HeraldError(
            .invalidMessage, "Last-Event-ID must be \"<epoch>:<seq>\" or a sequence number, got \"\(text.prefix(64))\"")
        if parts.count == 1 {
            guard let seq = UInt64(parts[0]) else { throw invalid }
            self.init(epoch: nil, seq: seq)
        } else {
            guard let epoch = StreamEpoch(parts[0]), let seq = UInt64(parts[1]) else { throw invalid }
            self.init(epoch: epoch, seq: seq)
        }
    }
}
