import BallastProto

// The boundary between the worker's network loop (streams, slots, responses, reconnection)
// and the code that runs tasks (the deterministic workflow runtime and the activity
// executor). The worker calls these; the runtime implements them.

/// What running one workflow task produced.
public enum WorkflowTaskResult: Sendable {
    /// Every branch of the workflow is blocked: complete the task with these commands
    /// (RespondWorkflowTaskCompleted).
    case completed([Ballast_V1_Command])
    /// The task could not be run (non-determinism, unknown workflow type, a panic in workflow
    /// code): fail it (RespondWorkflowTaskFailed); the run waits for a fixed worker.
    case failed(Ballast_V1_WorkflowTaskFailedCause, Ballast_V1_Failure)
    /// The history given started after event 1 (the server sent only the events since the
    /// previous task) and no cached run continues from there: call again with the whole history.
    case needsWholeHistory
}

/// What answering one query produced.
public enum QueryTaskResult: Sendable {
    /// The query handler's answer.
    case answered(Ballast_V1_Payloads)
    /// The handler failed or does not exist.
    case failed(Ballast_V1_Failure)
}

/// Runs workflow tasks and queries (the workflow runtime).
public protocol WorkflowTaskHandling: Sendable {
    /// Runs one workflow task. `history` is the run's history so far, in event-id order, ending
    /// with the task's transient events when `task.attempt > 1`: either whole, from event 1, or
    /// only the events after `task.previousStartedEventID`. The handler may use a cached run and
    /// look only at the events it has not seen; given a partial history and no such run, it
    /// answers `.needsWholeHistory`.
    func handleWorkflowTask(_ task: Ballast_V1_WorkflowTaskInfo, history: [Ballast_V1_HistoryEvent]) async -> WorkflowTaskResult
    /// Answers a query from the run's state after replaying `history` (or from the cache).
    func handleQuery(_ query: Ballast_V1_QueryTask, history: [Ballast_V1_HistoryEvent]) async -> QueryTaskResult
}

/// What running one activity attempt produced.
public enum ActivityTaskResult: Sendable {
    /// RespondActivityTaskCompleted with this result.
    case completed(Ballast_V1_Payloads)
    /// RespondActivityTaskFailed; the failure may be marked non-retryable.
    case failed(Ballast_V1_Failure, lastHeartbeatDetails: Ballast_V1_Payloads?)
    /// RespondActivityTaskCanceled (after the workflow asked to cancel it).
    case canceled(details: Ballast_V1_Payloads?)
}

/// How a running activity reports progress; the worker sends RecordActivityTaskHeartbeat.
public protocol ActivityHeartbeating: Sendable {
    /// Records `details`; returns true when the workflow asked to cancel this activity.
    func heartbeat(_ details: Ballast_V1_Payloads) async -> Bool
}

/// Runs activity attempts (the activity executor).
public protocol ActivityTaskHandling: Sendable {
    /// Runs one attempt; cancellation of the Swift task means the worker is shutting down or
    /// the activity was canceled.
    func handleActivityTask(_ task: Ballast_V1_ActivityTaskInfo, heartbeat: any ActivityHeartbeating) async -> ActivityTaskResult
}
