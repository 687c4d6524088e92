import BallastProto

extension WorkflowRun {
    /// Applies one input event (anything that is neither a command's event nor the workflow task
    /// cycle): starts the code, resolves what it waits on, delivers signals and cancellation.
    func apply(_ event: Ballast_V1_HistoryEvent) throws(RunFailure) {
        switch event.attributes {
        case .workflowExecutionStarted(let a):
            info.startTimeUnixNanos = event.eventTimeUnixNanos
            try startRoot(a)
        case .activityTaskCompleted(let a):
            activityCall(a.scheduledEventID)?.completion.resolve(.success(a.result))
        case .activityTaskFailed(let a):
            resolveActivityFailure(a.scheduledEventID, retryState: a.retryState, cause: FailureConverter.error(from: a.failure))
        case .activityTaskTimedOut(let a):
            resolveActivityFailure(a.scheduledEventID, retryState: a.retryState, cause: FailureConverter.error(from: a.failure))
        case .activityTaskCanceled(let a):
            activityCall(a.scheduledEventID)?.completion.resolve(.failure(CanceledError("activity canceled")))
        case .timerFired(let a):
            if let timer = timers.removeValue(forKey: a.timerID) {
                timer.completion.resolve(.success(()))
                timer.onFired?()
            }
        case .workflowExecutionSignaled(let a):
            deliverSignal(a.signalName, a.input)
        case .workflowExecutionCancelRequested:
            guard !cancelRequested else { break }
            cancelRequested = true
            rootTask?.cancel()
        default:
            applyChildOrExternal(event)
        }
    }

    private func applyChildOrExternal(_ event: Ballast_V1_HistoryEvent) {
        switch event.attributes {
        case .childWorkflowExecutionStarted(let a):
            childCall(a.initiatedEventID)?.started.resolve(.success(a.workflowExecution))
        case .startChildWorkflowExecutionFailed(let a):
            guard let call = childCall(a.initiatedEventID) else { break }
            let error = ChildWorkflowError(workflowType: call.type, workflowId: call.workflowId,
                                           outcome: "could not start (\(a.cause))", cause: nil)
            call.started.resolve(.failure(error))
            call.result.resolve(.failure(error))
        case .childWorkflowExecutionCompleted(let a):
            childCall(a.initiatedEventID)?.result.resolve(.success(a.result))
        case .childWorkflowExecutionFailed(let a):
            resolveChild(a.initiatedEventID, "failed", FailureConverter.error(from: a.failure))
        case .childWorkflowExecutionCanceled(let a):
            resolveChild(a.initiatedEventID, "was canceled", CanceledError("child workflow canceled"))
        case .childWorkflowExecutionTimedOut(let a):
            resolveChild(a.initiatedEventID, "timed out", nil)
        case .childWorkflowExecutionTerminated(let a):
            resolveChild(a.initiatedEventID, "was terminated", nil)
        case .externalWorkflowExecutionSignaled(let a):
            externalSignals.removeValue(forKey: a.initiatedEventID)?.resolve(.success(()))
        case .signalExternalWorkflowExecutionFailed(let a):
            let error = SignalExternalError(workflowId: a.workflowExecution.workflowID, cause: a.cause)
            externalSignals.removeValue(forKey: a.initiatedEventID)?.resolve(.failure(error))
        default:
            // ActivityTaskStarted, terminated/timed-out closes, and events this SDK does not act on.
            break
        }
    }

    private func activityCall(_ scheduledEventId: Int64) -> ActivityCall? {
        guard let id = activityIdsByScheduledEventId.removeValue(forKey: scheduledEventId) else { return nil }
        return activities.removeValue(forKey: id)
    }

    private func resolveActivityFailure(_ scheduledEventId: Int64, retryState: Ballast_V1_RetryState, cause: any Error & Sendable) {
        guard let call = activityCall(scheduledEventId) else { return }
        let error = ActivityError(activityType: call.type, activityId: call.id, retryState: retryState, cause: cause)
        call.completion.resolve(.failure(error))
    }

    private func childCall(_ initiatedEventId: Int64) -> ChildCall? {
        guard let id = childIdsByInitiatedEventId[initiatedEventId] else { return nil }
        return children[id]
    }

    private func resolveChild(_ initiatedEventId: Int64, _ outcome: String, _ cause: (any Error & Sendable)?) {
        guard let id = childIdsByInitiatedEventId.removeValue(forKey: initiatedEventId),
              let call = children.removeValue(forKey: id) else { return }
        let error = ChildWorkflowError(workflowType: call.type, workflowId: call.workflowId, outcome: outcome, cause: cause)
        call.started.resolve(.failure(error))
        call.result.resolve(.failure(error))
    }

    /// A signal goes to its handler, else to the oldest waiting receiver, else into the buffer.
    func deliverSignal(_ name: String, _ input: Ballast_V1_Payloads) {
        if let handler = signalHandlers[name] {
            handler(input)
            return
        }
        if var waiters = signalWaiters[name], !waiters.isEmpty {
            let waiter = waiters.removeFirst()
            signalWaiters[name] = waiters
            waiter.resolve(.success(input))
            return
        }
        if bufferedSignals.count >= Self.maxBufferedSignals {
            let dropped = bufferedSignals.removeFirst()
            logger.warning("signal buffer full; dropping the oldest unhandled signal",
                           metadata: ["signal": "\(dropped.name)", "limit": "\(Self.maxBufferedSignals)"])
        }
        bufferedSignals.append((name, input))
    }

    /// Takes the oldest buffered signal of `name`.
    func takeBufferedSignal(_ name: String) -> Ballast_V1_Payloads? {
        guard let index = bufferedSignals.firstIndex(where: { $0.name == name }) else { return nil }
        return bufferedSignals.remove(at: index).input
    }
}
