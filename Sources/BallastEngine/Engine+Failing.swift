import BallastProto

/// An open run whose workflow task or one of whose activities keeps failing (the UI's "Failing now").
public struct FailingRun: Sendable, Equatable {
    /// What keeps failing.
    public enum Kind: String, Sendable {
        case workflowTask = "workflow task"
        case activity
    }

    /// The run.
    public var info: Ballast_V1_WorkflowExecutionInfo
    /// Workflow task or activity.
    public var kind: Kind
    /// The activity's id and type (empty for a workflow task).
    public var activityID = ""
    public var activityType = ""
    /// The attempt now pending (failures in a row = attempt − 1).
    public var attempt: Int32
    /// The last failure the engine keeps (activities; a workflow task's is in its history).
    public var lastFailure: Ballast_V1_Failure?
    /// When the next attempt is dispatched (0: now or unknown).
    public var nextAttemptTimeUnixNanos: Int64 = 0

    /// Failures in a row before the pending attempt.
    public var consecutiveFailures: Int32 { attempt - 1 }
}

extension WorkflowEngine {
    /// Open runs of `namespace` whose workflow task or an activity has failed more than
    /// `moreThan` times in a row, most failures first; at most `limit` (then `truncated`).
    public func failingRuns(namespace: String, moreThan: Int32, limit: Int) -> (runs: [FailingRun], truncated: Bool) {
        precondition(limit > 0 && moreThan >= 0, "a failing-runs scan needs a positive limit and a non-negative threshold")
        let name = namespace.isEmpty ? Self.defaultNamespace : namespace
        var found: [FailingRun] = []
        for run in runs.values where run.key.namespace == name {
            if let task = run.workflowTask, task.attempt - 1 > moreThan {
                found.append(FailingRun(info: info(run), kind: .workflowTask, attempt: task.attempt))
            }
            for activity in run.activities.values where activity.attempt - 1 > moreThan {
                found.append(FailingRun(
                    info: info(run), kind: .activity, activityID: activity.activityId,
                    activityType: activity.attributes.activityType.name, attempt: activity.attempt,
                    lastFailure: activity.lastFailure,
                    nextAttemptTimeUnixNanos: activity.phase == .backoff ? activity.retryTime : 0))
            }
        }
        found.sort {
            ($1.attempt, $0.info.execution.workflowID, $0.activityID) < ($0.attempt, $1.info.execution.workflowID, $1.activityID)
        }
        return (Array(found.prefix(limit)), found.count > limit)
    }
}
