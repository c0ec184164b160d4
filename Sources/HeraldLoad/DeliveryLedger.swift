/// One subscriber's deliveries across its reconnects, checked against what Herald
/// promises a client that resumes: no reordering, no repeat, nothing missing.
///
/// Order is judged by seq (the gateway's order: each next event of a connection, and of
/// the connection after a resume, has a higher seq), completeness by the publisher's
/// event number, because several pipelined publishing connections make the two orders
/// differ. A bit per event number of the run.
struct DeliveryLedger {
    /// The highest seq received: where a resume starts from.
    private(set) var lastSeq: UInt64?
    /// Distinct event numbers received.
    private(set) var distinct = 0
    /// Events whose number had arrived before.
    private(set) var duplicates = 0
    /// Events of a new number whose seq was not above the previous one.
    private(set) var outOfOrder = 0
    /// Events without a seq or a number, or with a number the run never published.
    private(set) var unreadable = 0
    private var seen: [UInt64]
    private let events: Int

    /// A ledger for event numbers 0..<`events`.
    init(events: Int) {
        self.events = events
        seen = [UInt64](repeating: 0, count: (events + 63) / 64)
    }

    /// Records one delivery.
    ///
    /// - Complexity: O(1).
    mutating func record(seq: UInt64?, number: Int?) {
        guard let seq, let number, number >= 0, number < events else {
            unreadable += 1
            if let seq { lastSeq = max(lastSeq ?? 0, seq) }
            return
        }
        let word = number >> 6
        let bit = UInt64(1) << UInt64(number & 63)
        if seen[word] & bit != 0 {
            duplicates += 1
        } else {
            seen[word] |= bit
            distinct += 1
            if let lastSeq, seq <= lastSeq { outOfOrder += 1 }
        }
        lastSeq = max(lastSeq ?? 0, seq)
    }

    /// Whether every one of `accepted` events arrived, each once, in order.
    func isComplete(accepted: Int) -> Bool { distinct == accepted && isClean }

    /// No duplicate, nothing out of order, nothing unreadable.
    var isClean: Bool { duplicates == 0 && outOfOrder == 0 && unreadable == 0 }
}
