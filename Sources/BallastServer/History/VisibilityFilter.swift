import BallastEngine
import BallastProto
import Foundation

/// What List and Count select: the request's structured filter ANDed with its query string.
///
/// The query language is the subset of Temporal's visibility syntax that can be honoured
/// exactly here: clauses joined by `AND`, each `Field = value` (or `<`, `<=`, `>`, `>=`, for
/// `StartTime` and `CloseTime`). Fields: `WorkflowType`, `WorkflowId`, `TaskQueue`,
/// `ExecutionStatus` (Running, Completed, Failed, Canceled, Terminated, ContinuedAsNew,
/// TimedOut), `StartTime`, `CloseTime` (RFC 3339 or integer UTC nanoseconds) and any search
/// attribute (equality; a keyword list matches if it contains the value). Anything else
/// (`OR`, parentheses, `!=`, `LIKE`, `ORDER BY`, …) is rejected as INVALID_ARGUMENT.
struct VisibilityFilter: Sendable {
    var statuses: Set<Ballast_V1_WorkflowExecutionStatus>?
    var workflowTypes: [String] = []
    var workflowIds: [String] = []
    var taskQueues: [String] = []
    var startRange: ClosedRange<Int64> = Int64.min...Int64.max
    var closeRange: ClosedRange<Int64>?
    var attributes: [(name: String, value: Ballast_V1_SearchAttributeValue)] = []
    var queryAttributes: [(name: String, text: String)] = []
    /// False once two clauses contradict each other (nothing can match).
    var satisfiable = true

    /// Builds the filter, or throws INVALID_ARGUMENT naming what cannot be honoured.
    init(filter: Ballast_V1_WorkflowExecutionFilter, query: String) throws(GRPCStatusError) {
        if !filter.statuses.isEmpty { statuses = Set(filter.statuses) }
        if !filter.workflowType.isEmpty { workflowTypes.append(filter.workflowType) }
        if !filter.workflowID.isEmpty { workflowIds.append(filter.workflowID) }
        if !filter.taskQueue.isEmpty { taskQueues.append(filter.taskQueue) }
        try bound(start: true, min: filter.startTimeMinUnixNanos, max: filter.startTimeMaxUnixNanos)
        try bound(start: false, min: filter.closeTimeMinUnixNanos, max: filter.closeTimeMaxUnixNanos)
        for name in filter.searchAttributes.keys.sorted() {
            if let value = filter.searchAttributes[name] { attributes.append((name, value)) }
        }
        var parser = VisibilityQueryParser(query)
        for clause in try parser.clauses() { try apply(clause) }
    }

    /// Narrows a time range; 0 means unbounded, as in the proto.
    private mutating func bound(start: Bool, min low: Int64, max high: Int64) throws(GRPCStatusError) {
        guard low != 0 || high != 0 else { return }
        let lower = low == 0 ? Int64.min : low, upper = high == 0 ? Int64.max : high
        guard lower <= upper else { throw GRPCStatusError.invalid("the \(start ? "start" : "close") time range is empty (min > max)") }
        narrow(start: start, lower...upper)
    }

    private mutating func narrow(start: Bool, _ range: ClosedRange<Int64>) {
        let current = start ? startRange : (closeRange ?? Int64.min...Int64.max)
        let lower = max(current.lowerBound, range.lowerBound), upper = min(current.upperBound, range.upperBound)
        if lower > upper { satisfiable = false }
        let narrowed = lower <= upper ? lower...upper : current
        if start { startRange = narrowed } else { closeRange = narrowed }
    }

    private mutating func apply(_ clause: VisibilityQueryParser.Clause) throws(GRPCStatusError) {
        switch clause.field {
        case "WorkflowType", "WorkflowId", "TaskQueue", "ExecutionStatus":
            guard clause.op == "=" else { throw .invalid("\(clause.field) supports only =") }
            switch clause.field {
            case "WorkflowType": workflowTypes.append(clause.value)
            case "WorkflowId": workflowIds.append(clause.value)
            case "TaskQueue": taskQueues.append(clause.value)
            default:
                guard let status = Self.status(named: clause.value) else {
                    throw .invalid("unknown ExecutionStatus '\(clause.value)'")
                }
                statuses = (statuses ?? [status]).intersection([status])
            }
        case "StartTime", "CloseTime":
            guard let time = Self.time(clause.value) else {
                throw .invalid("\(clause.field) needs an RFC 3339 time or integer nanoseconds, got '\(clause.value)'")
            }
            let range: ClosedRange<Int64>
            switch clause.op {
            case "=": range = time...time
            case ">=": range = time...Int64.max
            case ">": range = (time == Int64.max ? Int64.max : time + 1)...Int64.max
            case "<=": range = Int64.min...time
            default: range = Int64.min...(time == Int64.min ? Int64.min : time - 1)
            }
            narrow(start: clause.field == "StartTime", range)
        default:
            guard clause.op == "=" else { throw .invalid("search attribute \(clause.field) supports only =") }
            queryAttributes.append((clause.field, clause.value))
        }
    }

    /// The part the engine's List can apply itself (the rest is checked by `matches`).
    func listFilter(namespace: String) -> ListFilter {
        var filter = ListFilter()
        filter.namespace = namespace
        if let statuses, statuses.count == 1 { filter.status = statuses.first }
        if workflowTypes.count == 1 { filter.workflowType = workflowTypes[0] }
        if startRange != Int64.min...Int64.max { filter.startTimeRange = startRange }
        filter.closeTimeRange = closeRange
        filter.limit = Int.max
        return filter
    }

    /// Whether a run matches every clause.
    func matches(_ info: Ballast_V1_WorkflowExecutionInfo) -> Bool {
        guard satisfiable else { return false }
        if let statuses, !statuses.contains(info.status) { return false }
        if workflowTypes.contains(where: { $0 != info.type.name }) { return false }
        if workflowIds.contains(where: { $0 != info.execution.workflowID }) { return false }
        if taskQueues.contains(where: { $0 != info.taskQueue }) { return false }
        if !startRange.contains(info.startTimeUnixNanos) { return false }
        if let closeRange, info.closeTimeUnixNanos == 0 || !closeRange.contains(info.closeTimeUnixNanos) { return false }
        let stored = info.searchAttributes.indexedFields
        for (name, wanted) in attributes where !Self.attribute(stored[name], matches: wanted) { return false }
        for (name, text) in queryAttributes where !Self.attribute(stored[name], matchesText: text) { return false }
        return true
    }

    static func attribute(_ stored: Ballast_V1_SearchAttributeValue?, matches wanted: Ballast_V1_SearchAttributeValue) -> Bool {
        guard let stored else { return false }
        if stored == wanted { return true }
        if case .keywordListValue(let list)? = stored.value, case .keywordValue(let keyword)? = wanted.value {
            return list.values.contains(keyword)
        }
        return false
    }

    static func attribute(_ stored: Ballast_V1_SearchAttributeValue?, matchesText text: String) -> Bool {
        switch stored?.value {
        case .textValue(let value)?, .keywordValue(let value)?: return value == text
        case .keywordListValue(let list)?: return list.values.contains(text)
        case .intValue(let value)?: return Int64(text) == value
        case .doubleValue(let value)?: return Double(text) == value
        case .boolValue(let value)?: return text.lowercased() == (value ? "true" : "false")
        case .datetimeUnixNanos(let value)?: return time(text) == value
        case nil: return false
        }
    }

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

    /// Integer nanoseconds, or an RFC 3339 time.
    static func time(_ text: String) -> Int64? {
        if let nanos = Int64(text) { return nanos }
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        let date = formatter.date(from: text) ?? {
            formatter.formatOptions = [.withInternetDateTime]
            return formatter.date(from: text)
        }()
        guard let date else { return nil }
        let nanos = date.timeIntervalSince1970 * 1_000_000_000
        guard nanos.isFinite, abs(nanos) < 9.2e18 else { return nil }
        return Int64(nanos)
    }
}

/// An INVALID_ARGUMENT raised while reading a request (turned into a `GRPCStatus` by the handler).
struct GRPCStatusError: Error, Equatable {
    var message: String
    static func invalid(_ message: String) -> GRPCStatusError { GRPCStatusError(message: message) }
}

/// Splits a visibility query into `Field op value` clauses joined by AND.
struct VisibilityQueryParser {
    struct Clause: Equatable {
        var field: String
        var op: String
        var value: String
    }

    private let characters: [Character]
    private var position = 0
    /// Longest query accepted.
    static let maxQueryCharacters = 4_096

    init(_ query: String) { characters = Array(query) }

    mutating func clauses() throws(GRPCStatusError) -> [Clause] {
        guard characters.count <= Self.maxQueryCharacters else {
            throw .invalid("the query is longer than \(Self.maxQueryCharacters) characters")
        }
        var clauses: [Clause] = []
        skipSpaces()
        guard position < characters.count else { return [] }
        while true {
            clauses.append(try clause())
            skipSpaces()
            if position == characters.count { return clauses }
            let word = identifier()
            guard word.uppercased() == "AND" else {
                throw .invalid("only AND-joined clauses are supported; found '\(word.isEmpty ? String(characters[position]) : word)' at character \(position)")
            }
        }
    }

    private mutating func clause() throws(GRPCStatusError) -> Clause {
        skipSpaces()
        let field = identifier()
        guard !field.isEmpty else { throw .invalid("expected a field name at character \(position)") }
        guard !["OR", "NOT", "ORDER", "LIKE"].contains(field.uppercased()) else { throw .invalid("\(field) is not supported") }
        skipSpaces()
        var op = ""
        while position < characters.count, "=<>!".contains(characters[position]) {
            op.append(characters[position])
            position += 1
        }
        guard ["=", "<", "<=", ">", ">="].contains(op) else {
            throw .invalid("unsupported operator '\(op)' after \(field) (use =, <, <=, >, >=)")
        }
        skipSpaces()
        return Clause(field: field, op: op, value: try value())
    }

    private mutating func value() throws(GRPCStatusError) -> String {
        guard position < characters.count else { throw .invalid("expected a value at the end of the query") }
        let quote = characters[position]
        if quote == "'" || quote == "\"" {
            position += 1
            var text = ""
            while position < characters.count, characters[position] != quote {
                text.append(characters[position])
                position += 1
            }
            guard position < characters.count else { throw .invalid("unterminated string in the query") }
            position += 1
            return text
        }
        let word = identifier()
        guard !word.isEmpty else { throw .invalid("expected a value at character \(position)") }
        return word
    }

    private mutating func identifier() -> String {
        var word = ""
        while position < characters.count,
              characters[position].isLetter || characters[position].isNumber || "_-.:".contains(characters[position]) {
            word.append(characters[position])
            position += 1
        }
        return word
    }

    private mutating func skipSpaces() {
        while position < characters.count, characters[position].isWhitespace { position += 1 }
    }
}
