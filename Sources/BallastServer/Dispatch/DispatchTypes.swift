import BallastEngine

/// A task queue within a namespace: the unit workers subscribe to.
struct TaskQueueKey: Hashable, Comparable, Sendable, CustomStringConvertible {
    /// The namespace (resolved: never empty).
    var namespace: String
    /// The task queue name.
    var taskQueue: String

    static func < (lhs: TaskQueueKey, rhs: TaskQueueKey) -> Bool {
        (lhs.namespace, lhs.taskQueue) < (rhs.namespace, rhs.taskQueue)
    }

    var description: String { "\(namespace)/\(taskQueue)" }
}

/// Names one attempt of a ready task, so the same attempt is never queued or started twice.
struct ReadyTaskKey: Hashable, Sendable {
    var runId: String
    var scheduledEventId: Int64
    var attempt: Int32
    var isActivity: Bool

    init(_ task: ReadyTask) {
        runId = task.run.runId
        scheduledEventId = task.scheduledEventId
        attempt = task.attempt
        isActivity = task.kind == .activity
    }
}

/// Identifies one connected task stream (or one waiting long poll) on this leader.
typealias TaskStreamID = UInt64

/// Identifies one query waiting for a worker's answer on this leader.
typealias QueryID = UInt64

/// The bounds of the dispatcher; every structure it keeps is limited by one of them.
struct DispatchLimits: Sendable, Equatable {
    /// Connected task streams plus waiting long polls; more are refused with RESOURCE_EXHAUSTED.
    var maxStreams = 10_000
    /// Ready tasks kept per (namespace, task queue) and kind; beyond it tasks stay only in the
    /// engine and are re-read from `readyTasks` once the queue drained to half.
    var maxQueuedTasksPerQueue = 10_000
    /// Task queues tracked at once; a queue is tracked while a worker serves it (and after, until
    /// the room is needed); opening a stream for one more queue is refused with RESOURCE_EXHAUSTED.
    var maxQueues = 10_000
    /// Started entries proposed and not yet applied; further matches wait for completions.
    var maxStartsInFlight = 1_024
    /// Credit one stream may hold per kind; larger grants are clamped.
    var maxCreditPerKind: UInt32 = 10_000
    /// Queries waiting for a worker or its answer; more are refused with RESOURCE_EXHAUSTED.
    var maxPendingQueries = 1_000
    /// Runs whose last workflow-task stream is remembered (sticky / eager preference).
    var maxRememberedRuns = 100_000
    /// Workflow-task attempts from this one on wait before they are dispatched (a workflow
    /// whose task keeps failing — unknown type, a bug, a non-deterministic change — must not
    /// spin worker and log in a loop): `retryBackoffBaseNanos × 2^(attempt − this)`, at most
    /// `retryBackoffCapNanos`. Earlier attempts go at once (a first retry is often transient).
    var retryBackoffFromAttempt: Int32 = 3
    var retryBackoffBaseNanos: Int64 = 1_000_000_000
    var retryBackoffCapNanos: Int64 = 60_000_000_000
    /// Workflow tasks held back at once; beyond it a retry is queued without waiting.
    var maxHeldTasks = 10_000

    /// How long a ready task waits before dispatch (0: at once).
    func backoffNanos(_ task: ReadyTask) -> Int64 {
        guard task.kind == .workflow, task.attempt >= retryBackoffFromAttempt else { return 0 }
        let doublings = Int64(task.attempt - retryBackoffFromAttempt)
        guard doublings < 32, retryBackoffBaseNanos <= retryBackoffCapNanos >> doublings else { return retryBackoffCapNanos }
        return retryBackoffBaseNanos << doublings
    }

    init() {}
}

/// Why the dispatcher refused to open a stream or take a query.
enum DispatchRefusal: Error, Equatable, Sendable {
    /// This node does not lead (or has not yet applied its own term's no-op).
    case notLeading
    /// A limit is reached.
    case limitReached(String)
    /// No connected worker of the task queue accepts queries.
    case noQueryWorker(TaskQueueKey)
}

/// What the shell must do after the core matched work with streams.
enum DispatchAssignment: Sendable, Equatable {
    /// Propose the started entry of `task` for `stream` (one slot of the task's kind is spent).
    case start(stream: TaskStreamID, task: ReadyTask, readyAtNanos: Int64)
    /// Push query `query` to `stream` (one workflow slot is spent).
    case query(stream: TaskStreamID, query: QueryID)
}

/// How a proposed started entry ended.
enum StartOutcome: Sendable, Equatable {
    /// Applied and accepted: push the task to the stream.
    case started
    /// Applied but refused by the engine (stale attempt): the task is dropped.
    case rejected
    /// Never applied (backlog full, superseded): the task goes back to its queue.
    case notApplied
}

/// Slots of one stream reserved for an entry that starts the tasks it makes ready itself
/// (eager dispatch, `EngineEntry.eager_dispatch`); what the entry does not use is refunded once it is
/// applied or failed.
struct EagerReservation: Sendable, Equatable {
    var stream: TaskStreamID
    var queue: TaskQueueKey
    var workflow: UInt32
    var activity: UInt32
}
