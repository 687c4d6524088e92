import BallastProto
import BallastWire
import Logging
import Synchronization

/// Runs workflow tasks and activity attempts of one task queue, pushed by the cluster's leader.
///
/// The worker opens a `StreamTasks` stream on the leader announcing its free slots, runs each
/// task it receives in its own Swift task, answers with `Respond…` and gives slots back with
/// `GrantTaskSlots` (coalesced: at most one grant call in flight, carrying every slot freed
/// meanwhile). When the stream breaks (leader change, lost connection) it reconnects to the
/// new leader with backoff; tasks running meanwhile still answer. `shutdown()` stops taking
/// work and lets running tasks finish up to the grace period, then cancels them.
public final class Worker: Sendable {
    /// The client whose connection, namespace and payload settings the worker uses.
    public let client: BallastClient
    /// The worker's options.
    public let options: WorkerOptions
    let workflows: (any WorkflowTaskHandling)?
    let activities: (any ActivityTaskHandling)?
    let logger: Logger
    let state: Mutex<WorkerState>

    /// Creates a worker; give `workflows`, `activities` or both.
    public init(client: BallastClient, options: WorkerOptions, workflows: (any WorkflowTaskHandling)?,
                activities: (any ActivityTaskHandling)?, logger: Logger = Logger(label: "ballast.worker")) throws(WorkerError) {
        guard workflows != nil || activities != nil else { throw .invalidOptions("give workflows, activities or both") }
        guard !options.taskQueue.isEmpty, options.taskQueue.utf8.count <= 1000 else {
            throw .invalidOptions("the task queue must be 1-1000 bytes")
        }
        guard options.maxConcurrentWorkflowTasks >= 1 || workflows == nil,
              options.maxConcurrentActivities >= 1 || activities == nil else {
            throw .invalidOptions("concurrency limits must be at least 1 for the kinds this worker runs")
        }
        self.client = client
        self.options = options
        self.workflows = workflows
        self.activities = activities
        var logger = logger
        logger[metadataKey: "taskQueue"] = "\(options.taskQueue)"
        self.logger = logger
        let slots = WorkerSlots(maximumWorkflowTasks: workflows == nil ? 0 : options.maxConcurrentWorkflowTasks,
                                maximumActivities: activities == nil ? 0 : options.maxConcurrentActivities)
        self.state = Mutex(WorkerState(slots: slots))
    }

    /// Serves tasks until `shutdown()` is called or the calling task is cancelled (which
    /// shuts down with the grace period); returns once every running task has finished.
    /// Throws only when the cluster refuses the stream for good.
    public func run() async throws {
        let poller: Task<Result<Void, WorkerError>, Never> = try state.withLock { state throws(WorkerError) in
            guard state.phase == .new else { throw WorkerError.alreadyRunning }
            state.phase = .running
            let task = Task { await self.streamLoop() }
            state.poller = { task.cancel() }
            return task
        }
        let outcome = await withTaskCancellationHandler {
            await poller.value
        } onCancel: {
            Task { await self.shutdown() }
        }
        await drain(gracePeriod: options.shutdownGracePeriod)
        state.withLock { $0.phase = .stopped }
        try outcome.get()
    }

    /// Stops taking work: closes the task stream, lets running tasks finish for up to
    /// `gracePeriod` (default: the options'), then cancels what still runs. Returns when the
    /// worker is idle.
    public func shutdown(gracePeriod: Duration? = nil) async {
        let stop = state.withLock { state -> (() -> Void)? in
            guard state.phase == .running else { return nil }
            state.phase = .draining
            if let grace = gracePeriod { state.gracePeriod = grace }
            return state.poller
        }
        stop?()
        await waitIdle(deadline: nil)
    }

    /// Tasks running now (workflow tasks and queries, activities).
    public var running: (workflowTasks: Int, activities: Int) {
        state.withLock { ($0.slots.runningWorkflowTasks, $0.slots.runningActivities) }
    }

    /// Waits for running tasks; after `gracePeriod` cancels them and waits for them to end.
    func drain(gracePeriod: Duration) async {
        let grace = state.withLock { $0.gracePeriod } ?? gracePeriod
        // Unstructured: when run()'s task was cancelled, the grace period must still be waited.
        let deadline = ContinuousClock.now + grace
        let finished = await Task { await self.waitIdle(deadline: deadline) }.value
        if !finished {
            let cancels = state.withLock { state in
                state.cancelledByShutdown = true
                return Array(state.handlerCancels.values)
            }
            logger.warning("shutdown grace period over; cancelling running tasks", metadata: ["count": "\(cancels.count)"])
            for cancel in cancels { cancel() }
            _ = await Task { await self.waitIdle(deadline: nil) }.value
        }
    }

    /// Waits until no task runs (true) or `deadline` passes (false).
    @discardableResult
    func waitIdle(deadline: ContinuousClock.Instant?) async -> Bool {
        let waiterID = state.withLock { state -> UInt64 in
            state.nextID += 1
            return state.nextID
        }
        return await withTaskGroup(of: Bool.self) { group in
            group.addTask {
                await withCheckedContinuation { continuation in
                    let resumeNow = self.state.withLock { state -> Bool in
                        if state.slots.idle || state.abandonedWaiters.remove(waiterID) != nil { return true }
                        state.idleWaiters[waiterID] = continuation
                        return false
                    }
                    if resumeNow { continuation.resume() }
                }
                return true
            }
            if let deadline {
                group.addTask {
                    try? await Task.sleep(until: deadline)
                    return false
                }
            }
            let first = await group.next() ?? true
            if !first {
                // Release the idle waiter so the other child can finish.
                let waiter = self.state.withLock { state in
                    let waiter = state.idleWaiters.removeValue(forKey: waiterID)
                    if waiter == nil { state.abandonedWaiters.insert(waiterID) }
                    return waiter
                }
                waiter?.resume()
            }
            group.cancelAll()
            return first
        }
    }
}

/// Mutable state of a worker, guarded by its mutex.
struct WorkerState {
    enum Phase { case new, running, draining, stopped }
    var slots: WorkerSlots
    var phase = Phase.new
    var poller: (@Sendable () -> Void)?
    var gracePeriod: Duration?
    var grantInFlight = false
    var nextID: UInt64 = 0
    var idleWaiters: [UInt64: CheckedContinuation<Void, Never>] = [:]
    /// Waiters given up on before they registered (they resume at once when they do).
    var abandonedWaiters: Set<UInt64> = []
    /// Cancels the handler of each running task, by task id.
    var handlerCancels: [UInt64: @Sendable () -> Void] = [:]
    /// Set once the grace period ran out: cancelled activities are reported as failed, not canceled.
    var cancelledByShutdown = false
    var streamGeneration: UInt64 = 0

    init(slots: WorkerSlots) { self.slots = slots }
}
