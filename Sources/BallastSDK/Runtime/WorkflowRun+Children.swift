import BallastProto

extension WorkflowRun {
    /// Starts a child workflow; the returned call resolves `started` then `result`.
    func startChild(type: String, input: Ballast_V1_Payloads, options: ChildWorkflowOptions) throws -> ChildCall {
        try checkUsable()
        let sequence = nextChildSeq
        nextChildSeq += 1
        let workflowId = options.workflowId ?? "\(info.workflowId)/child-\(sequence)"
        guard children[workflowId] == nil else {
            throw ApplicationError("\(label): a child workflow with id \(workflowId) is already running",
                                   type: "ChildWorkflowAlreadyStarted", nonRetryable: true)
        }
        let call = ChildCall(workflowId: workflowId, type: type)
        children[workflowId] = call
        var attributes = Ballast_V1_StartChildWorkflowExecutionCommandAttributes()
        attributes.workflowID = workflowId
        attributes.workflowType.name = type
        attributes.taskQueue = options.taskQueue ?? info.taskQueue
        attributes.input = input
        attributes.workflowExecutionTimeoutNanos = options.executionTimeout?.nanoseconds ?? 0
        attributes.workflowRunTimeoutNanos = options.runTimeout?.nanoseconds ?? 0
        attributes.workflowTaskTimeoutNanos = options.taskTimeout?.nanoseconds ?? 0
        attributes.parentClosePolicy = options.parentClosePolicy
        if let policy = options.retryPolicy { attributes.retryPolicy = policy.proto }
        attributes.searchAttributes.indexedFields = options.searchAttributes
        var command = Ballast_V1_Command()
        command.startChildWorkflowExecution = attributes
        append(.startChild(workflowId: workflowId, type: type), command) { [self] eventId in
            call.initiatedEventId = eventId
            childIdsByInitiatedEventId[eventId] = workflowId
        }
        return call
    }

    /// Waits for one of a child's completions; a canceled wait stops waiting (the child itself
    /// keeps running under its parent close policy) and withdraws an unsent start.
    func awaitChild<Value: Sendable>(_ call: ChildCall, _ completion: Completion<Value>) async throws -> Value {
        try await withTaskCancellationHandler {
            try await completion.value()
        } onCancel: { [self] in
            guard !isTearingDown, !completion.isResolved else { return }
            if call.initiatedEventId == 0, withdraw(.startChild(workflowId: call.workflowId, type: call.type)) {
                children.removeValue(forKey: call.workflowId)
            }
            let error = ChildWorkflowError(workflowType: call.type, workflowId: call.workflowId,
                                           outcome: "wait canceled", cause: CanceledError("child workflow wait canceled"))
            call.started.resolve(.failure(error))
            call.result.resolve(.failure(error))
        }
    }

    /// Signals another workflow and waits until the cluster delivered (or refused) the signal.
    func signalExternal(workflowId: String, runId: String, signal: String, input: Ballast_V1_Payloads) async throws {
        try checkUsable()
        nextSignalExternalSeq += 1
        let completion = Completion<Void>()
        unrecordedExternalSignals.append(completion)
        var attributes = Ballast_V1_SignalExternalWorkflowExecutionCommandAttributes()
        attributes.execution.workflowID = workflowId
        attributes.execution.runID = runId
        attributes.signalName = signal
        attributes.input = input
        var command = Ballast_V1_Command()
        command.signalExternalWorkflowExecution = attributes
        append(.signalExternal(workflowId: workflowId, signal: signal), command) { [self] eventId in
            unrecordedExternalSignals.removeAll { $0 === completion }
            externalSignals[eventId] = completion
        }
        try await completion.value()
    }
}
