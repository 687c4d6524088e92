import BallastProto

/// How a List or Count reads the index: the ordered streams to walk (one, or several merged
/// for OR and IN), the time ranges that bound the walk, and the predicate every row must pass.
struct VisibilityPlan {
    /// Nil: walk the whole namespace in the requested order.
    var streams: [SortedChunks<VisibilityRowKey>]?
    var startRange: ClosedRange<Int64> = Int64.min...Int64.max
    var closeRange: ClosedRange<Int64> = Int64.min...Int64.max
    var predicate: VisibilityPredicate
    /// For tests and logs: which index was chosen.
    var description: String

    /// Rows the chosen streams hold (an upper bound of the rows walked).
    var streamRows: Int? { streams?.reduce(0) { $0 + $1.count } }
}

/// Picks the index for a predicate over one namespace.
struct VisibilityPlanner {
    let space: NamespaceVisibility
    let index: VisibilityIndex

    /// Candidate streams for `predicate`: posting lists or explicit rows; nil when no index applies.
    private func streams(_ predicate: VisibilityPredicate) -> (streams: [SortedChunks<VisibilityRowKey>], label: String)? {
        switch predicate {
        case .constant(false):
            return ([], "nothing")
        case let .compare(field, .equal, value):
            return streams(field, [value])
        case let .oneOf(field, values):
            return streams(field, values)
        case .and(let terms):
            var best: (streams: [SortedChunks<VisibilityRowKey>], label: String)?
            for term in terms {
                guard let candidate = streams(term) else { continue }
                if best == nil || Self.size(candidate.streams) < Self.size(best?.streams ?? []) { best = candidate }
            }
            return best
        case .or(let terms):
            var union: [SortedChunks<VisibilityRowKey>] = []
            var labels: [String] = []
            for term in terms {
                guard let candidate = streams(term) else { return nil }
                union += candidate.streams
                labels.append(candidate.label)
            }
            return (union, labels.joined(separator: " ∪ "))
        default:
            return nil
        }
    }

    private static func size(_ streams: [SortedChunks<VisibilityRowKey>]) -> Int { streams.reduce(0) { $0 + $1.count } }

    private func streams(_ field: VisibilityField, _ values: [VisibilityValue]) -> (streams: [SortedChunks<VisibilityRowKey>], label: String)? {
        var result: [SortedChunks<VisibilityRowKey>] = []
        switch field {
        case .workflowId, .runId:
            var explicit = SortedChunks<VisibilityRowKey>()
            for case .text(let text) in values {
                let found = field == .workflowId ? space.slots(ofWorkflow: text) : (index.slots[text].map { [$0] } ?? [])
                for slot in found {
                    if let row = index.rows[slot], space.byStart.contains(row.key(slot: slot)) { explicit.insert(row.key(slot: slot)) }
                }
            }
            return ([explicit], field == .workflowId ? "WorkflowId lookup" : "RunId lookup")
        default:
            guard let name = Self.postingField(field) else { return nil }
            for value in values {
                guard let text = Self.postingValue(value) else { return nil }
                if let list = space.postingList(VisibilityPostingKey(field: name, value: text)) { result.append(list) }
            }
            return (result, "\(name) index")
        }
    }

    /// The posting field name of an indexed field, nil when it has no posting lists.
    static func postingField(_ field: VisibilityField) -> String? {
        switch field {
        case .workflowType: "WorkflowType"
        case .executionStatus: "ExecutionStatus"
        case .taskQueue: "TaskQueue"
        case .attribute(let name, let type) where type == .keyword || type == .keywordList || type == .bool: name
        default: nil
        }
    }

    static func postingValue(_ value: VisibilityValue) -> String? {
        switch value {
        case .text(let text): text
        case .int(let number): String(number)
        case .bool(let flag): flag ? "true" : "false"
        case .double: nil
        }
    }

    /// The plan: the smallest usable stream set, and the time bounds of top-level AND terms.
    func plan(_ predicate: VisibilityPredicate) -> VisibilityPlan {
        var plan = VisibilityPlan(streams: nil, predicate: predicate, description: "scan")
        if let found = streams(predicate) {
            plan.streams = found.streams
            plan.description = found.label
        }
        Self.narrow(predicate, &plan)
        return plan
    }

    /// Narrows the plan's time ranges from StartTime/CloseTime comparisons ANDed at the top.
    private static func narrow(_ predicate: VisibilityPredicate, _ plan: inout VisibilityPlan) {
        switch predicate {
        case .and(let terms):
            for term in terms { narrow(term, &plan) }
        case let .compare(field, comparison, .int(value)) where field == .startTime || field == .closeTime:
            let range: ClosedRange<Int64>
            switch comparison {
            case .equal: range = value...value
            case .greater: range = (value == Int64.max ? Int64.max : value + 1)...Int64.max
            case .greaterOrEqual: range = value...Int64.max
            case .less: range = Int64.min...(value == Int64.min ? Int64.min : value - 1)
            case .lessOrEqual: range = Int64.min...value
            case .notEqual: return
            }
            if field == .startTime { plan.startRange = intersect(plan.startRange, range) } else { plan.closeRange = intersect(plan.closeRange, range) }
        case .exists(.closeTime):
            plan.closeRange = intersect(plan.closeRange, closedOnly)
        case let .compare(.executionStatus, .equal, value) where value != running:
            plan.closeRange = intersect(plan.closeRange, closedOnly)
        case let .oneOf(.executionStatus, values) where !values.contains(running):
            plan.closeRange = intersect(plan.closeRange, closedOnly)
        default:
            return
        }
    }

    /// Open runs sit at `Int64.max` in the close order: a predicate that only closed runs can
    /// pass starts a descending close-order walk below them instead of skipping them all.
    private static let closedOnly: ClosedRange<Int64> = Int64.min...(Int64.max - 1)
    private static let running = VisibilityValue.int(Int64(Ballast_V1_WorkflowExecutionStatus.running.rawValue))

    private static func intersect(_ a: ClosedRange<Int64>, _ b: ClosedRange<Int64>) -> ClosedRange<Int64> {
        let lower = max(a.lowerBound, b.lowerBound), upper = min(a.upperBound, b.upperBound)
        // An empty intersection becomes a range no row reaches (checked again by the predicate).
        return lower <= upper ? lower...upper : Int64.max...Int64.max
    }
}

/// Walks several ordered streams as one, each row once.
struct VisibilityMerge {
    private var cursors: [SortedChunksCursor<VisibilityRowKey>]
    private let descending: Bool
    private var last: VisibilityRowKey?

    init(_ streams: [SortedChunks<VisibilityRowKey>], descending: Bool, before: (VisibilityRowKey) -> Bool) {
        self.descending = descending
        cursors = streams.map { SortedChunksCursor($0, descending: descending, before: before) }
    }

    mutating func next() -> VisibilityRowKey? {
        while true {
            var best: Int?
            for position in cursors.indices {
                guard let candidate = cursors[position].current else { continue }
                if let chosen = best, let current = cursors[chosen].current {
                    if descending ? candidate > current : candidate < current { best = position }
                } else {
                    best = position
                }
            }
            guard let chosen = best, let key = cursors[chosen].current else { return nil }
            cursors[chosen].advance()
            if let last, last == key { continue }
            last = key
            return key
        }
    }
}
