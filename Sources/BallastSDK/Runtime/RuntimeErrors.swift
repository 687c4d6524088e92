import BallastProto

/// Replaying a history produced a command that does not match it: the workflow code changed in
/// a way that is incompatible with runs already in flight (use `patched` to branch on versions).
public struct NonDeterminismError: Error, Sendable, CustomStringConvertible {
    /// The workflow type.
    public var workflowType: String
    /// The workflow id.
    public var workflowId: String
    /// The history event where the mismatch was found.
    public var eventId: Int64
    /// The full message, e.g. "workflow Transfer (id t-1): history event 5 is
    /// ActivityTaskScheduled(Debit) but the code now schedules Credit".
    public var message: String
    /// The message.
    public var description: String { message }
}

/// A workflow task could not be run for a reason other than non-determinism.
public struct WorkflowTaskError: Error, Sendable, CustomStringConvertible {
    /// What went wrong and what to do, naming the workflow.
    public var message: String
    /// The message.
    public var description: String { message }
}

/// Why running a task on a `WorkflowRun` stopped.
enum RunFailure: Error {
    case nonDeterminism(NonDeterminismError)
    case task(WorkflowTaskError)

    /// The engine's failure cause and the failure to report.
    var reported: (Ballast_V1_WorkflowTaskFailedCause, Ballast_V1_Failure) {
        var failure = Ballast_V1_Failure()
        failure.source = FailureConverter.source
        switch self {
        case .nonDeterminism(let error):
            failure.message = error.message
            failure.type = "NonDeterminismError"
            return (.nonDeterministicError, failure)
        case .task(let error):
            failure.message = error.message
            failure.type = "WorkflowTaskError"
            return (.workflowWorkerUnhandledFailure, failure)
        }
    }

    /// The public error.
    var publicError: any Error {
        switch self {
        case .nonDeterminism(let error): return error
        case .task(let error): return error
        }
    }
}

/// Thrown into workflow code whose run is being evicted from the cache: the code must not catch
/// it and go on; the run is rebuilt by replay when it is needed again.
struct WorkflowEvictedError: Error {}

/// Thrown by `WorkflowContext.continueAsNew`: caught by the runtime at the root of the run.
struct ContinueAsNewRequest: Error, @unchecked Sendable {
    var workflowType: String
    var input: Ballast_V1_Payloads
    var options: ContinueAsNewOptions
}
