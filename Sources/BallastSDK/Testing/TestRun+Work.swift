import BallastProto
import Synchronization

extension TestRun {
    /// Runs an activity's attempts through the real executor, retrying per its policy (at most
    /// `maxActivityAttempts` when the policy is unlimited), and records the final outcome.
    func runActivity(_ scheduledEventId: Int64, _ attributes: Ballast_V1_ScheduleActivityTaskCommandAttributes) async {
        var attempt: Int32 = 1
        let heartbeats = TestHeartbeats()
        while true {
            var task = Ballast_V1_ActivityTaskInfo()
            task.namespace = "default"
            task.workflowExecution = builder.execution
            task.workflowType.name = builder.workflowType
            task.activityID = attributes.activityID
            task.activityType = attributes.activityType
            task.taskQueue = attributes.taskQueue
            task.input = attributes.input
            task.attempt = attempt
            task.scheduledEventID = scheduledEventId
            task.heartbeatDetails = heartbeats.last
            switch await environment.activities.handleActivityTask(task, heartbeat: heartbeats) {
            case .completed(let result):
                builder.activityCompleted(scheduledEventId, result: result, attempt: attempt)
                return
            case .canceled:
                builder.activityCanceled(scheduledEventId, cancelRequestedEventId: 0)
                return
            case .failed(let failure, _):
                let policy = attributes.retryPolicy
                let limit = policy.maximumAttempts > 0 ? Int(policy.maximumAttempts) : environment.maxActivityAttempts
                if failure.nonRetryable || policy.nonRetryableErrorTypes.contains(failure.type) {
                    builder.activityFailed(scheduledEventId, failure: failure, retryState: .nonRetryableFailure, attempt: attempt)
                    return
                }
                if Int(attempt) >= limit {
                    builder.activityFailed(scheduledEventId, failure: failure, retryState: .maximumAttemptsReached, attempt: attempt)
                    return
                }
                attempt += 1
            }
        }
    }

    /// Runs a child workflow to its end on the shared virtual clock and records its outcome.
    func runChild(_ initiatedEventId: Int64, _ attributes: Ballast_V1_StartChildWorkflowExecutionCommandAttributes) async throws {
        let type = attributes.workflowType.name
        guard environment.workflowTypes[type] != nil else {
            var failed = Ballast_V1_StartChildWorkflowExecutionFailedEventAttributes()
            failed.workflowID = attributes.workflowID
            failed.workflowType = attributes.workflowType
            failed.initiatedEventID = initiatedEventId
            failed.cause = .namespaceNotFound
            builder.add(.startChildWorkflowExecutionFailed(failed))
            return
        }
        let child = TestRun(environment: environment, workflowType: type, input: attributes.input, workflowId: attributes.workflowID)
        let startedId = builder.childStarted(initiatedEventId, workflowId: attributes.workflowID,
                                             runId: child.builder.execution.runID, type: type)
        do {
            let result = try await child.result()
            builder.timeUnixNanos = environment.nowUnixNanos
            builder.childCompleted(initiatedEventId, startedEventId: startedId, result: result)
        } catch WorkflowTestError.failed(let failure, _) {
            builder.timeUnixNanos = environment.nowUnixNanos
            var failed = Ballast_V1_ChildWorkflowExecutionFailedEventAttributes()
            failed.failure = failure
            failed.workflowExecution = child.builder.execution
            failed.workflowType = attributes.workflowType
            failed.initiatedEventID = initiatedEventId
            failed.startedEventID = startedId
            builder.add(.childWorkflowExecutionFailed(failed))
        } catch WorkflowTestError.canceled {
            var canceled = Ballast_V1_ChildWorkflowExecutionCanceledEventAttributes()
            canceled.workflowExecution = child.builder.execution
            canceled.initiatedEventID = initiatedEventId
            canceled.startedEventID = startedId
            builder.add(.childWorkflowExecutionCanceled(canceled))
        }
    }
}

/// Records an activity's heartbeats; never reports a cancel request.
final class TestHeartbeats: ActivityHeartbeating, Sendable {
    private let details = Mutex(Ballast_V1_Payloads())
    var last: Ballast_V1_Payloads { details.withLock { $0 } }
    func heartbeat(_ details: Ballast_V1_Payloads) async -> Bool {
        self.details.withLock { $0 = details }
        return false
    }
}
