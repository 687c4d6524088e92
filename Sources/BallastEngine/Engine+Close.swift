import BallastProto

extension WorkflowEngine {
    /// Closes a run from outside its workflow code (terminate, timeout, limit): an in-flight task is failed first.
    mutating func forceClose(_ run: inout RunState, _ close: RunClose, _ context: inout ApplyContext) {
        if let task = run.workflowTask, task.isStarted, !task.isTransient {
            run.workflowTask = nil
            appendWorkflowTaskFailed(&run, task, cause: .forceCloseCommand,
                                     failure: serverFailure("the run was closed while the task ran", type: "ForceClose"),
                                     identity: "", &context)
        }
        run.workflowTask = nil
        run.flushBuffered(&context)
        finishRun(&run, close, &context)
    }

    /// Writes the close event, moves the run to the closed summaries and queues its cross-run effects.
    mutating func finishRun(_ run: inout RunState, _ close: RunClose, _ context: inout ApplyContext) {
        precondition(runs[run.key.runId] == nil, "a closing run must be taken out of the open runs")
        run.workflowTask = nil
        run.append(close.event, &context)
        let namespace = namespaces[run.key.namespace]
        let retention = namespace?.retentionNanos ?? Self.defaultRetentionNanos
        let summary = ClosedRun(
            key: run.key, workflowType: run.workflowType, taskQueue: run.taskQueue, status: close.status,
            startTime: run.startTime, closeTime: context.now, historyLength: run.historyLength,
            historyHash: run.historyHash, startRequestId: run.startRequestId, firstRunId: run.firstRunId,
            memo: run.memo, searchAttributes: run.searchAttributes, parent: run.parent,
            retentionExpiry: context.now.addingSaturated(retention))
        rememberClosed(summary, &context)
        context.result.closedRuns.append(run.key)
        for initiatedId in run.children.keys.sorted() {
            if let child = run.children[initiatedId] { context.followUps.append(.closeChild(child: child, parent: run.key)) }
        }
        if let next = close.continueAsNew {
            startRun(next, &context)
        } else if let parent = run.parent {
            context.followUps.append(.notifyParent(parent: parent, child: run.key, childType: run.workflowType, close: close.event))
        }
    }

    /// Keeps a closed run's summary until retention, evicting the oldest beyond the limit.
    private mutating func rememberClosed(_ summary: ClosedRun, _ context: inout ApplyContext) {
        closed[summary.key.runId] = summary
        indexClosed(summary)
        closedOrder.append(summary.key.runId)
        orderForRetention(summary, &context)
        while closed.count > limits.maxClosedSummaries, closedOrderHead < closedOrder.count {
            let oldest = closedOrder[closedOrderHead]
            closedOrderHead += 1
            if let evicted = closed[oldest] { dropClosedRun(evicted, &context) }
        }
        if closedOrderHead > 1_024, closedOrderHead * 2 > closedOrder.count {
            closedOrder.removeFirst(closedOrderHead)
            closedOrderHead = 0
        }
    }

    /// Runs queued cross-run effects in order; effects may queue more (a terminated child's children).
    mutating func runFollowUps(_ context: inout ApplyContext) {
        var position = 0
        while position < context.followUps.count {
            let followUp = context.followUps[position]
            position += 1
            switch followUp {
            case let .startChild(parent, initiatedId, attributes):
                startChild(parent: parent, initiatedEventId: initiatedId, attributes, &context)
            case let .signalExternal(source, initiatedId, attributes):
                signalExternal(source: source, initiatedEventId: initiatedId, attributes, &context)
            case let .notifyParent(parent, child, childType, close):
                notifyParent(parent, child: child, childType: childType, close: close, &context)
            case let .closeChild(child, parent):
                applyParentClosePolicy(child, parent: parent, &context)
            }
        }
        context.followUps.removeAll()
    }

    /// Delivers a child's close to its parent as a ChildWorkflowExecution* event.
    private mutating func notifyParent(
        _ parent: ParentLink, child: RunKey, childType: String, close: EventAttributes, _ context: inout ApplyContext
    ) {
        guard var run = runs.removeValue(forKey: parent.runId) else { return }
        guard run.children[parent.initiatedEventId] != nil,
              let event = Self.childCloseEvent(close, parent: parent, child: child, childType: childType) else {
            runs[parent.runId] = run
            return
        }
        run.appendOrBuffer(event, &context)
        ensureWorkflowTask(&run, &context)
        storeRun(run, &context)
    }

    /// The parent-side event for a child's close event.
    static func childCloseEvent(_ close: EventAttributes, parent: ParentLink, child: RunKey, childType: String) -> EventAttributes? {
        let execution = child.execution
        var type = Ballast_V1_WorkflowType()
        type.name = childType
        let initiated = parent.initiatedEventId, started = startedEventIdOfPreviousEvent
        switch close {
        case let .workflowExecutionCompleted(value):
            var event = Ballast_V1_ChildWorkflowExecutionCompletedEventAttributes()
            event.result = value.result
            (event.namespace, event.workflowExecution, event.workflowType) = (child.namespace, execution, type)
            (event.initiatedEventID, event.startedEventID) = (initiated, started)
            return .childWorkflowExecutionCompleted(event)
        case let .workflowExecutionFailed(value):
            var event = Ballast_V1_ChildWorkflowExecutionFailedEventAttributes()
            (event.failure, event.retryState) = (value.failure, value.retryState)
            (event.namespace, event.workflowExecution, event.workflowType) = (child.namespace, execution, type)
            (event.initiatedEventID, event.startedEventID) = (initiated, started)
            return .childWorkflowExecutionFailed(event)
        case let .workflowExecutionCanceled(value):
            var event = Ballast_V1_ChildWorkflowExecutionCanceledEventAttributes()
            event.details = value.details
            (event.namespace, event.workflowExecution, event.workflowType) = (child.namespace, execution, type)
            (event.initiatedEventID, event.startedEventID) = (initiated, started)
            return .childWorkflowExecutionCanceled(event)
        case let .workflowExecutionTimedOut(value):
            var event = Ballast_V1_ChildWorkflowExecutionTimedOutEventAttributes()
            event.retryState = value.retryState
            (event.namespace, event.workflowExecution, event.workflowType) = (child.namespace, execution, type)
            (event.initiatedEventID, event.startedEventID) = (initiated, started)
            return .childWorkflowExecutionTimedOut(event)
        case .workflowExecutionTerminated:
            var event = Ballast_V1_ChildWorkflowExecutionTerminatedEventAttributes()
            (event.namespace, event.workflowExecution, event.workflowType) = (child.namespace, execution, type)
            (event.initiatedEventID, event.startedEventID) = (initiated, started)
            return .childWorkflowExecutionTerminated(event)
        default:
            return nil
        }
    }

    /// Terminates or cancels a closed parent's child, per its parent close policy.
    private mutating func applyParentClosePolicy(_ child: PendingChild, parent: RunKey, _ context: inout ApplyContext) {
        guard !child.runId.isEmpty,
              let current = currentRuns[WorkflowKey(namespace: child.namespace, workflowId: child.workflowId)],
              let run = runs[current], run.firstRunId == child.runId else { return }
        switch child.parentClosePolicy {
        case .abandon:
            return
        case .requestCancel:
            guard var open = runs.removeValue(forKey: current) else { return }
            var attributes = Ballast_V1_WorkflowExecutionCancelRequestedEventAttributes()
            attributes.cause = "parent closed (ParentClosePolicy REQUEST_CANCEL)"
            attributes.externalWorkflowExecution = parent.execution
            requestCancel(&open, attributes, &context)
            storeRun(open, &context)
        default:
            terminateRun(current, reason: "parent \(parent) closed (ParentClosePolicy TERMINATE)", details: nil,
                         identity: "", &context)
        }
    }
}
