import BallastProto

/// A remembered closed run, ordered by when its retention ends (then by run id).
struct RetentionKey: Comparable, Sendable {
    var expiry: Int64
    var runId: String

    static func < (lhs: RetentionKey, rhs: RetentionKey) -> Bool {
        lhs.expiry != rhs.expiry ? lhs.expiry < rhs.expiry : lhs.runId < rhs.runId
    }
}

/// Retention deadlines, a window at a time.
///
/// Every remembered closed run ends with a RetentionExpired entry once its namespace's
/// retention has passed. Handing the leader one deadline per closed run filled its deadline
/// queue: past a million closed runs (seven days of 1.7 closes a second) the queue, bounded at
/// a million, dropped each new task timeout and re-read every deadline from the engine when
/// the dropped one came due, every few seconds, with all deadlines late meanwhile. Only
/// the `retentionDeadlineWindow` closed runs whose retention ends first have a deadline out
/// (armed when they enter that window, listed by `dueTimers()`); each one that leaves it
/// (expired, or dropped beyond `maxClosedSummaries`) arms the run that takes its place. The
/// window is wide enough that a burst of expiries goes out in parallel proposals, not one
/// round trip at a time.
///
/// The order is derived from the closed-run summaries (rebuilt from them on restore), so it is
/// in neither the snapshot nor the digest.
extension WorkflowEngine {
    /// How many closed runs, earliest retention expiry first, have a deadline out at a time.
    public static let retentionDeadlineWindow = 256

    /// The RetentionExpired deadline of a closed run.
    func retentionDeadline(_ summary: ClosedRun) -> DueTimer {
        var request = Ballast_V1_RetentionExpiredRequest()
        request.namespace = summary.key.namespace
        request.workflowExecution = summary.key.execution
        return DueTimer(dueTimeUnixNanos: summary.retentionExpiry, run: summary.key, payload: .retentionExpired(request))
    }

    /// Whether `key` (held in the order) is among the first `retentionDeadlineWindow`.
    private func isInRetentionWindow(_ key: RetentionKey) -> Bool {
        guard let last = retentionOrder.element(atIndex: Self.retentionDeadlineWindow - 1) else { return true }
        return key <= last
    }

    /// Adds a closed run to the order; arms its deadline if it lands in the window.
    mutating func orderForRetention(_ summary: ClosedRun, _ context: inout ApplyContext) {
        let key = RetentionKey(expiry: summary.retentionExpiry, runId: summary.key.runId)
        retentionOrder.insert(key)
        if isInRetentionWindow(key) { context.arm(retentionDeadline(summary)) }
    }

    /// Removes a closed run from the order; if it was in the window, arms the run that takes its
    /// place (whose summary is read from `closed`).
    mutating func forgetForRetention(_ summary: ClosedRun, _ context: inout ApplyContext) {
        let key = RetentionKey(expiry: summary.retentionExpiry, runId: summary.key.runId)
        let wasInWindow = isInRetentionWindow(key)
        guard retentionOrder.remove(key), wasInWindow,
              let newcomer = retentionOrder.element(atIndex: Self.retentionDeadlineWindow - 1),
              let next = closed[newcomer.runId] else { return }
        context.arm(retentionDeadline(next))
    }

    /// The retention deadlines of the window, earliest first (what `dueTimers()` lists).
    func retentionWindowDeadlines() -> [DueTimer] {
        var timers: [DueTimer] = []
        for key in retentionOrder.elements.prefix(Self.retentionDeadlineWindow) {
            if let summary = closed[key.runId] { timers.append(retentionDeadline(summary)) }
        }
        return timers
    }

    /// Rebuilds the order from the closed-run summaries (after a restore).
    mutating func rebuildRetentionOrder() {
        retentionOrder = SortedChunks()
        let keys = closed.values.map { RetentionKey(expiry: $0.retentionExpiry, runId: $0.key.runId) }.sorted()
        for key in keys { retentionOrder.insert(key) }
    }
}
