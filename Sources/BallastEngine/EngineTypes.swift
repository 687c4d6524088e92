import BallastProto

/// The engine entry format of ordinary entries, the oldest. This build applies versions 1 through
/// `newestEngineFormatVersion`; an entry with any other version stops the apply.
public let engineFormatVersion: UInt32 = 1

/// The format from which retry arithmetic is bounded (`RetryRules`): a default maximum interval
/// saturates instead of wrapping, and a backoff takes at most about a thousand multiplications
/// whatever the attempt. Entries of versions 1 and 2 keep the arithmetic they were written
/// under, so every build that applies them computes the same retry times.
public let boundedRetryFormatVersion: UInt32 = 3

/// The format from which a run's history size is counted and limited (`EngineLimits.historyWarnBytes`,
/// `historyMaxBytes`): every event an entry of this format or later appends adds its counted size
/// (`HashingVisitor.counted`) to the run's. Entries of older formats add nothing, so every build
/// that applies them closes the same runs at the same entries.
public let historySizeFormatVersion: UInt32 = 4

/// The format from which an activity attempt that timed out (start-to-close or heartbeat) and is
/// retried keeps its timeout failure for the next attempt without the previous attempt's failure
/// as its cause. Before, each such timeout nested the kept failure one level deeper: after about
/// a hundred, the run's snapshot, its ActivityTaskStarted event and its describe output passed
/// the 100 levels every protobuf decoder accepts (reliability.md, bug 36). The final
/// ActivityTaskTimedOut event still carries the last kept failure as its cause (one level), as
/// in Temporal. Entries of older formats keep nesting, so every build replays them alike.
public let flatTimeoutFailureFormatVersion: UInt32 = 5

/// Also from format 5: a search attribute's value is at most `EngineLimits.maxSearchAttributeValueBytes`
/// (a start, a child start, a continue-as-new or an upsert with a larger one is refused). Before,
/// a value was bounded only by the request's size, and the visibility index keeps every run's
/// values in memory — in its rows, its posting lists and its closed-run summaries — until the
/// namespace's retention ends. Entries of older formats accept any size, as before.
public let searchAttributeSizeFormatVersion: UInt32 = 5

/// Also from format 5: what a run's pending activities keep for their next attempts outside the
/// history — heartbeat details and last failures — is at most `EngineLimits.maxKeptActivityBytes`
/// together. Before, each was bounded only by the payload limit or the request's size, for up to
/// 2,000 pending activities a run: gigabytes held in memory by every node and carried by every
/// snapshot. Entries of older formats keep whatever they are given, as before.
public let keptActivityBytesFormatVersion: UInt32 = 5

/// The format from which the names and ids a run keeps — task queues, workflow and activity
/// types, activity, timer, child workflow and signal-target ids, signal and marker names — are at
/// most `EngineLimits.maxIdentifierBytes` each (Temporal's limit for ids): a start, signal or
/// signal-with-start with a longer one is refused, a command with one fails its workflow task.
/// Before, only a client's workflow id was limited; the others were bounded only by the
/// request's size and are kept in memory by open runs, pending activities and timers, and (types,
/// queues, workflow ids) by the visibility index until retention ends. Also from format 6 a
/// memo's size (`memoBytes`, within the payload limit) counts its field names, and a child
/// start's or continue-as-new's memo is checked at all: both are kept with the run and its
/// closed-run summary. Entries of older formats accept any length, as before.
public let identifierLengthFormatVersion: UInt32 = 6

/// The newest entry format this build applies and writes (once every member applies it too).
public let newestEngineFormatVersion: UInt32 = identifierLengthFormatVersion

/// Identifies one workflow run: namespace, workflow id and run id.
public struct RunKey: Hashable, Comparable, Sendable, CustomStringConvertible {
    /// The namespace the run lives in.
    public var namespace: String
    /// The user-chosen workflow id.
    public var workflowId: String
    /// The engine-assigned run id.
    public var runId: String

    /// Creates a run key.
    public init(namespace: String, workflowId: String, runId: String) {
        self.namespace = namespace
        self.workflowId = workflowId
        self.runId = runId
    }

    /// Orders by namespace, workflow id, then run id.
    public static func < (lhs: RunKey, rhs: RunKey) -> Bool {
        (lhs.namespace, lhs.workflowId, lhs.runId) < (rhs.namespace, rhs.workflowId, rhs.runId)
    }

    /// The protobuf execution (workflow id and run id).
    public var execution: Ballast_V1_WorkflowExecution {
        var execution = Ballast_V1_WorkflowExecution()
        execution.workflowID = workflowId
        execution.runID = runId
        return execution
    }

    /// "namespace/workflowId/runId", for messages.
    public var description: String { "\(namespace)/\(workflowId)/\(runId)" }
}

/// Identifies a workflow id within a namespace (all its runs).
public struct WorkflowKey: Hashable, Comparable, Sendable {
    /// The namespace.
    public var namespace: String
    /// The workflow id.
    public var workflowId: String

    /// Creates a workflow key.
    public init(namespace: String, workflowId: String) {
        self.namespace = namespace
        self.workflowId = workflowId
    }

    /// Orders by namespace then workflow id.
    public static func < (lhs: WorkflowKey, rhs: WorkflowKey) -> Bool {
        (lhs.namespace, lhs.workflowId) < (rhs.namespace, rhs.workflowId)
    }
}

/// A fatal apply error: the node must stop applying rather than diverge from its peers.
public enum EngineError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The entry was written by an engine format this build does not know.
    case unsupportedFormatVersion(found: UInt32, supported: UInt32, index: UInt64)
    /// The entry's index is not after the last applied index.
    case indexNotIncreasing(index: UInt64, lastApplied: UInt64)
    /// A snapshot could not be decoded or is inconsistent.
    case corruptSnapshot(String)

    /// What happened and what to do.
    public var description: String {
        switch self {
        case let .unsupportedFormatVersion(found, supported, index):
            return "log entry \(index) has engine format version \(found) but this build applies only "
                + "versions 1 to \(supported): upgrade this node before it applies further entries"
        case let .indexNotIncreasing(index, lastApplied):
            return "log entry \(index) is not after the last applied entry \(lastApplied): entries must be applied once, in order"
        case let .corruptSnapshot(reason):
            return "engine snapshot is corrupt: \(reason); fetch a fresh snapshot from a peer"
        }
    }
}

/// Why a request was refused; a refused entry changes no state.
public enum EngineRejection: Error, Equatable, Sendable, CustomStringConvertible {
    /// The entry has no payload (or one this version does not know).
    case emptyEntry
    /// The namespace does not exist.
    case namespaceNotFound(String)
    /// A namespace with this name exists already.
    case namespaceAlreadyExists(String)
    /// No such run (or no current run for the workflow id).
    case workflowNotFound(namespace: String, workflowId: String, runId: String)
    /// A run with this workflow id is running (or remembered and the reuse policy refuses).
    case workflowAlreadyStarted(namespace: String, workflowId: String, runId: String)
    /// The run is closed and accepts nothing more.
    case workflowNotRunning(RunKey)
    /// The task token does not name the current attempt of a pending task.
    case staleTaskToken(String)
    /// The task token bytes do not decode.
    case malformedTaskToken
    /// A field is missing or out of range.
    case invalidArgument(String)
    /// A payload exceeds the size limit.
    case payloadTooLarge(field: String, bytes: Int, limit: Int)
    /// A per-run limit would be exceeded.
    case limitExceeded(String)
    /// A time entry names something that is no longer pending or not yet due.
    case staleTimeEntry(String)

    /// A gRPC-like status category for the wire.
    public var code: RejectionCode {
        switch self {
        case .emptyEntry, .invalidArgument, .malformedTaskToken: return .invalidArgument
        case .namespaceNotFound, .workflowNotFound, .staleTaskToken: return .notFound
        case .namespaceAlreadyExists, .workflowAlreadyStarted: return .alreadyExists
        case .workflowNotRunning, .staleTimeEntry: return .failedPrecondition
        case .payloadTooLarge, .limitExceeded: return .resourceExhausted
        }
    }

    /// What happened and what to do.
    public var description: String {
        switch self {
        case .emptyEntry: return "the entry carries no request this engine version knows"
        case let .namespaceNotFound(name): return "namespace \(name) not found: register it first"
        case let .namespaceAlreadyExists(name): return "namespace \(name) already exists"
        case let .workflowNotFound(ns, id, run):
            return "workflow \(ns)/\(id)\(run.isEmpty ? "" : "/" + run) not found"
        case let .workflowAlreadyStarted(ns, id, run):
            return "workflow \(ns)/\(id) already started (run \(run)); use another workflow id or reuse policy"
        case let .workflowNotRunning(key): return "workflow run \(key) is closed"
        case let .staleTaskToken(reason): return "stale task token: \(reason); the task moved on, drop it"
        case .malformedTaskToken: return "the task token does not decode; pass the token the server issued"
        case let .invalidArgument(reason): return "invalid argument: \(reason)"
        case let .payloadTooLarge(field, bytes, limit): return "\(field) is \(bytes) bytes, over the \(limit)-byte limit"
        case let .limitExceeded(reason): return "limit exceeded: \(reason)"
        case let .staleTimeEntry(reason): return "time entry no longer applies: \(reason)"
        }
    }
}

/// The gRPC-like category of a rejection.
public enum RejectionCode: String, Sendable {
    case invalidArgument, notFound, alreadyExists, failedPrecondition, resourceExhausted
}

/// What the caller of an entry is told.
public enum EngineResponse: Sendable, Equatable {
    /// Accepted, nothing to return.
    case accepted
    /// StartWorkflow / SignalWithStart outcome.
    case started(Ballast_V1_StartWorkflowResponse)
    /// A workflow task was handed to a worker.
    case workflowTaskStarted(Ballast_V1_WorkflowTaskInfo)
    /// An activity task was handed to a worker.
    case activityTaskStarted(Ballast_V1_ActivityTaskInfo)
    /// Heartbeat recorded.
    case heartbeat(Ballast_V1_RecordActivityTaskHeartbeatResponse)
    /// A role grant or revoke: whether the bindings changed.
    case roleChanged(Bool)
    /// Refused; nothing changed.
    case rejected(EngineRejection)

    /// The rejection, if this response is one.
    public var rejection: EngineRejection? {
        if case let .rejected(rejection) = self { return rejection }
        return nil
    }
}

/// The events one entry appended to one run's history.
public struct RunEvents: Sendable, Equatable {
    /// The run.
    public var run: RunKey
    /// Events in order, ids contiguous.
    public var events: [Ballast_V1_HistoryEvent]
}

/// Something a node should know but that changes no outcome.
public enum EngineWarning: Sendable, Equatable {
    /// A run's history passed the warning length.
    case historyLengthWarning(RunKey, length: Int64)
    /// A run's history passed the warning size (counted bytes; format 4 on).
    case historySizeWarning(RunKey, bytes: Int64)
}

/// Everything applying one entry produced.
public struct ApplyResult: Sendable {
    /// The answer for the proposer.
    public var response: EngineResponse = .accepted
    /// Events to append to the history store, per run, in order.
    public var events: [RunEvents] = []
    /// Tasks that became dispatchable, in dispatch order.
    public var newTasks: [ReadyTask] = []
    /// Tasks the entry started at once for the worker its `eager_dispatch` named (not in `newTasks`).
    public var eagerStarts: [EagerStart] = []
    /// Deadlines that were armed; stale ones are rejected when they fire.
    public var newTimers: [DueTimer] = []
    /// Runs that closed.
    public var closedRuns: [RunKey] = []
    /// Runs whose retention ended: delete their histories.
    public var deletedRuns: [RunKey] = []
    /// Warnings for the node's log.
    public var warnings: [EngineWarning] = []

    /// Creates an empty result.
    public init() {}
}

/// Limits enforced by the engine (all nodes must use the same values).
public struct EngineLimits: Sendable, Equatable {
    /// Largest serialized payloads value (input, result, details...).
    public var maxPayloadBytes = 2 * 1024 * 1024
    /// History length at which a warning is reported.
    public var historyWarnEvents: Int64 = 10_240
    /// History length at which the run is failed.
    public var historyMaxEvents: Int64 = 51_200
    /// Counted history size at which a warning is reported (entries of format 4 on).
    public var historyWarnBytes: Int64 = 10 * 1024 * 1024
    /// Counted history size at which the run is failed (entries of format 4 on).
    public var historyMaxBytes: Int64 = 50 * 1024 * 1024
    /// Bytes of one search attribute value (a keyword list's elements together; entries of
    /// format 5 on): Temporal's 2 KB.
    public var maxSearchAttributeValueBytes = 2_048
    /// Bytes a run's pending activities keep for their next attempts, together: heartbeat
    /// details and last failures (`PendingActivity.keptBytes`; entries of format 5 on). A heartbeat
    /// that would pass it is rejected; a failure that would is kept trimmed (`trimmedFailure`).
    /// Temporal fails a run whose whole mutable state passes 8 MB.
    public var maxKeptActivityBytes = 8 * 1024 * 1024
    /// Bytes of one name or id a run keeps (task queue, workflow or activity type, activity,
    /// timer or workflow id, signal or marker name; entries of format 6 on): Temporal's limit for
    /// ids. A client's workflow id has had it since format 1.
    public var maxIdentifierBytes = 1_000
    /// Pending activities per run.
    public var maxPendingActivities = 2_000
    /// Pending timers per run.
    public var maxPendingTimers = 2_000
    /// Pending child workflows per run.
    public var maxPendingChildren = 2_000
    /// Signals received but not yet seen by a completed workflow task, per run.
    public var maxPendingSignals = 2_000
    /// Remembered signal request ids per run (for deduplication).
    public var signalRequestIdMemory = 2_000
    /// Closed-run summaries kept in memory; the oldest is dropped beyond this.
    public var maxClosedSummaries = 1_000_000
    /// Open runs across all namespaces; further starts are rejected (resourceExhausted).
    public var maxOpenRuns = 1_000_000
    /// Registered namespaces.
    public var maxNamespaces = 1_000
    /// Registered search attributes per namespace (besides the predefined ones).
    public var maxSearchAttributesPerNamespace = 100

    /// The documented defaults.
    public init() {}
}

/// Where a run stands: its execution, status and how many events its history holds.
public struct RunProgress: Sendable, Equatable {
    /// The run's workflow id and run id.
    public var execution: Ballast_V1_WorkflowExecution
    /// Running, or how it closed.
    public var status: Ballast_V1_WorkflowExecutionStatus
    /// The id of its last event.
    public var historyLength: Int64

    /// Creates a run's progress.
    public init(execution: Ballast_V1_WorkflowExecution, status: Ballast_V1_WorkflowExecutionStatus, historyLength: Int64) {
        self.execution = execution
        self.status = status
        self.historyLength = historyLength
    }
}
