import BallastProto

extension WorkflowEngine {
    /// Checks all commands against the run before any is applied; nil when all are valid.
    func validateCommands(_ commands: [Ballast_V1_Command], run: RunState, limitsSizes: Bool,
                          limitsIdentifiers: Bool) -> CommandFailure? {
        var batch = CommandBatch(run: run, limitsSizes: limitsSizes, limitsIdentifiers: limitsIdentifiers)
        // By index, and each command's `oneof` matched in place: iterating copied every command
        // (240 bytes) and then its attributes once more.
        for position in commands.indices {
            if batch.closed {
                return CommandFailure(cause: .commandAfterClose,
                                      message: "command \(position) follows a command that closes the run")
            }
            if let failure = validate(commands[position].attributes, position: position, batch: &batch) { return failure }
        }
        return nil
    }

    private func validate(
        _ command: Ballast_V1_Command.OneOf_Attributes?, position: Int, batch: inout CommandBatch
    ) -> CommandFailure? {
        switch command {
        case nil:
            return CommandFailure(cause: .unknownCommand, message: "command \(position) has no attributes")
        case let .scheduleActivityTask(attributes):
            return validateScheduleActivity(attributes, batch: &batch)
        case let .requestCancelActivityTask(attributes):
            guard batch.runActivities[attributes.scheduledEventID] != nil,
                  batch.canceledActivities.insert(attributes.scheduledEventID).inserted else {
                return CommandFailure(cause: .badRequestCancelActivityAttributes,
                                      message: "no pending activity was scheduled by event \(attributes.scheduledEventID)")
            }
        case let .startTimer(attributes):
            if let problem = identifiersProblem(identifierProblem("timer_id", attributes.timerID), batch, cause: .badStartTimerAttributes) {
                return problem
            }
            return validateStartTimer(attributes, batch: &batch)
        case let .cancelTimer(attributes):
            guard batch.timerPending(attributes.timerID) else {
                return CommandFailure(cause: .badCancelTimerAttributes, message: "no pending timer \(attributes.timerID)")
            }
            batch.canceledTimers.insert(attributes.timerID)
        case let .completeWorkflowExecution(attributes):
            batch.closed = true
            return payloadProblem(attributes.result, "result", cause: .badCompleteWorkflowExecutionAttributes)
        case let .failWorkflowExecution(attributes):
            batch.closed = true
            return payloadProblem(attributes.failure.details, "failure details", cause: .badFailWorkflowExecutionAttributes)
        case let .cancelWorkflowExecution(attributes):
            batch.closed = true
            return payloadProblem(attributes.details, "details", cause: .badCancelWorkflowExecutionAttributes)
        case let .recordMarker(attributes):
            guard !attributes.markerName.isEmpty else {
                return CommandFailure(cause: .badRecordMarkerAttributes, message: "marker_name is required")
            }
            if let problem = identifiersProblem(identifierProblem("marker_name", attributes.markerName), batch,
                                                cause: .badRecordMarkerAttributes) {
                return problem
            }
            for name in attributes.details.keys.sorted() {
                if let problem = payloadProblem(attributes.details[name] ?? Ballast_V1_Payloads(), "marker details",
                                                cause: .badRecordMarkerAttributes) { return problem }
            }
        case let .continueAsNewWorkflowExecution(attributes):
            batch.closed = true
            if let problem = identifiersProblem(identifierProblem("workflow_type.name", attributes.workflowType.name)
                                                    ?? identifierProblem("task_queue", attributes.taskQueue),
                                                batch, cause: .badContinueAsNewAttributes) {
                return problem
            }
            return validateContinueAsNew(attributes, namespace: batch.namespace, limitsSizes: batch.limitsSizes,
                                         limitsIdentifiers: batch.limitsIdentifiers)
        case let .startChildWorkflowExecution(attributes):
            return validateStartChild(attributes, batch: &batch)
        case let .signalExternalWorkflowExecution(attributes):
            guard !attributes.execution.workflowID.isEmpty, !attributes.signalName.isEmpty else {
                return CommandFailure(cause: .badSignalWorkflowExecutionAttributes,
                                      message: "execution.workflow_id and signal_name are required")
            }
            if let problem = identifiersProblem(identifierProblem("execution.workflow_id", attributes.execution.workflowID)
                                                    ?? identifierProblem("execution.run_id", attributes.execution.runID)
                                                    ?? identifierProblem("signal_name", attributes.signalName),
                                                batch, cause: .badSignalWorkflowExecutionAttributes) {
                return problem
            }
            return payloadProblem(attributes.input, "signal input", cause: .badSignalWorkflowExecutionAttributes)
        case let .upsertWorkflowSearchAttributes(attributes):
            guard !attributes.searchAttributes.indexedFields.isEmpty else {
                return CommandFailure(cause: .badSearchAttributes, message: "no search attributes to upsert")
            }
            return searchAttributesProblem(attributes.searchAttributes, namespace: batch.namespace, limitsSizes: batch.limitsSizes)
        }
        return nil
    }

    private func validateScheduleActivity(
        _ attributes: Ballast_V1_ScheduleActivityTaskCommandAttributes, batch: inout CommandBatch
    ) -> CommandFailure? {
        let cause = Ballast_V1_WorkflowTaskFailedCause.badScheduleActivityAttributes
        guard !attributes.activityID.isEmpty, !attributes.activityType.name.isEmpty else {
            return CommandFailure(cause: cause, message: "activity_id and activity_type.name are required")
        }
        if let problem = identifiersProblem(identifierProblem("activity_id", attributes.activityID)
                                                ?? identifierProblem("activity_type.name", attributes.activityType.name)
                                                ?? identifierProblem("task_queue", attributes.taskQueue), batch, cause: cause) {
            return problem
        }
        guard batch.claimActivity(attributes.activityID) else {
            return CommandFailure(cause: .scheduleActivityDuplicateID,
                                  message: "activity id \(attributes.activityID) is already pending")
        }
        guard attributes.scheduleToCloseTimeoutNanos >= 0, attributes.scheduleToStartTimeoutNanos >= 0,
              attributes.startToCloseTimeoutNanos >= 0, attributes.heartbeatTimeoutNanos >= 0 else {
            return CommandFailure(cause: cause, message: "activity timeouts must not be negative")
        }
        guard attributes.scheduleToCloseTimeoutNanos > 0 || attributes.startToCloseTimeoutNanos > 0 else {
            return CommandFailure(cause: cause, message: "set schedule_to_close or start_to_close timeout")
        }
        if case .invalid(let reason) = RetryRules.validate(attributes.retryPolicy) {
            return CommandFailure(cause: cause, message: "retry_policy: \(reason)")
        }
        guard batch.pendingActivities <= limits.maxPendingActivities else {
            return CommandFailure(cause: .pendingActivitiesLimitExceeded,
                                  message: "more than \(limits.maxPendingActivities) pending activities")
        }
        return payloadProblem(attributes.input, "activity input", cause: cause)
    }

    private func validateStartTimer(
        _ attributes: Ballast_V1_StartTimerCommandAttributes, batch: inout CommandBatch
    ) -> CommandFailure? {
        guard !attributes.timerID.isEmpty, attributes.startToFireTimeoutNanos > 0 else {
            return CommandFailure(cause: .badStartTimerAttributes, message: "timer_id and a positive start_to_fire_timeout are required")
        }
        guard !batch.timerPending(attributes.timerID) else {
            return CommandFailure(cause: .startTimerDuplicateID, message: "timer \(attributes.timerID) is already pending")
        }
        if batch.canceledTimers.remove(attributes.timerID) == nil { batch.timerIds.insert(attributes.timerID) }
        guard batch.pendingTimers <= limits.maxPendingTimers else {
            return CommandFailure(cause: .pendingTimersLimitExceeded, message: "more than \(limits.maxPendingTimers) pending timers")
        }
        return nil
    }

    private func validateContinueAsNew(
        _ attributes: Ballast_V1_ContinueAsNewWorkflowExecutionCommandAttributes, namespace: String, limitsSizes: Bool,
        limitsIdentifiers: Bool
    ) -> CommandFailure? {
        let cause = Ballast_V1_WorkflowTaskFailedCause.badContinueAsNewAttributes
        guard attributes.workflowRunTimeoutNanos >= 0, attributes.workflowTaskTimeoutNanos >= 0,
              attributes.backoffStartIntervalNanos >= 0 else {
            return CommandFailure(cause: cause, message: "timeouts must not be negative")
        }
        if let problem = searchAttributesProblem(attributes.searchAttributes, namespace: namespace, limitsSizes: limitsSizes) {
            return CommandFailure(cause: cause, message: problem.message)
        }
        if limitsIdentifiers, let problem = memoProblem(attributes.memo) { return problem }
        return payloadProblem(attributes.input, "input", cause: cause)
    }

    private func validateStartChild(
        _ attributes: Ballast_V1_StartChildWorkflowExecutionCommandAttributes, batch: inout CommandBatch
    ) -> CommandFailure? {
        let cause = Ballast_V1_WorkflowTaskFailedCause.badStartChildExecutionAttributes
        guard !attributes.workflowID.isEmpty, !attributes.workflowType.name.isEmpty else {
            return CommandFailure(cause: cause, message: "workflow_id and workflow_type.name are required")
        }
        if let problem = identifiersProblem(identifierProblem("workflow_id", attributes.workflowID)
                                                ?? identifierProblem("workflow_type.name", attributes.workflowType.name)
                                                ?? identifierProblem("task_queue", attributes.taskQueue), batch, cause: cause) {
            return problem
        }
        guard attributes.workflowExecutionTimeoutNanos >= 0, attributes.workflowRunTimeoutNanos >= 0,
              attributes.workflowTaskTimeoutNanos >= 0 else {
            return CommandFailure(cause: cause, message: "timeouts must not be negative")
        }
        batch.children += 1
        guard batch.children <= limits.maxPendingChildren else {
            return CommandFailure(cause: .pendingChildWorkflowsLimitExceeded,
                                  message: "more than \(limits.maxPendingChildren) pending child workflows")
        }
        let namespace = attributes.namespace.isEmpty ? batch.namespace : attributes.namespace
        if namespaces[namespace] != nil,
           let problem = searchAttributesProblem(attributes.searchAttributes, namespace: namespace, limitsSizes: batch.limitsSizes) {
            return CommandFailure(cause: cause, message: problem.message)
        }
        if batch.limitsIdentifiers, let problem = memoProblem(attributes.memo) { return problem }
        return payloadProblem(attributes.input, "child input", cause: cause)
    }

    /// A child's or continue-as-new's memo over the payload limit, names included (entries of
    /// format 6 on; before, a command's memo was not checked at all).
    private func memoProblem(_ memo: Ballast_V1_Memo) -> CommandFailure? {
        let size = memoBytes(memo)
        guard size > limits.maxPayloadBytes else { return nil }
        return CommandFailure(cause: .payloadTooLarge, message: "memo is \(size) bytes, over the \(limits.maxPayloadBytes)-byte limit")
    }

    private func payloadProblem(
        _ payloads: Ballast_V1_Payloads, _ field: String, cause: Ballast_V1_WorkflowTaskFailedCause
    ) -> CommandFailure? {
        let size = payloadBytes(payloads)
        guard size <= limits.maxPayloadBytes else {
            return CommandFailure(cause: .payloadTooLarge,
                                  message: "\(field) is \(size) bytes, over the \(limits.maxPayloadBytes)-byte limit")
        }
        return nil
    }

    /// A command's name or id over `maxIdentifierBytes` (`identifierProblem`), as a failure with
    /// `cause` when the batch limits them (entries of format 6 on).
    private func identifiersProblem(
        _ problem: String?, _ batch: CommandBatch, cause: Ballast_V1_WorkflowTaskFailedCause
    ) -> CommandFailure? {
        guard batch.limitsIdentifiers, let problem else { return nil }
        return CommandFailure(cause: cause, message: problem)
    }

    private func searchAttributesProblem(_ attributes: Ballast_V1_SearchAttributes, namespace: String, limitsSizes: Bool) -> CommandFailure? {
        guard let state = namespaces[namespace] else { return nil }
        guard let problem = searchAttributeProblem(attributes, namespace: state, limitsSizes: limitsSizes) else { return nil }
        return CommandFailure(cause: .badSearchAttributes, message: problem)
    }
}

/// What earlier commands of the same task already claimed, so later ones are checked against it.
/// Holds the run's few collections it reads (one reference each), not a copy of the whole `RunState`
/// (about 600 instructions of retains to copy and as many to release, per workflow task).
struct CommandBatch {
    /// The run's namespace.
    let namespace: String
    /// The run's pending activities, activity ids and timers before this task.
    let runActivities: [Int64: PendingActivity]
    let runActivityIds: [String: Int64]
    let runTimers: [String: PendingTimer]
    var activityIds: Set<String>
    var canceledActivities: Set<Int64> = []
    var timerIds: Set<String>
    var canceledTimers: Set<String> = []
    var children: Int
    var closed = false

    /// Whether search attribute values are limited in size (entry format 5 on).
    let limitsSizes: Bool
    /// Whether names and ids are limited in length (entry format 6 on).
    let limitsIdentifiers: Bool

    init(run: RunState, limitsSizes: Bool, limitsIdentifiers: Bool) {
        self.limitsSizes = limitsSizes
        self.limitsIdentifiers = limitsIdentifiers
        namespace = run.key.namespace
        runActivities = run.activities
        runActivityIds = run.activityIds
        runTimers = run.timers
        activityIds = []
        timerIds = []
        children = run.children.count
    }

    /// Claims an activity id; false if pending already or claimed earlier in this task.
    mutating func claimActivity(_ id: String) -> Bool {
        runActivityIds[id] == nil && activityIds.insert(id).inserted
    }

    /// Pending activities once this task's commands apply.
    var pendingActivities: Int { runActivities.count + activityIds.count - canceledActivities.count }

    /// Whether a timer id is pending (before this task or started by an earlier command of it).
    func timerPending(_ id: String) -> Bool {
        (runTimers[id] != nil || timerIds.contains(id)) && !canceledTimers.contains(id)
    }

    /// Pending timers once this task's commands apply.
    var pendingTimers: Int { runTimers.count + timerIds.count - canceledTimers.count }
}
