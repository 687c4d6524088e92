import BallastProto

/// A workflow definition: a named Swift type whose `run` is replayed deterministically.
///
/// `run` must only use the `WorkflowContext` for anything that depends on time, randomness or the
/// outside world (activities, timers, signals), and must not await anything else (actors,
/// `Task.sleep`, I/O): the runtime drives it on its own executor and replays it from history.
public protocol Workflow: Sendable {
    /// The workflow's input.
    associatedtype Input: Codable & Sendable
    /// The workflow's result.
    associatedtype Output: Codable & Sendable
    /// The workflow type name used on the wire (default: the Swift type's name).
    static var name: String { get }
    /// A fresh instance for each run.
    init()
    /// The workflow's code.
    func run(context: WorkflowContext, input: Input) async throws -> Output
}

extension Workflow {
    /// The Swift type's name.
    public static var name: String { String(describing: Self.self) }
}

/// An empty input or output, for workflows and activities that take or return nothing.
public struct Empty: Codable, Sendable, Equatable, Hashable {
    /// The empty value.
    public init() {}
}

/// How an activity or a workflow is retried (unset fields take the engine's defaults:
/// initial 1 s, coefficient 2.0, maximum 100 × initial, unlimited attempts).
public struct RetryPolicy: Sendable, Equatable {
    /// The delay before the first retry.
    public var initialInterval: Duration?
    /// The factor the delay grows by at each retry.
    public var backoffCoefficient: Double?
    /// The largest delay between attempts.
    public var maximumInterval: Duration?
    /// The most attempts (0: unlimited; 1: no retries).
    public var maximumAttempts: Int
    /// Application error types that are never retried.
    public var nonRetryableErrorTypes: [String]

    /// Creates a policy.
    public init(initialInterval: Duration? = nil, backoffCoefficient: Double? = nil, maximumInterval: Duration? = nil,
                maximumAttempts: Int = 0, nonRetryableErrorTypes: [String] = []) {
        self.initialInterval = initialInterval
        self.backoffCoefficient = backoffCoefficient
        self.maximumInterval = maximumInterval
        self.maximumAttempts = maximumAttempts
        self.nonRetryableErrorTypes = nonRetryableErrorTypes
    }

    /// The wire form.
    public var proto: Ballast_V1_RetryPolicy {
        var policy = Ballast_V1_RetryPolicy()
        policy.initialIntervalNanos = initialInterval?.nanoseconds ?? 0
        policy.backoffCoefficient = backoffCoefficient ?? 0
        policy.maximumIntervalNanos = maximumInterval?.nanoseconds ?? 0
        policy.maximumAttempts = Int32(clamping: maximumAttempts)
        policy.nonRetryableErrorTypes = nonRetryableErrorTypes
        return policy
    }
}

/// How one activity call is scheduled.
public struct ActivityOptions: Sendable {
    /// The task queue (default: the workflow's).
    public var taskQueue: String?
    /// The limit on the whole activity, retries included.
    public var scheduleToCloseTimeout: Duration?
    /// The limit on waiting for a worker to start an attempt.
    public var scheduleToStartTimeout: Duration?
    /// The limit on one attempt (default 60 s when no schedule-to-close is set).
    public var startToCloseTimeout: Duration?
    /// The longest gap between heartbeats before an attempt is considered lost.
    public var heartbeatTimeout: Duration?
    /// The retry policy (default: the engine's).
    public var retryPolicy: RetryPolicy?

    /// Creates options.
    public init(taskQueue: String? = nil, scheduleToCloseTimeout: Duration? = nil, scheduleToStartTimeout: Duration? = nil,
                startToCloseTimeout: Duration? = nil, heartbeatTimeout: Duration? = nil, retryPolicy: RetryPolicy? = nil) {
        self.taskQueue = taskQueue
        self.scheduleToCloseTimeout = scheduleToCloseTimeout
        self.scheduleToStartTimeout = scheduleToStartTimeout
        self.startToCloseTimeout = startToCloseTimeout
        self.heartbeatTimeout = heartbeatTimeout
        self.retryPolicy = retryPolicy
    }
}

/// How a child workflow is started.
public struct ChildWorkflowOptions: Sendable {
    /// The child's workflow id (default: `<parent id>/child-<n>`, deterministic).
    public var workflowId: String?
    /// The task queue (default: the parent's).
    public var taskQueue: String?
    /// The limit on the whole chain of runs.
    public var executionTimeout: Duration?
    /// The limit on one run.
    public var runTimeout: Duration?
    /// The limit on one workflow task.
    public var taskTimeout: Duration?
    /// What happens to the child when the parent closes (default: terminate).
    public var parentClosePolicy: Ballast_V1_ParentClosePolicy
    /// The child's retry policy (none by default).
    public var retryPolicy: RetryPolicy?
    /// Search attributes of the child.
    public var searchAttributes: [String: Ballast_V1_SearchAttributeValue]

    /// Creates options.
    public init(workflowId: String? = nil, taskQueue: String? = nil, executionTimeout: Duration? = nil,
                runTimeout: Duration? = nil, taskTimeout: Duration? = nil,
                parentClosePolicy: Ballast_V1_ParentClosePolicy = .unspecified, retryPolicy: RetryPolicy? = nil,
                searchAttributes: [String: Ballast_V1_SearchAttributeValue] = [:]) {
        self.workflowId = workflowId
        self.taskQueue = taskQueue
        self.executionTimeout = executionTimeout
        self.runTimeout = runTimeout
        self.taskTimeout = taskTimeout
        self.parentClosePolicy = parentClosePolicy
        self.retryPolicy = retryPolicy
        self.searchAttributes = searchAttributes
    }
}

/// How a run continues as new.
public struct ContinueAsNewOptions: Sendable {
    /// The task queue of the new run (default: the current one).
    public var taskQueue: String?
    /// The run timeout of the new run (default: inherited).
    public var runTimeout: Duration?
    /// The delay before the new run's first workflow task.
    public var backoff: Duration?

    /// Creates options.
    public init(taskQueue: String? = nil, runTimeout: Duration? = nil, backoff: Duration? = nil) {
        self.taskQueue = taskQueue
        self.runTimeout = runTimeout
        self.backoff = backoff
    }
}

/// What a workflow knows about its own run.
public struct WorkflowInfo: Sendable, Equatable {
    /// The namespace.
    public var namespace: String
    /// The workflow id.
    public var workflowId: String
    /// This run's id.
    public var runId: String
    /// The workflow type name.
    public var workflowType: String
    /// The task queue.
    public var taskQueue: String
    /// The attempt (above 1 when the run is a retry of a failed run).
    public var attempt: Int
    /// The run this one continues (continue-as-new or retry), if any.
    public var continuedRunId: String?
    /// The parent workflow, if this is a child.
    public var parent: Ballast_V1_WorkflowExecution?
    /// When the run started (leader time, UTC nanoseconds).
    public var startTimeUnixNanos: Int64
}

extension Duration {
    /// The duration in whole nanoseconds (saturating).
    public var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        let (fromSeconds, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        if overflow { return seconds < 0 ? .min : .max }
        return fromSeconds.addingReportingOverflow(attoseconds / 1_000_000_000).overflow ? .max : fromSeconds + attoseconds / 1_000_000_000
    }
}
