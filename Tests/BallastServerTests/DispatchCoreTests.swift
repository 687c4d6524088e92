@testable import BallastEngine
@testable import BallastServer
import BallastProto
import BallastWire
import Testing

/// Builds ready tasks and streams for the dispatcher core's scenarios.
private struct Scenario {
    var core: DispatchCore
    let queue = TaskQueueKey(namespace: "default", taskQueue: "payments")
    private var sequence: UInt64 = 0

    init(limits: DispatchLimits = DispatchLimits()) {
        core = DispatchCore(limits: limits)
        _ = core.reset(leading: true)
    }

    mutating func task(_ kind: ReadyTask.Kind = .workflow, run: String, event: Int64 = 2, queue: String = "payments",
                       namespace: String = "default", attempt: Int32 = 1) -> ReadyTask {
        sequence += 1
        return ReadyTask(kind: kind, taskQueue: queue, run: RunKey(namespace: namespace, workflowId: "wf-\(run)", runId: run),
                         scheduledEventId: event, attempt: attempt, activityId: kind == .activity ? "a\(event)" : "",
                         sequence: sequence)
    }

    mutating func stream(workflow: UInt32 = 0, activity: UInt32 = 0, queries: Bool = false, oneShot: Bool = false) throws -> TaskStreamID {
        let id = try core.openStream(queue: queue, workflowSlots: workflow, activitySlots: activity,
                                     acceptsQueries: queries, oneShot: oneShot)
        core.load(queue, readyTasks: [], nowNanos: 0)
        return id
    }

    /// The (stream, run id) pairs of the start assignments of one match.
    mutating func starts() -> [(TaskStreamID, String)] {
        core.match().compactMap { assignment in
            if case .start(let stream, let task, _) = assignment { return (stream, task.run.runId) }
            return nil
        }
    }
}

@Suite("dispatcher core: matching ready tasks with stream credit")
struct DispatchCoreTests {
    @Test("given one stream with two workflow slots and three ready tasks, two go out in sequence order; a grant releases the third")
    func creditBoundsPushes() throws {
        var scenario = Scenario()
        let stream = try scenario.stream(workflow: 2)
        for run in ["r1", "r2", "r3"] { scenario.core.taskReady(scenario.task(run: run), nowNanos: 0) }
        #expect(scenario.starts().map(\.1) == ["r1", "r2"])
        #expect(scenario.starts().isEmpty, "no credit left: nothing more is matched")
        #expect(scenario.core.pendingTasks[scenario.queue] == 1)
        #expect(scenario.core.grant(stream, workflowSlots: 1, activitySlots: 0)! == (1, 0))
        #expect(scenario.starts().map(\.1) == ["r3"])
    }

    @Test("activity tasks use activity credit only")
    func kindsHaveSeparateCredit() throws {
        var scenario = Scenario()
        _ = try scenario.stream(workflow: 5, activity: 0)
        scenario.core.taskReady(scenario.task(.activity, run: "r1", event: 5), nowNanos: 0)
        #expect(scenario.starts().isEmpty)
        let activityStream = try scenario.stream(activity: 1)
        #expect(scenario.starts().map(\.0) == [activityStream])
    }

    @Test("streams of a queue take turns")
    func roundRobin() throws {
        var scenario = Scenario()
        let first = try scenario.stream(workflow: 10)
        let second = try scenario.stream(workflow: 10)
        for run in ["r1", "r2", "r3", "r4"] { scenario.core.taskReady(scenario.task(run: run), nowNanos: 0) }
        #expect(scenario.starts().map(\.0) == [first, second, first, second])
    }

    @Test("a run's next workflow task and its activities go first to the stream that ran its last workflow task (sticky, eager)")
    func stickyAndEager() throws {
        var scenario = Scenario()
        let first = try scenario.stream(workflow: 10, activity: 10)
        let second = try scenario.stream(workflow: 10, activity: 0)
        let cold = scenario.task(run: "r0")
        let warm = scenario.task(run: "r1")
        scenario.core.taskReady(cold, nowNanos: 0)
        scenario.core.taskReady(warm, nowNanos: 0)
        #expect(scenario.starts().map(\.0) == [first, second])
        let outcome1 = scenario.core.startFinished(warm, stream: second, outcome: .started, nowNanos: 0)
        #expect(outcome1)
        #expect(scenario.core.stickyStream(ofRun: "r1") == second)
        // Round-robin would pick `first` now; the run's cache is on `second`.
        scenario.core.taskReady(scenario.task(run: "r1", event: 6), nowNanos: 0)
        #expect(scenario.starts().map(\.0) == [second])
        // `second` has no activity credit: the activity goes to the next stream with credit.
        scenario.core.taskReady(scenario.task(.activity, run: "r1", event: 7), nowNanos: 0)
        #expect(scenario.starts().map(\.0) == [first])
        _ = scenario.core.grant(second, workflowSlots: 0, activitySlots: 1)
        scenario.core.taskReady(scenario.task(.activity, run: "r1", event: 8), nowNanos: 0)
        #expect(scenario.starts().map(\.0) == [second], "with activity credit, the completing worker gets the activity eagerly")
    }

    @Test("eager reservations take the sticky stream's credit, refund what the entry did not start, and remember the run")
    func eagerReservations() throws {
        var scenario = Scenario()
        let first = try scenario.stream(workflow: 1, activity: 2)
        let second = try scenario.stream(workflow: 1, activity: 0)
        let warm = scenario.task(run: "r1")
        scenario.core.taskReady(warm, nowNanos: 0)
        #expect(scenario.starts().map(\.0) == [first])
        let outcome1 = scenario.core.startFinished(warm, stream: first, outcome: .started, nowNanos: 0)
        #expect(outcome1)

        // The run's worker completes its task, scheduling three activities: it has two slots.
        guard let reservation = scenario.core.reserveEager(stickyRun: "r1", workflow: 1, activity: 3) else {
            Issue.record("no reservation on the sticky stream"); return
        }
        #expect(reservation == EagerReservation(stream: first, queue: scenario.queue, workflow: 0, activity: 2),
                "its workflow slot is in use; two of three activities")
        // Reserved slots are not matched to other tasks meanwhile.
        scenario.core.taskReady(scenario.task(.activity, run: "r2", event: 9), nowNanos: 0)
        #expect(scenario.starts().isEmpty)
        // The entry started one activity: the other slot comes back and serves the waiting task.
        let started = scenario.task(.activity, run: "r1", event: 5)
        let outcome2 = scenario.core.eagerFinished(reservation, started: [started])
        #expect(outcome2)
        #expect(scenario.starts().map(\.0) == [first])

        // No sticky stream, a long poll, or no credit: nothing reserved.
        let outcome3 = scenario.core.reserveEager(stickyRun: "unknown", workflow: 1, activity: 1)
        #expect(outcome3 == nil)
        let outcome4 = scenario.core.reserveEager(stickyRun: "r1", workflow: 1, activity: 1)
        #expect(outcome4 == nil, "first has no credit left")

        // A start reserves one workflow slot on the next stream with credit; a failed entry refunds it.
        guard let start = scenario.core.reserveEager(queue: scenario.queue) else { Issue.record("no start reservation"); return }
        #expect(start.stream == second && start.workflow == 1 && start.activity == 0)
        let outcome5 = scenario.core.reserveEager(queue: scenario.queue)
        #expect(outcome5 == nil, "no workflow credit left on any stream")
        let run = scenario.task(run: "r3")
        let outcome6 = scenario.core.eagerFinished(start, started: [run])
        #expect(outcome6)
        #expect(scenario.core.stickyStream(ofRun: "r3") == second, "the eagerly started run is sticky to its stream")
        _ = scenario.core.grant(second, workflowSlots: 1, activitySlots: 0)
        guard let again = scenario.core.reserveEager(queue: scenario.queue) else { Issue.record("no reservation"); return }
        let outcome7 = scenario.core.eagerFinished(again, started: [])
        #expect(outcome7)
        #expect(scenario.core.streams[second]?.workflowCredit == 1 && scenario.core.streams[second]?.startsInFlight == 0)

        // A stream that closed while its entry was in flight: nothing to push or refund.
        guard let closing = scenario.core.reserveEager(queue: scenario.queue) else { Issue.record("no reservation"); return }
        _ = scenario.core.closeStream(closing.stream)
        let closedOutcome = scenario.core.eagerFinished(closing, started: [scenario.task(run: "r4")])
        #expect(!closedOutcome)
        let poll = try scenario.stream(workflow: 1, activity: 1, oneShot: true)
        let outcome8 = scenario.core.reserveEager(queue: scenario.queue)
        #expect(outcome8 == nil, "long polls take one task by a started entry")
        _ = poll
    }

    @Test("a rejected start drops the task and refunds the slot; a start that was never applied requeues the task")
    func startOutcomes() throws {
        var scenario = Scenario()
        let stream = try scenario.stream(workflow: 1)
        let stale = scenario.task(run: "r1")
        scenario.core.taskReady(stale, nowNanos: 0)
        #expect(scenario.starts().count == 1)
        let outcome2 = scenario.core.startFinished(stale, stream: stream, outcome: .rejected, nowNanos: 0)
        #expect(!outcome2)
        #expect(scenario.core.streams[stream]?.workflowCredit == 1)
        #expect(scenario.starts().isEmpty, "the stale task is gone")
        let lost = scenario.task(run: "r2")
        scenario.core.taskReady(lost, nowNanos: 0)
        #expect(scenario.starts().map(\.1) == ["r2"])
        let outcome3 = scenario.core.startFinished(lost, stream: stream, outcome: .notApplied, nowNanos: 0)
        #expect(!outcome3)
        #expect(scenario.starts().map(\.1) == ["r2"], "the unapplied task is matched again")
    }

    @Test("a task started for a stream that closed meanwhile is not pushed (it will time out in the engine)")
    func closedStreamGetsNothing() throws {
        var scenario = Scenario()
        let stream = try scenario.stream(workflow: 1)
        let task = scenario.task(run: "r1")
        scenario.core.taskReady(task, nowNanos: 0)
        #expect(scenario.starts().count == 1)
        _ = scenario.core.closeStream(stream)
        let outcome4 = scenario.core.startFinished(task, stream: stream, outcome: .started, nowNanos: 0)
        #expect(!outcome4)
    }

    @Test("a queue keeps at most its limit; the rest is re-read from the engine once it drained to half, in order, without duplicates")
    func boundedQueueRefills() throws {
        var limits = DispatchLimits()
        limits.maxQueuedTasksPerQueue = 4
        var scenario = Scenario(limits: limits)
        let stream = try scenario.stream(workflow: 0)
        var all: [ReadyTask] = []
        for number in 1 ... 6 { all.append(scenario.task(run: "r\(number)")) }
        for task in all { scenario.core.taskReady(task, nowNanos: 0) }
        #expect(scenario.core.pendingTasks[scenario.queue] == 4)
        #expect(scenario.core.takeLoadRequests().isEmpty, "no room yet")
        _ = scenario.core.grant(stream, workflowSlots: 2, activitySlots: 0)
        #expect(scenario.starts().map(\.1) == ["r1", "r2"])
        #expect(scenario.core.takeLoadRequests() == [scenario.queue])
        #expect(scenario.core.takeLoadRequests().isEmpty, "handed out once until loaded")
        // The engine still lists r1 and r2 (their started entries are in flight) and r3…r6.
        scenario.core.load(scenario.queue, readyTasks: all, nowNanos: 0)
        _ = scenario.core.grant(stream, workflowSlots: 10, activitySlots: 0)
        #expect(scenario.starts().map(\.1) == ["r3", "r4", "r5", "r6"])
    }

    @Test("a load that lists only the first tasks of a kind (more are in the engine) asks again once the queue drained to half")
    func truncatedLoadAsksAgain() throws {
        var limits = DispatchLimits()
        limits.maxQueuedTasksPerQueue = 4
        var scenario = Scenario(limits: limits)
        let stream = try scenario.stream(workflow: 0)
        let all = (1 ... 7).map { scenario.task(run: "r\($0)") }
        // The engine held seven; the listing stopped at four.
        scenario.core.load(scenario.queue, readyTasks: Array(all.prefix(4)), nowNanos: 0, moreWorkflowTasks: true)
        #expect(scenario.core.takeLoadRequests().isEmpty, "full: no room yet")
        _ = scenario.core.grant(stream, workflowSlots: 2, activitySlots: 0)
        #expect(scenario.starts().map(\.1) == ["r1", "r2"])
        #expect(scenario.core.takeLoadRequests() == [scenario.queue])
        // This listing is complete (r3…r7), but r7 does not fit: read again once drained.
        scenario.core.load(scenario.queue, readyTasks: Array(all[2...]), nowNanos: 0)
        _ = scenario.core.grant(stream, workflowSlots: 10, activitySlots: 0)
        #expect(scenario.starts().map(\.1) == ["r3", "r4", "r5", "r6"])
        #expect(scenario.core.takeLoadRequests() == [scenario.queue])
        // A complete listing that fits leaves nothing to ask for.
        scenario.core.load(scenario.queue, readyTasks: [all[6]], nowNanos: 0)
        #expect(scenario.starts().map(\.1) == ["r7"])
        #expect(scenario.core.takeLoadRequests().isEmpty)
    }

    @Test("a task that overflows the list between the load request and the load (the listing did not see it) is read again later")
    func overflowDuringALoadIsRemembered() throws {
        var limits = DispatchLimits()
        limits.maxQueuedTasksPerQueue = 4
        var scenario = Scenario(limits: limits)
        let stream = try scenario.stream(workflow: 0)
        let early = (1 ... 5).map { scenario.task(run: "r\($0)") }
        for task in early { scenario.core.taskReady(task, nowNanos: 0) }
        _ = scenario.core.grant(stream, workflowSlots: 2, activitySlots: 0)
        #expect(scenario.starts().map(\.1) == ["r1", "r2"])
        #expect(scenario.core.takeLoadRequests() == [scenario.queue], "r5 did not fit")
        // While the listing runs, three more become ready (the last does not fit), and r5 is no
        // longer ready by the time the listing comes back: the load adds nothing new.
        let late = (6 ... 8).map { scenario.task(run: "r\($0)") }
        for task in late { scenario.core.taskReady(task, nowNanos: 0) }
        scenario.core.load(scenario.queue, readyTasks: Array(early[2 ... 3]), nowNanos: 0)
        _ = scenario.core.grant(stream, workflowSlots: 10, activitySlots: 0)
        #expect(scenario.starts().map(\.1) == ["r3", "r4", "r6", "r7"])
        #expect(scenario.core.takeLoadRequests() == [scenario.queue], "r8 is only in the engine")
        scenario.core.load(scenario.queue, readyTasks: [late[2]], nowNanos: 0)
        #expect(scenario.starts().map(\.1) == ["r8"])
        #expect(scenario.core.takeLoadRequests().isEmpty)
    }

    @Test("tasks of a queue no worker serves stay in the engine; the first stream asks for the queue to be loaded")
    func untrackedQueuesLoadOnConnect() throws {
        var scenario = Scenario()
        let task = scenario.task(run: "r1", queue: "other")
        scenario.core.taskReady(task, nowNanos: 0)
        #expect(scenario.core.pendingTasks.isEmpty)
        let other = TaskQueueKey(namespace: "default", taskQueue: "other")
        _ = try scenario.core.openStream(queue: other, workflowSlots: 1, activitySlots: 0, acceptsQueries: false, oneShot: false)
        #expect(scenario.core.takeLoadRequests() == [other])
        let elsewhere = scenario.task(run: "r2", queue: "other", namespace: "finance")
        scenario.core.load(other, readyTasks: [task, elsewhere], nowNanos: 0)
        #expect(scenario.starts().map(\.1) == ["r1"], "a task of another namespace with the same queue name is skipped")
    }

    @Test("at most maxStartsInFlight started entries are proposed at once")
    func startsInFlightAreBounded() throws {
        var limits = DispatchLimits()
        limits.maxStartsInFlight = 2
        var scenario = Scenario(limits: limits)
        let stream = try scenario.stream(workflow: 10)
        var tasks: [ReadyTask] = []
        for number in 1 ... 3 { tasks.append(scenario.task(run: "r\(number)")) }
        for task in tasks { scenario.core.taskReady(task, nowNanos: 0) }
        #expect(scenario.starts().count == 2)
        #expect(scenario.starts().isEmpty)
        let outcome5 = scenario.core.startFinished(tasks[0], stream: stream, outcome: .started, nowNanos: 0)
        #expect(outcome5)
        #expect(scenario.starts().map(\.1) == ["r3"])
    }

    @Test("a node that does not lead refuses streams; losing leadership returns every open stream and query to close")
    func leadership() throws {
        var core = DispatchCore()
        #expect(throws: DispatchRefusal.notLeading) {
            try core.openStream(queue: TaskQueueKey(namespace: "default", taskQueue: "q"), workflowSlots: 1, activitySlots: 0,
                                acceptsQueries: false, oneShot: false)
        }
        var scenario = Scenario()
        let stream = try scenario.stream(workflow: 1, queries: true)
        try scenario.core.enqueueQuery(7, queue: scenario.queue, runId: "r1")
        let open = scenario.core.reset(leading: false)
        #expect(open.streams == [stream] && open.queries == [7])
        #expect(scenario.core.streams.isEmpty && !scenario.core.isLeading)
    }

    @Test("queries need a stream that accepts them, go to the run's sticky stream, spend a workflow slot, and fail when it closes")
    func queries() throws {
        var scenario = Scenario()
        let plain = try scenario.stream(workflow: 5)
        #expect(throws: DispatchRefusal.noQueryWorker(scenario.queue)) { try scenario.core.enqueueQuery(1, queue: scenario.queue, runId: "r1") }
        let first = try scenario.stream(workflow: 5, queries: true)
        let second = try scenario.stream(workflow: 5, queries: true)
        let warm = scenario.task(run: "r1")
        scenario.core.taskReady(warm, nowNanos: 0)
        let started = scenario.core.match()
        guard case .start(let holder, _, _) = started.first else { Issue.record("no start"); return }
        #expect(holder == plain)
        _ = scenario.core.startFinished(warm, stream: plain, outcome: .started, nowNanos: 0)
        // The sticky stream does not accept queries: the query goes to one that does.
        try scenario.core.enqueueQuery(1, queue: scenario.queue, runId: "r1")
        #expect(scenario.core.match() == [.query(stream: first, query: 1)])
        #expect(scenario.core.streams[first]?.workflowCredit == 4)
        #expect(scenario.core.closeStream(first) == [1], "the query pushed to a vanished worker fails")
        try scenario.core.enqueueQuery(2, queue: scenario.queue, runId: "r1")
        _ = scenario.core.closeStream(second)
        #expect(scenario.core.queries[2] == nil, "no query-accepting stream left: the waiting query is dropped")
    }

    @Test("the number of streams is bounded")
    func streamLimit() throws {
        var limits = DispatchLimits()
        limits.maxStreams = 2
        var scenario = Scenario(limits: limits)
        _ = try scenario.stream(workflow: 1)
        _ = try scenario.stream(workflow: 1)
        #expect(throws: DispatchRefusal.self) { try scenario.stream(workflow: 1) }
    }
}

@Suite("timer queue: the leader's deadlines")
struct TimerQueueTests {
    private func timer(_ due: Int64, _ id: String) -> DueTimer {
        var request = Ballast_V1_TimerFiredRequest()
        request.timerID = id
        return DueTimer(dueTimeUnixNanos: due, run: RunKey(namespace: "default", workflowId: "w", runId: "r"), payload: .timerFired(request))
    }

    private func ids(_ timers: [DueTimer]) -> [String] {
        timers.map { timer in
            if case .timerFired(let request) = timer.payload { return request.timerID }
            return "?"
        }
    }

    @Test("due deadlines come out earliest first, at most the limit, and none before its time")
    func popsInOrder() {
        var queue = TimerQueue(capacity: 100)
        for (due, id) in [(30, "c"), (10, "a"), (50, "e"), (20, "b"), (40, "d")] { queue.add(timer(Int64(due), id)) }
        queue.add(timer(10, "a"))
        #expect(queue.count == 5, "a duplicate deadline is kept once")
        #expect(ids(queue.popDue(nowNanos: 5, limit: 10)).isEmpty)
        #expect(ids(queue.popDue(nowNanos: 35, limit: 2)) == ["a", "b"])
        #expect(ids(queue.popDue(nowNanos: 35, limit: 10)) == ["c"])
        #expect(queue.nextDueNanos == 40)
    }

    @Test("deadlines are told apart by their whole content, not only by what their hash covers")
    func keyIsTheWholeDeadline() {
        var queue = TimerQueue(capacity: 10_000)
        // 2,000 timers of one run due at the same instant (a fan-out of equal sleeps), each
        // added twice: every one is kept once.
        for round in 0..<2 {
            for index in 0..<2_000 {
                var request = Ballast_V1_TimerFiredRequest()
                request.timerID = "t\(index)"
                request.startedEventID = Int64(index + 5)
                queue.add(DueTimer(dueTimeUnixNanos: 70, run: RunKey(namespace: "default", workflowId: "w", runId: "r"),
                                   payload: .timerFired(request)))
            }
            #expect(queue.count == 2_000, "round \(round)")
        }
        // Same hash inputs (run, due time, started event), different timer id: two deadlines.
        var same = Ballast_V1_TimerFiredRequest()
        same.startedEventID = 5
        same.timerID = "other"
        queue.add(DueTimer(dueTimeUnixNanos: 70, run: RunKey(namespace: "default", workflowId: "w", runId: "r"), payload: .timerFired(same)))
        // Same payload, other workflow id in the run key: two deadlines.
        var first = Ballast_V1_TimerFiredRequest()
        first.timerID = "t0"
        first.startedEventID = 5
        queue.add(DueTimer(dueTimeUnixNanos: 70, run: RunKey(namespace: "default", workflowId: "w2", runId: "r"), payload: .timerFired(first)))
        #expect(queue.count == 2_002)
        let popped = queue.popDue(nowNanos: 70, limit: 3_000)
        #expect(popped.count == 2_002)
        #expect(queue.count == 0)
    }

    @Test("deadlines whose hashes collide are all kept, and the first of them is still kept once")
    func hashCollisions() {
        var queue = TimerQueue(capacity: 100, hashing: { _ in 42 })
        for (due, id) in [(30, "c"), (10, "a"), (20, "b")] { queue.add(timer(Int64(due), id)) }
        queue.add(timer(30, "c"))
        #expect(queue.count == 3, "a duplicate of the deadline that holds the hash is refused")
        #expect(ids(queue.popDue(nowNanos: 15, limit: 10)) == ["a"])
        // "c" held the hash and is still queued; after it leaves, a new one takes the hash.
        #expect(ids(queue.popDue(nowNanos: 35, limit: 10)) == ["b", "c"])
        queue.add(timer(40, "d"))
        queue.add(timer(40, "d"))
        queue.add(timer(40, "e"))
        #expect(queue.count == 2)
        #expect(ids(queue.popDue(nowNanos: 40, limit: 10)) == ["d", "e"])
    }

    @Test("many deadlines with ties come out in due order, ties in the order they were added")
    func heapOrder() {
        var queue = TimerQueue(capacity: 10_000)
        var generator = SystemRandomNumberGenerator()
        var added: [(due: Int64, id: String)] = []
        for index in 0..<2_000 {
            let due = Int64.random(in: 0..<300, using: &generator)
            added.append((due, "t\(index)"))
            queue.add(timer(due, "t\(index)"))
        }
        var popped: [String] = []
        while queue.count > 0 { popped += ids(queue.popDue(nowNanos: .max, limit: 7)) }
        let expected = added.enumerated().sorted { ($0.element.due, $0.offset) < ($1.element.due, $1.offset) }.map(\.element.id)
        #expect(popped == expected)
    }

    @Test("adds and pops interleaved (slots reused) give exactly what a sorted list gives")
    func interleavedAgainstModel() {
        var queue = TimerQueue(capacity: 10_000)
        var model: [(due: Int64, order: Int, id: String)] = []
        var generator = SystemRandomNumberGenerator()
        var now: Int64 = 0
        for index in 0..<5_000 {
            let due = now + Int64.random(in: 0..<200, using: &generator)
            queue.add(timer(due, "t\(index)"))
            model.append((due, index, "t\(index)"))
            if Int.random(in: 0..<3, using: &generator) == 0 {
                now += Int64.random(in: 0..<60, using: &generator)
                let limit = Int.random(in: 1..<20, using: &generator)
                let expected = model.filter { $0.due <= now }.sorted { ($0.due, $0.order) < ($1.due, $1.order) }.prefix(limit)
                #expect(ids(queue.popDue(nowNanos: now, limit: limit)) == expected.map(\.id))
                let taken = Set(expected.map(\.id))
                model.removeAll { taken.contains($0.id) }
                #expect(queue.count == model.count)
            }
        }
    }

    @Test("when full, an earlier deadline takes the latest one's place; what was let go is read again from the engine once due")
    func overflowKeepsTheEarliest() {
        var queue = TimerQueue(capacity: 4)
        for due in [100, 200, 300, 400] { queue.add(timer(Int64(due), "t\(due)")) }
        queue.add(timer(500, "late"))
        #expect(queue.count == 4 && queue.overflowEarliestNanos == 500, "later than everything held: not kept")
        queue.add(timer(50, "early"))
        #expect(queue.count == 4 && queue.overflowEarliestNanos == 400, "kept; the latest held (400) let go")
        let tooSoon = queue.takeRebuildRequest(nowNanos: 60)
        #expect(!tooSoon, "nothing let go is due yet, and the queue is more than half full")
        #expect(ids(queue.popDue(nowNanos: 60, limit: 10)) == ["early"])
        #expect(ids(queue.popDue(nowNanos: 399, limit: 10)) == ["t100", "t200", "t300"])
        let due = queue.takeRebuildRequest(nowNanos: 400)
        #expect(due)
        let again = queue.takeRebuildRequest(nowNanos: 400)
        #expect(!again, "asked once")
        // The dispatcher refills from the engine's deadlines without emptying the queue.
        queue.clearOverflow()
        queue.add(contentsOf: [400, 500].map { timer(Int64($0), $0 == 400 ? "t400" : "late") })
        #expect(queue.overflowEarliestNanos == nil)
        #expect(ids(queue.popDue(nowNanos: 500, limit: 10)) == ["t400", "late"])
    }

    @Test("a full queue holds exactly the earliest deadlines offered, under random adds and pops, and remembers the earliest it let go", arguments: [2, 3, 7, 64])
    func fullQueueAgainstModel(capacity: Int) {
        var queue = TimerQueue(capacity: capacity)
        var model: [(due: Int64, order: Int, id: String)] = []
        var letGo: Int64?
        var generator = SplitMix64(seed: UInt64(capacity))
        var now: Int64 = 0
        for index in 0..<4_000 {
            let due = now + Int64(generator.next() % 300)
            let id = "t\(index)"
            queue.add(timer(due, id))
            if model.count < capacity {
                model.append((due, index, id))
            } else if let latest = model.max(by: { ($0.due, $0.order) < ($1.due, $1.order) }), due < latest.due {
                model.removeAll { $0.id == latest.id }
                model.append((due, index, id))
                letGo = min(letGo ?? latest.due, latest.due)
            } else {
                letGo = min(letGo ?? due, due)
            }
            #expect(queue.count == model.count)
            #expect(queue.overflowEarliestNanos == letGo)
            if generator.next() % 3 == 0 {
                now += Int64(generator.next() % 80)
                let limit = Int(generator.next() % 5) + 1
                let expected = model.filter { $0.due <= now }.sorted { ($0.due, $0.order) < ($1.due, $1.order) }.prefix(limit)
                #expect(ids(queue.popDue(nowNanos: now, limit: limit)) == expected.map(\.id))
                let taken = Set(expected.map(\.id))
                model.removeAll { taken.contains($0.id) }
            }
            if generator.next() % 97 == 0 {
                queue.clearOverflow()
                letGo = nil
            }
        }
        let rest = model.sorted { ($0.due, $0.order) < ($1.due, $1.order) }.map(\.id)
        #expect(ids(queue.popDue(nowNanos: .max, limit: .max)) == rest)
    }
}

@Suite("ready list")
struct ReadyListTests {
    @Test("keeps the earliest tasks by sequence when full, whatever the arrival order")
    func keepsEarliest() {
        var list = ReadyList(capacity: 3)
        func task(_ sequence: UInt64) -> QueuedTask {
            QueuedTask(task: ReadyTask(kind: .workflow, taskQueue: "q", run: RunKey(namespace: "d", workflowId: "w", runId: "r\(sequence)"),
                                       scheduledEventId: 2, attempt: 1, activityId: "", sequence: sequence), readyAtNanos: 0)
        }
        for sequence: UInt64 in [5, 2, 9] {
            let kept = list.insert(task(sequence))
            #expect(kept)
        }
        let late = list.insert(task(12))
        #expect(!late, "later than everything queued: not kept")
        let early = list.insert(task(1))
        #expect(!early, "earlier: kept, evicting the latest")
        let duplicate = list.insert(task(2))
        #expect(duplicate, "a duplicate is ignored")
        var order: [UInt64] = []
        while let next = list.removeFirst() { order.append(next.task.sequence) }
        #expect(order == [1, 2, 5])
    }

    @Test("workflow-task retries from the third attempt wait 1 s, 2 s, 4 s … at most 60 s; earlier attempts and activities go at once")
    func retryBackoff() throws {
        let second: Int64 = 1_000_000_000
        let limits = DispatchLimits()
        var scenario = Scenario()
        #expect(limits.backoffNanos(scenario.task(run: "a", attempt: 1)) == 0)
        #expect(limits.backoffNanos(scenario.task(run: "a", attempt: 2)) == 0)
        #expect(limits.backoffNanos(scenario.task(.activity, run: "a", attempt: 9)) == 0)
        #expect(limits.backoffNanos(scenario.task(run: "a", attempt: 3)) == second)
        #expect(limits.backoffNanos(scenario.task(run: "a", attempt: 4)) == 2 * second)
        #expect(limits.backoffNanos(scenario.task(run: "a", attempt: 9)) == 60 * second)
        #expect(limits.backoffNanos(scenario.task(run: "a", attempt: .max)) == 60 * second)

        _ = try scenario.stream(workflow: 10)
        scenario.core.taskReady(scenario.task(run: "r2", attempt: 2), nowNanos: 0)
        scenario.core.taskReady(scenario.task(run: "r4", attempt: 4), nowNanos: 0)
        scenario.core.taskReady(scenario.task(run: "r3", attempt: 3), nowNanos: 0)
        let started1 = scenario.starts()
        #expect(started1.map(\.1) == ["r2"], "the second attempt goes at once; later ones wait")
        #expect(scenario.core.heldCount == 2 && scenario.core.pendingTasks[scenario.queue] == 2)
        let released2 = scenario.core.releaseHeld(nowNanos: second - 1)
        #expect(!released2)
        let started3 = scenario.starts()
        #expect(started3.isEmpty)
        let released4 = scenario.core.releaseHeld(nowNanos: second)
        #expect(released4)
        let started5 = scenario.starts()
        #expect(started5.map(\.1) == ["r3"])
        let released6 = scenario.core.releaseHeld(nowNanos: 2 * second - 1)
        #expect(!released6)
        let released7 = scenario.core.releaseHeld(nowNanos: 2 * second)
        #expect(released7)
        let started8 = scenario.starts()
        #expect(started8.map(\.1) == ["r4"])
        #expect(scenario.core.heldCount == 0)
    }

    @Test("a held retry is not dispatched early by a re-read of the engine's ready tasks, and leadership's end forgets it")
    func heldRetryAcrossLoadAndReset() throws {
        let second: Int64 = 1_000_000_000
        var scenario = Scenario()
        _ = try scenario.stream(workflow: 10)
        let retry = scenario.task(run: "r", attempt: 5)
        scenario.core.taskReady(retry, nowNanos: 0)
        scenario.core.load(scenario.queue, readyTasks: [retry], nowNanos: second)
        let early = scenario.starts()
        #expect(early.isEmpty && scenario.core.heldCount == 1, "held once, from the first sight of it")
        let released9 = scenario.core.releaseHeld(nowNanos: 4 * second)
        #expect(released9)
        let started10 = scenario.starts()
        #expect(started10.map(\.1) == ["r"])

        var limits = DispatchLimits()
        limits.maxHeldTasks = 1
        var full = Scenario(limits: limits)
        _ = try full.stream(workflow: 10)
        full.core.taskReady(full.task(run: "x", attempt: 3), nowNanos: 0)
        full.core.taskReady(full.task(run: "y", attempt: 3), nowNanos: 0)
        let started11 = full.starts()
        #expect(started11.map(\.1) == ["y"], "beyond maxHeldTasks a retry is queued without waiting")
        _ = full.core.reset(leading: true)
        let releasedAfterReset = full.core.releaseHeld(nowNanos: 10 * second)
        #expect(full.core.heldCount == 0 && !releasedAfterReset)
    }
}
