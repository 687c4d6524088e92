import BallastProto

/// How a run closes: its close event, its status, and for continue-as-new the next run.
struct RunClose {
    var event: EventAttributes
    var status: Ballast_V1_WorkflowExecutionStatus
    var continueAsNew: NewRun?
}

/// What applying a task's commands decided.
struct CommandsOutcome {
    var close: RunClose?
    var needsWorkflowTask = false
}

/// A cross-run effect, run after the entry's own run is stored.
enum FollowUp {
    case startChild(parent: RunKey, initiatedEventId: Int64, attributes: Ballast_V1_StartChildWorkflowExecutionInitiatedEventAttributes)
    case signalExternal(source: RunKey, initiatedEventId: Int64, attributes: Ballast_V1_SignalExternalWorkflowExecutionInitiatedEventAttributes)
    case notifyParent(parent: ParentLink, child: RunKey, childType: String, close: EventAttributes)
    case closeChild(child: PendingChild, parent: RunKey)
}

extension WorkflowEngine {
    /// Writes the events of validated commands, in order.
    mutating func applyCommands(
        _ commands: [Ballast_V1_Command], run: inout RunState, completedEventId: Int64, _ context: inout ApplyContext
    ) -> CommandsOutcome {
        var outcome = CommandsOutcome()
        // By index, each command's `oneof` matched in place (iterating copied every command and
        // then its attributes once more).
        for index in commands.indices {
            switch commands[index].attributes {
            case nil:
                continue
            case let .scheduleActivityTask(command)?:
                scheduleActivity(command, run: &run, completedEventId: completedEventId, &context)
            case let .requestCancelActivityTask(command)?:
                if cancelActivity(command.scheduledEventID, run: &run, completedEventId: completedEventId, &context) {
                    outcome.needsWorkflowTask = true
                }
            case let .startTimer(command)?:
                startTimer(command, run: &run, completedEventId: completedEventId, &context)
            case let .cancelTimer(command)?:
                cancelTimer(command.timerID, run: &run, completedEventId: completedEventId, &context)
            case let .recordMarker(command)?:
                var event = Ballast_V1_MarkerRecordedEventAttributes()
                event.markerName = command.markerName
                event.details = command.details
                if command.hasHeader { event.header = command.header }
                if command.hasFailure { event.failure = command.failure }
                event.workflowTaskCompletedEventID = completedEventId
                run.append(.markerRecorded(event), &context)
            case let .upsertWorkflowSearchAttributes(command)?:
                upsertSearchAttributes(command.searchAttributes, run: &run, completedEventId: completedEventId, &context)
            case let .startChildWorkflowExecution(command)?:
                initiateChild(command, run: &run, completedEventId: completedEventId, &context)
            case let .signalExternalWorkflowExecution(command)?:
                initiateSignalExternal(command, run: &run, completedEventId: completedEventId, &context)
            case let .completeWorkflowExecution(command)?:
                var event = Ballast_V1_WorkflowExecutionCompletedEventAttributes()
                if command.hasResult { event.result = command.result }
                event.workflowTaskCompletedEventID = completedEventId
                outcome.close = RunClose(event: .workflowExecutionCompleted(event), status: .completed)
            case let .failWorkflowExecution(command)?:
                var event = Ballast_V1_WorkflowExecutionFailedEventAttributes()
                event.failure = command.failure
                event.retryState = run.retry == nil ? .retryPolicyNotSet : .nonRetryableFailure
                event.workflowTaskCompletedEventID = completedEventId
                outcome.close = RunClose(event: .workflowExecutionFailed(event), status: .failed)
                if let retried = retryRun(run, failure: command.failure, &context) {
                    event.retryState = .inProgress
                    event.newExecutionRunID = retried.runId
                    outcome.close = RunClose(event: .workflowExecutionFailed(event), status: .failed, continueAsNew: retried)
                } else if let retry = run.retry {
                    event.retryState = retryStateAfter(retry, failure: command.failure, run: run, context)
                    outcome.close = RunClose(event: .workflowExecutionFailed(event), status: .failed)
                }
            case let .cancelWorkflowExecution(command)?:
                var event = Ballast_V1_WorkflowExecutionCanceledEventAttributes()
                if command.hasDetails { event.details = command.details }
                event.workflowTaskCompletedEventID = completedEventId
                outcome.close = RunClose(event: .workflowExecutionCanceled(event), status: .canceled)
            case let .continueAsNewWorkflowExecution(command)?:
                outcome.close = continueAsNew(command, run: run, completedEventId: completedEventId, &context)
            }
        }
        return outcome
    }

    private mutating func startTimer(
        _ command: Ballast_V1_StartTimerCommandAttributes, run: inout RunState, completedEventId: Int64,
        _ context: inout ApplyContext
    ) {
        var event = Ballast_V1_TimerStartedEventAttributes()
        event.timerID = command.timerID
        event.startToFireTimeoutNanos = command.startToFireTimeoutNanos
        event.workflowTaskCompletedEventID = completedEventId
        let startedId = run.append(.timerStarted(event), &context)
        let timer = PendingTimer(timerId: command.timerID, startedEventId: startedId,
                                 fireTime: context.now.addingSaturated(command.startToFireTimeoutNanos))
        run.timers[command.timerID] = timer
        context.arm(timerDue(run.key, timer))
    }

    private mutating func cancelTimer(_ timerId: String, run: inout RunState, completedEventId: Int64, _ context: inout ApplyContext) {
        guard let timer = run.timers.removeValue(forKey: timerId) else { return }
        var event = Ballast_V1_TimerCanceledEventAttributes()
        event.timerID = timerId
        event.startedEventID = timer.startedEventId
        event.workflowTaskCompletedEventID = completedEventId
        run.append(.timerCanceled(event), &context)
    }

    /// The deadline entry of a pending timer.
    func timerDue(_ key: RunKey, _ timer: PendingTimer) -> DueTimer {
        var request = Ballast_V1_TimerFiredRequest()
        request.namespace = key.namespace
        request.workflowExecution = key.execution
        request.timerID = timer.timerId
        request.startedEventID = timer.startedEventId
        return DueTimer(dueTimeUnixNanos: timer.fireTime, run: key, payload: .timerFired(request))
    }

    private mutating func upsertSearchAttributes(
        _ attributes: Ballast_V1_SearchAttributes, run: inout RunState, completedEventId: Int64, _ context: inout ApplyContext
    ) {
        var event = Ballast_V1_UpsertWorkflowSearchAttributesEventAttributes()
        event.searchAttributes = attributes
        event.workflowTaskCompletedEventID = completedEventId
        run.append(.upsertWorkflowSearchAttributes(event), &context)
        for (name, value) in attributes.indexedFields {
            if value.value == nil {
                run.searchAttributes.indexedFields.removeValue(forKey: name)
            } else {
                run.searchAttributes.indexedFields[name] = value
            }
        }
        indexAttributes(run)
    }

    private func continueAsNew(
        _ command: Ballast_V1_ContinueAsNewWorkflowExecutionCommandAttributes, run: RunState, completedEventId: Int64,
        _ context: inout ApplyContext
    ) -> RunClose {
        let newRunId = makeRunId(namespace: run.key.namespace, workflowId: run.key.workflowId, context: &context)
        var event = Ballast_V1_WorkflowExecutionContinuedAsNewEventAttributes()
        event.newExecutionRunID = newRunId
        event.workflowType.name = command.workflowType.name.isEmpty ? run.workflowType : command.workflowType.name
        event.taskQueue = command.taskQueue.isEmpty ? run.taskQueue : command.taskQueue
        if command.hasInput { event.input = command.input }
        event.workflowRunTimeoutNanos = command.workflowRunTimeoutNanos
        event.workflowTaskTimeoutNanos = command.workflowTaskTimeoutNanos == 0 ? run.workflowTaskTimeout : command.workflowTaskTimeoutNanos
        event.workflowTaskCompletedEventID = completedEventId
        event.backoffStartIntervalNanos = command.backoffStartIntervalNanos
        event.initiator = .workflow
        if command.hasLastCompletionResult { event.lastCompletionResult = command.lastCompletionResult }
        if command.hasHeader { event.header = command.header }
        event.memo = command.hasMemo ? command.memo : run.memo
        event.searchAttributes = command.hasSearchAttributes ? command.searchAttributes : run.searchAttributes
        var started = Ballast_V1_WorkflowExecutionStartedEventAttributes()
        started.workflowType = event.workflowType
        started.taskQueue = event.taskQueue
        if event.hasInput { started.input = event.input }
        started.workflowRunTimeoutNanos = event.workflowRunTimeoutNanos
        started.workflowTaskTimeoutNanos = event.workflowTaskTimeoutNanos
        started.continuedExecutionRunID = run.key.runId
        started.initiator = .workflow
        if event.hasLastCompletionResult { started.lastCompletionResult = event.lastCompletionResult }
        started.firstExecutionRunID = run.firstRunId
        started.workflowExecutionExpirationTimeUnixNanos = run.executionExpiration
        started.memo = event.memo
        started.searchAttributes = event.searchAttributes
        if event.hasHeader { started.header = event.header }
        let next = NewRun(namespace: run.key.namespace, workflowId: run.key.workflowId, runId: newRunId,
                          started: started, parent: run.parent, backoffNanos: command.backoffStartIntervalNanos)
        return RunClose(event: .workflowExecutionContinuedAsNew(event), status: .continuedAsNew, continueAsNew: next)
    }
}
