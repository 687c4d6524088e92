import BallastProto

/// A field a typed predicate reads from a row.
enum VisibilityField: Equatable, Sendable {
    case workflowId, runId, workflowType, taskQueue, executionStatus, startTime, closeTime, executionDuration
    case attribute(String, Ballast_V1_IndexedValueType)

    /// The built-in fields by their query names.
    static let builtIns: [String: VisibilityField] = [
        "WorkflowId": .workflowId, "RunId": .runId, "WorkflowType": .workflowType, "TaskQueue": .taskQueue,
        "ExecutionStatus": .executionStatus, "StartTime": .startTime, "CloseTime": .closeTime,
        "ExecutionDuration": .executionDuration,
    ]

    enum Kind { case keyword, status, time, duration, int, double, bool }

    var kind: Kind {
        switch self {
        case .workflowId, .runId, .workflowType, .taskQueue: .keyword
        case .executionStatus: .status
        case .startTime, .closeTime: .time
        case .executionDuration: .duration
        case .attribute(_, let type):
            switch type {
            case .int: .int
            case .double: .double
            case .bool: .bool
            case .datetime: .time
            default: .keyword
            }
        }
    }
}

/// A typed value of a field.
enum VisibilityValue: Equatable, Sendable {
    case text(String)
    case int(Int64)
    case double(Double)
    case bool(Bool)

    /// Orders two values of the same kind (the binder guarantees the kinds match).
    static func compare(_ left: VisibilityValue, _ right: VisibilityValue) -> Int {
        switch (left, right) {
        case let (.text(a), .text(b)): a == b ? 0 : (a < b ? -1 : 1)
        case let (.int(a), .int(b)): a == b ? 0 : (a < b ? -1 : 1)
        case let (.double(a), .double(b)): a == b ? 0 : (a < b ? -1 : 1)
        case let (.int(a), .double(b)): Double(a) == b ? 0 : (Double(a) < b ? -1 : 1)
        case let (.double(a), .int(b)): a == Double(b) ? 0 : (a < Double(b) ? -1 : 1)
        case let (.bool(a), .bool(b)): a == b ? 0 : (!a ? -1 : 1)
        default: 2 // different kinds never compare equal, less or greater
        }
    }
}

/// A predicate typed against the namespace's fields, ready to run on rows.
indirect enum VisibilityPredicate: Equatable, Sendable {
    case constant(Bool)
    case and([VisibilityPredicate])
    case or([VisibilityPredicate])
    case not(VisibilityPredicate)
    /// `field op value`; `op` is never `!=` (bound as NOT =).
    case compare(VisibilityField, QueryComparison, VisibilityValue)
    case oneOf(VisibilityField, [VisibilityValue])
    case startsWith(VisibilityField, String)
    /// The field has a value (IS NOT NULL).
    case exists(VisibilityField)

    /// Whether `row` matches. A test on a missing value is false (so `X != 'a'`, which is
    /// `NOT X = 'a'`, matches rows without X); a keyword list matches if any element does.
    func matches(_ row: VisibilityRow) -> Bool {
        switch self {
        case .constant(let value): return value
        case .and(let terms): return terms.allSatisfy { $0.matches(row) }
        case .or(let terms): return terms.contains { $0.matches(row) }
        case .not(let term): return !term.matches(row)
        case let .compare(field, comparison, wanted):
            return row.anyValue(field) { value in
                let order = VisibilityValue.compare(value, wanted)
                switch comparison {
                case .equal: return order == 0
                case .notEqual: return order != 0 && order != 2
                case .less: return order == -1
                case .lessOrEqual: return order == -1 || order == 0
                case .greater: return order == 1
                case .greaterOrEqual: return order == 1 || order == 0
                }
            }
        case let .oneOf(field, values):
            return row.anyValue(field) { value in values.contains { VisibilityValue.compare(value, $0) == 0 } }
        case let .startsWith(field, prefix):
            return row.anyValue(field) { value in
                if case .text(let text) = value { return text.hasPrefix(prefix) }
                return false
            }
        case .exists(let field):
            return row.anyValue(field) { _ in true }
        }
    }
}

/// Types a parsed query against a namespace's registered search attributes.
struct VisibilityBinder {
    var attributes: [String: Ballast_V1_IndexedValueType]
    var namespace: String

    func bind(_ expression: QueryExpression) throws(VisibilityQueryError) -> VisibilityPredicate {
        switch expression {
        case .and(let terms):
            var bound: [VisibilityPredicate] = []
            for term in terms { bound.append(try bind(term)) }
            return .and(bound)
        case .or(let terms):
            var bound: [VisibilityPredicate] = []
            for term in terms { bound.append(try bind(term)) }
            return .or(bound)
        case .not(let term):
            return .not(try bind(term))
        case .predicate(let predicate):
            return try bind(predicate)
        }
    }

    func field(named name: String, column: Int) throws(VisibilityQueryError) -> VisibilityField {
        if let builtIn = VisibilityField.builtIns[name] { return builtIn }
        if let type = attributes[name] ?? predefinedSearchAttributes[name] { return .attribute(name, type) }
        let known = VisibilityField.builtIns.keys.sorted() + attributes.keys.sorted()
        if let close = known.first(where: { $0.lowercased() == name.lowercased() }) {
            throw VisibilityQueryError("unknown field \(name) (names are case-sensitive: did you mean \(close)?)", column: column, token: name)
        }
        throw VisibilityQueryError("unknown field \(name): not a built-in field nor a search attribute registered in namespace \(namespace)",
                                   column: column, token: name)
    }

    private func bind(_ predicate: QueryPredicate) throws(VisibilityQueryError) -> VisibilityPredicate {
        let field = try field(named: predicate.field, column: predicate.column)
        let name = predicate.field
        func refuse(_ what: String) -> VisibilityQueryError {
            VisibilityQueryError("\(name) (\(describe(field))) does not support \(what)", column: predicate.column, token: name)
        }
        switch predicate.test {
        case let .compare(comparison, literal):
            if comparison != .equal, comparison != .notEqual, field.kind == .status || field.kind == .bool {
                throw refuse(comparison.rawValue)
            }
            let value = try self.value(literal, for: field, name: name)
            return comparison == .notEqual ? .not(.compare(field, .equal, value)) : .compare(field, comparison, value)
        case let .oneOf(literals, negated):
            var values: [VisibilityValue] = []
            for literal in literals { values.append(try value(literal, for: field, name: name)) }
            return negated ? .not(.oneOf(field, values)) : .oneOf(field, values)
        case let .between(low, high, negated):
            guard field.kind != .status, field.kind != .bool else { throw refuse("BETWEEN") }
            let range = VisibilityPredicate.and([.compare(field, .greaterOrEqual, try value(low, for: field, name: name)),
                                                 .compare(field, .lessOrEqual, try value(high, for: field, name: name))])
            return negated ? .not(range) : range
        case .startsWith(let literal):
            guard field.kind == .keyword else { throw refuse("STARTS_WITH") }
            guard case .text(let prefix) = try value(literal, for: field, name: name) else { throw refuse("STARTS_WITH") }
            return .startsWith(field, prefix)
        case .isNull(let negated):
            return negated ? .exists(field) : .not(.exists(field))
        }
    }

    func describe(_ field: VisibilityField) -> String {
        switch field.kind {
        case .keyword: if case .attribute(_, let type) = field, type == .text { "text" } else if case .attribute(_, .keywordList) = field { "keyword list" } else { "keyword" }
        case .status: "status"
        case .time: "datetime"
        case .duration: "duration"
        case .int: "int"
        case .double: "double"
        case .bool: "bool"
        }
    }

    /// Types `literal` for `field`, or says why it cannot be.
    func value(_ literal: QueryLiteral, for field: VisibilityField, name: String) throws(VisibilityQueryError) -> VisibilityValue {
        func mismatch(_ expected: String) -> VisibilityQueryError {
            VisibilityQueryError("\(name) is \(describe(field)): expected \(expected), got \(Self.kindName(literal.value))",
                                 column: literal.column, token: literal.text)
        }
        switch (field.kind, literal.value) {
        case (.keyword, .string(let text)), (.keyword, .word(let text)):
            return .text(text)
        case (.keyword, _):
            throw mismatch("a quoted string")
        case (.status, .string(let text)), (.status, .word(let text)):
            guard let status = Self.status(named: text) else {
                throw VisibilityQueryError("unknown ExecutionStatus '\(text)' (Running, Completed, Failed, Canceled, Terminated, ContinuedAsNew, TimedOut)",
                                           column: literal.column, token: literal.text)
            }
            return .int(Int64(status.rawValue))
        case (.status, _):
            throw mismatch("a status name such as 'Running'")
        case (.time, .integer(let nanos)):
            return .int(nanos)
        case (.time, .string(let text)):
            guard let nanos = VisibilityTime.parse(text) else {
                throw VisibilityQueryError("\(name) needs an RFC 3339 time such as '2026-11-24T00:00:00Z' (or integer UTC nanoseconds)",
                                           column: literal.column, token: literal.text)
            }
            return .int(nanos)
        case (.time, _):
            throw mismatch("an RFC 3339 time in quotes")
        case (.duration, .integer(let nanos)):
            return .int(nanos)
        case (.duration, .string(let text)):
            guard let nanos = VisibilityTime.duration(text) else {
                throw VisibilityQueryError("\(name) needs a duration such as '90s' or '1h30m' (or integer nanoseconds)",
                                           column: literal.column, token: literal.text)
            }
            return .int(nanos)
        case (.duration, _):
            throw mismatch("a duration such as '90s'")
        case (.int, .integer(let number)):
            return .int(number)
        case (.int, _):
            throw mismatch("an integer")
        case (.double, .integer(let number)):
            return .double(Double(number))
        case (.double, .double(let number)):
            return .double(number)
        case (.double, _):
            throw mismatch("a number")
        case (.bool, .bool(let flag)):
            return .bool(flag)
        case (.bool, _):
            throw mismatch("TRUE or FALSE")
        }
    }

    static func kindName(_ value: QueryLiteralValue) -> String {
        switch value {
        case .string: "a string"
        case .word(let word): "the bare word \(word) (quote strings with ')"
        case .integer: "an integer"
        case .double: "a decimal number"
        case .bool: "a boolean"
        }
    }

    /// Status by its query name (case-insensitive; `Cancelled` accepted).
    static func status(named name: String) -> Ballast_V1_WorkflowExecutionStatus? {
        switch name.lowercased() {
        case "running": .running
        case "completed": .completed
        case "failed": .failed
        case "canceled", "cancelled": .canceled
        case "terminated": .terminated
        case "continuedasnew": .continuedAsNew
        case "timedout": .timedOut
        default: nil
        }
    }
}
