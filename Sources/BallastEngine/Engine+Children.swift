import BallastProto

extension WorkflowEngine {
    /// StartChildWorkflowExecution: writes Initiated now; the child is started once this run is stored.
    mutating func initiateChild(
        _ command: Ballast_V1_StartChildWorkflowExecutionCommandAttributes, run: inout RunState, completedEventId: Int64,
        _ context: inout ApplyContext
    ) {
        var event = Ballast_V1_StartChildWorkflowExecutionInitiatedEventAttributes()
        event.namespace = command.namespace.isEmpty ? run.key.namespace : command.namespace
        event.workflowID = command.workflowID
        event.workflowType = command.workflowType
        event.taskQueue = command.taskQueue.isEmpty ? run.taskQueue : command.taskQueue
        if command.hasInput { event.input = command.input }
        event.workflowExecutionTimeoutNanos = command.workflowExecutionTimeoutNanos
        event.workflowRunTimeoutNanos = command.workflowRunTimeoutNanos
        event.workflowTaskTimeoutNanos = command.workflowTaskTimeoutNanos
        event.parentClosePolicy = command.parentClosePolicy == .unspecified ? .terminate : command.parentClosePolicy
        event.workflowTaskCompletedEventID = completedEventId
        event.workflowIDReusePolicy = command.workflowIDReusePolicy
        if command.hasRetryPolicy { event.retryPolicy = command.retryPolicy }
        if command.hasHeader { event.header = command.header }
        if command.hasMemo { event.memo = command.memo }
        if command.hasSearchAttributes { event.searchAttributes = command.searchAttributes }
        event.control = command.control
        let initiatedId = run.append(.startChildWorkflowExecutionInitiated(event), &context)
        run.children[initiatedId] = PendingChild(
            initiatedEventId: initiatedId, namespace: event.namespace, workflowId: event.workflowID,
            workflowType: event.workflowType.name, parentClosePolicy: event.parentClosePolicy)
        context.followUps.append(.startChild(parent: run.key, initiatedEventId: initiatedId, attributes: event))
    }

    /// Starts an initiated child and tells the parent (ChildWorkflowExecutionStarted or StartChildWorkflowExecutionFailed).
    mutating func startChild(
        parent: RunKey, initiatedEventId: Int64,
        _ attributes: Ballast_V1_StartChildWorkflowExecutionInitiatedEventAttributes, _ context: inout ApplyContext
    ) {
        // A parent that closed in the same task does not start its child.
        guard runs[parent.runId]?.children[initiatedEventId] != nil else { return }
        var failureCause: Ballast_V1_StartChildWorkflowExecutionFailedCause?
        var childKey: RunKey?
        if namespaces[attributes.namespace] == nil {
            failureCause = .namespaceNotFound
        } else if let existing = currentRuns[WorkflowKey(namespace: attributes.namespace, workflowId: attributes.workflowID)],
                  runs[existing] != nil || !Self.reuseAllowed(attributes.workflowIDReusePolicy, closed[existing]) {
            failureCause = .workflowAlreadyExists
        } else {
            childKey = startChildRun(parent: parent, initiatedEventId: initiatedEventId, attributes, &context)
        }
        guard var run = runs.removeValue(forKey: parent.runId) else { return }
        if let childKey {
            run.children[initiatedEventId]?.runId = childKey.runId
            var started = Ballast_V1_ChildWorkflowExecutionStartedEventAttributes()
            started.namespace = childKey.namespace
            started.initiatedEventID = initiatedEventId
            started.workflowExecution = childKey.execution
            started.workflowType = attributes.workflowType
            if attributes.hasHeader { started.header = attributes.header }
            run.appendOrBuffer(.childWorkflowExecutionStarted(started), &context)
        } else if let failureCause {
            run.children.removeValue(forKey: initiatedEventId)
            var failed = Ballast_V1_StartChildWorkflowExecutionFailedEventAttributes()
            failed.namespace = attributes.namespace
            failed.workflowID = attributes.workflowID
            failed.workflowType = attributes.workflowType
            failed.cause = failureCause
            failed.initiatedEventID = initiatedEventId
            failed.workflowTaskCompletedEventID = attributes.workflowTaskCompletedEventID
            run.appendOrBuffer(.startChildWorkflowExecutionFailed(failed), &context)
        }
        ensureWorkflowTask(&run, &context)
        storeRun(run, &context)
    }

    /// Whether a closed previous run lets a child with this workflow id start.
    static func reuseAllowed(_ policy: Ballast_V1_WorkflowIdReusePolicy, _ previous: ClosedRun?) -> Bool {
        guard let previous else { return true }
        switch policy {
        case .rejectDuplicate: return false
        case .allowDuplicateFailedOnly: return previous.status != .completed && previous.status != .continuedAsNew
        default: return true
        }
    }

    private mutating func startChildRun(
        parent: RunKey, initiatedEventId: Int64,
        _ attributes: Ballast_V1_StartChildWorkflowExecutionInitiatedEventAttributes, _ context: inout ApplyContext
    ) -> RunKey {
        var started = Ballast_V1_WorkflowExecutionStartedEventAttributes()
        started.workflowType = attributes.workflowType
        started.taskQueue = attributes.taskQueue
        if attributes.hasInput { started.input = attributes.input }
        started.workflowExecutionTimeoutNanos = attributes.workflowExecutionTimeoutNanos
        started.workflowRunTimeoutNanos = attributes.workflowRunTimeoutNanos
        started.workflowTaskTimeoutNanos = attributes.workflowTaskTimeoutNanos
        if attributes.hasRetryPolicy { started.retryPolicy = attributes.retryPolicy }
        if attributes.hasHeader { started.header = attributes.header }
        if attributes.hasMemo { started.memo = attributes.memo }
        if attributes.hasSearchAttributes { started.searchAttributes = attributes.searchAttributes }
        let runId = makeRunId(namespace: attributes.namespace, workflowId: attributes.workflowID, context: &context)
        let link = ParentLink(namespace: parent.namespace, workflowId: parent.workflowId, runId: parent.runId,
                              initiatedEventId: initiatedEventId)
        return startRun(NewRun(namespace: attributes.namespace, workflowId: attributes.workflowID, runId: runId,
                               started: started, parent: link), &context)
    }

    /// SignalExternalWorkflowExecution: writes Initiated now; the signal is delivered once this run is stored.
    mutating func initiateSignalExternal(
        _ command: Ballast_V1_SignalExternalWorkflowExecutionCommandAttributes, run: inout RunState, completedEventId: Int64,
        _ context: inout ApplyContext
    ) {
        var event = Ballast_V1_SignalExternalWorkflowExecutionInitiatedEventAttributes()
        event.workflowTaskCompletedEventID = completedEventId
        event.namespace = command.namespace.isEmpty ? run.key.namespace : command.namespace
        event.workflowExecution = command.execution
        event.signalName = command.signalName
        if command.hasInput { event.input = command.input }
        event.control = command.control
        event.childWorkflowOnly = command.childWorkflowOnly
        if command.hasHeader { event.header = command.header }
        let initiatedId = run.append(.signalExternalWorkflowExecutionInitiated(event), &context)
        context.followUps.append(.signalExternal(source: run.key, initiatedEventId: initiatedId, attributes: event))
    }

    /// Delivers an external signal and reports the outcome to the sender.
    mutating func signalExternal(
        source: RunKey, initiatedEventId: Int64,
        _ attributes: Ballast_V1_SignalExternalWorkflowExecutionInitiatedEventAttributes, _ context: inout ApplyContext
    ) {
        var cause: Ballast_V1_SignalExternalWorkflowExecutionFailedCause = .externalWorkflowExecutionNotFound
        if namespaces[attributes.namespace] == nil { cause = .namespaceNotFound }
        let targetId = try? openRunId(namespace: attributes.namespace, execution: attributes.workflowExecution)
        var delivered = false
        if let targetId, var target = runs[targetId],
           !attributes.childWorkflowOnly || target.parent?.runId == source.runId {
            if target.pendingSignals < limits.maxPendingSignals {
                target = runs.removeValue(forKey: targetId) ?? target
                var signaled = Ballast_V1_WorkflowExecutionSignaledEventAttributes()
                signaled.signalName = attributes.signalName
                if attributes.hasInput { signaled.input = attributes.input }
                if attributes.hasHeader { signaled.header = attributes.header }
                signaled.externalWorkflowExecution = source.execution
                signaled.externalNamespace = source.namespace
                deliverSignal(&target, signaled, requestId: "", &context)
                storeRun(target, &context)
                delivered = true
            } else {
                cause = .signalCountLimitExceeded
            }
        }
        guard var run = runs.removeValue(forKey: source.runId) else { return }
        if delivered {
            var event = Ballast_V1_ExternalWorkflowExecutionSignaledEventAttributes()
            event.initiatedEventID = initiatedEventId
            event.namespace = attributes.namespace
            event.workflowExecution = attributes.workflowExecution
            event.control = attributes.control
            run.appendOrBuffer(.externalWorkflowExecutionSignaled(event), &context)
        } else {
            var event = Ballast_V1_SignalExternalWorkflowExecutionFailedEventAttributes()
            event.cause = cause
            event.workflowTaskCompletedEventID = attributes.workflowTaskCompletedEventID
            event.namespace = attributes.namespace
            event.workflowExecution = attributes.workflowExecution
            event.initiatedEventID = initiatedEventId
            event.control = attributes.control
            run.appendOrBuffer(.signalExternalWorkflowExecutionFailed(event), &context)
        }
        ensureWorkflowTask(&run, &context)
        storeRun(run, &context)
    }
}
