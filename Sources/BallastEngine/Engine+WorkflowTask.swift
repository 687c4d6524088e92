import BallastProto

extension WorkflowEngine {
    /// Schedules the run's workflow task; attempts > 1 are transient (their events are written on success).
    mutating func scheduleWorkflowTask(_ run: inout RunState, attempt: Int32, _ context: inout ApplyContext) {
        precondition(run.workflowTask == nil, "a run has at most one pending workflow task")
        let scheduledId: Int64
        if attempt == 1 {
            var attributes = Ballast_V1_WorkflowTaskScheduledEventAttributes()
            attributes.taskQueue = run.taskQueue
            attributes.startToCloseTimeoutNanos = run.workflowTaskTimeout
            attributes.attempt = 1
            scheduledId = run.append(.workflowTaskScheduled(attributes), &context)
        } else {
            scheduledId = run.nextEventId
        }
        let sequence = takeSequence()
        run.workflowTask = WorkflowTaskState(
            scheduledEventId: scheduledId, attempt: attempt, scheduledTime: context.now, sequence: sequence)
        context.ready(ReadyTask(
            kind: .workflow, taskQueue: run.taskQueue, run: run.key, scheduledEventId: scheduledId,
            attempt: attempt, activityId: "", sequence: sequence))
    }

    /// Schedules a workflow task if none is pending and no backoff holds it back.
    mutating func ensureWorkflowTask(_ run: inout RunState, _ context: inout ApplyContext) {
        guard run.workflowTask == nil, run.backoffUntil == 0 else { return }
        scheduleWorkflowTask(&run, attempt: 1, &context)
    }

    /// Puts an open run back, enforcing the history length and size limits.
    mutating func storeRun(_ run: consuming RunState, _ context: inout ApplyContext) {
        if run.historyLength >= limits.historyMaxEvents {
            let message = "history length \(run.historyLength) reached the limit of \(limits.historyMaxEvents) events"
            failForHistoryLimit(&run, type: "HistoryLengthLimitExceeded", message: message, &context)
            return
        }
        // Counted and checked only by entries of format 4 on (`historySizeFormatVersion`), with the
        // events waiting for the workflow task in flight (a run's memory on every node).
        let countsSize = context.countsHistorySize
        let historySize = run.historySizeBytes.addingSaturated(run.bufferedSize)
        if countsSize, historySize >= limits.historyMaxBytes {
            let message = "history size \(historySize) bytes reached the limit of \(limits.historyMaxBytes) bytes"
            failForHistoryLimit(&run, type: "HistorySizeLimitExceeded", message: message, &context)
            return
        }
        if !run.historyWarned, run.historyLength >= limits.historyWarnEvents {
            run.historyWarned = true
            context.result.warnings.append(.historyLengthWarning(run.key, length: run.historyLength))
        }
        if countsSize, !run.historySizeWarned, historySize >= limits.historyWarnBytes {
            run.historySizeWarned = true
            context.result.warnings.append(.historySizeWarning(run.key, bytes: historySize))
        }
        // Moved, not copied, into the map (a plain assignment copied all of RunState's fields and released them).
        let runId = run.key.runId
        runs.updateValue(consume run, forKey: runId)
    }

    /// Fails a run whose history reached a limit: non-retryable, so no retry policy starts it again.
    private mutating func failForHistoryLimit(_ run: inout RunState, type: String, message: String, _ context: inout ApplyContext) {
        var failure = Ballast_V1_Failure()
        failure.message = message
        failure.type = type
        failure.nonRetryable = true
        failure.source = "Server"
        var attributes = Ballast_V1_WorkflowExecutionFailedEventAttributes()
        attributes.failure = failure
        attributes.retryState = .nonRetryableFailure
        forceClose(&run, RunClose(event: .workflowExecutionFailed(attributes), status: .failed), &context)
    }

    /// Takes out the open run a workflow-task token names (its pending task must match);
    /// a mismatch puts the run back untouched and rejects.
    mutating func takeWorkflowTaskRun(token: Ballast_V1_TaskToken, mustBeStarted: Bool) throws(EngineRejection) -> RunState {
        guard !token.isActivity else { throw .staleTaskToken("an activity token was given for a workflow task") }
        guard let run = runs.removeValue(forKey: token.runID) else {
            throw .staleTaskToken("run \(token.namespace)/\(token.workflowID)/\(token.runID) is not open")
        }
        do {
            try Self.checkWorkflowTask(run, token: token, mustBeStarted: mustBeStarted)
        } catch {
            runs[token.runID] = run
            throw error
        }
        return run
    }

    private static func checkWorkflowTask(_ run: RunState, token: Ballast_V1_TaskToken, mustBeStarted: Bool) throws(EngineRejection) {
        guard run.key.namespace == token.namespace, run.key.workflowId == token.workflowID else {
            throw .staleTaskToken("run \(token.runID) does not belong to \(token.namespace)/\(token.workflowID)")
        }
        guard let task = run.workflowTask, task.scheduledEventId == token.scheduledEventID, task.attempt == token.attempt else {
            throw .staleTaskToken("workflow task \(token.scheduledEventID) attempt \(token.attempt) of \(run.key) is not pending")
        }
        guard token.taskQueue.isEmpty || token.taskQueue == run.taskQueue else {
            throw .staleTaskToken("the token names task queue \(token.taskQueue), not the run's")
        }
        if mustBeStarted, !task.isStarted {
            throw .staleTaskToken("workflow task \(token.scheduledEventID) of \(run.key) was not started")
        }
    }

    /// RecordWorkflowTaskStarted: a worker took the task.
    mutating func workflowTaskStarted(_ request: Ballast_V1_RecordWorkflowTaskStartedRequest, _ context: inout ApplyContext) throws(EngineRejection) {
        let token = try decodeTaskToken(request.taskToken)
        try recordWorkflowTaskStarted(takeWorkflowTaskRun(token: token, mustBeStarted: false), request, &context)
    }

    /// `workflowTaskStarted` for the run taken out of the map. The run is a consuming parameter so
    /// that it is moved back into the map, not copied (Swift 6.3 refuses `consume` of the local
    /// `var` the handler had, and copied all of `RunState` for `storeRun`).
    private mutating func recordWorkflowTaskStarted(
        _ run: consuming RunState, _ request: Ballast_V1_RecordWorkflowTaskStartedRequest, _ context: inout ApplyContext
    ) throws(EngineRejection) {
        guard var task = run.workflowTask else { preconditionFailure("checked by takeWorkflowTaskRun") }
        if task.isStarted {
            runs[run.key.runId] = run
            guard !request.requestID.isEmpty, task.requestId == request.requestID else {
                throw .staleTaskToken("workflow task \(task.scheduledEventId) of \(run.key) is already started")
            }
            context.result.response = .workflowTaskStarted(workflowTaskInfo(run, task))
            return
        }
        if task.isTransient {
            task.startedEventId = task.scheduledEventId + 1
        } else {
            var attributes = Ballast_V1_WorkflowTaskStartedEventAttributes()
            attributes.scheduledEventID = task.scheduledEventId
            attributes.identity = request.identity
            attributes.requestID = request.requestID
            task.startedEventId = run.append(.workflowTaskStarted(attributes), &context)
        }
        task.startedTime = context.now
        task.identity = request.identity
        task.requestId = request.requestID
        run.workflowTask = task
        context.arm(workflowTaskTimeoutTimer(run, task))
        context.result.response = .workflowTaskStarted(workflowTaskInfo(run, task))
        storeRun(consume run, &context)
    }

    /// The start-to-close deadline of a started workflow task.
    func workflowTaskTimeoutTimer(_ run: RunState, _ task: WorkflowTaskState) -> DueTimer {
        var request = Ballast_V1_WorkflowTaskTimedOutRequest()
        request.namespace = run.key.namespace
        request.workflowExecution = run.key.execution
        request.scheduledEventID = task.scheduledEventId
        request.attempt = task.attempt
        return DueTimer(dueTimeUnixNanos: task.startedTime + run.workflowTaskTimeout, run: run.key,
                        payload: .workflowTaskTimedOut(request))
    }

    /// What the worker is told about a started workflow task.
    func workflowTaskInfo(_ run: RunState, _ task: WorkflowTaskState) -> Ballast_V1_WorkflowTaskInfo {
        var info = Ballast_V1_WorkflowTaskInfo()
        let ready = ReadyTask(kind: .workflow, taskQueue: run.taskQueue, run: run.key, scheduledEventId: task.scheduledEventId,
                              attempt: task.attempt, activityId: "", sequence: task.sequence)
        info.taskToken = ready.taskTokenData
        info.namespace = run.key.namespace
        info.workflowExecution = run.key.execution
        info.workflowType.name = run.workflowType
        info.previousStartedEventID = run.previousStartedEventId
        info.startedEventID = task.startedEventId
        info.attempt = task.attempt
        info.nextEventID = run.nextEventId
        info.taskQueue = run.taskQueue
        info.scheduledTimeUnixNanos = task.scheduledTime
        info.startedTimeUnixNanos = task.startedTime
        if task.isTransient { info.transientEvents = transientEvents(run, task) }
        return info
    }

    /// The scheduled and started events of a transient attempt, as they will be written on success.
    func transientEvents(_ run: RunState, _ task: WorkflowTaskState) -> [Ballast_V1_HistoryEvent] {
        var scheduled = Ballast_V1_HistoryEvent()
        scheduled.eventID = task.scheduledEventId
        scheduled.eventTimeUnixNanos = task.scheduledTime
        var scheduledAttributes = Ballast_V1_WorkflowTaskScheduledEventAttributes()
        scheduledAttributes.taskQueue = run.taskQueue
        scheduledAttributes.startToCloseTimeoutNanos = run.workflowTaskTimeout
        scheduledAttributes.attempt = task.attempt
        scheduled.attributes = .workflowTaskScheduled(scheduledAttributes)
        var started = Ballast_V1_HistoryEvent()
        started.eventID = task.scheduledEventId + 1
        started.eventTimeUnixNanos = task.startedTime
        var startedAttributes = Ballast_V1_WorkflowTaskStartedEventAttributes()
        startedAttributes.scheduledEventID = task.scheduledEventId
        startedAttributes.identity = task.identity
        startedAttributes.requestID = task.requestId
        started.attributes = .workflowTaskStarted(startedAttributes)
        return [scheduled, started]
    }

    /// Writes a transient attempt's scheduled and started events (the attempt succeeded or is being recorded).
    mutating func writeTransientEvents(_ run: inout RunState, _ task: WorkflowTaskState, _ context: inout ApplyContext) {
        precondition(run.nextEventId == task.scheduledEventId, "transient workflow task ids must be the next ids")
        for event in transientEvents(run, task) {
            if let attributes = event.attributes { run.append(attributes, &context) }
        }
    }
}
