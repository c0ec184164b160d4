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
/// `<prefix>:presence:<group>` a hash of the group's members (`<node>.<client>` →
/// `<transport> <joined seq> <len(info)> <info><join event JSON>`), `<prefix>:node:<node>`
/// a node's heartbeat (it expires when the node is gone: its members are then not listed).
/// A stream entry has three fields (fewer fields, less work for Redis per event): `e` the
/// epoch, `h` the header `<accepted unix ns> <len(id)> <len(source)> <id><source><type>`
/// and `j` the event's compact JSON.
public enum StreamScript {
    /// KEYS: stream, counter, epoch. ARGV: 1 max length, 2 dedup seconds, 3 a fresh epoch
    /// (used if the stream needs one), 4 the epoch and 5 the last position this node read,
    /// 6 a presence change (`join`, `leave` or empty), 7 its hash, 8 the member, 9 its
    /// transport, 10 its info, 11 the epochs the node left behind (space-separated); then 3
    /// per event: its dedup key (empty: not deduplicated), header, JSON. Returns
    /// `{epoch, {seq or -original seq, …}}`.
    ///
    /// A new epoch is started when there is none (a new or emptied Redis) or when the
    /// counter is behind what this node already read in the same epoch (Redis came back
    /// from an older snapshot), or the epoch is one the node left behind (the same old
    /// snapshot loaded again): positions are never handed out twice under one epoch.
    /// Positions continue after the stream's newest entry whatever the counter says, so
    /// an `XADD` never fails half-way through a batch on an id that is not increasing.
    /// A dedup key is claimed with one `SET … NX GET` (Redis 7): the original position
    /// comes back if another event holds it.
    static let append = """
        local epoch = redis.call('GET', KEYS[3])
        local last = tonumber(redis.call('GET', KEYS[2]) or '0')
        local top = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)[1]
        if top then last = math.max(last, tonumber(string.match(top[1], '^(%d+)'))) end
        if (not epoch) or (epoch == ARGV[4] and last < tonumber(ARGV[5])) or string.find(' ' .. ARGV[11] .. ' ', ' ' .. epoch .. ' ', 1, true) then
          epoch = ARGV[3]
          redis.call('SET', KEYS[3], epoch)
        end
        local out = {}
        for i = 12, #ARGV, 3 do
          local original = false
          if ARGV[i] ~= '' then
            original = redis.call('SET', ARGV[i], last + 1, 'NX', 'GET', 'EX', ARGV[2])
          end
          if original then
            out[#out + 1] = -tonumber(original)
          else
            last = last + 1
            redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], string.format('%d-0', last), 'e', epoch, 'h', ARGV[i + 1], 'j', ARGV[i + 2])
            out[#out + 1] = last
            if ARGV[6] == 'join' then
              redis.call('HSET', ARGV[7], ARGV[8], ARGV[9] .. ' ' .. last .. ' ' .. #ARGV[10] .. ' ' .. ARGV[10] .. ARGV[i + 2])
            end
          end
        end
        if ARGV[6] == 'leave' then redis.call('HDEL', ARGV[7], ARGV[8]) end
        redis.call('SET', KEYS[2], last)
        return {epoch, out}
        """

    /// KEYS: stream, counter, epoch. ARGV: 1 the epoch and 2 the last position a node read,
    /// 3 a fresh epoch, 4 the epochs the node left behind. Starts a new epoch when Redis is
    /// behind what the node read in the same epoch (it came back from an older snapshot) or
    /// holds an epoch the node left (that snapshot again); returns the epoch.
    static let rotate = """
        local epoch = redis.call('GET', KEYS[3])
        local last = tonumber(redis.call('GET', KEYS[2]) or '0')
        local top = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)[1]
        if top then last = math.max(last, tonumber(string.match(top[1], '^(%d+)'))) end
        if (epoch == ARGV[1] and last < tonumber(ARGV[2])) or (epoch and string.find(' ' .. ARGV[4] .. ' ', ' ' .. epoch .. ' ', 1, true)) then
          epoch = ARGV[3]
          redis.call('SET', KEYS[3], epoch)
        end
        return epoch
        """

    /// The `EVAL` arguments of `rotate` for a reader that read `seen`.
    static func rotationArguments(keys: Keys, seen: (StreamEpoch, UInt64), retired: [StreamEpoch]) -> [[UInt8]] {
        [
            Array("EVAL".utf8), Array(rotate.utf8), Array("3".utf8), keys.stream, keys.counter, keys.epoch, Array(seen.0.text.utf8),
            Array(String(seen.1).utf8), Array(StreamEpoch.random().text.utf8), Array(retired.map(\.text).joined(separator: " ").utf8),
        ]
    }

    /// The `EVALSHA` arguments for one submission.
    static func arguments(
        sha: String, keys: Keys, maxLength: Int, dedupSeconds: Int, freshEpoch: StreamEpoch, seen: (StreamEpoch, UInt64),
        retired: [StreamEpoch], acceptedAtUnixNanos: UInt64, events: [ProposedEvent], presence: PresenceChange?
    ) -> [[UInt8]] {
        var arguments: [[UInt8]] = [
            Array("EVALSHA".utf8), Array(sha.utf8), Array("3".utf8), keys.stream, keys.counter, keys.epoch,
            Array(String(maxLength).utf8), Array(String(dedupSeconds).utf8), Array(freshEpoch.text.utf8),
            Array(seen.0.text.utf8), Array(String(seen.1).utf8),
        ]
        switch presence {
        case .join(let group, let member, let transport, let info):
            arguments += [Array("join".utf8), keys.presence(group), Array(member.utf8), Array(transport.utf8), info.bytes]
        case .leave(let group, let member):
            arguments += [Array("leave".utf8), keys.presence(group), Array(member.utf8), [], []]
        case nil:
            arguments += [[], [], [], [], []]
        }
        arguments.append(Array(retired.map(\.text).joined(separator: " ").utf8))
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
        let prefix: String

        init(prefix: String) {
            self.prefix = prefix
            stream = Array(prefix.utf8)
            counter = Array("\(prefix):seq".utf8)
            epoch = Array("\(prefix):epoch".utf8)
            dedupPrefix = Array("\(prefix):dedup:".utf8)
        }

        func presence(_ group: String) -> [UInt8] { Array("\(prefix):presence:\(group)".utf8) }
        func node(_ name: String) -> [UInt8] { Array("\(prefix):node:\(name)".utf8) }

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

    /// An entry's stream id (`<ms>-<n>`), whoever wrote it.
    static func entryID(_ entry: RedisConnection.Reply) -> String? {
        guard case .array(let parts) = entry, case .string(let id)? = parts.first else { return nil }
        return String(decoding: id, as: UTF8.self)
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

extension StreamScript {
    /// A member from its presence hash entry; nil for a malformed one.
    static func member(field: [UInt8], value: [UInt8], epoch: StreamEpoch) -> PresenceRegistry.Member? {
        guard let dot = field.lastIndex(of: UInt8(ascii: ".")), let client = UInt64(decimal: field[(dot + 1)...]) else { return nil }
        var numbers: [ArraySlice<UInt8>] = []
        var cursor = value.startIndex
        while numbers.count < 3, let space = value[cursor...].firstIndex(of: UInt8(ascii: " ")) {
            numbers.append(value[cursor..<space])
            cursor = space + 1
        }
        guard numbers.count == 3, let seq = UInt64(decimal: numbers[1]), let infoLength = Int(exactly: UInt64(decimal: numbers[2]) ?? .max),
            infoLength <= value.endIndex - cursor
        else { return nil }
        let infoEnd = cursor + infoLength
        let info: RawJSON
        do throws(HeraldError) {
            info = try RawJSON(parsing: Array(value[cursor..<infoEnd]))
        } catch {
            return nil
        }
        let joinEvent = Array(value[infoEnd...]).withUnsafeBytes {
            Event(epoch: epoch, seq: seq, id: "", source: "herald", type: "herald.presence", acceptedAt: 0, json: $0)
        }
        return PresenceRegistry.Member(
            client: client, node: String(decoding: field[..<dot], as: UTF8.self), info: info,
            transport: String(decoding: numbers[0], as: UTF8.self), joinEvent: joinEvent)
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
