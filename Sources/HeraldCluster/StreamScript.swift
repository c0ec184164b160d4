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
/// `<prefix>:epoch` the epoch positions count in, `<prefix>:dedup:<len>:<source><id>`.
/// Stream entry fields: `e` epoch, `i` id, `s` source, `t` type, `a` acceptance time (Unix
/// ns), `j` the event's compact JSON.
public enum StreamScript {
    /// KEYS: stream, counter, epoch. ARGV: 1 max length, 2 dedup seconds, 3 dedup key
    /// prefix, 4 a fresh epoch (used if the stream needs one), 5 the epoch and 6 the last
    /// position this node read, 7 acceptance time; then 5 per event: id, source, type,
    /// deduplicated (1/0), JSON. Returns `{epoch, {seq or -original seq, …}}`.
    ///
    /// A new epoch is started when there is none (a new or emptied Redis) or when the
    /// counter is behind what this node already read in the same epoch (Redis came back
    /// from an older snapshot): positions are never handed out twice under one epoch.
    /// Positions continue after the stream's newest entry whatever the counter says, so
    /// an `XADD` never fails half-way through a batch on an id that is not increasing.
    static let append = """
        local epoch = redis.call('GET', KEYS[3])
        local last = tonumber(redis.call('GET', KEYS[2]) or '0')
        if (not epoch) or (epoch == ARGV[5] and last < tonumber(ARGV[6])) then
          epoch = ARGV[4]
          redis.call('SET', KEYS[3], epoch)
        end
        local top = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)[1]
        if top then last = math.max(last, tonumber(string.match(top[1], '^(%d+)'))) end
        local out = {}
        for i = 8, #ARGV, 5 do
          local key = nil
          local original = nil
          if ARGV[i + 3] == '1' then
            key = ARGV[3] .. string.len(ARGV[i + 1]) .. ':' .. ARGV[i + 1] .. ARGV[i]
            original = redis.call('GET', key)
          end
          if original then
            out[#out + 1] = -tonumber(original)
          else
            last = last + 1
            redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], last .. '-0',
              'e', epoch, 'i', ARGV[i], 's', ARGV[i + 1], 't', ARGV[i + 2], 'a', ARGV[7], 'j', ARGV[i + 4])
            if key then redis.call('SET', key, last, 'EX', ARGV[2]) end
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
            Array(String(maxLength).utf8), Array(String(dedupSeconds).utf8), keys.dedupPrefix, Array(freshEpoch.text.utf8),
            Array(seen.0.text.utf8), Array(String(seen.1).utf8), Array(String(acceptedAtUnixNanos).utf8),
        ]
        arguments.reserveCapacity(arguments.count + events.count * 5)
        for event in events {
            arguments.append(Array(event.id.utf8))
            arguments.append(Array(event.source.utf8))
            arguments.append(Array(event.type.utf8))
            arguments.append(event.hasExplicitID && dedupSeconds > 0 ? [0x31] : [0x30])
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
    }

    /// One stream entry (`[id, [field, value, …]]`) as a positioned event and its epoch;
    /// `loopTime` turns its Unix acceptance time into the loop's monotonic clock.
    static func event(_ entry: RedisConnection.Reply, loopTime: (UInt64) -> UInt64) -> (StreamEpoch, Event)? {
        guard case .array(let parts) = entry, parts.count == 2, case .string(let idBytes) = parts[0],
            case .array(let fieldList) = parts[1], fieldList.count % 2 == 0
        else { return nil }
        let idText = String(decoding: idBytes, as: UTF8.self)
        guard let dash = idText.firstIndex(of: "-"), let seq = UInt64(idText[..<dash]) else { return nil }
        var fields: [UInt8: [UInt8]] = [:]
        for index in stride(from: 0, to: fieldList.count, by: 2) {
            guard case .string(let name) = fieldList[index], name.count == 1, case .string(let value) = fieldList[index + 1] else {
                return nil
            }
            fields[name[0]] = value
        }
        guard let epochBytes = fields[UInt8(ascii: "e")], let epoch = StreamEpoch(String(decoding: epochBytes, as: UTF8.self)),
            let id = fields[UInt8(ascii: "i")], let source = fields[UInt8(ascii: "s")], let type = fields[UInt8(ascii: "t")],
            let accepted = fields[UInt8(ascii: "a")].flatMap({ UInt64(String(decoding: $0, as: UTF8.self)) }),
            let json = fields[UInt8(ascii: "j")]
        else { return nil }
        let event = json.withUnsafeBytes {
            Event(
                epoch: epoch, seq: seq, id: String(decoding: id, as: UTF8.self), source: String(decoding: source, as: UTF8.self),
                type: String(decoding: type, as: UTF8.self), acceptedAt: loopTime(accepted), json: $0)
        }
        return (epoch, event)
    }
}
