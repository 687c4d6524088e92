import BallastProto

extension WorkflowEngine {
    /// SignalWorkflow: records the signal (once per request id) and makes sure a workflow task will see it.
    mutating func signalWorkflow(_ request: Ballast_V1_SignalWorkflowRequest, _ context: inout ApplyContext) throws(EngineRejection) {
        let namespace = try resolveNamespace(request.namespace).name
        guard !request.signalName.isEmpty else { throw .invalidArgument("signal_name is required") }
        if context.limitsIdentifiers,
           let problem = identifierProblem("signal_name", request.signalName) ?? identifierProblem("request_id", request.requestID) {
            throw .invalidArgument(problem)
        }
        try checkPayload(request.input, field: "signal input")
        let runId = try openRunId(namespace: namespace, execution: request.workflowExecution)
        guard let found = runs[runId] else { return }
        if !request.requestID.isEmpty, found.signalRequestIdSet.contains(request.requestID) { return }
        guard found.pendingSignals < limits.maxPendingSignals else {
            throw .limitExceeded("run \(found.key) has \(found.pendingSignals) signals not yet handled by a workflow task")
        }
        guard var run = runs.removeValue(forKey: runId) else { return }
        var signaled = Ballast_V1_WorkflowExecutionSignaledEventAttributes()
        signaled.signalName = request.signalName
        if request.hasInput { signaled.input = request.input }
        signaled.identity = request.identity
        signaled.reason = request.reason
        if request.hasHeader { signaled.header = request.header }
        deliverSignal(&run, signaled, requestId: request.requestID, &context)
        storeRun(run, &context)
    }

    /// Writes (or buffers) a signal and schedules a workflow task if none is pending.
    mutating func deliverSignal(
        _ run: inout RunState, _ signaled: Ballast_V1_WorkflowExecutionSignaledEventAttributes, requestId: String,
        _ context: inout ApplyContext
    ) {
        if !requestId.isEmpty {
            run.signalRequestIds.append(requestId)
            run.signalRequestIdSet.insert(requestId)
            if run.signalRequestIds.count > limits.signalRequestIdMemory {
                run.signalRequestIdSet.remove(run.signalRequestIds.removeFirst())
            }
        }
        run.pendingSignals += 1
        run.appendOrBuffer(.workflowExecutionSignaled(signaled), &context)
        ensureWorkflowTask(&run, &context)
    }

    /// SignalWithStart: signals the running run, or starts one and signals it in the same entry.
    mutating func signalWithStart(_ request: Ballast_V1_SignalWithStartWorkflowRequest, _ context: inout ApplyContext) throws(EngineRejection) {
        let namespace = try resolveNamespace(request.start.namespace)
        guard !request.signalName.isEmpty else { throw .invalidArgument("signal_name is required") }
        // Checked before anything is started: the signal is delivered after the start, in this entry.
        if context.limitsIdentifiers,
           let problem = identifierProblem("signal_name", request.signalName)
               ?? identifierProblem("start.request_id", request.start.requestID) {
            throw .invalidArgument(problem)
        }
        try checkPayload(request.signalInput, field: "signal input")
        var signal = Ballast_V1_SignalWorkflowRequest()
        signal.namespace = namespace.name
        signal.workflowExecution.workflowID = request.start.workflowID
        signal.signalName = request.signalName
        if request.hasSignalInput { signal.input = request.signalInput }
        signal.identity = request.start.identity
        signal.requestID = request.start.requestID
        if request.hasSignalHeader { signal.header = request.signalHeader }
        let current = currentRuns[WorkflowKey(namespace: namespace.name, workflowId: request.start.workflowID)]
        if let current, runs[current] != nil {
            try signalWorkflow(signal, &context)
            var response = Ballast_V1_StartWorkflowResponse()
            response.runID = current
            context.result.response = .started(response)
            return
        }
        var start = request.start
        if start.workflowIDReusePolicy == .terminateIfRunning { start.workflowIDReusePolicy = .allowDuplicate }
        let response = try startOrReuse(start, &context)
        signal.workflowExecution.runID = response.runID
        try signalWorkflow(signal, &context)
        context.result.response = .started(response)
    }

    /// RequestCancelWorkflow: records the request once; the workflow decides how to cancel.
    mutating func requestCancel(_ request: Ballast_V1_RequestCancelWorkflowRequest, _ context: inout ApplyContext) throws(EngineRejection) {
        let namespace = try resolveNamespace(request.namespace).name
        let runId = try openRunId(namespace: namespace, execution: request.workflowExecution)
        guard var run = runs.removeValue(forKey: runId) else { return }
        var attributes = Ballast_V1_WorkflowExecutionCancelRequestedEventAttributes()
        attributes.cause = request.reason
        attributes.identity = request.identity
        requestCancel(&run, attributes, &context)
        storeRun(run, &context)
    }

    /// Writes WorkflowExecutionCancelRequested unless the run already has one.
    mutating func requestCancel(
        _ run: inout RunState, _ attributes: Ballast_V1_WorkflowExecutionCancelRequestedEventAttributes,
        _ context: inout ApplyContext
    ) {
        guard !run.cancelRequested else { return }
        run.cancelRequested = true
        run.appendOrBuffer(.workflowExecutionCancelRequested(attributes), &context)
        ensureWorkflowTask(&run, &context)
    }

    /// TerminateWorkflow: closes the run at once.
    mutating func terminate(_ request: Ballast_V1_TerminateWorkflowRequest, _ context: inout ApplyContext) throws(EngineRejection) {
        let namespace = try resolveNamespace(request.namespace).name
        let runId = try openRunId(namespace: namespace, execution: request.workflowExecution)
        try checkPayload(request.details, field: "details")
        terminateRun(runId, reason: request.reason, details: request.hasDetails ? request.details : nil,
                     identity: request.identity, &context)
    }

    /// Terminates an open run (no-op if it is not open).
    mutating func terminateRun(
        _ runId: String, reason: String, details: Ballast_V1_Payloads?, identity: String, _ context: inout ApplyContext
    ) {
        guard var run = runs.removeValue(forKey: runId) else { return }
        var attributes = Ballast_V1_WorkflowExecutionTerminatedEventAttributes()
        attributes.reason = reason
        if let details { attributes.details = details }
        attributes.identity = identity
        forceClose(&run, RunClose(event: .workflowExecutionTerminated(attributes), status: .terminated), &context)
    }

    /// TimerFired: a started timer's fire time passed.
    mutating func timerFired(_ request: Ballast_V1_TimerFiredRequest, _ context: inout ApplyContext) throws(EngineRejection) {
        let runId = try openRunId(namespace: request.namespace, execution: request.workflowExecution)
        guard let found = runs[runId], let timer = found.timers[request.timerID],
              timer.startedEventId == request.startedEventID, timer.fireTime <= context.now else {
            throw .staleTimeEntry("timer \(request.timerID) (event \(request.startedEventID)) of \(runId) is not due")
        }
        guard var run = runs.removeValue(forKey: runId) else { return }
        run.timers.removeValue(forKey: request.timerID)
        var fired = Ballast_V1_TimerFiredEventAttributes()
        fired.timerID = timer.timerId
        fired.startedEventID = timer.startedEventId
        run.appendOrBuffer(.timerFired(fired), &context)
        ensureWorkflowTask(&run, &context)
        storeRun(run, &context)
    }

    /// WorkflowExecutionTimedOut: the run or execution timeout passed.
    mutating func workflowExecutionTimedOut(_ request: Ballast_V1_WorkflowExecutionTimedOutRequest, _ context: inout ApplyContext) throws(EngineRejection) {
        let runId = try openRunId(namespace: request.namespace, execution: request.workflowExecution)
        guard let found = runs[runId], let due = executionTimeoutTimer(found), due.dueTimeUnixNanos <= context.now else {
            throw .staleTimeEntry("run \(runId) has no due execution timeout")
        }
        guard var run = runs.removeValue(forKey: runId) else { return }
        var attributes = Ballast_V1_WorkflowExecutionTimedOutEventAttributes()
        attributes.retryState = .timeout
        // Only a run timeout is retried; the execution timeout ends the whole chain.
        let runTimedOut = run.runExpiration > 0 && run.runExpiration <= context.now
            && (run.executionExpiration == 0 || run.executionExpiration > context.now)
        var failure = serverFailure("workflow run timeout", type: "", nonRetryable: false)
        failure.timeoutType = .startToClose
        var next: NewRun?
        if runTimedOut, let retried = retryRun(run, failure: failure, &context) {
            attributes.retryState = .inProgress
            attributes.newExecutionRunID = retried.runId
            next = retried
        }
        forceClose(&run, RunClose(event: .workflowExecutionTimedOut(attributes), status: .timedOut, continueAsNew: next), &context)
    }

    /// RetentionExpired: a closed run's summary and history are dropped.
    mutating func retentionExpired(_ request: Ballast_V1_RetentionExpiredRequest, _ context: inout ApplyContext) throws(EngineRejection) {
        let runId = request.workflowExecution.runID
        let namespace = request.namespace.isEmpty ? Self.defaultNamespace : request.namespace
        guard let summary = closed[runId], summary.key.namespace == namespace,
              summary.retentionExpiry <= context.now else {
            throw .staleTimeEntry("closed run \(runId) is not due for deletion")
        }
        dropClosedRun(summary, &context)
    }

    /// Forgets a closed run and tells the node to delete its history.
    mutating func dropClosedRun(_ summary: ClosedRun, _ context: inout ApplyContext) {
        closed.removeValue(forKey: summary.key.runId)
        forgetForRetention(summary, &context)
        indexDropped(summary.key.runId)
        let workflowKey = WorkflowKey(namespace: summary.key.namespace, workflowId: summary.key.workflowId)
        if currentRuns[workflowKey] == summary.key.runId { currentRuns.removeValue(forKey: workflowKey) }
        context.result.deletedRuns.append(summary.key)
    }
}
