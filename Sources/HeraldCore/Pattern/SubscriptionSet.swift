/// A set of one connection's subscription slots (0..<128), as a bit mask.
///
/// A queued event must remember which of the connection's subscriptions it matched (they
/// are listed in the WebSocket `subs` field) without allocating per event per client, so
/// the set is two machine words.
public struct SubscriptionSet: Sendable, Hashable {
    /// The number of slots a set can hold (the hard cap on subscriptions per connection).
    public static let capacity = 128

    private var low: UInt64 = 0
    private var high: UInt64 = 0

    public init() {}

    public init(slot: Int) { insert(slot) }

    public var isEmpty: Bool { low == 0 && high == 0 }

    public mutating func insert(_ slot: Int) {
        precondition(slot >= 0 && slot < Self.capacity, "subscription slot out of range")
        if slot < 64 { low |= 1 << UInt64(slot) } else { high |= 1 << UInt64(slot - 64) }
    }

    public mutating func remove(_ slot: Int) {
        if slot < 64 { low &= ~(1 << UInt64(slot)) } else { high &= ~(1 << UInt64(slot - 64)) }
    }

    public func contains(_ slot: Int) -> Bool {
        slot < 64 ? low & (1 << UInt64(slot)) != 0 : high & (1 << UInt64(slot - 64)) != 0
    }

    public mutating func formUnion(_ other: SubscriptionSet) {
        low |= other.low
        high |= other.high
    }

    /// Calls `body` with each slot in ascending order.
    public func forEach(_ body: (Int) -> Void) {
        var word = low
        while word != 0 {
            body(word.trailingZeroBitCount)
            word &= word - 1
        }
        word = high
        while word != 0 {
            body(64 + word.trailingZeroBitCount)
            word &= word - 1
        }
    }
}
