import BallastProto

extension WorkflowEngine {
    /// Whether a deadline the leader holds is still one the engine has — whether `dueTimers()`
    /// would list it now. A deadline that is not (its task completed, its timer was canceled,
    /// its attempt was retried, its run closed) would only be committed to be rejected as
    /// stale, so the leader drops it instead of proposing it. A pure read of the state.
    public func isPending(_ deadline: DueTimer) -> Bool {
        let key = deadline.run
        if case .retentionExpired = deadline.payload {
            guard let summary = closed[key.runId], summary.key == key else { return false }
            return summary.retentionExpiry == deadline.dueTimeUnixNanos
        }
        guard let run = runs[key.runId], run.key == key else { return false }
        switch deadline.payload {
        case .timerFired(let request):
            return run.timers[request.timerID].map { timerDue(key, $0) == deadline } ?? false
        case .activityTimedOut(let request):
            return run.activities[request.scheduledEventID].map { activityDeadline(key, $0) == deadline } ?? false
        case .activityRetryDue(let request):
            return run.activities[request.scheduledEventID].map { activityDeadline(key, $0) == deadline } ?? false
        case .workflowTaskTimedOut:
            guard let task = run.workflowTask, task.isStarted else { return false }
            return workflowTaskTimeoutTimer(run, task) == deadline
        default:
            return deadlines(of: run).contains(deadline)
        }
    }

    /// Every deadline of one open run, in the order `dueTimers()` collects them.
    func deadlines(of run: RunState) -> [DueTimer] {
        var timers: [DueTimer] = []
        for timer in run.timers.values { timers.append(timerDue(run.key, timer)) }
        for activity in run.activities.values {
            if let due = activityDeadline(run.key, activity) { timers.append(due) }
        }
        if let task = run.workflowTask, task.isStarted { timers.append(workflowTaskTimeoutTimer(run, task)) }
        if let due = executionTimeoutTimer(run) { timers.append(due) }
        if run.backoffUntil > 0 {
            var request = Ballast_V1_WorkflowBackoffDueRequest()
            request.namespace = run.key.namespace
            request.workflowExecution = run.key.execution
            timers.append(DueTimer(dueTimeUnixNanos: run.backoffUntil, run: run.key, payload: .workflowBackoffDue(request)))
        }
        return timers
    }
}
