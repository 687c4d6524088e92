import BallastProto
import BallastWire

/// Why a client call failed. `status` gives the gRPC status when the cluster answered one.
public enum BallastClientError: Error, Sendable, CustomStringConvertible {
    /// An address could not be parsed.
    case invalidAddress(String, String)
    /// The cluster answered a non-retriable status (e.g. NOT_FOUND, ALREADY_EXISTS, INVALID_ARGUMENT).
    case rejected(method: String, status: GRPCStatus)
    /// Retriable failures (no leader, connection loss) lasted until the call's deadline.
    case unavailable(method: String, lastError: String, attempts: Int)
    /// The call's deadline passed.
    case deadlineExceeded(method: String, attempts: Int)
    /// A value could not be encoded into a payload.
    case payloadEncoding(String)
    /// A payload could not be decoded into the requested type.
    case payloadDecoding(String)
    /// A response could not be understood (a corrupt history batch, a missing close event).
    case malformedResponse(String)
    /// The workflow run closed without completing (failed, canceled, terminated, timed out).
    case workflowFailed(WorkflowExecutionFailure)
    /// The caller gave a value the client refuses before sending anything.
    case invalidArgument(String)
    /// The workflow's query handler failed or does not exist.
    case queryFailed(Ballast_V1_Failure)

    /// The gRPC status the cluster answered, if the failure came from one.
    public var status: GRPCStatus? {
        switch self {
        case .rejected(_, let status): status
        default: nil
        }
    }

    /// The gRPC status code, if any (`.unavailable` / `.deadlineExceeded` for the retry outcomes).
    public var code: GRPCStatusCode? {
        switch self {
        case .rejected(_, let status): status.code
        case .unavailable: .unavailable
        case .deadlineExceeded: .deadlineExceeded
        default: nil
        }
    }

    /// What went wrong and what to do about it.
    public var description: String {
        switch self {
        case .invalidAddress(let text, let why): "invalid address '\(text)': \(why)"
        case .rejected(let method, let status): "\(Self.shortName(method)) failed: \(status)"
        case .unavailable(let method, let last, let attempts):
            "\(Self.shortName(method)) failed after \(attempts) attempts: no node could serve it (last error: \(last)); check that the cluster has a leader and the addresses are right"
        case .deadlineExceeded(let method, let attempts):
            "\(Self.shortName(method)) did not finish before its deadline (\(attempts) attempts)"
        case .payloadEncoding(let why): "cannot encode the payload: \(why)"
        case .payloadDecoding(let why): "cannot decode the payload: \(why)"
        case .malformedResponse(let why): "malformed response: \(why)"
        case .workflowFailed(let failure): failure.description
        case .invalidArgument(let why): "invalid argument: \(why)"
        case .queryFailed(let failure): "the query failed: \([failure.type, failure.message].filter { !$0.isEmpty }.joined(separator: ": "))"
        }
    }

    static func shortName(_ method: String) -> String {
        method.split(separator: "/").last.map(String.init) ?? method
    }
}

/// How a workflow run ended when it did not complete: its status and failure.
public struct WorkflowExecutionFailure: Sendable, CustomStringConvertible {
    /// The workflow id.
    public var workflowID: String
    /// The run that closed.
    public var runID: String
    /// Failed, canceled, terminated or timed out.
    public var status: Ballast_V1_WorkflowExecutionStatus
    /// The workflow's failure (failed), the terminate reason as message (terminated), else empty.
    public var failure: Ballast_V1_Failure

    /// Creates a failure description.
    public init(workflowID: String, runID: String, status: Ballast_V1_WorkflowExecutionStatus, failure: Ballast_V1_Failure) {
        self.workflowID = workflowID
        self.runID = runID
        self.status = status
        self.failure = failure
    }

    /// `workflow ID (run R) failed: TYPE: message`.
    public var description: String {
        var text = "workflow \(workflowID) (run \(runID)) \(WorkflowStatusName.text(status))"
        if !failure.type.isEmpty || !failure.message.isEmpty {
            text += ": " + [failure.type, failure.message].filter { !$0.isEmpty }.joined(separator: ": ")
        }
        return text
    }
}

/// Lowercase names of workflow statuses, as the CLI prints them.
public enum WorkflowStatusName {
    /// `running`, `completed`, `failed`, `canceled`, `terminated`, `continued-as-new`, `timed-out`.
    public static func text(_ status: Ballast_V1_WorkflowExecutionStatus) -> String {
        switch status {
        case .running: "running"
        case .completed: "completed"
        case .failed: "failed"
        case .canceled: "canceled"
        case .terminated: "terminated"
        case .continuedAsNew: "continued-as-new"
        case .timedOut: "timed-out"
        default: "unknown"
        }
    }

    /// Parses a status name (case-insensitive; `Running`, `timed_out` and `TimedOut` also work).
    public static func parse(_ text: String) -> Ballast_V1_WorkflowExecutionStatus? {
        let key = text.lowercased().filter { $0.isLetter }
        switch key {
        case "running": return .running
        case "completed": return .completed
        case "failed": return .failed
        case "canceled", "cancelled": return .canceled
        case "terminated": return .terminated
        case "continuedasnew": return .continuedAsNew
        case "timedout": return .timedOut
        default: return nil
        }
    }
}
