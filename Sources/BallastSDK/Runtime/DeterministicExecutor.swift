import Synchronization

/// The executor a workflow run's tasks prefer: a FIFO of jobs that the runtime drains on the
/// calling thread, one job at a time, so the run's code never runs in parallel and the order
/// of its steps depends only on the order in which futures are resolved.
///
/// Every structured child of the run's root task (`async let`, task groups) inherits the
/// preference; resuming a continuation enqueues the task here again. Code that hops to an
/// actor or another executor leaves this executor and breaks determinism (documented in
/// docs/sdk.md).
final class DeterministicExecutor: TaskExecutor, @unchecked Sendable {
    /// Jobs waiting to run, oldest first. The lock only guards against a misbehaving workflow
    /// resuming a continuation from another thread; normally every enqueue happens while draining.
    private let queue = Mutex<JobQueue>(JobQueue())

    struct JobQueue: ~Copyable {
        var jobs: [UnownedJob] = []
        var head = 0
        /// Whether the runtime is processing a task for this run (jobs are expected then).
        var isActive = false
        /// Jobs enqueued while no task was being processed: code that awaited something
        /// outside the SDK and came back on its own schedule.
        var strayJobs = 0
        mutating func popFirst() -> UnownedJob? {
            guard head < jobs.count else { return nil }
            let job = jobs[head]
            head += 1
            if head == jobs.count { jobs.removeAll(keepingCapacity: true); head = 0 }
            return job
        }
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let unowned = UnownedJob(job)
        queue.withLock { queue in
            queue.jobs.append(unowned)
            if !queue.isActive { queue.strayJobs += 1 }
        }
    }

    /// Marks the start and end of the runtime processing a task for this run.
    func setActive(_ active: Bool) {
        queue.withLock { $0.isActive = active }
    }

    /// How many jobs arrived while no task was being processed.
    var strayJobs: Int { queue.withLock { $0.strayJobs } }

    /// Whether no job is waiting.
    var isIdle: Bool { queue.withLock { $0.head == $0.jobs.count } }

    /// Runs queued jobs (and the jobs they enqueue) until none is left or `maxJobs` ran.
    /// Returns the number of jobs run; `maxJobs` means the queue may not be empty.
    func drain(maxJobs: Int) -> Int {
        precondition(maxJobs > 0, "maxJobs must be positive")
        var ran = 0
        while ran < maxJobs, let job = queue.withLock({ $0.popFirst() }) {
            job.runSynchronously(on: asUnownedTaskExecutor())
            ran += 1
        }
        return ran
    }
}
