/// Validates a pattern's JSON and expands it into alternatives of conditions.
///
/// Why it exists: every rule of the language and every limit is checked in one place,
/// with an error that names the JSON path (`$.detail.state[0].numeric`) and the reason.
/// The output is the normal form both matchers use: a list of alternatives (`$or`
/// branches multiplied out), each a list of ``PatternCondition``s.
struct PatternCompiler {
    let limits: PatternLimits
    private var fieldCount = 0
    private var wildcardStars = 0

    init(limits: PatternLimits) { self.limits = limits }

    typealias Alternatives = [[PatternCondition]]

    /// Compiles the members of one pattern object reached by `path`.
    mutating func compileObject(
        _ members: [JSONValue.Member], path: [String], jsonPath: String, depth: Int
    )
        throws(HeraldError) -> Alternatives
    {
        guard depth <= limits.maxDepth else {
            throw HeraldError(.invalidPattern, "the pattern nests deeper than \(limits.maxDepth) levels", path: jsonPath)
        }
        guard !members.isEmpty || (depth == 1 && path.isEmpty && jsonPath == "$") else {
            throw HeraldError(.invalidPattern, "an object in a pattern must not be empty", path: jsonPath)
        }
        var result: Alternatives = [[]]
        var seen = Set<String>()
        for member in members {
            let memberPath = jsonPath + "." + member.key
            guard seen.insert(member.key).inserted else {
                throw HeraldError(.invalidPattern, "duplicate key \"\(member.key)\"", path: memberPath)
            }
            let alternatives: Alternatives
            if member.key == "$or" {
                alternatives = try compileOr(member.value, path: path, jsonPath: memberPath, depth: depth)
            } else {
                fieldCount += 1
                guard fieldCount <= limits.maxFields else {
                    throw HeraldError(.invalidPattern, "the pattern has more than \(limits.maxFields) fields", path: memberPath)
                }
                switch member.value {
                case .object(let nested):
                    alternatives = try compileObject(
                        nested, path: path + [member.key], jsonPath: memberPath, depth: depth + 1)
                case .array(let elements):
                    alternatives = try compileLeaf(elements, path: path + [member.key], jsonPath: memberPath)
                default:
                    throw HeraldError(
                        .invalidPattern,
                        "must be an array of values or an object, not \(member.value.kindName)", path: memberPath)
                }
            }
            result = try product(result, alternatives, jsonPath: memberPath)
        }
        return result
    }

    private mutating func compileOr(
        _ value: JSONValue, path: [String], jsonPath: String, depth: Int
    )
        throws(HeraldError) -> Alternatives
    {
        guard case .array(let branches) = value else {
            throw HeraldError(.invalidPattern, "\"$or\" must be an array of at least two objects, not \(value.kindName)", path: jsonPath)
        }
        guard branches.count >= 2 else {
            throw HeraldError(.invalidPattern, "\"$or\" must be an array of at least two objects", path: jsonPath)
        }
        var alternatives: Alternatives = []
        for (i, branch) in branches.enumerated() {
            let branchPath = "\(jsonPath)[\(i)]"
            guard case .object(let members) = branch else {
                throw HeraldError(.invalidPattern, "a branch of \"$or\" must be an object, not \(branch.kindName)", path: branchPath)
            }
            guard !members.isEmpty else {
                throw HeraldError(.invalidPattern, "a branch of \"$or\" must not be empty", path: branchPath)
            }
            alternatives += try compileObject(members, path: path, jsonPath: branchPath, depth: depth)
            guard alternatives.count <= limits.maxOrCombinations else { throw tooManyCombinations(jsonPath) }
        }
        return alternatives
    }

    private func tooManyCombinations(_ jsonPath: String) -> HeraldError {
        HeraldError(
            .invalidPattern,
            "the pattern expands to more than \(limits.maxOrCombinations) combinations (\"$or\" branches and "
                + "\"exists\": false alternatives multiply)", path: jsonPath)
    }

    /// Every alternative of `a` combined with every alternative of `b`.
    private func product(_ a: Alternatives, _ b: Alternatives, jsonPath: String) throws(HeraldError) -> Alternatives {
        if a.count == 1 && a[0].isEmpty { return b }
        if b.count == 1 && b[0].isEmpty { return a }
        let (count, overflow) = a.count.multipliedReportingOverflow(by: b.count)
        guard !overflow, count <= limits.maxOrCombinations else { throw tooManyCombinations(jsonPath) }
        var result: Alternatives = []
        result.reserveCapacity(count)
        for x in a {
            for y in b { result.append(x + y) }
        }
        return result
    }

    // MARK: - Leaves

    /// Compiles the array of accepted values of one field into one alternative, or two
    /// when it mixes `"exists": false` with other values (absent, or one of the others).
    private mutating func compileLeaf(
        _ elements: [JSONValue], path: [String], jsonPath: String
    )
        throws(HeraldError) -> Alternatives
    {
        guard !elements.isEmpty else {
            throw HeraldError(.invalidPattern, "the list of values must not be empty", path: jsonPath)
        }
        var predicates: [PatternPredicate] = []
        var absent = false
        for (i, element) in elements.enumerated() {
            let elementPath = "\(jsonPath)[\(i)]"
            switch element {
            case .string(let s): predicates.append(.string(Array(s.utf8)))
            case .number(let d): predicates.append(.number(try Self.finite(d, elementPath)))
            case .bool(let b): predicates.append(.boolean(b))
            case .null: predicates.append(.null)
            case .array:
                throw HeraldError(.invalidPattern, "a value in the list must not be an array", path: elementPath)
            case .object(let members):
                if let predicate = try compileOperator(members, jsonPath: elementPath) {
                    predicates.append(predicate)
                } else {
                    absent = true
                }
            }
        }
        let stars = predicates.reduce(0) { $0 + $1.wildcardStars }
        wildcardStars += stars
        guard wildcardStars <= limits.maxWildcardComplexity else {
            throw HeraldError(
                .invalidPattern,
                "the pattern's wildcards are too complex: \(wildcardStars) \"*\" in all; the budget is \(limits.maxWildcardComplexity)",
                path: jsonPath)
        }
        var alternatives: Alternatives = []
        if !predicates.isEmpty {
            alternatives.append([PatternCondition(path: path, test: .anyOf(Self.normalize(predicates)))])
        }
        if absent { alternatives.append([PatternCondition(path: path, test: .absent)]) }
        return alternatives
    }

    /// Sorted, duplicate-free predicates; `exists: true` subsumes the others.
    static func normalize(_ predicates: [PatternPredicate]) -> [PatternPredicate] {
        if predicates.contains(.exists) { return [.exists] }
        var seen = Set<[UInt8]>()
        var keyed: [([UInt8], PatternPredicate)] = []
        for p in predicates {
            let key = p.canonicalBytes
            if seen.insert(key).inserted { keyed.append((key, p)) }
        }
        keyed.sort { $0.0.lexicographicallyPrecedes($1.0) }
        return keyed.map(\.1)
    }

    private static func finite(_ d: Double, _ jsonPath: String) throws(HeraldError) -> Double {
        guard d.isFinite else {
            throw HeraldError(.invalidPattern, "the number is outside the float64 range", path: jsonPath)
        }
        return d + 0.0  // -0 → 0
    }

    /// Compiles one operator object; nil for `"exists": false`.
    private mutating func compileOperator(
        _ members: [JSONValue.Member], jsonPath: String
    )
        throws(HeraldError) -> PatternPredicate?
    {
        guard members.count == 1, let member = members.first else {
            throw HeraldError(
                .invalidPattern,
                members.isEmpty
                    ? "an operator object must have one key (e.g. {\"prefix\": \"abc\"}), not be empty"
                    : "an operator object must have exactly one key, not \(members.count)",
                path: jsonPath)
        }
        let opPath = jsonPath + "." + member.key
        let operand = member.value
        func string(_ what: String) throws(HeraldError) -> String {
            guard case .string(let s) = operand else {
                throw HeraldError(.invalidPattern, "the value of \"\(what)\" must be a string, not \(operand.kindName)", path: opPath)
            }
            return s
        }
        switch member.key {
        case "prefix", "suffix":
            let isPrefix = member.key == "prefix"
            if case .object(let inner) = operand {
                guard inner.count == 1, inner[0].key == "equals-ignore-case" else {
                    throw HeraldError(
                        .invalidPattern,
                        "\"\(member.key)\" takes a string or {\"equals-ignore-case\": string}", path: opPath)
                }
                guard case .string(let s) = inner[0].value else {
                    throw HeraldError(
                        .invalidPattern, "the value of \"equals-ignore-case\" must be a string, not \(inner[0].value.kindName)",
                        path: opPath + ".equals-ignore-case")
                }
                let folded = CaseFolding.fold(s)
                return isPrefix ? .prefixIgnoreCase(folded) : .suffixIgnoreCase(folded)
            }
            let s = Array(try string(member.key).utf8)
            return isPrefix ? .prefix(s) : .suffix(s)
        case "equals-ignore-case":
            return .equalsIgnoreCase(CaseFolding.fold(try string(member.key)))
        case "wildcard":
            return try Self.wildcard(Array(try string("wildcard").utf8), opPath)
        case "cidr":
            let text = Array(try string("cidr").utf8)
            do throws(PatternSyntaxError) {
                return .cidr(try CIDRBlock(parsing: text))
            } catch {
                throw HeraldError(.invalidPattern, error.message, path: opPath)
            }
        case "exists":
            guard case .bool(let flag) = operand else {
                throw HeraldError(.invalidPattern, "the value of \"exists\" must be true or false, not \(operand.kindName)", path: opPath)
            }
            return flag ? .exists : nil
        case "numeric":
            return .numeric(try Self.numericRange(operand, opPath))
        case "anything-but":
            return .anythingBut(try Self.anythingBut(operand, opPath))
        default:
            throw HeraldError(
                .invalidPattern,
                "unknown operator \"\(member.key)\" (expected prefix, suffix, equals-ignore-case, anything-but, numeric, "
                    + "exists, cidr or wildcard)", path: jsonPath)
        }
    }

    private static func wildcard(_ text: [UInt8], _ jsonPath: String) throws(HeraldError) -> PatternPredicate {
        let glob: WildcardGlob
        do throws(PatternSyntaxError) {
            glob = try WildcardGlob(parsing: text)
        } catch {
            throw HeraldError(.invalidPattern, "bad wildcard: \(error.message)", path: jsonPath)
        }
        return glob.starCount == 0 ? .string(glob.segments[0]) : .wildcard(glob)
    }

    // MARK: - numeric

    private static func numericRange(_ operand: JSONValue, _ jsonPath: String) throws(HeraldError) -> NumericRange {
        guard case .array(let terms) = operand else {
            throw HeraldError(.invalidPattern, "the value of \"numeric\" must be an array like [\">\", 0, \"<=\", 5]", path: jsonPath)
        }
        func op(_ i: Int) throws(HeraldError) -> String {
            guard i < terms.count, case .string(let s) = terms[i], ["=", "<", "<=", ">", ">="].contains(s) else {
                let found = i < terms.count ? terms[i].serialized : "nothing"
                throw HeraldError(
                    .invalidPattern, "bad numeric range: expected one of \"=\", \"<\", \"<=\", \">\", \">=\", found \(found)",
                    path: "\(jsonPath)[\(i)]")
            }
            return s
        }
        func number(_ i: Int) throws(HeraldError) -> Double {
            guard i < terms.count, case .number(let d) = terms[i] else {
                let found = i < terms.count ? terms[i].kindName : "nothing"
                throw HeraldError(.invalidPattern, "bad numeric range: expected a number, found \(found)", path: "\(jsonPath)[\(i)]")
            }
            return try finite(d, "\(jsonPath)[\(i)]")
        }
        let first = try op(0)
        let firstValue = try number(1)
        var lower = -Double.infinity
        var upper = Double.infinity
        switch first {
        case "=":
            lower = firstValue
            upper = firstValue
        case ">": lower = firstValue.nextUp
        case ">=": lower = firstValue
        case "<": upper = firstValue.nextDown
        default: upper = firstValue  // "<="
        }
        if terms.count > 2 {
            guard first == ">" || first == ">=" else {
                throw HeraldError(
                    .invalidPattern, "bad numeric range: only a lower bound (\">\" or \">=\") may be followed by an upper bound",
                    path: "\(jsonPath)[2]")
            }
            let second = try op(2)
            guard second == "<" || second == "<=" else {
                throw HeraldError(.invalidPattern, "bad numeric range: the second bound must be \"<\" or \"<=\"", path: "\(jsonPath)[2]")
            }
            let secondValue = try number(3)
            upper = second == "<" ? secondValue.nextDown : secondValue
            guard terms.count == 4 else {
                throw HeraldError(.invalidPattern, "bad numeric range: too many terms", path: "\(jsonPath)[4]")
            }
            guard lower <= upper else {
                throw HeraldError(
                    .invalidPattern, "bad numeric range: the lower bound must be below the upper bound (no number matches)",
                    path: jsonPath)
            }
        }
        return NumericRange(lower: lower + 0.0, upper: upper + 0.0)
    }

    // MARK: - anything-but

    private static func anythingBut(_ operand: JSONValue, _ jsonPath: String) throws(HeraldError) -> PatternPredicate.AnythingBut {
        switch operand {
        case .string(let s): return .strings([Array(s.utf8)])
        case .number(let d): return .numbers([try finite(d, jsonPath)])
        case .array(let items):
            guard !items.isEmpty else {
                throw HeraldError(.invalidPattern, "the list of \"anything-but\" must not be empty", path: jsonPath)
            }
            var strings: [[UInt8]] = []
            var numbers: [Double] = []
            for (i, item) in items.enumerated() {
                switch item {
                case .string(let s): strings.append(Array(s.utf8))
                case .number(let d): numbers.append(try finite(d, "\(jsonPath)[\(i)]"))
                default:
                    throw HeraldError(
                        .invalidPattern, "a value of \"anything-but\" must be a string or a number, not \(item.kindName)",
                        path: "\(jsonPath)[\(i)]")
                }
            }
            guard strings.isEmpty || numbers.isEmpty else {
                throw HeraldError(.invalidPattern, "the list of \"anything-but\" must hold only strings or only numbers", path: jsonPath)
            }
            return strings.isEmpty ? .numbers(Array(Set(numbers)).sorted()) : .strings(sortedUnique(strings))
        case .object(let members):
            guard members.count == 1, let inner = members.first else {
                throw HeraldError(
                    .invalidPattern, "\"anything-but\" takes one of prefix, suffix, equals-ignore-case or wildcard", path: jsonPath)
            }
            let innerPath = jsonPath + "." + inner.key
            guard ["prefix", "suffix", "equals-ignore-case", "wildcard"].contains(inner.key) else {
                throw HeraldError(
                    .invalidPattern,
                    "unknown \"anything-but\" operator \"\(inner.key)\" (expected prefix, suffix, equals-ignore-case or wildcard)",
                    path: jsonPath)
            }
            var values: [String] = []
            switch inner.value {
            case .string(let s): values = [s]
            case .array(let items):
                guard !items.isEmpty else {
                    throw HeraldError(.invalidPattern, "the list must not be empty", path: innerPath)
                }
                for (i, item) in items.enumerated() {
                    guard case .string(let s) = item else {
                        throw HeraldError(.invalidPattern, "must be a string, not \(item.kindName)", path: "\(innerPath)[\(i)]")
                    }
                    values.append(s)
                }
            default:
                throw HeraldError(.invalidPattern, "must be a string or a list of strings, not \(inner.value.kindName)", path: innerPath)
            }
            switch inner.key {
            case "prefix", "suffix":
                guard !values.contains("") else {
                    throw HeraldError(.invalidPattern, "an empty \(inner.key) would exclude every string", path: innerPath)
                }
                let bytes = sortedUnique(values.map { Array($0.utf8) })
                return inner.key == "prefix" ? .prefixes(bytes) : .suffixes(bytes)
            case "equals-ignore-case":
                return .ignoreCase(sortedUnique(values.map(CaseFolding.fold)))
            case "wildcard":
                var globs: [WildcardGlob] = []
                for text in sortedUnique(values.map { Array($0.utf8) }) {
                    do throws(PatternSyntaxError) {
                        globs.append(try WildcardGlob(parsing: text))
                    } catch {
                        throw HeraldError(.invalidPattern, "bad wildcard: \(error.message)", path: innerPath)
                    }
                }
                return .wildcards(globs)
            default:
                throw HeraldError(
                    .invalidPattern,
                    "unknown \"anything-but\" operator \"\(inner.key)\" (expected prefix, suffix, equals-ignore-case or wildcard)",
                    path: jsonPath)
            }
        default:
            throw HeraldError(
                .invalidPattern,
                "the value of \"anything-but\" must be a string, a number, a list or an operator object, not \(operand.kindName)",
                path: jsonPath)
        }
    }

    private static func sortedUnique(_ items: [[UInt8]]) -> [[UInt8]] {
        Array(Set(items)).sorted { $0.lexicographicallyPrecedes($1) }
    }

    // MARK: - Canonical form

    /// Alternatives with conditions in matching order, duplicates removed, sorted.
    static func canonicalAlternatives(_ alternatives: Alternatives) -> Alternatives {
        var seen = Set<[UInt8]>()
        var keyed: [([UInt8], [PatternCondition])] = []
        for alternative in alternatives {
            var conditions: [([UInt8], PatternCondition)] = []
            var seenConditions = Set<[UInt8]>()
            for condition in alternative {
                let key = condition.orderKey
                if seenConditions.insert(key).inserted { conditions.append((key, condition)) }
            }
            conditions.sort { $0.0.lexicographicallyPrecedes($1.0) }
            var key: [UInt8] = []
            for (k, _) in conditions { PatternPredicate.appendLengthPrefixed(k, to: &key) }
            if seen.insert(key).inserted { keyed.append((key, conditions.map(\.1))) }
        }
        keyed.sort { $0.0.lexicographicallyPrecedes($1.0) }
        return keyed.map(\.1)
    }

    static func canonicalKey(_ alternatives: Alternatives) -> [UInt8] {
        var key: [UInt8] = []
        for alternative in alternatives {
            var one: [UInt8] = []
            for condition in alternative { PatternPredicate.appendLengthPrefixed(condition.orderKey, to: &one) }
            PatternPredicate.appendLengthPrefixed(one, to: &key)
        }
        return key
    }
}
