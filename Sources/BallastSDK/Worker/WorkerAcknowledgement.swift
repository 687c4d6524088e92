import BallastProto

/// A task response the cluster acknowledged (answered OK), reported to
/// `WorkerOptions.onAcknowledged`: a test or a chaos run logs these and later checks that each
/// one is in the run's history.
public struct WorkerAcknowledgement: Sendable, Equatable {
    /// Which response.
    public enum Kind: Sendable, Equatable {
        /// RespondActivityTaskCompleted.
        case activityCompleted
        /// RespondActivityTaskFailed.
        case activityFailed
        /// RespondActivityTaskCanceled.
        case activityCanceled
        /// RespondWorkflowTaskCompleted.
        case workflowTaskCompleted
        /// RespondWorkflowTaskFailed.
        case workflowTaskFailed
    }

    /// Which response.
    public var kind: Kind
    /// The workflow id.
    public var workflowID: String
    /// The run id.
    public var runID: String
    /// Activity: its scheduled event id; workflow task: nil (the info does not carry it).
    public var scheduledEventID: Int64?
    /// Workflow task: the started event id it was given.
    public var startedEventID: Int64?
    /// Activity: the activity id.
    public var activityID: String?
    /// The attempt (1-based).
    public var attempt: Int32
    /// Workflow task completed: how many commands it carried.
    public var commandCount: Int?
    /// The worker's identity.
    public var identity: String

    /// An acknowledgement of an activity response.
    init(_ kind: Kind, activity info: Ballast_V1_ActivityTaskInfo, identity: String) {
        self.kind = kind
        workflowID = info.workflowExecution.workflowID
        runID = info.workflowExecution.runID
        scheduledEventID = info.scheduledEventID
        activityID = info.activityID
        attempt = info.attempt
        self.identity = identity
    }

    /// An acknowledgement of a workflow task response.
    init(_ kind: Kind, workflowTask info: Ballast_V1_WorkflowTaskInfo, commands: Int?, identity: String) {
        self.kind = kind
        workflowID = info.workflowExecution.workflowID
        runID = info.workflowExecution.runID
        startedEventID = info.startedEventID
        attempt = info.attempt
        commandCount = commands
        self.identity = identity
    }
}
