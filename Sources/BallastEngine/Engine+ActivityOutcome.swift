import BallastProto

extension WorkflowEngine {
    /// RecordActivityTaskStarted: a worker took the attempt (no event: started is written with the outcome).
    mutating func activityTaskStarted(_ request: Ballast_V1_RecordActivityTaskStartedRequest, _ context: inout ApplyContext) throws(EngineRejection) {
        let token = try decodeTaskToken(request.taskToken)
        var (run, activity) = try takeActivityRun(token, mustBeStarted: false)
        guard activity.phase == .scheduled else {
            runs[run.key.runId] = run
            guard activity.phase == .started, !request.requestID.isEmpty, activity.requestId == request.requestID else {
                throw .staleTaskToken("activity \(activity.scheduledEventId) attempt \(activity.attempt) of \(run.key) is not waiting for a worker")
            }
            context.result.response = .activityTaskStarted(activityTaskInfo(run, activity))
            return
        }
        activity.phase = .started
        activity.startedTime = context.now
        activity.identity = request.identity
        activity.requestId = request.requestID
        activity.lastHeartbeatTime = 0
        if let due = activityDeadline(run.key, activity) { context.arm(due) }
        context.result.response = .activityTaskStarted(activityTaskInfo(run, activity))
        run.putActivity(activity)
        storeRun(consume run, &context)
    }

    /// What the worker is told about a started activity attempt.
    func activityTaskInfo(_ run: RunState, _ activity: PendingActivity) -> Ballast_V1_ActivityTaskInfo {
        var info = Ballast_V1_ActivityTaskInfo()
        info.taskToken = readyTask(run.key, activity).taskTokenData
        info.namespace = run.key.namespace
        info.workflowExecution = run.key.execution
        info.workflowType.name = run.workflowType
        info.activityID = activity.activityId
        info.activityType = activity.attributes.activityType
        info.taskQueue = activity.attributes.taskQueue
        if activity.attributes.hasHeader { info.header = activity.attributes.header }
        if activity.attributes.hasInput { info.input = activity.attributes.input }
        if let details = activity.heartbeatDetails { info.heartbeatDetails = details }
        info.scheduledTimeUnixNanos = activity.firstScheduledTime
        info.currentAttemptScheduledTimeUnixNanos = activity.attemptScheduledTime
        info.startedTimeUnixNanos = activity.startedTime
        info.attempt = activity.attempt
        info.scheduleToCloseTimeoutNanos = activity.attributes.scheduleToCloseTimeoutNanos
        info.startToCloseTimeoutNanos = activity.attributes.startToCloseTimeoutNanos
        info.heartbeatTimeoutNanos = activity.attributes.heartbeatTimeoutNanos
        info.scheduledEventID = activity.scheduledEventId
        return info
    }

    /// RespondActivityTaskCompleted.
    mutating func activityTaskCompleted(_ request: Ballast_V1_RespondActivityTaskCompletedRequest, _ context: inout ApplyContext) throws(EngineRejection) {
        let token = try decodeTaskToken(request.taskToken)
        try checkPayload(request.result, field: "activity result")
        var (run, activity) = try takeActivityRun(token, mustBeStarted: true)
        var completed = Ballast_V1_ActivityTaskCompletedEventAttributes()
        if request.hasResult { completed.result = request.result }
        completed.scheduledEventID = activity.scheduledEventId
        completed.startedEventID = startedEventIdOfPreviousEvent
        completed.identity = request.identity
        resolveActivity(&run, activity, outcome: .activityTaskCompleted(completed), &context)
        storeRun(consume run, &context)
    }

    /// RespondActivityTaskFailed: retried per policy, or the final failure is written.
    mutating func activityTaskFailed(_ request: Ballast_V1_RespondActivityTaskFailedRequest, _ context: inout ApplyContext) throws(EngineRejection) {
        let token = try decodeTaskToken(request.taskToken)
        try checkPayload(request.failure.details, field: "failure details")
        try checkPayload(request.lastHeartbeatDetails, field: "last heartbeat details")
        var (run, activity) = try takeActivityRun(token, mustBeStarted: true)
        var updated = activity
        if request.hasLastHeartbeatDetails { updated.heartbeatDetails = request.lastHeartbeatDetails }
        // Past the run's limit the new details are not kept (the failure itself is reported).
        if context.limitsKeptActivityBytes, keepsTooMuch(run, updated) {
            updated.heartbeatDetails = activity.heartbeatDetails
        }
        failActivityAttempt(&run, updated, failure: request.failure, finalFailure: request.failure, identity: request.identity,
                            timeoutType: nil, &context)
        storeRun(run, &context)
    }

    /// RespondActivityTaskCanceled: the activity acknowledged a cancellation.
    mutating func activityTaskCanceled(_ request: Ballast_V1_RespondActivityTaskCanceledRequest, _ context: inout ApplyContext) throws(EngineRejection) {
        let token = try decodeTaskToken(request.taskToken)
        try checkPayload(request.details, field: "cancellation details")
        var (run, activity) = try takeActivityRun(token, mustBeStarted: true)
        var canceled = Ballast_V1_ActivityTaskCanceledEventAttributes()
        if request.hasDetails { canceled.details = request.details }
        canceled.latestCancelRequestedEventID = activity.cancelRequestedEventId
        canceled.scheduledEventID = activity.scheduledEventId
        canceled.startedEventID = startedEventIdOfPreviousEvent
        canceled.identity = request.identity
        resolveActivity(&run, activity, outcome: .activityTaskCanceled(canceled), &context)
        storeRun(run, &context)
    }

    /// RecordActivityTaskHeartbeat: keeps details for the next attempt and tells the worker about cancellation.
    mutating func activityTaskHeartbeat(_ request: Ballast_V1_RecordActivityTaskHeartbeatRequest, _ context: inout ApplyContext) throws(EngineRejection) {
        let token = try decodeTaskToken(request.taskToken)
        try checkPayload(request.details, field: "heartbeat details")
        var (run, activity) = try takeActivityRun(token, mustBeStarted: true)
        var updated = activity
        updated.lastHeartbeatTime = context.now
        if request.hasDetails { updated.heartbeatDetails = request.details }
        if context.limitsKeptActivityBytes, keepsTooMuch(run, updated) {
            runs[run.key.runId] = run
            throw .limitExceeded("heartbeat details of \(payloadBytes(request.details)) bytes would take what the pending activities of "
                                 + "\(run.key) keep past \(limits.maxKeptActivityBytes) bytes; send smaller details")
        }
        run.putActivity(updated)
        if updated.attributes.heartbeatTimeoutNanos > 0, let due = activityDeadline(run.key, updated) { context.arm(due) }
        var response = Ballast_V1_RecordActivityTaskHeartbeatResponse()
        response.cancelRequested = updated.cancelRequested
        context.result.response = .heartbeat(response)
        storeRun(run, &context)
    }

    /// Whether storing `new` in place of the run's version of that activity takes what the run's
    /// pending activities keep past the limit. Only growth counts: a run over the limit (from
    /// entries of older formats) may still keep as much as it has.
    func keepsTooMuch(_ run: RunState, _ new: PendingActivity) -> Bool {
        let growth = new.keptBytes - (run.activities[new.scheduledEventId]?.keptBytes ?? 0)
        return growth > 0 && run.keptActivityBytes + growth > limits.maxKeptActivityBytes
    }

    /// Removes the activity and writes ActivityTaskStarted plus its final outcome.
    mutating func resolveActivity(
        _ run: inout RunState, _ activity: PendingActivity, outcome: EventAttributes, _ context: inout ApplyContext
    ) {
        removeActivity(activity.scheduledEventId, from: &run)
        if activity.phase == .started {
            var started = Ballast_V1_ActivityTaskStartedEventAttributes()
            started.scheduledEventID = activity.scheduledEventId
            started.identity = activity.identity
            started.requestID = activity.requestId
            started.attempt = activity.attempt
            if let lastFailure = activity.lastFailure { started.lastFailure = lastFailure }
            run.appendOrBuffer(.activityTaskStarted(started), &context)
        }
        run.appendOrBuffer(outcome, &context)
        ensureWorkflowTask(&run, &context)
    }

    /// A started attempt failed or timed out: back off and retry (keeping `failure` for the next
    /// attempt), or write the final outcome with `finalFailure`.
    mutating func failActivityAttempt(
        _ run: inout RunState, _ activity: PendingActivity, failure: Ballast_V1_Failure, finalFailure: Ballast_V1_Failure,
        identity: String, timeoutType: Ballast_V1_TimeoutType?, _ context: inout ApplyContext
    ) {
        let closeDeadline = activity.attributes.scheduleToCloseTimeoutNanos > 0
            ? activity.firstScheduledTime.addingSaturated(activity.attributes.scheduleToCloseTimeoutNanos) : 0
        let decision = RetryRules.decide(policy: activity.attributes.retryPolicy, attempt: activity.attempt,
                                         failure: failure, now: context.now, scheduleToCloseDeadline: closeDeadline,
                                         bounded: context.boundedRetries)
        if decision.state == .inProgress {
            var retrying = activity
            retrying.phase = .backoff
            retrying.attempt = activity.attempt.nextAttempt
            retrying.retryTime = context.now.addingSaturated(decision.backoffNanos)
            retrying.lastFailure = failure
            if context.limitsKeptActivityBytes, keepsTooMuch(run, retrying) {
                retrying.lastFailure = trimmedFailure(failure)
            }
            retrying.identity = identity.isEmpty ? activity.identity : identity
            run.putActivity(retrying)
            if let due = activityDeadline(run.key, retrying) { context.arm(due) }
            return
        }
        let previousFailure = activity.lastFailure
        var final = activity
        final.lastFailure = previousFailure
        if let timeoutType {
            var timedOut = Ballast_V1_ActivityTaskTimedOutEventAttributes()
            timedOut.failure = finalFailure
            timedOut.failure.timeoutType = timeoutType
            timedOut.scheduledEventID = activity.scheduledEventId
            timedOut.startedEventID = activity.phase == .started ? startedEventIdOfPreviousEvent : 0
            timedOut.retryState = decision.state
            resolveActivity(&run, final, outcome: .activityTaskTimedOut(timedOut), &context)
        } else {
            var failed = Ballast_V1_ActivityTaskFailedEventAttributes()
            failed.failure = finalFailure
            failed.scheduledEventID = activity.scheduledEventId
            failed.startedEventID = startedEventIdOfPreviousEvent
            failed.identity = identity
            failed.retryState = decision.state
            resolveActivity(&run, final, outcome: .activityTaskFailed(failed), &context)
        }
    }

    /// ActivityTimedOut: a deadline of the current attempt passed.
    mutating func activityTimedOut(_ request: Ballast_V1_ActivityTimedOutRequest, _ context: inout ApplyContext) throws(EngineRejection) {
        let runId = try openRunId(namespace: request.namespace, execution: request.workflowExecution)
        guard let found = runs[runId], let activity = found.activities[request.scheduledEventID],
              activity.attempt == request.attempt,
              let deadline = activityTimeoutDeadline(activity, request.timeoutType), deadline <= context.now else {
            throw .staleTimeEntry("activity \(request.scheduledEventID) attempt \(request.attempt) of \(runId) has no due \(request.timeoutType) timeout")
        }
        guard var run = runs.removeValue(forKey: runId) else { return }
        var failure = serverFailure("activity \(request.timeoutType) timeout", type: "", nonRetryable: false)
        failure.timeoutType = request.timeoutType
        // The final event names the last kept failure as the cause. The failure kept for a retry
        // does not from format 5 on: it nested one level deeper per timeout (bug 36).
        var final = failure
        if let last = activity.lastFailure { final.cause = last }
        switch request.timeoutType {
        case .startToClose, .heartbeat:
            failActivityAttempt(&run, activity, failure: context.keepsFlatTimeoutFailures ? failure : final, finalFailure: final,
                                identity: activity.identity, timeoutType: request.timeoutType, &context)
        default:
            var timedOut = Ballast_V1_ActivityTaskTimedOutEventAttributes()
            timedOut.failure = final
            timedOut.scheduledEventID = activity.scheduledEventId
            timedOut.startedEventID = activity.phase == .started ? startedEventIdOfPreviousEvent : 0
            timedOut.retryState = .timeout
            resolveActivity(&run, activity, outcome: .activityTaskTimedOut(timedOut), &context)
        }
        storeRun(run, &context)
    }

    /// ActivityRetryDue: the backoff ended; the next attempt becomes dispatchable.
    mutating func activityRetryDue(_ request: Ballast_V1_ActivityRetryDueRequest, _ context: inout ApplyContext) throws(EngineRejection) {
        let runId = try openRunId(namespace: request.namespace, execution: request.workflowExecution)
        guard let found = runs[runId], let activity = found.activities[request.scheduledEventID],
              activity.attempt == request.attempt, activity.phase == .backoff, activity.retryTime <= context.now else {
            throw .staleTimeEntry("activity \(request.scheduledEventID) attempt \(request.attempt) of \(runId) is not waiting to retry")
        }
        guard var run = runs.removeValue(forKey: runId) else { return }
        var next = activity
        next.phase = .scheduled
        next.attemptScheduledTime = context.now
        next.startedTime = 0
        next.lastHeartbeatTime = 0
        next.requestId = ""
        next.sequence = takeSequence()
        run.putActivity(next)
        context.ready(readyTask(run.key, next))
        if let due = activityDeadline(run.key, next) { context.arm(due) }
        storeRun(run, &context)
    }
}
