import BallastProto

/// Why a workflow task's commands were refused.
struct CommandFailure: Error, Equatable {
    var cause: Ballast_V1_WorkflowTaskFailedCause
    var message: String
}

extension WorkflowEngine {
    /// RespondWorkflowTaskCompleted: validate every command, then write them (or fail the task).
    mutating func workflowTaskCompleted(_ request: Ballast_V1_RespondWorkflowTaskCompletedRequest, _ context: inout ApplyContext) throws(EngineRejection) {
        let token = try decodeTaskToken(request.taskToken)
        completeWorkflowTask(try takeWorkflowTaskRun(token: token, mustBeStarted: true), request, &context)
    }

    /// `workflowTaskCompleted` for the run taken out of the map; a consuming parameter so that the
    /// run is moved back into the map, not copied (as `recordWorkflowTaskStarted`).
    private mutating func completeWorkflowTask(
        _ run: consuming RunState, _ request: Ballast_V1_RespondWorkflowTaskCompletedRequest, _ context: inout ApplyContext
    ) {
        guard let task = run.workflowTask else { preconditionFailure("checked by takeWorkflowTaskRun") }
        if let failure = validateCommands(request.commands, run: run, limitsSizes: context.limitsSearchAttributeSizes,
                                         limitsIdentifiers: context.limitsIdentifiers) {
            failWorkflowTask(&run, task, cause: failure.cause, failure: serverFailure(failure.message, type: "BadCommand"),
                             identity: request.identity, timedOut: false, &context)
            storeRun(consume run, &context)
            return
        }
        if task.isTransient { writeTransientEvents(&run, task, &context) }
        run.workflowTask = nil
        if !run.buffered.isEmpty, request.commands.contains(where: { Self.closesRun($0) }) {
            // New events arrived while the task ran: the close is refused and the task retried with them.
            appendWorkflowTaskFailed(&run, task, cause: .unhandledCommand,
                                     failure: serverFailure("new events arrived while the workflow task ran", type: "UnhandledCommand"),
                                     identity: request.identity, &context)
            run.flushBuffered(&context)
            scheduleWorkflowTask(&run, attempt: 1, &context)
            storeRun(consume run, &context)
            return
        }
        var completed = Ballast_V1_WorkflowTaskCompletedEventAttributes()
        completed.scheduledEventID = task.scheduledEventId
        completed.startedEventID = task.startedEventId
        completed.identity = request.identity
        completed.binaryChecksum = request.binaryChecksum
        let completedId = run.append(.workflowTaskCompleted(completed), &context)
        run.previousStartedEventId = task.startedEventId
        run.pendingSignals = 0
        let outcome = applyCommands(request.commands, run: &run, completedEventId: completedId, &context)
        if let close = outcome.close {
            finishRun(&run, close, &context)
        } else {
            let flushed = run.flushBuffered(&context)
            if flushed || outcome.needsWorkflowTask { ensureWorkflowTask(&run, &context) }
            storeRun(consume run, &context)
        }
    }

    /// RespondWorkflowTaskFailed: the worker could not complete the task.
    mutating func workflowTaskFailed(_ request: Ballast_V1_RespondWorkflowTaskFailedRequest, _ context: inout ApplyContext) throws(EngineRejection) {
        let token = try decodeTaskToken(request.taskToken)
        var run = try takeWorkflowTaskRun(token: token, mustBeStarted: true)
        guard let task = run.workflowTask else { preconditionFailure("checked by takeWorkflowTaskRun") }
        let cause: Ballast_V1_WorkflowTaskFailedCause = request.cause == .unspecified
            ? .workflowWorkerUnhandledFailure : request.cause
        failWorkflowTask(&run, task, cause: cause, failure: request.failure, identity: request.identity,
                         timedOut: false, &context)
        storeRun(run, &context)
    }

    /// WorkflowTaskTimedOut: the started task exceeded its start-to-close timeout.
    mutating func workflowTaskTimedOut(_ request: Ballast_V1_WorkflowTaskTimedOutRequest, _ context: inout ApplyContext) throws(EngineRejection) {
        let runId = try openRunId(namespace: request.namespace, execution: request.workflowExecution)
        guard let found = runs[runId], let task = found.workflowTask, task.isStarted,
              task.scheduledEventId == request.scheduledEventID, task.attempt == request.attempt,
              task.startedTime + found.workflowTaskTimeout <= context.now else {
            throw .staleTimeEntry("workflow task \(request.scheduledEventID) attempt \(request.attempt) of \(runId) is not timing out")
        }
        guard var run = runs.removeValue(forKey: runId) else { return }
        failWorkflowTask(&run, task, cause: .unspecified, failure: Ballast_V1_Failure(), identity: "",
                         timedOut: true, &context)
        storeRun(run, &context)
    }

    /// Records a failed or timed-out attempt and schedules the next one.
    /// Only the first failure of a streak is written; later attempts stay transient.
    mutating func failWorkflowTask(
        _ run: inout RunState, _ task: WorkflowTaskState, cause: Ballast_V1_WorkflowTaskFailedCause,
        failure: Ballast_V1_Failure, identity: String, timedOut: Bool, _ context: inout ApplyContext
    ) {
        run.workflowTask = nil
        if !task.isTransient {
            if timedOut {
                var attributes = Ballast_V1_WorkflowTaskTimedOutEventAttributes()
                attributes.scheduledEventID = task.scheduledEventId
                attributes.startedEventID = task.startedEventId
                attributes.timeoutType = .startToClose
                run.append(.workflowTaskTimedOut(attributes), &context)
            } else {
                appendWorkflowTaskFailed(&run, task, cause: cause, failure: failure, identity: identity, &context)
            }
        }
        run.flushBuffered(&context)
        scheduleWorkflowTask(&run, attempt: task.attempt.nextAttempt, &context)
    }

    /// Writes WorkflowTaskFailed for a started task.
    func appendWorkflowTaskFailed(
        _ run: inout RunState, _ task: WorkflowTaskState, cause: Ballast_V1_WorkflowTaskFailedCause,
        failure: Ballast_V1_Failure, identity: String, _ context: inout ApplyContext
    ) {
        var attributes = Ballast_V1_WorkflowTaskFailedEventAttributes()
        attributes.scheduledEventID = task.scheduledEventId
        attributes.startedEventID = task.startedEventId
        attributes.cause = cause
        attributes.failure = failure
        attributes.identity = identity
        run.append(.workflowTaskFailed(attributes), &context)
    }

    /// Whether a command closes the run.
    static func closesRun(_ command: Ballast_V1_Command) -> Bool {
        switch command.attributes {
        case .completeWorkflowExecution, .failWorkflowExecution, .cancelWorkflowExecution,
             .continueAsNewWorkflowExecution:
            return true
        default:
            return false
        }
    }
}

/// A failure created by the engine itself.
func serverFailure(_ message: String, type: String, nonRetryable: Bool = true) -> Ballast_V1_Failure {
    var failure = Ballast_V1_Failure()
    failure.message = message
    failure.type = type
    failure.nonRetryable = nonRetryable
    failure.source = "Server"
    return failure
}
