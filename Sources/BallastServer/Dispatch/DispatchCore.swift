import BallastEngine

/// The leader's matching of ready tasks and queries with the credit of connected task streams.
///
/// A pure value: no clocks, sockets or threads (times are passed in), so it is tested directly.
/// Tasks of a queue go out in engine sequence order; streams of a queue take turns
/// (round-robin), except that a run's tasks go first to the stream that last took the run's
/// workflow task when it has credit of that kind (sticky workflow tasks, eager activities, and
/// queries to the worker that has the run cached).
struct DispatchCore: Sendable {
    struct Stream: Sendable, Equatable {
        var queue: TaskQueueKey
        var workflowCredit: UInt32
        var activityCredit: UInt32
        var acceptsQueries: Bool
        /// A long poll: takes one task, then ends.
        var oneShot: Bool
        /// Started entries proposed for this stream and not yet applied.
        var startsInFlight = 0
        /// A task was started for it and is being pushed.
        var delivering = false
    }

    struct Queue: Sendable {
        var workflow: ReadyList
        var activity: ReadyList
        var queries: [QueryID] = []
        /// Open streams in connection order (the round-robin order).
        var streams: [TaskStreamID] = []
        var cursor = 0
        /// Read from the engine since this node began leading.
        var loaded = false
        /// Some ready tasks of that kind are only in the engine (the list was full): re-read
        /// when the list has drained to half.
        var workflowOverflowed = false
        var activityOverflowed = false
        /// A load was handed to the shell and has not come back.
        var loadRequested = false
    }

    struct Query: Sendable, Equatable {
        var queue: TaskQueueKey
        var runId: String
        /// The stream the query was pushed to, once it was.
        var stream: TaskStreamID?
    }

    let limits: DispatchLimits
    private(set) var isLeading = false
    private(set) var streams: [TaskStreamID: Stream] = [:]
    private(set) var queues: [TaskQueueKey: Queue] = [:]
    private(set) var queries: [QueryID: Query] = [:]
    private var nextStreamID: TaskStreamID = 1
    private var startsInFlight: [ReadyTaskKey: TaskStreamID] = [:]
    /// Run id → the stream that last took its workflow task (sticky preference).
    private var lastStream: [String: TaskStreamID] = [:]
    private var dirty: Set<TaskQueueKey> = []
    /// Queues not yet loaded or overflowed: the only ones `takeLoadRequests` looks at.
    private var loadCandidates: Set<TaskQueueKey> = []
    /// Workflow-task retries waiting out their backoff (`DispatchLimits.backoffNanos`), with
    /// the monotonic time they may go; `releaseHeld` moves the due ones to their queue.
    private var held: [ReadyTaskKey: (queue: TaskQueueKey, queued: QueuedTask, dueNanos: Int64)] = [:]
    /// The earliest due time in `held` (nil when empty), so most ticks cost nothing.
    private var heldEarliestNanos: Int64?

    init(limits: DispatchLimits = DispatchLimits()) {
        self.limits = limits
    }

    /// Started entries proposed and not yet applied.
    var startsInFlightCount: Int { startsInFlight.count }

    // MARK: leadership

    /// Forgets everything (streams included) and starts or stops leading; returns the streams
    /// and queries that were open, for the shell to close.
    mutating func reset(leading: Bool) -> (streams: [TaskStreamID], queries: [QueryID]) {
        let open = (streams.keys.sorted(), queries.keys.sorted())
        streams = [:]
        queues = [:]
        queries = [:]
        startsInFlight = [:]
        lastStream = [:]
        dirty = []
        loadCandidates = []
        held = [:]
        heldEarliestNanos = nil
        isLeading = leading
        return open
    }

    // MARK: streams

    /// Opens a stream (or a long poll) for `queue` with initial credit.
    mutating func openStream(queue: TaskQueueKey, workflowSlots: UInt32, activitySlots: UInt32,
                             acceptsQueries: Bool, oneShot: Bool) throws(DispatchRefusal) -> TaskStreamID {
        guard isLeading else { throw .notLeading }
        guard streams.count < limits.maxStreams else {
            throw .limitReached("\(limits.maxStreams) task streams and polls are open on this leader")
        }
        if queues[queue] == nil {
            try makeRoomForQueue()
            queues[queue] = Queue(workflow: ReadyList(capacity: limits.maxQueuedTasksPerQueue),
                                  activity: ReadyList(capacity: limits.maxQueuedTasksPerQueue))
            loadCandidates.insert(queue)
        }
        let id = nextStreamID
        nextStreamID += 1
        streams[id] = Stream(queue: queue, workflowCredit: min(workflowSlots, limits.maxCreditPerKind),
                             activityCredit: min(activitySlots, limits.maxCreditPerKind),
                             acceptsQueries: acceptsQueries, oneShot: oneShot)
        queues[queue]?.streams.append(id)
        dirty.insert(queue)
        return id
    }

    private mutating func makeRoomForQueue() throws(DispatchRefusal) {
        guard queues.count >= limits.maxQueues else { return }
        guard let idle = queues.keys.sorted().first(where: { queues[$0]?.streams.isEmpty == true && queues[$0]?.queries.isEmpty == true }) else {
            throw .limitReached("\(limits.maxQueues) task queues have workers on this leader")
        }
        queues[idle] = nil
        dirty.remove(idle)
        loadCandidates.remove(idle)
    }

    /// Closes a stream; returns the queries that can no longer be answered (pushed to it, or
    /// waiting in a queue that has no query-accepting stream left).
    mutating func closeStream(_ id: TaskStreamID) -> [QueryID] {
        guard let stream = streams.removeValue(forKey: id) else { return [] }
        var orphaned = queries.filter { $0.value.stream == id }.map(\.key)
        if var queue = queues[stream.queue], let position = queue.streams.firstIndex(of: id) {
            queue.streams.remove(at: position)
            if queue.cursor > position { queue.cursor -= 1 }
            if !queue.streams.contains(where: { streams[$0]?.acceptsQueries == true }) {
                orphaned += queue.queries
                queue.queries = []
            }
            queues[stream.queue] = queue
        }
        for query in orphaned { queries[query] = nil }
        return orphaned.sorted()
    }

    /// Whether a stream is open.
    func isOpen(_ id: TaskStreamID) -> Bool { streams[id] != nil }

    /// Adds credit; returns the credit now held, or nil for an unknown stream.
    mutating func grant(_ id: TaskStreamID, workflowSlots: UInt32, activitySlots: UInt32) -> (workflow: UInt32, activity: UInt32)? {
        guard var stream = streams[id] else { return nil }
        stream.workflowCredit = min(limits.maxCreditPerKind, stream.workflowCredit &+ min(workflowSlots, limits.maxCreditPerKind))
        stream.activityCredit = min(limits.maxCreditPerKind, stream.activityCredit &+ min(activitySlots, limits.maxCreditPerKind))
        streams[id] = stream
        dirty.insert(stream.queue)
        return (stream.workflowCredit, stream.activityCredit)
    }

    // MARK: tasks

    /// A task became ready (from an applied entry). Queues nobody serves ignore it: the engine
    /// keeps it and the queue is read from the engine when its first worker connects.
    mutating func taskReady(_ task: ReadyTask, nowNanos: Int64) {
        guard isLeading else { return }
        let key = TaskQueueKey(namespace: task.run.namespace, taskQueue: task.taskQueue)
        guard queues[key] != nil, startsInFlight[ReadyTaskKey(task)] == nil else { return }
        queueOrHold(QueuedTask(task: task, readyAtNanos: nowNanos), into: key)
    }

    /// Queues a task, or holds it back when it is a workflow-task retry that must wait.
    private mutating func queueOrHold(_ queued: QueuedTask, into key: TaskQueueKey) {
        let backoff = limits.backoffNanos(queued.task)
        guard backoff > 0 else { return insert(queued, into: key) }
        let taskKey = ReadyTaskKey(queued.task)
        guard held[taskKey] == nil, queues[key]?.workflow.contains(taskKey) != true else { return }
        guard held.count < limits.maxHeldTasks else { return insert(queued, into: key) }
        let due = queued.readyAtNanos &+ backoff
        held[taskKey] = (key, queued, due)
        heldEarliestNanos = min(heldEarliestNanos ?? due, due)
    }

    /// Moves the held retries whose backoff has passed at `nowNanos` (monotonic) to their
    /// queues; returns whether any moved (then `match` has work).
    mutating func releaseHeld(nowNanos: Int64) -> Bool {
        guard let earliest = heldEarliestNanos, earliest <= nowNanos else { return false }
        var next: Int64?
        var released: [(TaskQueueKey, QueuedTask)] = []
        for (taskKey, entry) in held {
            if entry.dueNanos <= nowNanos {
                held[taskKey] = nil
                released.append((entry.queue, entry.queued))
            } else {
                next = min(next ?? entry.dueNanos, entry.dueNanos)
            }
        }
        heldEarliestNanos = next
        // A queue dropped meanwhile reads its tasks from the engine when a worker comes back.
        for (key, queued) in released.sorted(by: { $0.1.task.sequence < $1.1.task.sequence }) { insert(queued, into: key) }
        return !released.isEmpty
    }

    /// Workflow-task retries waiting out their backoff.
    var heldCount: Int { held.count }

    private mutating func insert(_ queued: QueuedTask, into key: TaskQueueKey) {
        // Changed in place (`queues[key]!`): a copy of the queue taken out of the dictionary
        // would share the ready list's buffers, and the insert would copy them whole.
        guard queues[key] != nil else { return }
        let kept = queued.task.kind == .workflow ? queues[key]!.workflow.insert(queued) : queues[key]!.activity.insert(queued)
        if !kept {
            if queued.task.kind == .workflow { queues[key]!.workflowOverflowed = true } else { queues[key]!.activityOverflowed = true }
            loadCandidates.insert(key)
        }
        dirty.insert(key)
    }

    /// Queues whose ready tasks must be read from the engine (first worker, or room after an
    /// overflow); each is handed out once until `load` brings it back.
    mutating func takeLoadRequests() -> [TaskQueueKey] {
        var requests: [TaskQueueKey] = []
        for key in loadCandidates.sorted() {
            guard let queue = queues[key] else {
                loadCandidates.remove(key)
                continue
            }
            guard !queue.loadRequested else { continue }
            let half = limits.maxQueuedTasksPerQueue / 2
            let roomAfterOverflow = (queue.workflowOverflowed && queue.workflow.count <= half)
                || (queue.activityOverflowed && queue.activity.count <= half)
            guard !queue.loaded || roomAfterOverflow else { continue }
            queues[key]?.loadRequested = true
            // Cleared now, not at the load: the listing reads a copy of the engine taken after
            // this, off the loop, so a task that overflows the list before the load comes back
            // is not in it and must leave its mark for the next load.
            queues[key]?.workflowOverflowed = false
            queues[key]?.activityOverflowed = false
            requests.append(key)
        }
        return requests
    }

    /// The engine's ready tasks of a queue (tasks of other namespaces are skipped), in
    /// sequence order, still ready on the Raft loop thread. `moreWorkflowTasks` and
    /// `moreActivityTasks` say the engine holds more of that kind than were listed (the listing
    /// stops at the lists' capacity): the kind then counts as overflowed, as it does when the
    /// list overflowed since the load was requested, so it is read again once drained to half.
    mutating func load(_ key: TaskQueueKey, readyTasks: [ReadyTask], nowNanos: Int64,
                       moreWorkflowTasks: Bool = false, moreActivityTasks: Bool = false) {
        guard queues[key] != nil else { return }
        queues[key]!.loaded = true
        queues[key]!.loadRequested = false
        if moreWorkflowTasks { queues[key]!.workflowOverflowed = true }
        if moreActivityTasks { queues[key]!.activityOverflowed = true }
        if queues[key]!.workflowOverflowed || queues[key]!.activityOverflowed { loadCandidates.insert(key) } else { loadCandidates.remove(key) }
        for task in readyTasks where task.run.namespace == key.namespace && startsInFlight[ReadyTaskKey(task)] == nil {
            queueOrHold(QueuedTask(task: task, readyAtNanos: nowNanos), into: key)
        }
    }

    /// Ready tasks waiting per queue (both kinds, held retries included).
    var pendingTasks: [TaskQueueKey: Int] {
        var pending = queues.mapValues { $0.workflow.count + $0.activity.count }
        for entry in held.values where pending[entry.queue] != nil { pending[entry.queue]! += 1 }
        return pending
    }

    /// A run closed: forget its sticky stream.
    mutating func runClosed(_ runId: String) { lastStream[runId] = nil }

    // MARK: matching

    /// Pairs waiting queries and tasks with stream credit; every assignment has spent one slot.
    mutating func match() -> [DispatchAssignment] {
        var assignments: [DispatchAssignment] = []
        for key in dirty.sorted() {
            guard startsInFlight.count < limits.maxStartsInFlight else { return assignments }
            matchQueries(key, &assignments)
            matchTasks(key, kind: .workflow, &assignments)
            matchTasks(key, kind: .activity, &assignments)
            if startsInFlight.count < limits.maxStartsInFlight { dirty.remove(key) }
        }
        return assignments
    }

    private mutating func matchQueries(_ key: TaskQueueKey, _ assignments: inout [DispatchAssignment]) {
        while let id = queues[key]?.queries.first, let query = queries[id] {
            guard let stream = pickStream(key, kind: .workflow, preferred: lastStream[query.runId], queriesOnly: true) else { return }
            streams[stream]?.workflowCredit -= 1
            queues[key]?.queries.removeFirst()
            queries[id]?.stream = stream
            assignments.append(.query(stream: stream, query: id))
        }
    }

    private mutating func matchTasks(_ key: TaskQueueKey, kind: ReadyTask.Kind, _ assignments: inout [DispatchAssignment]) {
        // Reads the first task without holding a copy of the queue, so the removal below
        // changes the ready list in place instead of copying it.
        while startsInFlight.count < limits.maxStartsInFlight,
              let next = kind == .workflow ? queues[key]?.workflow.first : queues[key]?.activity.first {
            guard let stream = pickStream(key, kind: kind, preferred: lastStream[next.task.run.runId], queriesOnly: false) else { return }
            if kind == .workflow {
                streams[stream]?.workflowCredit -= 1
                _ = queues[key]?.workflow.removeFirst()
            } else {
                streams[stream]?.activityCredit -= 1
                _ = queues[key]?.activity.removeFirst()
            }
            streams[stream]?.startsInFlight += 1
            startsInFlight[ReadyTaskKey(next.task)] = stream
            assignments.append(.start(stream: stream, task: next.task, readyAtNanos: next.readyAtNanos))
        }
    }

    /// The preferred stream if it serves the queue and has credit, else the next in turn with credit.
    private mutating func pickStream(_ key: TaskQueueKey, kind: ReadyTask.Kind, preferred: TaskStreamID?,
                                     queriesOnly: Bool) -> TaskStreamID? {
        func eligible(_ id: TaskStreamID) -> Bool {
            guard let stream = streams[id], stream.queue == key, !queriesOnly || stream.acceptsQueries else { return false }
            return kind == .workflow ? stream.workflowCredit > 0 : stream.activityCredit > 0
        }
        if let preferred, eligible(preferred) { return preferred }
        guard let streamIDs = queues[key]?.streams, let cursor = queues[key]?.cursor, !streamIDs.isEmpty else { return nil }
        let count = streamIDs.count
        for step in 0 ..< count {
            let position = (cursor + step) % count
            let id = streamIDs[position]
            if eligible(id) {
                queues[key]?.cursor = (position + 1) % count
                return id
            }
        }
        return nil
    }

    /// A started entry proposed for `stream` ended; returns whether the task should be pushed
    /// (started, and the stream is still open).
    mutating func startFinished(_ task: ReadyTask, stream id: TaskStreamID, outcome: StartOutcome, nowNanos: Int64) -> Bool {
        let key = ReadyTaskKey(task)
        guard startsInFlight[key] == id else { return false }
        startsInFlight[key] = nil
        streams[id]?.startsInFlight -= 1
        let queueKey = TaskQueueKey(namespace: task.run.namespace, taskQueue: task.taskQueue)
        dirty.insert(queueKey)
        switch outcome {
        case .started:
            guard streams[id] != nil else { return false }
            streams[id]?.delivering = true
            if task.kind == .workflow { remember(run: task.run.runId, stream: id) }
            return true
        case .rejected:
            refund(id, kind: task.kind)
        case .notApplied:
            refund(id, kind: task.kind)
            insert(QueuedTask(task: task, readyAtNanos: nowNanos), into: queueKey)
        }
        return false
    }

    private mutating func refund(_ id: TaskStreamID, kind: ReadyTask.Kind) {
        guard var stream = streams[id] else { return }
        if kind == .workflow { stream.workflowCredit += 1 } else { stream.activityCredit += 1 }
        streams[id] = stream
    }

    private mutating func remember(run runId: String, stream: TaskStreamID) {
        if lastStream[runId] == nil, lastStream.count >= limits.maxRememberedRuns {
            lastStream = lastStream.filter { streams[$0.value] != nil }
            if lastStream.count >= limits.maxRememberedRuns { lastStream = [:] }
        }
        lastStream[runId] = stream
    }

    /// The stream that last took the run's workflow task, if it is still open.
    func stickyStream(ofRun runId: String) -> TaskStreamID? {
        lastStream[runId].flatMap { streams[$0] != nil ? $0 : nil }
    }

    // MARK: eager dispatch

    /// Reserves up to `workflow` / `activity` slots on the stream that last took `runId`'s
    /// workflow task (the worker that has the run cached, and is completing its task or waiting
    /// for its activity), for an entry that will start the tasks it makes ready. Nil when that
    /// stream is gone, is a long poll, or has no credit of the kinds asked.
    mutating func reserveEager(stickyRun runId: String, workflow: UInt32, activity: UInt32) -> EagerReservation? {
        guard isLeading, let id = stickyStream(ofRun: runId) else { return nil }
        return reserve(id, workflow: workflow, activity: activity)
    }

    /// Reserves one workflow slot for a start's first workflow task on the next stream of
    /// `queue` in turn that has workflow credit (long polls excluded).
    mutating func reserveEager(queue key: TaskQueueKey) -> EagerReservation? {
        guard isLeading, let streamIDs = queues[key]?.streams, let cursor = queues[key]?.cursor, !streamIDs.isEmpty else { return nil }
        for step in 0 ..< streamIDs.count {
            let position = (cursor + step) % streamIDs.count
            let id = streamIDs[position]
            guard let stream = streams[id], !stream.oneShot, stream.workflowCredit > 0 else { continue }
            queues[key]?.cursor = (position + 1) % streamIDs.count
            return reserve(id, workflow: 1, activity: 0)
        }
        return nil
    }

    private mutating func reserve(_ id: TaskStreamID, workflow: UInt32, activity: UInt32) -> EagerReservation? {
        guard let stream = streams[id], !stream.oneShot else { return nil }
        let workflow = min(workflow, stream.workflowCredit), activity = min(activity, stream.activityCredit)
        guard workflow > 0 || activity > 0 else { return nil }
        streams[id]?.workflowCredit -= workflow
        streams[id]?.activityCredit -= activity
        streams[id]?.startsInFlight += 1
        return EagerReservation(stream: id, queue: stream.queue, workflow: workflow, activity: activity)
    }

    /// The entry of a reservation was applied and started `started` for it (empty when it was
    /// rejected or never applied): refunds the slots it did not use; returns whether the
    /// started tasks should be pushed (the stream is still open).
    mutating func eagerFinished(_ reservation: EagerReservation, started: [ReadyTask]) -> Bool {
        let id = reservation.stream
        guard streams[id] != nil else { return false }
        let workflowUsed = UInt32(min(Int(reservation.workflow), started.count { $0.kind == .workflow }))
        let activityUsed = UInt32(min(Int(reservation.activity), started.count { $0.kind == .activity }))
        streams[id]?.startsInFlight -= 1
        if let stream = streams[id] {
            streams[id]?.workflowCredit = min(limits.maxCreditPerKind, stream.workflowCredit + (reservation.workflow - workflowUsed))
            streams[id]?.activityCredit = min(limits.maxCreditPerKind, stream.activityCredit + (reservation.activity - activityUsed))
        }
        for task in started where task.kind == .workflow { remember(run: task.run.runId, stream: id) }
        dirty.insert(reservation.queue)
        return true
    }

    // MARK: queries

    /// Queues a query for a worker of `queue`; refused when no open stream of it accepts queries.
    mutating func enqueueQuery(_ id: QueryID, queue key: TaskQueueKey, runId: String) throws(DispatchRefusal) {
        guard isLeading else { throw .notLeading }
        guard queries.count < limits.maxPendingQueries else {
            throw .limitReached("\(limits.maxPendingQueries) queries are waiting on this leader")
        }
        guard let queue = queues[key], queue.streams.contains(where: { streams[$0]?.acceptsQueries == true }) else {
            throw .noQueryWorker(key)
        }
        precondition(queries[id] == nil, "query ids are unique")
        queries[id] = Query(queue: key, runId: runId)
        queues[key]?.queries.append(id)
        dirty.insert(key)
    }

    /// The query was answered or abandoned; forget it.
    mutating func queryFinished(_ id: QueryID) {
        guard let query = queries.removeValue(forKey: id) else { return }
        if query.stream == nil { queues[query.queue]?.queries.removeAll { $0 == id } }
    }
}
