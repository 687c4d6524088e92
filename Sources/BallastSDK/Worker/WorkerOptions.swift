import Foundation

/// Options of a `Worker`.
public struct WorkerOptions: Sendable {
    /// The task queue the worker serves.
    public var taskQueue: String
    /// Workflow tasks (and queries) run at once; the server never pushes more.
    public var maxConcurrentWorkflowTasks = 100
    /// Activity attempts run at once; the server never pushes more.
    public var maxConcurrentActivities = 100
    /// Shown in history and describe; defaults to `pid@host`.
    public var identity = "\(ProcessInfo.processInfo.processIdentifier)@\(ProcessInfo.processInfo.hostName)"
    /// Free-form build identifier of this worker binary.
    public var buildID = "ballast-swift-\(BallastSDK.version)"
    /// Heartbeats are sent at most this often (and at most every 80% of an activity's
    /// heartbeat timeout); calls in between only keep the latest details, sent later.
    public var maxHeartbeatThrottleInterval: Duration = .seconds(30)
    /// How long `shutdown` lets running tasks finish before cancelling them.
    public var shutdownGracePeriod: Duration = .seconds(10)
    /// Deadline of each Respond / Grant / heartbeat call, retries included.
    public var responseTimeout: Duration = .seconds(10)
    /// Backoff between reconnections of the task stream.
    public var reconnect: CallRetryPolicy = {
        var policy = CallRetryPolicy()
        policy.initialBackoff = .milliseconds(50)
        policy.maximumBackoff = .seconds(2)
        return policy
    }()

    /// Called after each task response the cluster acknowledged (answered OK), on the task's
    /// own Swift task; nil (the default) for none. Keep it short: the task's slot is given back
    /// only after it returns.
    public var onAcknowledged: (@Sendable (WorkerAcknowledgement) -> Void)?

    /// Options for `taskQueue`, other fields at their defaults.
    public init(taskQueue: String) {
        self.taskQueue = taskQueue
    }
}

/// Why a worker stopped.
public enum WorkerError: Error, Sendable, CustomStringConvertible {
    /// The options are unusable.
    case invalidOptions(String)
    /// The cluster refused the task stream for good (bad namespace or task queue, no permission).
    case streamRefused(String)
    /// `run()` was called twice.
    case alreadyRunning

    /// What happened and what to do.
    public var description: String {
        switch self {
        case .invalidOptions(let why): "invalid worker options: \(why)"
        case .streamRefused(let why): "the cluster refused the task stream: \(why)"
        case .alreadyRunning: "this worker is already running"
        }
    }
}
