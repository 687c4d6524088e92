import BallastProto

/// What a new run is started with (a client start, a child start or a continue-as-new).
struct NewRun {
    var namespace: String
    var workflowId: String
    var runId: String
    var started: Ballast_V1_WorkflowExecutionStartedEventAttributes
    var parent: ParentLink?
    var backoffNanos: Int64 = 0
}

extension WorkflowEngine {
    /// StartWorkflow: idempotent by request id, subject to the workflow-id reuse policy.
    mutating func startWorkflow(_ request: Ballast_V1_StartWorkflowRequest, _ context: inout ApplyContext) throws(EngineRejection) {
        let response = try startOrReuse(request, &context)
        context.result.response = .started(response)
    }

    /// Starts a run for `request` unless the request id or the reuse policy says otherwise.
    mutating func startOrReuse(
        _ request: Ballast_V1_StartWorkflowRequest, _ context: inout ApplyContext
    ) throws(EngineRejection) -> Ballast_V1_StartWorkflowResponse {
        let namespace = try resolveNamespace(request.namespace)
        try validateStart(request, namespace: namespace, limitsSizes: context.limitsSearchAttributeSizes,
                          limitsIdentifiers: context.limitsIdentifiers)
        var response = Ballast_V1_StartWorkflowResponse()
        let workflowKey = WorkflowKey(namespace: namespace.name, workflowId: request.workflowID)
        var runToTerminate: String?
        if let currentId = currentRuns[workflowKey] {
            if let open = runs[currentId] {
                if !request.requestID.isEmpty, open.startRequestId == request.requestID {
                    response.runID = currentId
                    return response
                }
                guard request.workflowIDReusePolicy == .terminateIfRunning else {
                    throw .workflowAlreadyStarted(namespace: namespace.name, workflowId: request.workflowID, runId: currentId)
                }
                runToTerminate = currentId
            } else if let previous = closed[currentId] {
                if !request.requestID.isEmpty, previous.startRequestId == request.requestID {
                    response.runID = currentId
                    return response
                }
                try checkReusePolicy(request.workflowIDReusePolicy, previous: previous)
            }
        }
        guard runToTerminate != nil || runs.count < limits.maxOpenRuns else {
            throw .limitExceeded("\(runs.count) runs are open, the limit is \(limits.maxOpenRuns)")
        }
        if let runToTerminate {
            terminateRun(runToTerminate, reason: "terminated by a new start with the TerminateIfRunning reuse policy",
                         details: nil, identity: request.identity, &context)
        }
        let runId = makeRunId(namespace: namespace.name, workflowId: request.workflowID, context: &context)
        var started = Ballast_V1_WorkflowExecutionStartedEventAttributes()
        started.workflowType = request.workflowType
        started.taskQueue = request.taskQueue
        if request.hasInput { started.input = request.input }
        started.workflowExecutionTimeoutNanos = request.workflowExecutionTimeoutNanos
        started.workflowRunTimeoutNanos = request.workflowRunTimeoutNanos
        started.workflowTaskTimeoutNanos = request.workflowTaskTimeoutNanos
        started.identity = request.identity
        started.requestID = request.requestID
        if request.hasRetryPolicy { started.retryPolicy = request.retryPolicy }
        if request.hasMemo { started.memo = request.memo }
        if request.hasSearchAttributes { started.searchAttributes = request.searchAttributes }
        if request.hasHeader { started.header = request.header }
        startRun(NewRun(namespace: namespace.name, workflowId: request.workflowID, runId: runId, started: consume started), &context)
        response.runID = runId
        response.started = true
        return response
    }

    private func checkReusePolicy(
        _ policy: Ballast_V1_WorkflowIdReusePolicy, previous: ClosedRun
    ) throws(EngineRejection) {
        let key = previous.key
        switch policy {
        case .rejectDuplicate:
            throw .workflowAlreadyStarted(namespace: key.namespace, workflowId: key.workflowId, runId: key.runId)
        case .allowDuplicateFailedOnly:
            if previous.status == .completed || previous.status == .continuedAsNew {
                throw .workflowAlreadyStarted(namespace: key.namespace, workflowId: key.workflowId, runId: key.runId)
            }
        default:
            break
        }
    }

    /// Checks a start request's fields.
    func validateStart(_ request: Ballast_V1_StartWorkflowRequest, namespace: NamespaceState, limitsSizes: Bool,
                       limitsIdentifiers: Bool) throws(EngineRejection) {
        guard !request.workflowID.isEmpty, request.workflowID.utf8.count <= 1_000 else {
            throw .invalidArgument("workflow_id must be 1...1000 bytes")
        }
        guard !request.workflowType.name.isEmpty else { throw .invalidArgument("workflow_type.name is required") }
        guard !request.taskQueue.isEmpty else { throw .invalidArgument("task_queue is required") }
        if limitsIdentifiers,
           let problem = identifierProblem("workflow_type.name", request.workflowType.name)
               ?? identifierProblem("task_queue", request.taskQueue) ?? identifierProblem("request_id", request.requestID) {
            throw .invalidArgument(problem)
        }
        guard request.workflowExecutionTimeoutNanos >= 0, request.workflowRunTimeoutNanos >= 0,
              request.workflowTaskTimeoutNanos >= 0 else {
            throw .invalidArgument("timeouts must not be negative")
        }
        if case .invalid(let reason) = RetryRules.validate(request.retryPolicy) {
            throw .invalidArgument("retry_policy: \(reason)")
        }
        try checkPayload(request.input, field: "input")
        if limitsIdentifiers {
            // From format 6 the memo's field names count too (`memoBytes`).
            let size = memoBytes(request.memo)
            guard size <= limits.maxPayloadBytes else {
                throw .payloadTooLarge(field: "memo", bytes: size, limit: limits.maxPayloadBytes)
            }
        } else {
            var memo = Ballast_V1_Payloads()
            memo.payloads = request.memo.fields.keys.sorted().compactMap { request.memo.fields[$0] }
            try checkPayload(memo, field: "memo")
        }
        if let problem = searchAttributeProblem(request.searchAttributes, namespace: namespace, limitsSizes: limitsSizes) {
            throw .invalidArgument(problem)
        }
    }

    /// Creates the run, writes WorkflowExecutionStarted and schedules the first workflow task.
    @discardableResult
    mutating func startRun(_ newRun: consuming NewRun, _ context: inout ApplyContext) -> RunKey {
        let now = context.now
        let key = RunKey(namespace: newRun.namespace, workflowId: newRun.workflowId, runId: newRun.runId)
        // Take the attributes out so that they are uniquely referenced: no copy-on-write below.
        var started = newRun.started
        newRun.started = Ballast_V1_WorkflowExecutionStartedEventAttributes()
        if started.firstExecutionRunID.isEmpty { started.firstExecutionRunID = newRun.runId }
        if started.originalExecutionRunID.isEmpty { started.originalExecutionRunID = newRun.runId }
        if started.attempt == 0 { started.attempt = 1 }
        var taskTimeout = started.workflowTaskTimeoutNanos
        if taskTimeout <= 0 { taskTimeout = Self.defaultWorkflowTaskTimeoutNanos }
        started.workflowTaskTimeoutNanos = min(taskTimeout, Self.maxWorkflowTaskTimeoutNanos)
        if started.workflowExecutionTimeoutNanos > 0, started.workflowExecutionExpirationTimeUnixNanos == 0 {
            started.workflowExecutionExpirationTimeUnixNanos = now.addingSaturated(started.workflowExecutionTimeoutNanos)
        }
        if started.workflowRunTimeoutNanos == 0 || (started.workflowExecutionTimeoutNanos > 0
            && started.workflowRunTimeoutNanos > started.workflowExecutionTimeoutNanos) {
            started.workflowRunTimeoutNanos = started.workflowExecutionTimeoutNanos
        }
        if let parent = newRun.parent {
            started.parentWorkflowNamespace = parent.namespace
            started.parentWorkflowExecution = parent.key.execution
            started.parentInitiatedEventID = parent.initiatedEventId
        }
        openRun(Self.newRunState(key, started: started, parent: newRun.parent, now: now,
                                 boundedRetries: context.boundedRetries), started: started,
                backoffNanos: newRun.backoffNanos, &context)
        return key
    }

    /// The state of a run about to start with these attributes.
    private static func newRunState(
        _ key: RunKey, started: Ballast_V1_WorkflowExecutionStartedEventAttributes, parent: ParentLink?, now: Int64,
        boundedRetries: Bool
    ) -> RunState {
        var run = RunState(
            key: key, workflowType: started.workflowType.name, taskQueue: started.taskQueue, startTime: now,
            startRequestId: started.requestID, firstRunId: started.firstExecutionRunID,
            workflowTaskTimeout: started.workflowTaskTimeoutNanos)
        run.runExpiration = started.workflowRunTimeoutNanos > 0 ? now.addingSaturated(started.workflowRunTimeoutNanos) : 0
        run.executionExpiration = started.workflowExecutionExpirationTimeUnixNanos
        run.parent = parent
        run.memo = started.memo
        run.searchAttributes = started.searchAttributes
        if started.hasRetryPolicy {
            run.retry = RunRetry(policy: RetryRules.withDefaults(started.retryPolicy, bounded: boundedRetries), attempt: started.attempt,
                                 input: started.hasInput ? started.input : nil,
                                 header: started.hasHeader ? started.header : nil,
                                 runTimeout: started.workflowRunTimeoutNanos)
        }
        return run
    }

    /// Writes a new run's WorkflowExecutionStarted, schedules its first workflow task (or arms its
    /// backoff), files it in the visibility index and moves it into the open runs. The run is a
    /// consuming parameter so that it is moved into the map: `startRun` held it in a local `var`,
    /// which Swift 6.3 copied (≈ 1,100 instructions per start to copy and release).
    private mutating func openRun(
        _ run: consuming RunState, started: Ballast_V1_WorkflowExecutionStartedEventAttributes, backoffNanos: Int64,
        _ context: inout ApplyContext
    ) {
        let now = context.now
        let key = run.key
        run.append(.workflowExecutionStarted(started), &context)
        if backoffNanos > 0 {
            run.backoffUntil = now.addingSaturated(backoffNanos)
            var due = Ballast_V1_WorkflowBackoffDueRequest()
            due.namespace = key.namespace
            due.workflowExecution = key.execution
            context.arm(DueTimer(dueTimeUnixNanos: run.backoffUntil, run: key, payload: .workflowBackoffDue(due)))
        } else {
            scheduleWorkflowTask(&run, attempt: 1, &context)
        }
        if let timer = executionTimeoutTimer(run) { context.arm(timer) }
        currentRuns[WorkflowKey(namespace: key.namespace, workflowId: key.workflowId)] = key.runId
        indexStarted(run)
        runs.updateValue(consume run, forKey: key.runId)
    }

    /// The run/execution timeout deadline of an open run, if it has one.
    func executionTimeoutTimer(_ run: RunState) -> DueTimer? {
        let deadline: Int64
        switch (run.runExpiration > 0, run.executionExpiration > 0) {
        case (true, true): deadline = min(run.runExpiration, run.executionExpiration)
        case (true, false): deadline = run.runExpiration
        case (false, true): deadline = run.executionExpiration
        case (false, false): return nil
        }
        var request = Ballast_V1_WorkflowExecutionTimedOutRequest()
        request.namespace = run.key.namespace
        request.workflowExecution = run.key.execution
        return DueTimer(dueTimeUnixNanos: deadline, run: run.key, payload: .workflowExecutionTimedOut(request))
    }

    /// WorkflowBackoffDue: a continue-as-new backoff ended; schedule the first workflow task.
    mutating func workflowBackoffDue(_ request: Ballast_V1_WorkflowBackoffDueRequest, _ context: inout ApplyContext) throws(EngineRejection) {
        let runId = try openRunId(namespace: request.namespace, execution: request.workflowExecution)
        guard let run = runs[runId], run.backoffUntil > 0, run.backoffUntil <= context.now, run.workflowTask == nil else {
            throw .staleTimeEntry("workflow backoff of \(runId) is not due")
        }
        var updated = runs.removeValue(forKey: runId) ?? run
        updated.backoffUntil = 0
        scheduleWorkflowTask(&updated, attempt: 1, &context)
        storeRun(updated, &context)
    }
}
