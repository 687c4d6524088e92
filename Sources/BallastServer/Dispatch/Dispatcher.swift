import BallastEngine
import BallastProto
import BallastRaft
import BallastWire
import Foundation
import Logging
import Synchronization

/// Where a stream's (or a long poll's) tasks go; the shell of one `StreamTasks` or `Poll*` call.
struct TaskSink: Sendable {
    /// Shown in history as the worker identity.
    let identity: String
    /// Secret half of the stream token (so a stream token cannot be guessed from its id).
    let nonce: UInt64
    /// Pushes one event to the worker.
    let push: @Sendable (Ballast_V1_TaskStreamEvent) -> Void
    /// Ends the call with a status.
    let close: @Sendable (GRPCStatus) -> Void
    /// Set when the worker asked for partial history (`StreamTasksRequest.partial_history`).
    var sticky: StickyHistory? = nil
}

/// Which runs' workflow tasks a stream was last pushed, so the next one of the same run can carry
/// only the events after it (`WorkflowTask.first_event_id`). Holds at most `capacity` runs;
/// when full it starts over, and a forgotten run's next task simply carries its whole history.
final class StickyHistory: Sendable {
    private let pushed = Mutex<[String: Int64]>([:])
    let capacity: Int

    init(capacity: Int = 10_000) {
        self.capacity = capacity
    }

    /// A workflow task of `runId` started at `startedEventId` is being pushed to the stream;
    /// returns the first event id its history may start at: `previousStartedEventId + 1` when the
    /// stream was pushed exactly that previous task, else 1.
    func push(runId: String, previousStartedEventId: Int64, startedEventId: Int64) -> Int64 {
        pushed.withLock { pushed in
            let continues = previousStartedEventId > 0 && pushed[runId] == previousStartedEventId
            if pushed[runId] == nil, pushed.count >= capacity { pushed.removeAll(keepingCapacity: true) }
            pushed[runId] = startedEventId
            return continues ? previousStartedEventId + 1 : 1
        }
    }
}

/// The leader's duties around the engine: matching ready tasks to connected workers, firing
/// timers and routing queries. The matching and the deadlines live in pure cores
/// (`DispatchCore`, `TimerQueue`) behind one lock; this shell proposes entries through the Raft
/// driver and pushes tasks to streams. It hears every applied entry and every leadership change
/// on the driver's loop thread; streams, grants, polls and queries arrive from the API port.
final class Dispatcher: @unchecked Sendable {
    struct State {
        var core: DispatchCore
        var timers: TimerQueue
        var sinks: [TaskStreamID: TaskSink] = [:]
        var queryWaiters: [QueryID: QueryWaiter] = [:]
        var nextQueryID: QueryID = 1
        /// Counts leadership changes; completions from an older epoch are ignored.
        var epoch: UInt64 = 0
        var timerProposalsInFlight = 0
        var nextRequestNumber: UInt64 = 0
        /// A thread is listing the engine's deadlines (`reloadDeadlines`).
        var listingDeadlines = false
        /// The next listing, from a later copy of the engine, waiting for that thread.
        var queuedListing: (epoch: UInt64, engine: WorkflowEngine)?
        /// Listings done so far (for tests).
        var deadlineListings = 0
        /// Runs on the listing thread before each listing (tests hold a listing with it).
        var beforeListing: (@Sendable () -> Void)?
        /// Queues whose ready tasks wait to be listed, in the order asked (`load`), and whether a
        /// listing runs.
        var pendingLoads: [(queue: TaskQueueKey, epoch: UInt64)] = []
        var listingReadyTasks = false
        /// Runs on the listing queue before each ready listing with the applied index of the
        /// engine copy it lists (tests hold a listing with it).
        var beforeReadyListing: (@Sendable (_ copyIndex: UInt64) -> Void)?
    }

    /// What the shell must do after a change: propose, push, load from the engine.
    struct Work {
        var epoch: UInt64
        var assignments: [DispatchAssignment] = []
        var sinks: [TaskStreamID: TaskSink] = [:]
        var queryTasks: [QueryID: (task: Ballast_V1_QueryTask, historyLength: Int64)] = [:]
        var loads: [TaskQueueKey] = []
        var isEmpty: Bool { assignments.isEmpty && loads.isEmpty }
    }

    let logger: Logger
    let metrics: NodeMetrics
    let stateMachine: EngineStateMachine
    let history: any HistorySource
    let state: Mutex<State>
    /// Timer proposals in flight at most; more due deadlines wait for the next tick.
    let maxTimerProposalsInFlight: Int
    /// First-page bounds of the history pushed with a workflow or query task.
    let firstPageMaxEvents = 1_000
    let firstPageMaxBytes = 2 << 20
    /// Whether entries may start the tasks they make ready (`Dispatcher+Eager.swift`), as
    /// configured (`--eager-dispatch`).
    let eagerDispatch: Bool
    /// The newest engine entry format every member has reported (`FormatAgreement`; the node
    /// sets it): 1 until they have.
    private let agreedFormat = Atomic<UInt32>(engineFormatVersion)
    /// Where a queue's ready tasks are listed from a copy of the engine, one listing at a time.
    private let readyListing = DispatchQueue(label: "dispatcher-ready-listing", qos: .utility)
    /// Whether this node proposes eager entries now: configured and agreed by every member.
    var eagerActive: Bool { eagerDispatch && agreedFormat.load(ordering: .relaxed) >= eagerDispatchFormatVersion }

    /// The format of the entries this node proposes: the agreed one, with or without eager
    /// dispatch (an entry without an eager part applies the same in every format from 2 on). To
    /// keep a downgrade possible, every member runs with `--max-engine-format`, which caps the
    /// agreed format. (Until 2026-11-28 `--eager-dispatch false` meant format 1 too, and so
    /// silently dropped every limit added since: bounded retries, history size, and the rest.)
    var entryFormat: UInt32 { agreedFormat.load(ordering: .relaxed) }

    /// Records the newest format every member applies (quietly when this node does not lead).
    func setAgreedFormat(_ format: UInt32, leading: Bool = true) {
        let was = agreedFormat.exchange(format, ordering: .relaxed)
        guard was != format, leading else { return }
        let eagerWas = was >= eagerDispatchFormatVersion, eagerNow = format >= eagerDispatchFormatVersion
        if eagerDispatch, eagerWas != eagerNow {
            logger.notice(eagerNow ? "eager dispatch on: every member applies engine format 2"
                                   : "eager dispatch off: a member does not report engine format 2")
        }
        logger.notice("entries written in engine format \(format): the newest every member applies")
    }

    /// Set once by the node right after it created the driver, before anything starts.
    var driver: RaftDriver?
    /// The status a caller gets from a node that does not lead (with the `ballast-leader` trailer).
    var notLeaderStatus: @Sendable () async -> GRPCStatus = { GRPCStatus.notLeader(leaderAddress: nil) }
    private let clockBase = ContinuousClock.now

    init(logger: Logger, metrics: NodeMetrics, stateMachine: EngineStateMachine, history: any HistorySource,
         limits: DispatchLimits = DispatchLimits(), maxTimers: Int = 1_000_000, maxTimerProposalsInFlight: Int = 1_024,
         eagerDispatch: Bool = true) {
        self.logger = logger
        self.eagerDispatch = eagerDispatch
        self.metrics = metrics
        self.stateMachine = stateMachine
        self.history = history
        self.maxTimerProposalsInFlight = maxTimerProposalsInFlight
        state = Mutex(State(core: DispatchCore(limits: limits), timers: TimerQueue(capacity: maxTimers)))
    }

    /// Monotonic nanoseconds since this dispatcher was made (ready → pushed latency).
    func monotonicNanos() -> Int64 {
        let elapsed = ContinuousClock.now - clockBase
        return elapsed.components.seconds * 1_000_000_000 + elapsed.components.attoseconds / 1_000_000_000
    }

    /// The leader's wall clock, UTC nanoseconds (what entries are stamped with).
    static func wallNanos() -> Int64 { Int64(Date().timeIntervalSince1970 * 1_000_000_000) }

    // MARK: hooks on the Raft loop thread

    /// Leadership started (with a complete engine) or ended; on the loop thread.
    func leadershipChanged(_ event: LeadershipEvent) {
        logger.info("leadership changed", metadata: ["event": "\(event)"])
        switch event {
        case .leading:
            let closed = state.withLock { state in
                state.epoch += 1
                let open = state.core.reset(leading: true)
                state.timers.removeAll()
                state.timerProposalsInFlight = 0
                return takeOpenCalls(&state, open)
            }
            closeAll(closed)
            logger.info("dispatcher leading")
            reloadDeadlines()
        case .notLeading:
            let closed = state.withLock { state in
                state.epoch += 1
                let open = state.core.reset(leading: false)
                state.timers.removeAll()
                state.timerProposalsInFlight = 0
                return takeOpenCalls(&state, open)
            }
            closeAll(closed)
        }
    }

    /// An engine entry was applied; on the loop thread.
    func applied(index: UInt64, result: ApplyResult) {
        guard !result.newTasks.isEmpty || !result.newTimers.isEmpty || !result.closedRuns.isEmpty else { return }
        let now = monotonicNanos()
        let work = state.withLock { state -> Work? in
            guard state.core.isLeading else { return nil }
            for task in result.newTasks { state.core.taskReady(task, nowNanos: now) }
            for timer in result.newTimers { state.timers.add(timer) }
            for run in result.closedRuns { state.core.runClosed(run.runId) }
            return collectWork(&state)
        }
        if let work { perform(work) }
    }

    /// The engine was replaced from a snapshot; on the loop thread.
    func restored() { reloadDeadlines() }

    // MARK: shared plumbing

    /// Matches under the lock and gathers what the shell needs to act on it.
    func collectWork(_ state: inout State) -> Work {
        var work = Work(epoch: state.epoch)
        work.assignments = state.core.match()
        work.loads = state.core.takeLoadRequests()
        for assignment in work.assignments {
            switch assignment {
            case .start(let stream, _, _):
                work.sinks[stream] = state.sinks[stream]
            case .query(let stream, let query):
                work.sinks[stream] = state.sinks[stream]
                if let waiter = state.queryWaiters[query] { work.queryTasks[query] = (waiter.task, waiter.historyLength) }
            }
        }
        return work
    }

    /// Re-matches after a change made outside the loop thread (a stream, a grant, a query).
    func rematch() {
        let work = state.withLock { collectWork(&$0) }
        perform(work)
    }

    /// Carries out matched work: started entries, query pushes, loads from the engine.
    func perform(_ work: Work) {
        guard !work.isEmpty else { return }
        for assignment in work.assignments {
            switch assignment {
            case .start(let stream, let task, let readyAt):
                proposeStart(task, stream: stream, identity: work.sinks[stream]?.identity ?? "", readyAtNanos: readyAt,
                             epoch: work.epoch)
            case .query(let stream, let query):
                if let sink = work.sinks[stream], let template = work.queryTasks[query] {
                    pushQuery(template.task, historyLength: template.historyLength, to: sink)
                }
            }
        }
        for queue in work.loads { load(queue, epoch: work.epoch) }
    }

    /// Reads a queue's ready tasks from the engine and feeds them to the core. Listing them
    /// walks every open run (`ready_listing_ms` of `ballast bench engine`: 122–137 ms for
    /// 100,000 open runs, 446 ms for 300,000), which on the loop thread held heartbeats for as
    /// long, on every first worker of a queue and every 5,000 tasks of a backlog drained (the
    /// election timeout is 150–300 ms). So the engine is captured on the loop (a copy-on-write
    /// copy, microseconds), listed on a queue of its own up to the core's capacity per kind, and
    /// back on the loop each listed task is checked still ready (`isReady`, a lookup) before
    /// the core takes it: one started meanwhile is not queued again.
    ///
    /// One queue is listed at a time, and its copy is taken when its listing starts, not when
    /// the load is asked for: copies taken at once for many queues (a new leader with many
    /// queues, or a worker opening streams for many queue names) were each held until their
    /// turn, and every apply meanwhile copied each shard of the engine it changed once per
    /// waiting copy, on the loop, and kept the old shards in memory.
    private func load(_ queue: TaskQueueKey, epoch: UInt64) {
        let start = state.withLock { state -> Bool in
            state.pendingLoads.append((queue, epoch))
            guard !state.listingReadyTasks else { return false }
            state.listingReadyTasks = true
            return true
        }
        if start { listNextQueue() }
    }

    /// Lists the next queue waiting in `pendingLoads` (loads of an earlier leadership are
    /// dropped: that term's core is gone), then the one after it, until none waits.
    private func listNextQueue() {
        let next = state.withLock { state -> (queue: TaskQueueKey, epoch: UInt64, limit: Int)? in
            while !state.pendingLoads.isEmpty {
                let load = state.pendingLoads.removeFirst()
                if load.epoch == state.epoch { return (load.queue, load.epoch, state.core.limits.maxQueuedTasksPerQueue) }
            }
            state.listingReadyTasks = false
            return nil
        }
        guard let (queue, epoch, limit) = next else { return }
        guard let driver else {
            state.withLock { $0.listingReadyTasks = false }
            return
        }
        driver.inspect { [self] _ in
            let engine = stateMachine.read { $0 }
            readyListing.async { [self] in
                state.withLock { $0.beforeReadyListing }?(engine.lastAppliedIndex)
                let listed = engine.readyTasks(namespace: queue.namespace, taskQueue: queue.taskQueue, limitPerKind: limit)
                driver.inspect { [self] _ in
                    let tasks = stateMachine.read { engine in listed.tasks.filter { engine.isReady($0) } }
                    let now = monotonicNanos()
                    let work = state.withLock { state -> Work? in
                        guard state.epoch == epoch else { return nil }
                        state.core.load(queue, readyTasks: tasks, nowNanos: now,
                                        moreWorkflowTasks: listed.moreWorkflowTasks, moreActivityTasks: listed.moreActivityTasks)
                        return collectWork(&state)
                    }
                    if let work { perform(work) }
                    listNextQueue()
                }
            }
        }
    }

    /// Proposes one engine entry stamped with the leader's clock; `completion` runs on the loop thread.
    func propose(_ entry: Ballast_V1_EngineEntry, completion: @escaping @Sendable (Result<ApplyResult, RaftDriverError>) -> Void) {
        guard let driver else { return completion(.failure(.stopped)) }
        guard let bytes = try? DeterministicBinaryEncoder.encode(entry) else {
            return completion(.failure(.refused(.notLeader(leaderHint: nil))))
        }
        driver.propose(bytes, message: entry) { outcome in
            switch outcome {
            case .success(let applied):
                if let result = applied.output as? ApplyResult { completion(.success(result)) } else { completion(.failure(.stopped)) }
            case .failure(let error):
                completion(.failure(error))
            }
        }
    }

    /// Takes the open sinks and query waiters out of the state (leadership changed).
    private func takeOpenCalls(_ state: inout State, _ open: (streams: [TaskStreamID], queries: [QueryID])) -> ([TaskSink], [QueryWaiter]) {
        let sinks = open.streams.compactMap { state.sinks[$0] }
        let waiters = Array(state.queryWaiters.values)
        state.sinks = [:]
        state.queryWaiters = [:]
        return (sinks, waiters)
    }

    /// Ends every stream and waiting query with UNAVAILABLE + `ballast-leader` so workers reconnect.
    private func closeAll(_ calls: ([TaskSink], [QueryWaiter])) {
        guard !calls.0.isEmpty || !calls.1.isEmpty else { return }
        let statusSource = notLeaderStatus
        Task {
            let status = await statusSource()
            for sink in calls.0 { sink.close(status) }
            for waiter in calls.1 { waiter.fail(status) }
        }
    }
}

extension Dispatcher {
    /// Open streams and ready tasks per tracked queue, for the gauges.
    func metricsSnapshot() -> (streams: Int, pending: [TaskQueueKey: Int]) {
        state.withLock { ($0.core.streams.count, $0.core.pendingTasks) }
    }
}
