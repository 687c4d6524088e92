import BallastProto

/// Builds workflow histories by hand, the way the engine writes them, for unit tests of
/// workflow code and of the runtime: start, workflow-task cycles, the events of commands, and
/// inputs (activity outcomes, timers, signals, cancel requests).
public struct HistoryBuilder: Sendable {
    /// The events so far.
    public private(set) var events: [Ballast_V1_HistoryEvent] = []
    /// The time stamped on the next event (leader time, UTC nanoseconds).
    public var timeUnixNanos: Int64
    /// The workflow's identity for task infos.
    public var execution: Ballast_V1_WorkflowExecution
    /// The workflow type.
    public let workflowType: String
    /// The task queue.
    public var taskQueue: String
    /// The started event id of the last completed workflow task (0: none yet).
    public private(set) var previousStartedEventId: Int64 = 0
    private var openTask: (scheduled: Int64, started: Int64)?

    /// Begins a history with WorkflowExecutionStarted.
    public init(workflowType: String, input: Ballast_V1_Payloads = Ballast_V1_Payloads(), workflowId: String = "wf-1",
                runId: String = "run-1", taskQueue: String = "default", startTimeUnixNanos: Int64 = 1_700_000_000_000_000_000,
                configure: (inout Ballast_V1_WorkflowExecutionStartedEventAttributes) -> Void = { _ in }) {
        self.workflowType = workflowType
        self.timeUnixNanos = startTimeUnixNanos
        self.taskQueue = taskQueue
        self.execution = Ballast_V1_WorkflowExecution()
        execution.workflowID = workflowId
        execution.runID = runId
        var started = Ballast_V1_WorkflowExecutionStartedEventAttributes()
        started.workflowType.name = workflowType
        started.taskQueue = taskQueue
        started.input = input
        started.attempt = 1
        configure(&started)
        add(.workflowExecutionStarted(started))
    }

    /// The id of the next event.
    public var nextEventId: Int64 { Int64(events.count) + 1 }

    /// Appends an event and returns its id.
    @discardableResult
    public mutating func add(_ attributes: Ballast_V1_HistoryEvent.OneOf_Attributes) -> Int64 {
        var event = Ballast_V1_HistoryEvent()
        event.eventID = nextEventId
        event.eventTimeUnixNanos = timeUnixNanos
        event.attributes = attributes
        events.append(event)
        return event.eventID
    }

    /// Moves time forward.
    public mutating func advance(_ duration: Duration) {
        timeUnixNanos += duration.nanoseconds
    }

    /// Appends WorkflowTaskScheduled and WorkflowTaskStarted; returns the task info a worker gets.
    @discardableResult
    public mutating func startWorkflowTask() -> Ballast_V1_WorkflowTaskInfo {
        var scheduled = Ballast_V1_WorkflowTaskScheduledEventAttributes()
        scheduled.taskQueue = taskQueue
        scheduled.attempt = 1
        let scheduledId = add(.workflowTaskScheduled(scheduled))
        var started = Ballast_V1_WorkflowTaskStartedEventAttributes()
        started.scheduledEventID = scheduledId
        let startedId = add(.workflowTaskStarted(started))
        openTask = (scheduledId, startedId)
        return taskInfo()
    }

    /// The task info of the open workflow task.
    public func taskInfo() -> Ballast_V1_WorkflowTaskInfo {
        var info = Ballast_V1_WorkflowTaskInfo()
        info.namespace = "default"
        info.workflowExecution = execution
        info.workflowType.name = workflowType
        info.previousStartedEventID = previousStartedEventId
        info.startedEventID = openTask?.started ?? 0
        info.attempt = 1
        info.nextEventID = nextEventId
        info.taskQueue = taskQueue
        return info
    }

    /// Appends WorkflowTaskCompleted and the events of `commands`, as the engine writes them.
    /// Returns the event id written for each command.
    @discardableResult
    public mutating func completeWorkflowTask(with commands: [Ballast_V1_Command]) -> [Int64] {
        guard let task = openTask else { preconditionFailure("no open workflow task") }
        var completed = Ballast_V1_WorkflowTaskCompletedEventAttributes()
        completed.scheduledEventID = task.scheduled
        completed.startedEventID = task.started
        let completedId = add(.workflowTaskCompleted(completed))
        previousStartedEventId = task.started
        openTask = nil
        return commands.map { add(Self.event(for: $0, completedEventId: completedId, runId: execution.runID)) }
    }

    /// Appends WorkflowTaskFailed for the open task (e.g. after a non-determinism error).
    public mutating func failWorkflowTask(cause: Ballast_V1_WorkflowTaskFailedCause, failure: Ballast_V1_Failure) {
        guard let task = openTask else { preconditionFailure("no open workflow task") }
        var failed = Ballast_V1_WorkflowTaskFailedEventAttributes()
        failed.scheduledEventID = task.scheduled
        failed.startedEventID = task.started
        failed.cause = cause
        failed.failure = failure
        add(.workflowTaskFailed(failed))
        openTask = nil
    }

    /// The event the engine writes for a command.
    static func event(for command: Ballast_V1_Command, completedEventId: Int64, runId: String) -> Ballast_V1_HistoryEvent.OneOf_Attributes {
        switch command.attributes {
        case .scheduleActivityTask(let c):
            var e = Ballast_V1_ActivityTaskScheduledEventAttributes()
            e.activityID = c.activityID
            e.activityType = c.activityType
            e.taskQueue = c.taskQueue
            e.input = c.input
            e.scheduleToCloseTimeoutNanos = c.scheduleToCloseTimeoutNanos
            e.startToCloseTimeoutNanos = c.startToCloseTimeoutNanos
            e.heartbeatTimeoutNanos = c.heartbeatTimeoutNanos
            e.retryPolicy = c.retryPolicy
            e.workflowTaskCompletedEventID = completedEventId
            return .activityTaskScheduled(e)
        case .requestCancelActivityTask(let c):
            var e = Ballast_V1_ActivityTaskCancelRequestedEventAttributes()
            e.scheduledEventID = c.scheduledEventID
            e.workflowTaskCompletedEventID = completedEventId
            return .activityTaskCancelRequested(e)
        case .startTimer(let c):
            var e = Ballast_V1_TimerStartedEventAttributes()
            e.timerID = c.timerID
            e.startToFireTimeoutNanos = c.startToFireTimeoutNanos
            e.workflowTaskCompletedEventID = completedEventId
            return .timerStarted(e)
        case .cancelTimer(let c):
            var e = Ballast_V1_TimerCanceledEventAttributes()
            e.timerID = c.timerID
            e.workflowTaskCompletedEventID = completedEventId
            return .timerCanceled(e)
        case .completeWorkflowExecution(let c):
            var e = Ballast_V1_WorkflowExecutionCompletedEventAttributes()
            e.result = c.result
            e.workflowTaskCompletedEventID = completedEventId
            return .workflowExecutionCompleted(e)
        case .failWorkflowExecution(let c):
            var e = Ballast_V1_WorkflowExecutionFailedEventAttributes()
            e.failure = c.failure
            e.workflowTaskCompletedEventID = completedEventId
            return .workflowExecutionFailed(e)
        case .cancelWorkflowExecution(let c):
            var e = Ballast_V1_WorkflowExecutionCanceledEventAttributes()
            e.details = c.details
            e.workflowTaskCompletedEventID = completedEventId
            return .workflowExecutionCanceled(e)
        case .continueAsNewWorkflowExecution(let c):
            var e = Ballast_V1_WorkflowExecutionContinuedAsNewEventAttributes()
            e.newExecutionRunID = runId + "-next"
            e.workflowType = c.workflowType
            e.taskQueue = c.taskQueue
            e.input = c.input
            e.workflowTaskCompletedEventID = completedEventId
            e.initiator = .workflow
            return .workflowExecutionContinuedAsNew(e)
        case .recordMarker(let c):
            var e = Ballast_V1_MarkerRecordedEventAttributes()
            e.markerName = c.markerName
            e.details = c.details
            e.workflowTaskCompletedEventID = completedEventId
            return .markerRecorded(e)
        case .startChildWorkflowExecution(let c):
            var e = Ballast_V1_StartChildWorkflowExecutionInitiatedEventAttributes()
            e.namespace = c.namespace
            e.workflowID = c.workflowID
            e.workflowType = c.workflowType
            e.taskQueue = c.taskQueue
            e.input = c.input
            e.parentClosePolicy = c.parentClosePolicy
            e.workflowTaskCompletedEventID = completedEventId
            return .startChildWorkflowExecutionInitiated(e)
        case .signalExternalWorkflowExecution(let c):
            var e = Ballast_V1_SignalExternalWorkflowExecutionInitiatedEventAttributes()
            e.workflowTaskCompletedEventID = completedEventId
            e.workflowExecution = c.execution
            e.signalName = c.signalName
            e.input = c.input
            return .signalExternalWorkflowExecutionInitiated(e)
        case .upsertWorkflowSearchAttributes(let c):
            var e = Ballast_V1_UpsertWorkflowSearchAttributesEventAttributes()
            e.workflowTaskCompletedEventID = completedEventId
            e.searchAttributes = c.searchAttributes
            return .upsertWorkflowSearchAttributes(e)
        case .none:
            preconditionFailure("a command without attributes")
        }
    }

    // MARK: Inputs

    /// Appends ActivityTaskStarted and ActivityTaskCompleted for the activity scheduled at `scheduledEventId`.
    public mutating func activityCompleted(_ scheduledEventId: Int64, result: Ballast_V1_Payloads, attempt: Int32 = 1) {
        let startedId = activityStarted(scheduledEventId, attempt: attempt)
        var e = Ballast_V1_ActivityTaskCompletedEventAttributes()
        e.result = result
        e.scheduledEventID = scheduledEventId
        e.startedEventID = startedId
        add(.activityTaskCompleted(e))
    }

    /// Appends ActivityTaskStarted and ActivityTaskFailed.
    public mutating func activityFailed(_ scheduledEventId: Int64, failure: Ballast_V1_Failure,
                                        retryState: Ballast_V1_RetryState = .nonRetryableFailure, attempt: Int32 = 1) {
        let startedId = activityStarted(scheduledEventId, attempt: attempt)
        var e = Ballast_V1_ActivityTaskFailedEventAttributes()
        e.failure = failure
        e.scheduledEventID = scheduledEventId
        e.startedEventID = startedId
        e.retryState = retryState
        add(.activityTaskFailed(e))
    }

    /// Appends ActivityTaskCanceled (an activity canceled before or after it started).
    public mutating func activityCanceled(_ scheduledEventId: Int64, cancelRequestedEventId: Int64) {
        var e = Ballast_V1_ActivityTaskCanceledEventAttributes()
        e.scheduledEventID = scheduledEventId
        e.latestCancelRequestedEventID = cancelRequestedEventId
        add(.activityTaskCanceled(e))
    }

    private mutating func activityStarted(_ scheduledEventId: Int64, attempt: Int32) -> Int64 {
        var e = Ballast_V1_ActivityTaskStartedEventAttributes()
        e.scheduledEventID = scheduledEventId
        e.attempt = attempt
        return add(.activityTaskStarted(e))
    }

    /// Appends TimerFired.
    public mutating func timerFired(_ timerId: String, startedEventId: Int64) {
        var e = Ballast_V1_TimerFiredEventAttributes()
        e.timerID = timerId
        e.startedEventID = startedEventId
        add(.timerFired(e))
    }

    /// Appends WorkflowExecutionSignaled.
    public mutating func signal(_ name: String, input: Ballast_V1_Payloads = Ballast_V1_Payloads()) {
        var e = Ballast_V1_WorkflowExecutionSignaledEventAttributes()
        e.signalName = name
        e.input = input
        add(.workflowExecutionSignaled(e))
    }

    /// Appends WorkflowExecutionCancelRequested.
    public mutating func cancelRequested(reason: String = "") {
        var e = Ballast_V1_WorkflowExecutionCancelRequestedEventAttributes()
        e.cause = reason
        add(.workflowExecutionCancelRequested(e))
    }

    /// Appends ChildWorkflowExecutionStarted for the child initiated at `initiatedEventId`.
    @discardableResult
    public mutating func childStarted(_ initiatedEventId: Int64, workflowId: String, runId: String, type: String) -> Int64 {
        var e = Ballast_V1_ChildWorkflowExecutionStartedEventAttributes()
        e.initiatedEventID = initiatedEventId
        e.workflowExecution.workflowID = workflowId
        e.workflowExecution.runID = runId
        e.workflowType.name = type
        return add(.childWorkflowExecutionStarted(e))
    }

    /// Appends ChildWorkflowExecutionCompleted.
    public mutating func childCompleted(_ initiatedEventId: Int64, startedEventId: Int64, result: Ballast_V1_Payloads) {
        var e = Ballast_V1_ChildWorkflowExecutionCompletedEventAttributes()
        e.initiatedEventID = initiatedEventId
        e.startedEventID = startedEventId
        e.result = result
        add(.childWorkflowExecutionCompleted(e))
    }
}
