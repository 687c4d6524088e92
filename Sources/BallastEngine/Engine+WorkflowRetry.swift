import BallastProto

extension WorkflowEngine {
    /// The next attempt of a run with a retry policy, if its policy retries this failure.
    func retryRun(_ run: RunState, failure: Ballast_V1_Failure, _ context: inout ApplyContext) -> NewRun? {
        guard let retry = run.retry else { return nil }
        let decision = RetryRules.decide(policy: retry.policy, attempt: retry.attempt, failure: failure,
                                         now: context.now, scheduleToCloseDeadline: run.executionExpiration,
                                         bounded: context.boundedRetries)
        guard decision.state == .inProgress else { return nil }
        var started = Ballast_V1_WorkflowExecutionStartedEventAttributes()
        started.workflowType.name = run.workflowType
        started.taskQueue = run.taskQueue
        if let input = retry.input { started.input = input }
        if let header = retry.header { started.header = header }
        started.workflowRunTimeoutNanos = retry.runTimeout
        started.workflowTaskTimeoutNanos = run.workflowTaskTimeout
        started.continuedExecutionRunID = run.key.runId
        started.initiator = .retry
        started.continuedFailure = failure
        started.firstExecutionRunID = run.firstRunId
        started.retryPolicy = retry.policy
        started.attempt = retry.attempt.nextAttempt
        started.workflowExecutionExpirationTimeUnixNanos = run.executionExpiration
        started.memo = run.memo
        started.searchAttributes = run.searchAttributes
        let runId = makeRunId(namespace: run.key.namespace, workflowId: run.key.workflowId, context: &context)
        return NewRun(namespace: run.key.namespace, workflowId: run.key.workflowId, runId: runId, started: started,
                      parent: run.parent, backoffNanos: decision.backoffNanos)
    }

    /// Why a run with a retry policy is not retried.
    func retryStateAfter(_ retry: RunRetry, failure: Ballast_V1_Failure, run: RunState,
                         _ context: borrowing ApplyContext) -> Ballast_V1_RetryState {
        RetryRules.decide(policy: retry.policy, attempt: retry.attempt, failure: failure, now: context.now,
                          scheduleToCloseDeadline: run.executionExpiration, bounded: context.boundedRetries).state
    }
}
