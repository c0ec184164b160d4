/// An event pattern: the filter a subscriber gives and the rule a route names.
///
/// Patterns use the EventBridge event-pattern language (DESIGN §6): a JSON object whose
/// leaves are arrays of accepted values, nested objects to reach into the event. This
/// version implements exact values (strings, numbers compared by value, booleans, null);
/// the content-filter operators (`prefix`, `numeric`, `$or`, …) are refused with a clear
/// `invalid_pattern` error until the routing automaton lands behind this same API.
///
/// A `Pattern` is immutable and `Sendable`; parsing validates it completely, so a pattern
/// that exists can always be matched.
public struct Pattern: Sendable, Equatable, CustomStringConvertible {
    /// The pattern as the client wrote it.
    public let value: JSONValue
    let root: [Field]

    /// One constrained field of an object level.
    struct Field: Sendable, Equatable {
        var key: String
        var rule: Rule
    }

    /// What a field must hold.
    indirect enum Rule: Sendable, Equatable {
        /// A nested object level.
        case object([Field])
        /// One of these exact values.
        case anyOf([ExactValue])
    }

    /// An exact value to compare with an event's scalar.
    enum ExactValue: Sendable, Equatable {
        case string([UInt8])
        case number(Double)
        case bool(Bool)
        case null
    }

    /// Validates and compiles a pattern.
    /// - Throws: `invalid_pattern` naming the JSON path and the reason.
    public init(_ value: JSONValue, limits: PatternLimits = PatternLimits()) throws(HeraldError) {
        guard case .object(let members) = value else {
            throw HeraldError(.invalidPattern, "a pattern must be a JSON object, not \(value.kindName)", path: "$")
        }
        var fieldCount = 0
        root = try Pattern.compile(members, path: "$", depth: 1, limits: limits, fieldCount: &fieldCount)
        self.value = value
    }

    /// Parses and compiles a pattern from JSON text.
    public init(parsing text: [UInt8], limits: PatternLimits = PatternLimits()) throws(HeraldError) {
        guard text.count <= limits.maxBytes else {
            throw HeraldError(.invalidPattern, "the pattern has \(text.count) bytes; the limit is \(limits.maxBytes)")
        }
        let value: JSONValue
        do throws(HeraldError) {
            value = try JSONValue(parsing: text, limits: JSONLimits(maxDepth: limits.maxDepth + 1))
        } catch {
            throw HeraldError(.invalidPattern, "the pattern is not valid JSON: \(error.message)", offset: error.offset)
        }
        try self.init(value, limits: limits)
    }

    public var description: String { value.serialized }

    private static func compile(_ members: [JSONValue.Member], path: String, depth: Int, limits: PatternLimits, fieldCount: inout Int) throws(HeraldError) -> [Field] {
        guard depth <= limits.maxDepth else {
            throw HeraldError(.invalidPattern, "the pattern nests deeper than \(limits.maxDepth) levels", path: path)
        }
        guard !members.isEmpty || depth == 1 else {
            throw HeraldError(.invalidPattern, "an object in a pattern must not be empty", path: path)
        }
        var fields: [Field] = []
        var seen = Set<String>()
        for member in members {
            let fieldPath = path + "." + member.key
            guard seen.insert(member.key).inserted else {
                throw HeraldError(.invalidPattern, "duplicate key \"\(member.key)\"", path: fieldPath)
            }
            if member.key == "$or" {
                throw HeraldError(.invalidPattern, "\"$or\" is not supported yet (this version matches exact values)", path: fieldPath)
            }
            fieldCount += 1
            guard fieldCount <= limits.maxFields else {
                throw HeraldError(.invalidPattern, "the pattern has more than \(limits.maxFields) fields", path: fieldPath)
            }
            switch member.value {
            case .object(let nested):
                fields.append(Field(key: member.key, rule: .object(try compile(nested, path: fieldPath, depth: depth + 1, limits: limits, fieldCount: &fieldCount))))
            case .array(let elements):
                guard !elements.isEmpty else {
                    throw HeraldError(.invalidPattern, "the list of values must not be empty", path: fieldPath)
                }
                var values: [ExactValue] = []
                for (i, element) in elements.enumerated() {
                    switch element {
                    case .string(let s): values.append(.string(Array(s.utf8)))
                    case .number(let d): values.append(.number(d))
                    case .bool(let b): values.append(.bool(b))
                    case .null: values.append(.null)
                    case .object(let op):
                        let name = op.first?.key ?? ""
                        throw HeraldError(.invalidPattern, "operator \"\(name)\" is not supported yet (this version matches exact values)", path: "\(fieldPath)[\(i)]")
                    case .array:
                        throw HeraldError(.invalidPattern, "a value in the list must not be an array", path: "\(fieldPath)[\(i)]")
                    }
                }
                fields.append(Field(key: member.key, rule: .anyOf(values)))
            default:
                throw HeraldError(.invalidPattern, "must be an array of values or an object, not \(member.value.kindName)", path: fieldPath)
            }
        }
        return fields
    }
}

/// Limits on the size and shape of a pattern (DESIGN §6).
public struct PatternLimits: Sendable, Equatable {
    public var maxBytes: Int
    public var maxFields: Int
    public var maxDepth: Int
    public init(maxBytes: Int = 4096, maxFields: Int = 64, maxDepth: Int = 16) {
        self.maxBytes = maxBytes
        self.maxFields = maxFields
        self.maxDepth = maxDepth
    }
}
