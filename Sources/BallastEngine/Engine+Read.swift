import BallastProto

/// A predicate for List; unset fields match everything.
public struct ListFilter: Sendable {
    /// Namespace to list ("" means default).
    public var namespace = ""
    /// Only runs with this status.
    public var status: Ballast_V1_WorkflowExecutionStatus?
    /// Only runs of this workflow type.
    public var workflowType: String?
    /// Start time range, inclusive.
    public var startTimeRange: ClosedRange<Int64>?
    /// Close time range, inclusive (open runs never match).
    public var closeTimeRange: ClosedRange<Int64>?
    /// Search attributes that must be present with exactly these values.
    public var searchAttributes: [String: Ballast_V1_SearchAttributeValue] = [:]
    /// At most this many results.
    public var limit = 1_000

    /// Matches everything in the default namespace.
    public init() {}
}

extension WorkflowEngine {
    /// Tasks ready for workers on a queue (any namespace), in dispatch order (rebuilt from state alone).
    public func readyTasks(taskQueue: String) -> [ReadyTask] {
        readyTasks(namespace: nil, taskQueue: taskQueue, limitPerKind: .max).tasks
    }

    /// The earliest `limitPerKind` ready workflow tasks and the earliest `limitPerKind` ready
    /// activity tasks of a queue in `namespace` (every namespace when nil), in dispatch order,
    /// and whether more of each kind are ready. Walks every open run: the leader calls it on a
    /// copy of the engine, off the loop thread.
    public func readyTasks(namespace: String?, taskQueue: String, limitPerKind: Int)
        -> (tasks: [ReadyTask], moreWorkflowTasks: Bool, moreActivityTasks: Bool) {
        var workflow: [ReadyTask] = []
        var activities: [ReadyTask] = []
        // Each run is read field by field where it is (`forEachLent`); only a run with a ready
        // task has its key copied, and only a ready activity is copied out of the run's map.
        runs.forEachLent { run in
            guard namespace == nil || run.namespace == namespace else { return }
            if let task = run.workflowTask, !task.isStarted, run.taskQueue == taskQueue {
                workflow.append(ReadyTask(kind: .workflow, taskQueue: run.taskQueue, run: run.key,
                                          scheduledEventId: task.scheduledEventId, attempt: task.attempt,
                                          activityId: "", sequence: task.sequence))
            }
            let pending = run.activities
            for position in pending.values.indices
            where pending.values[position].phase == .scheduled && pending.values[position].attributes.taskQueue == taskQueue {
                activities.append(readyTask(run.key, pending.values[position]))
            }
        }
        let moreWorkflowTasks = workflow.count > limitPerKind
        let moreActivityTasks = activities.count > limitPerKind
        var tasks = Self.earliest(workflow, limitPerKind)
        tasks += Self.earliest(activities, limitPerKind)
        return (Self.earliest(tasks, tasks.count), moreWorkflowTasks, moreActivityTasks)
    }

    /// The `limit` tasks of lowest sequence (sequences are unique), in that order. The
    /// sequences are sorted and the tasks gathered once: sorting the tasks themselves copied
    /// each (retaining its strings) at every merge step.
    private static func earliest(_ tasks: [ReadyTask], _ limit: Int) -> [ReadyTask] {
        let order = tasks.indices.map { (sequence: tasks[$0].sequence, index: $0) }.sorted { $0.sequence < $1.sequence }
        return order.prefix(limit).map { tasks[$0.index] }
    }

    /// Whether `task` is ready now, exactly as `readyTasks` would list it: its run is open and
    /// it is the run's unstarted workflow task, or a scheduled activity attempt, with the same
    /// queue and sequence.
    public func isReady(_ task: ReadyTask) -> Bool {
        guard let run = runs[task.run.runId], run.key == task.run else { return false }
        switch task.kind {
        case .workflow:
            guard let pending = run.workflowTask, !pending.isStarted else { return false }
            return ReadyTask(kind: .workflow, taskQueue: run.taskQueue, run: run.key, scheduledEventId: pending.scheduledEventId,
                             attempt: pending.attempt, activityId: "", sequence: pending.sequence) == task
        case .activity:
            guard let activity = run.activities[task.scheduledEventId], activity.phase == .scheduled else { return false }
            return readyTask(run.key, activity) == task
        }
    }

    /// Every armed deadline, earliest first, so a new leader can rebuild its timer wheel: those
    /// of the open runs, and the retention deadlines of the `retentionDeadlineWindow` closed
    /// runs whose retention ends first (each that leaves the window arms the next; see
    /// RetentionOrder.swift).
    public func dueTimers() -> [DueTimer] {
        var timers: [DueTimer] = []
        for run in runs.values { timers += deadlines(of: run) }
        timers += retentionWindowDeadlines()
        // Their positions are sorted and the timers gathered once: sorting the timers themselves
        // copied each (about 250 bytes, retaining its strings and payload) at every merge step,
        // three quarters of the 1.0–1.6 s a listing took for 100,000 open runs (now 0.28–0.42 s).
        // `sortKey` is a total order, so the order is the same.
        let due = timers.map(\.dueTimeUnixNanos)
        let order = timers.withUnsafeBufferPointer { listed in
            listed.indices.sorted { due[$0] != due[$1] ? due[$0] < due[$1] : DueTimer.sortKey(listed[$0], listed[$1]) }
        }
        return order.map { timers[$0] }
    }

    /// The earliest deadline, if any.
    public func nextDeadline() -> Int64? { dueTimers().first?.dueTimeUnixNanos }

    /// A run's execution (its run id resolved), status and history length: what `describe`
    /// answers about them, without building the rest of its answer. Same errors as `describe`.
    public func runProgress(namespace: String, execution: Ballast_V1_WorkflowExecution) throws(EngineRejection) -> RunProgress {
        let resolved = try resolveNamespace(namespace).name
        let runId = try resolveRunId(namespace: resolved, execution: execution)
        if let summary = closed[runId] {
            return RunProgress(execution: summary.key.execution, status: summary.status, historyLength: summary.historyLength)
        }
        guard let run = runs[runId] else { throw .workflowNotFound(namespace: resolved, workflowId: execution.workflowID, runId: runId) }
        return RunProgress(execution: run.key.execution, status: .running, historyLength: run.historyLength)
    }

    /// A closed run's progress by its key, if the engine still holds it (nil: running or unknown).
    public func closedRunProgress(_ key: RunKey) -> RunProgress? {
        closed[key.runId].map { RunProgress(execution: $0.key.execution, status: $0.status, historyLength: $0.historyLength) }
    }

    /// Describe: visibility info plus pending work of an open run (or the summary of a closed one).
    public func describe(namespace: String, execution: Ballast_V1_WorkflowExecution) throws(EngineRejection) -> Ballast_V1_DescribeWorkflowExecutionResponse {
        let resolved = try resolveNamespace(namespace).name
        let runId = try resolveRunId(namespace: resolved, execution: execution)
        var response = Ballast_V1_DescribeWorkflowExecutionResponse()
        if let summary = closed[runId] {
            response.info = info(summary)
            return response
        }
        guard let run = runs[runId] else { throw .workflowNotFound(namespace: resolved, workflowId: execution.workflowID, runId: runId) }
        response.info = info(run)
        response.pendingActivities = run.activities.keys.sorted().compactMap { run.activities[$0].map(pendingInfo) }
        response.pendingTimers = run.timers.keys.sorted().compactMap { id in
            run.timers[id].map { timer in
                var info = Ballast_V1_PendingTimerInfo()
                (info.timerID, info.startedEventID, info.fireTimeUnixNanos) = (timer.timerId, timer.startedEventId, timer.fireTime)
                return info
            }
        }
        response.pendingChildren = run.children.keys.sorted().compactMap { id in
            run.children[id].map { child in
                var info = Ballast_V1_PendingChildInfo()
                (info.namespace, info.workflowID, info.runID) = (child.namespace, child.workflowId, child.runId)
                info.workflowType.name = child.workflowType
                (info.initiatedEventID, info.parentClosePolicy) = (child.initiatedEventId, child.parentClosePolicy)
                return info
            }
        }
        if let task = run.workflowTask {
            var info = Ballast_V1_PendingWorkflowTaskInfo()
            (info.scheduledEventID, info.attempt) = (task.scheduledEventId, task.attempt)
            info.state = task.isStarted ? "started" : "scheduled"
            (info.scheduledTimeUnixNanos, info.startedTimeUnixNanos) = (task.scheduledTime, task.startedTime)
            response.pendingWorkflowTask = info
        }
        response.executionExpirationTimeUnixNanos = run.executionExpiration
        response.runExpirationTimeUnixNanos = run.runExpiration
        response.cancelRequested = run.cancelRequested
        return response
    }

    private func pendingInfo(_ activity: PendingActivity) -> Ballast_V1_PendingActivityInfo {
        var info = Ballast_V1_PendingActivityInfo()
        info.activityID = activity.activityId
        info.activityType = activity.attributes.activityType
        info.scheduledEventID = activity.scheduledEventId
        switch activity.phase {
        case .scheduled: info.state = "scheduled"
        case .started: info.state = activity.cancelRequested ? "cancel_requested" : "started"
        case .backoff: info.state = "backoff"
        }
        info.attempt = activity.attempt
        if let details = activity.heartbeatDetails { info.heartbeatDetails = details }
        info.lastHeartbeatTimeUnixNanos = activity.lastHeartbeatTime
        info.lastStartedTimeUnixNanos = activity.startedTime
        if let failure = activity.lastFailure { info.lastFailure = failure }
        info.nextAttemptScheduleTimeUnixNanos = activity.phase == .backoff ? activity.retryTime : 0
        info.maximumAttempts = activity.attributes.retryPolicy.maximumAttempts
        info.lastWorkerIdentity = activity.identity
        return info
    }

    func info(_ run: RunState) -> Ballast_V1_WorkflowExecutionInfo {
        var info = Ballast_V1_WorkflowExecutionInfo()
        info.namespace = run.key.namespace
        info.execution = run.key.execution
        info.type.name = run.workflowType
        info.taskQueue = run.taskQueue
        info.status = .running
        info.startTimeUnixNanos = run.startTime
        info.historyLength = run.historyLength
        info.memo = run.memo
        info.searchAttributes = run.searchAttributes
        if let parent = run.parent { (info.parentNamespace, info.parentExecution) = (parent.namespace, parent.key.execution) }
        info.historyHash = run.historyHash
        info.firstRunID = run.firstRunId
        return info
    }

    func info(_ summary: ClosedRun) -> Ballast_V1_WorkflowExecutionInfo {
        var info = Ballast_V1_WorkflowExecutionInfo()
        info.namespace = summary.key.namespace
        info.execution = summary.key.execution
        info.type.name = summary.workflowType
        info.taskQueue = summary.taskQueue
        info.status = summary.status
        info.startTimeUnixNanos = summary.startTime
        info.closeTimeUnixNanos = summary.closeTime
        info.historyLength = summary.historyLength
        info.memo = summary.memo
        info.searchAttributes = summary.searchAttributes
        if let parent = summary.parent { (info.parentNamespace, info.parentExecution) = (parent.namespace, parent.key.execution) }
        info.historyHash = summary.historyHash
        info.firstRunID = summary.firstRunId
        return info
    }

    /// List: runs (open and remembered closed) matching a filter, newest start first, then by run id.
    public func list(_ filter: ListFilter) -> [Ballast_V1_WorkflowExecutionInfo] {
        let namespace = filter.namespace.isEmpty ? Self.defaultNamespace : filter.namespace
        var matches: [Ballast_V1_WorkflowExecutionInfo] = []
        for run in runs.values where run.key.namespace == namespace {
            let candidate = info(run)
            if Self.matches(candidate, filter) { matches.append(candidate) }
        }
        for summary in closed.values where summary.key.namespace == namespace {
            let candidate = info(summary)
            if Self.matches(candidate, filter) { matches.append(candidate) }
        }
        matches.sort {
            ($0.startTimeUnixNanos, $1.execution.runID) > ($1.startTimeUnixNanos, $0.execution.runID)
        }
        return Array(matches.prefix(max(0, filter.limit)))
    }

    static func matches(_ info: Ballast_V1_WorkflowExecutionInfo, _ filter: ListFilter) -> Bool {
        if let status = filter.status, info.status != status { return false }
        if let type = filter.workflowType, info.type.name != type { return false }
        if let range = filter.startTimeRange, !range.contains(info.startTimeUnixNanos) { return false }
        if let range = filter.closeTimeRange, info.closeTimeUnixNanos == 0 || !range.contains(info.closeTimeUnixNanos) {
            return false
        }
        for (name, value) in filter.searchAttributes where info.searchAttributes.indexedFields[name] != value {
            return false
        }
        return true
    }

    /// GetHistory: one page of a run's history from the store; the page token is the next event id.
    public func history(
        _ request: Ballast_V1_GetWorkflowExecutionHistoryRequest, store: some HistoryStore
    ) throws(EngineRejection) -> Ballast_V1_GetWorkflowExecutionHistoryResponse {
        let namespace = try resolveNamespace(request.namespace).name
        let runId = try resolveRunId(namespace: namespace, execution: request.execution)
        let length = runs[runId]?.historyLength ?? closed[runId]?.historyLength ?? 0
        var from: Int64 = 1
        if !request.nextPageToken.isEmpty {
            guard let token = try? Ballast_V1_HistoryPageToken(serializedBytes: request.nextPageToken), token.nextEventID >= 1 else {
                throw .invalidArgument("next_page_token does not decode")
            }
            from = token.nextEventID
        }
        let pageSize = request.maximumPageSize > 0 ? Int(request.maximumPageSize) : 1_000
        let events = store.read(runId: runId, fromEventId: from, maxEvents: pageSize)
        var response = Ballast_V1_GetWorkflowExecutionHistoryResponse()
        response.history.events = events
        if let last = events.last, last.eventID < length {
            var token = Ballast_V1_HistoryPageToken()
            token.nextEventID = last.eventID + 1
            response.nextPageToken = (try? token.serializedData()) ?? response.nextPageToken
        }
        return response
    }
}
