import BallastProto

/// One page of List.
public struct VisibilityPage: Sendable {
    /// The runs, in the query's order.
    public var executions: [Ballast_V1_WorkflowExecutionInfo] = []
    /// Empty when no run is left; otherwise pass it back for the next page.
    public var nextPageToken: [UInt8] = []
    /// Rows the query read to build the page (the index's work).
    public var examinedRows = 0
    /// Which index the planner chose ("scan" when none).
    public var plan = ""
    /// Whether the page ended at its row limit with rows left to read; its token then continues
    /// after the last row read, not the last run returned.
    public var stoppedAtRowLimit = false
}

/// The answer of Count: the total and how many of each status.
public struct VisibilityCount: Sendable, Equatable {
    /// Matching runs.
    public var count: Int64 = 0
    /// Matching runs per status, by status number; statuses with no run left out.
    public var byStatus: [(status: Ballast_V1_WorkflowExecutionStatus, count: Int64)] = []

    public static func == (left: Self, right: Self) -> Bool {
        left.count == right.count && left.byStatus.map(\.status) == right.byStatus.map(\.status)
            && left.byStatus.map(\.count) == right.byStatus.map(\.count)
    }
}

extension WorkflowEngine {
    /// Rows one List call reads at most; a page not full by then ends early with a token, so a
    /// query no index serves ends in bounded time (about 60–80 ms for 250,000 rows in a release
    /// build; a node reads at most `NodeConfiguration.listRowsOnLoop` of them on its Raft loop).
    public static let maxExaminedRowsPerPage = 250_000
    /// Runs per List page at most.
    public static let maxVisibilityPageSize = 1_000
    /// Up to this many rows, an index's rows are sorted by close time instead of walking the close order.
    static let maxRowsSortedByCloseTime = 10_000

    // MARK: Index maintenance (called from the apply path)

    /// A run started: add its row.
    mutating func indexStarted(_ run: RunState) {
        visibility.insert(VisibilityRow(run))
    }

    /// A run's search attributes changed (upsert).
    mutating func indexAttributes(_ run: RunState) {
        visibility.update(runId: run.key.runId) { $0.attributes = run.searchAttributes.indexedFields }
    }

    /// A run closed: its status, close time and final search attributes.
    mutating func indexClosed(_ summary: ClosedRun) {
        visibility.update(runId: summary.key.runId) { row in
            row.status = summary.status
            row.closeTime = summary.closeTime
            row.attributes = summary.searchAttributes.indexedFields
        }
    }

    /// A closed run's retention ended (or the summary limit evicted it).
    mutating func indexDropped(_ runId: String) {
        visibility.remove(runId: runId)
    }

    /// Rebuilds the index from the runs and closed summaries (after a restore).
    mutating func rebuildVisibilityIndex() {
        visibility = VisibilityIndex()
        for runId in runs.keys.sorted() { if let run = runs[runId] { visibility.insert(VisibilityRow(run)) } }
        for runId in closedOrder[closedOrderHead...] { if let summary = closed[runId] { visibility.insert(VisibilityRow(summary)) } }
    }

    /// Rows in the visibility index (open runs plus remembered closed runs).
    public var visibilityRowCount: Int { visibility.count }

    /// The index's hash (part of the state digest and the snapshot).
    public func visibilityDigest() -> UInt64 { visibility.digest() }

    // MARK: Queries

    /// The predicate for a namespace: the structured filter ANDed with the query, typed
    /// against the namespace's search attributes.
    func visibilityPredicate(namespace: String, query: ParsedVisibilityQuery,
                             filter: Ballast_V1_WorkflowExecutionFilter) throws(VisibilityQueryError) -> VisibilityPredicate {
        let registered = namespaces[namespace]?.searchAttributes ?? [:]
        let binder = VisibilityBinder(attributes: registered, namespace: namespace)
        var terms = try VisibilityFilterTerms.terms(filter, binder: binder)
        if let expression = query.expression { terms.append(try binder.bind(expression)) }
        return terms.count == 1 ? terms[0] : .and(terms)
    }

    /// One page of the runs matching `query` and `filter` in namespace `namespace` ("" is default),
    /// reading at most `maxExaminedRows` rows (1…`maxExaminedRowsPerPage`).
    public func listWorkflows(namespace requested: String, query: ParsedVisibilityQuery,
                              filter: Ballast_V1_WorkflowExecutionFilter = Ballast_V1_WorkflowExecutionFilter(),
                              pageSize requestedSize: Int, pageToken: [UInt8] = [],
                              maxExaminedRows: Int = maxExaminedRowsPerPage) throws(VisibilityQueryError) -> VisibilityPage {
        let namespace = requested.isEmpty ? Self.defaultNamespace : requested
        let pageSize = max(1, min(requestedSize, Self.maxVisibilityPageSize))
        let rowLimit = max(1, min(maxExaminedRows, Self.maxExaminedRowsPerPage))
        let predicate = try visibilityPredicate(namespace: namespace, query: query, filter: filter)
        let fingerprint = VisibilityPageToken.fingerprint(namespace: namespace, query: query, filter: filter)
        let position = try VisibilityPageToken.decode(pageToken, order: query.order, fingerprint: fingerprint)
        guard let space = visibility.space(namespace) else { return VisibilityPage(plan: "empty namespace") }
        let plan = VisibilityPlanner(space: space, index: visibility).plan(predicate)
        var page = VisibilityPage(plan: plan.description)
        var walk = VisibilityWalk(index: visibility, space: space, plan: plan, order: query.order, after: position,
                                  sortLimit: Self.maxRowsSortedByCloseTime)
        var keys: [VisibilityRowKey] = []
        var lastExamined: VisibilityRowKey?
        while let key = walk.next() {
            page.examinedRows += 1
            lastExamined = key
            guard let row = visibility.rows[key.slot], plan.predicate.matches(row) else {
                if page.examinedRows >= rowLimit { break }
                continue
            }
            if keys.count == pageSize {
                // One more match exists: the page ends with a token after its last run.
                page.nextPageToken = VisibilityPageToken.encode(keys[pageSize - 1], order: query.order, fingerprint: fingerprint)
                lastExamined = nil
                break
            }
            keys.append(key)
            if page.examinedRows >= rowLimit { break }
        }
        // Stopped at the limit: a token only if the walk has another row (peeked, not examined),
        // so a page that read the last row at its limit does not send the caller to an empty one.
        if let lastExamined, page.examinedRows >= rowLimit, walk.next() != nil {
            page.nextPageToken = VisibilityPageToken.encode(lastExamined, order: query.order, fingerprint: fingerprint)
            page.stoppedAtRowLimit = true
        }
        page.executions = keys.compactMap { key in
            runs[key.runId].map { info($0) } ?? closed[key.runId].map { info($0) }
        }
        return page
    }

    /// How many runs match, in total and per status.
    public func countWorkflows(namespace requested: String, query: ParsedVisibilityQuery,
                               filter: Ballast_V1_WorkflowExecutionFilter = Ballast_V1_WorkflowExecutionFilter()) throws(VisibilityQueryError) -> VisibilityCount {
        let namespace = requested.isEmpty ? Self.defaultNamespace : requested
        let predicate = try visibilityPredicate(namespace: namespace, query: query, filter: filter)
        guard let space = visibility.space(namespace) else { return VisibilityCount() }
        var perStatus = [Int64](repeating: 0, count: 16)
        if predicate == .and([]) {
            for status in 0..<perStatus.count {
                perStatus[status] = Int64(space.statusCount(status))
            }
        } else {
            let plan = VisibilityPlanner(space: space, index: visibility).plan(predicate)
            var walk = VisibilityWalk(index: visibility, space: space, plan: plan, order: .startTimeDescending, after: nil,
                                      sortLimit: 0)
            while let key = walk.next() {
                guard let row = visibility.rows[key.slot], predicate.matches(row) else { continue }
                perStatus[min(Int(row.status.rawValue), perStatus.count - 1)] += 1
            }
        }
        var result = VisibilityCount()
        for (raw, count) in perStatus.enumerated() where count > 0 {
            result.byStatus.append((Ballast_V1_WorkflowExecutionStatus(rawValue: raw) ?? .unspecified, count))
            result.count += count
        }
        return result
    }
}

/// The rows a plan visits, in the query's order, after the page token's position.
struct VisibilityWalk {
    private var merge: VisibilityMerge?
    private var sorted: [VisibilityRowKey] = []
    private var sortedPosition = 0
    private let order: VisibilityOrder
    private let plan: VisibilityPlan
    private var hasMore = true

    init(index: VisibilityIndex, space: NamespaceVisibility, plan: VisibilityPlan, order: VisibilityOrder,
         after position: VisibilityRowKey?, sortLimit: Int) {
        self.order = order
        self.plan = plan
        let range = order.byCloseTime ? plan.closeRange : plan.startRange
        let descending = order.descending
        let before: (VisibilityRowKey) -> Bool = descending
            ? { key in key.primary <= range.upperBound && (position.map { key < $0 } ?? true) }
            : { key in key.primary < range.lowerBound || (position.map { key <= $0 } ?? false) }
        if !order.byCloseTime {
            merge = VisibilityMerge(plan.streams ?? [space.byStart], descending: descending, before: before)
        } else if let streams = plan.streams, let rows = plan.streamRows, rows <= sortLimit {
            // A small index result: re-key its rows by close time and sort them.
            var keys: [VisibilityRowKey] = []
            var all = VisibilityMerge(streams, descending: false, before: { _ in false })
            while let key = all.next() {
                guard let row = index.rows[key.slot] else { continue }
                let closeKey = row.closeOrderKey(slot: key.slot)
                if range.contains(closeKey.primary), position.map({ descending ? closeKey < $0 : closeKey > $0 }) ?? true {
                    keys.append(closeKey)
                }
            }
            sorted = descending ? keys.sorted(by: >) : keys.sorted()
        } else {
            merge = VisibilityMerge([space.byClose], descending: descending, before: before)
        }
    }

    /// The next row key, nil when the walk is over.
    mutating func next() -> VisibilityRowKey? {
        guard hasMore else { return nil }
        if merge == nil {
            guard sortedPosition < sorted.count else { hasMore = false; return nil }
            sortedPosition += 1
            return sorted[sortedPosition - 1]
        }
        guard let key = merge?.next() else { hasMore = false; return nil }
        let range = order.byCloseTime ? plan.closeRange : plan.startRange
        if order.descending ? key.primary < range.lowerBound : key.primary > range.upperBound {
            hasMore = false
            return nil
        }
        return key
    }
}
