public import HeraldCore

/// What the nodes of a cluster keep in Redis, and the one script that appends to it.
///
/// Why a Lua script rather than `XADD … *`: positions must be dense integers (a client's
/// `since` counts them, a gap notice says how many were missed), and Redis' own stream ids
/// (milliseconds-counter) are not. The script runs atomically in Redis, so for each batch
/// it checks the dedup keys, takes the next positions from the counter, appends each event
/// with the id `<seq>-0` (the stream's order is the positions' order) and records the
/// dedup keys — one round trip per batch, with no window in which two nodes could take the
/// same position or both accept one `(source, id)`.
///
/// Keys (a `prefix` per gateway): `<prefix>` the stream, `<prefix>:seq` the last position,
/// `<prefix>:epoch` the epoch positions count in, `<prefix>:dedup:<len(source)>:<source><id>`.
/// A stream entry has three fields (fewer fields, less work for Redis per event): `e` the
/// epoch, `h` the header `<accepted unix ns> <len(id)> <len(source)> <id><source><type>`
/// and `j` the event's compact JSON.
public enum StreamScript {
    /// KEYS: stream, counter, epoch. ARGV: 1 max length, 2 dedup seconds, 3 a fresh epoch
    /// (used if the stream needs one), 4 the epoch and 5 the last position this node read;
    /// then 3 per event: its dedup key (empty: not deduplicated), header, JSON. Returns
    /// `{epoch, {seq or -original seq, …}}`.
    ///
    /// A new epoch is started when there is none (a new or emptied Redis) or when the
    /// counter is behind what this node already read in the same epoch (Redis came back
    /// from an older snapshot): positions are never handed out twice under one epoch.
    /// Positions continue after the stream's newest entry whatever the counter says, so
    /// an `XADD` never fails half-way through a batch on an id that is not increasing.
    /// A dedup key is claimed with one `SET … NX GET` (Redis 7): the original position
    /// comes back if another event holds it.
    static let append = """
        local epoch = redis.call('GET', KEYS[3])
        local last = tonumber(redis.call('GET', KEYS[2]) or '0')
        if (not epoch) or (epoch == ARGV[4] and last < tonumber(ARGV[5])) then
          epoch = ARGV[3]
          redis.call('SET', KEYS[3], epoch)
        end
        local top = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)[1]
        if top then last = math.max(last, tonumber(string.match(top[1], '^(%d+)'))) end
        local out = {}
        for i = 6, #ARGV, 3 do
          local original = false
          if ARGV[i] ~= '' then
            original = redis.call('SET', ARGV[i], last + 1, 'NX', 'GET', 'EX', ARGV[2])
          end
          if original then
            out[#out + 1] = -tonumber(original)
          else
            last = last + 1
            redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], last .. '-0', 'e', epoch, 'h', ARGV[i + 1], 'j', ARGV[i + 2])
            out[#out + 1] = last
          end
        end
        redis.call('SET', KEYS[2], last)
        return {epoch, out}
        """

    /// The `EVALSHA` arguments for one submission.
    static func arguments(
        sha: String, keys: Keys, maxLength: Int, dedupSeconds: Int, freshEpoch: StreamEpoch, seen: (StreamEpoch, UInt64),
        acceptedAtUnixNanos: UInt64, events: [ProposedEvent]
    ) -> [[UInt8]] {
        var arguments: [[UInt8]] = [
            Array("EVALSHA".utf8), Array(sha.utf8), Array("3".utf8), keys.stream, keys.counter, keys.epoch,
            Array(String(maxLength).utf8), Array(String(dedupSeconds).utf8), Array(freshEpoch.text.utf8),
            Array(seen.0.text.utf8), Array(String(seen.1).utf8),
        ]
        arguments.reserveCapacity(arguments.count + events.count * 3)
        let accepted = String(acceptedAtUnixNanos)
        for event in events {
            let deduplicated = event.hasExplicitID && dedupSeconds > 0
            arguments.append(deduplicated ? keys.dedupKey(source: event.source, id: event.id) : [])
            var header = Array("\(accepted) \(event.id.utf8.count) \(event.source.utf8.count) ".utf8)
            header.append(contentsOf: event.id.utf8)
            header.append(contentsOf: event.source.utf8)
            header.append(contentsOf: event.type.utf8)
            arguments.append(header)
            arguments.append(event.json)
        }
        return arguments
    }

    /// The script's reply as acceptances, in the events' order, and the stream's epoch.
    static func acceptances(_ reply: RedisConnection.Reply, events: [ProposedEvent]) -> (StreamEpoch, [WireFormat.Acceptance])? {
        guard case .array(let parts) = reply, parts.count == 2, case .string(let epochText) = parts[0],
            let epoch = StreamEpoch(String(decoding: epochText, as: UTF8.self)), case .array(let positions) = parts[1],
            positions.count == events.count
        else { return nil }
        var accepted: [WireFormat.Acceptance] = []
        for (event, position) in zip(events, positions) {
            guard case .integer(let value) = position, value != 0 else { return nil }
            accepted.append(.init(id: event.id, seq: value.magnitude, duplicate: value < 0))
        }
        return (epoch, accepted)
    }

    /// The key names of one gateway's prefix.
    struct Keys {
        let stream: [UInt8]
        let counter: [UInt8]
        let epoch: [UInt8]
        let dedupPrefix: [UInt8]

        init(prefix: String) {
            stream = Array(prefix.utf8)
            counter = Array("\(prefix):seq".utf8)
            epoch = Array("\(prefix):epoch".utf8)
            dedupPrefix = Array("\(prefix):dedup:".utf8)
        }

        /// `<prefix>:dedup:<len(source)>:<source><id>`: the length keeps ("ab", "c") and
        /// ("a", "bc") apart.
        func dedupKey(source: String, id: String) -> [UInt8] {
            var key = dedupPrefix
            key.append(contentsOf: String(source.utf8.count).utf8)
            key.append(UInt8(ascii: ":"))
            key.append(contentsOf: source.utf8)
            key.append(contentsOf: id.utf8)
            return key
        }
    }

    /// One stream entry (`[id, [field, value, …]]`) as a positioned event and its epoch;
    /// `loopTime` turns its Unix acceptance time into the loop's monotonic clock. Nil for
    /// an entry Herald did not write.
    static func event(_ entry: RedisConnection.Reply, loopTime: (UInt64) -> UInt64) -> (StreamEpoch, Event)? {
        guard case .array(let parts) = entry, parts.count == 2, case .string(let entryID) = parts[0],
            case .array(let fields) = parts[1], fields.count == 6,
            fields[0] == .string([UInt8(ascii: "e")]), case .string(let epochBytes) = fields[1],
            fields[2] == .string([UInt8(ascii: "h")]), case .string(let header) = fields[3],
            fields[4] == .string([UInt8(ascii: "j")]), case .string(let json) = fields[5],
            let dash = entryID.firstIndex(of: UInt8(ascii: "-")), let seq = UInt64(decimal: entryID[..<dash]),
            let epoch = StreamEpoch(String(decoding: epochBytes, as: UTF8.self))
        else { return nil }
        // `<accepted> <len(id)> <len(source)> <id><source><type>`
        var numbers: [UInt64] = []
        var cursor = header.startIndex
        while numbers.count < 3, let space = header[cursor...].firstIndex(of: UInt8(ascii: " ")) {
            guard let number = UInt64(decimal: header[cursor..<space]) else { return nil }
            numbers.append(number)
            cursor = space + 1
        }
        guard numbers.count == 3, numbers[1] + numbers[2] <= UInt64(header.endIndex - cursor) else { return nil }
        let idEnd = cursor + Int(numbers[1])
        let sourceEnd = idEnd + Int(numbers[2])
        let event = json.withUnsafeBytes {
            Event(
                epoch: epoch, seq: seq, id: String(decoding: header[cursor..<idEnd], as: UTF8.self),
                source: String(decoding: header[idEnd..<sourceEnd], as: UTF8.self),
                type: String(decoding: header[sourceEnd...], as: UTF8.self), acceptedAt: loopTime(numbers[0]), json: $0)
        }
        return (epoch, event)
    }
}

extension UInt64 {
    /// Parses ASCII decimal digits (nil for anything else, or an overflow).
    init?(decimal digits: ArraySlice<UInt8>) {
        guard !digits.isEmpty, digits.count <= 20 else { return nil }
        var value: UInt64 = 0
        for digit in digits {
            guard (0x30...0x39).contains(digit) else { return nil }
            let (times, overflow) = value.multipliedReportingOverflow(by: 10)
            let (sum, carry) = times.addingReportingOverflow(UInt64(digit - 0x30))
            guard !overflow, !carry else { return nil }
            value = sum
        }
        self = value
    }
}
