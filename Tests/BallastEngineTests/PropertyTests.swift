import BallastEngine
import BallastProto
import Foundation
import Testing

/// SplitMix64: a small seeded generator so every failure is reproducible from its seed.
struct SeededRandom: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9e37_79b9_7f4a_7c15
        var z = state
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }
}

/// Generates random valid and invalid entries against the current engine state.
struct EntryGenerator {
    var random: SeededRandom
    var workflowTokens: [[UInt8]] = []
    var activityTokens: [[UInt8]] = []
    let workflowIds = ["w0", "w1", "w2", "w3", "w4"]

    init(seed: UInt64) { random = SeededRandom(seed: seed) }

    mutating func pick<T>(_ values: [T]) -> T { values[Int.random(in: 0..<values.count, using: &random)] }
    mutating func chance(_ percent: Int) -> Bool { Int.random(in: 0..<100, using: &random) < percent }

    /// The next entry payload and how far to advance the clock first.
    mutating func next(_ engine: WorkflowEngine) -> (Payload, Int64) {
        let roll = Int.random(in: 0..<100, using: &random)
        switch roll {
        case 0..<7: return (startPayload(), 1_000_000)
        case 7..<14: return (signal(RunKey(namespace: "default", workflowId: pick(workflowIds), runId: ""), "s"), 1_000_000)
        case 14..<16: return (cancelRequest(RunKey(namespace: "default", workflowId: pick(workflowIds), runId: "")), 1_000_000)
        case 16..<17: return (terminate(RunKey(namespace: "default", workflowId: pick(workflowIds), runId: "")), 1_000_000)
        case 17..<35: return startTask(engine, kind: .workflow)
        case 35..<55: return (completeWorkflowTask(), 1_000_000)
        case 55..<58: return (failWorkflowTask(), 1_000_000)
        case 58..<70: return startTask(engine, kind: .activity)
        case 70..<86: return (activityOutcome(), 1_000_000)
        case 86..<96: return fireDeadline(engine)
        default: return (garbage(), 1_000_000)
        }
    }

    /// Mostly one of the latest tokens (likely current), sometimes any older one (likely stale).
    mutating func recent(_ tokens: [[UInt8]]) -> [UInt8]? {
        guard !tokens.isEmpty else { return nil }
        if chance(80) { return tokens[max(0, tokens.count - Int.random(in: 1...3, using: &random))] }
        return pick(tokens)
    }

    mutating func startPayload() -> Payload {
        var request = Ballast_V1_StartWorkflowRequest()
        request.workflowID = pick(workflowIds)
        request.workflowType.name = "T"
        request.taskQueue = "q"
        request.requestID = "r\(Int.random(in: 0..<20, using: &random))"
        request.workflowIDReusePolicy = pick([.allowDuplicate, .rejectDuplicate, .terminateIfRunning, .allowDuplicateFailedOnly])
        if chance(30) { request.workflowRunTimeoutNanos = Int64.random(in: 1...120, using: &random) * second }
        return .startWorkflow(request)
    }

    mutating func startTask(_ engine: WorkflowEngine, kind: ReadyTask.Kind) -> (Payload, Int64) {
        let ready = engine.readyTasks(taskQueue: "q").filter { $0.kind == kind }
        guard !ready.isEmpty else { return (garbage(), 1_000_000) }
        let task = pick(ready)
        if kind == .workflow {
            workflowTokens.append(task.taskTokenBytes)
            var request = Ballast_V1_RecordWorkflowTaskStartedRequest()
            request.taskToken = Data(task.taskTokenBytes)
            request.requestID = "p\(Int.random(in: 0..<1_000, using: &random))"
            return (.workflowTaskStarted(request), 1_000_000)
        }
        activityTokens.append(task.taskTokenBytes)
        var request = Ballast_V1_RecordActivityTaskStartedRequest()
        request.taskToken = Data(task.taskTokenBytes)
        return (.activityTaskStarted(request), 1_000_000)
    }

    mutating func completeWorkflowTask() -> Payload {
        var request = Ballast_V1_RespondWorkflowTaskCompletedRequest()
        request.taskToken = Data(recent(workflowTokens) ?? [1, 2])
        for _ in 0..<Int.random(in: 0...3, using: &random) { request.commands.append(randomCommand()) }
        return .workflowTaskCompleted(request)
    }

    mutating func failWorkflowTask() -> Payload {
        var request = Ballast_V1_RespondWorkflowTaskFailedRequest()
        request.taskToken = Data(workflowTokens.isEmpty ? [] : pick(workflowTokens))
        return .workflowTaskFailed(request)
    }

    mutating func randomCommand() -> Ballast_V1_Command {
        switch Int.random(in: 0..<16, using: &random) {
        case 0, 1, 2: return Commands.scheduleActivity("a\(Int.random(in: 0..<4, using: &random))",
                                                      startToClose: Int64.random(in: 0...20, using: &random) * second) {
            if chance(30) { $0.heartbeatTimeoutNanos = 2 * second }
            if chance(30) { $0.scheduleToCloseTimeoutNanos = Int64.random(in: 1...60, using: &random) * second }
            if chance(20) { $0.retryPolicy.maximumAttempts = 3 }
        }
        case 3, 4: return Commands.startTimer("t\(Int.random(in: 0..<3, using: &random))", after: Int64.random(in: 0...20, using: &random) * second)
        case 5: return Commands.cancelTimer("t\(Int.random(in: 0..<3, using: &random))")
        case 6: return Commands.cancelActivity(Int64.random(in: 1...40, using: &random))
        case 7: return Commands.marker("m")
        case 8: return Commands.complete()
        case 9: return Commands.fail("f")
        case 10: return Commands.cancelWorkflow()
        case 11: return Commands.continueAsNew()
        case 12: return Commands.startChild("child-\(Int.random(in: 0..<3, using: &random))", policy: pick([.terminate, .abandon, .requestCancel]))
        case 13: return Commands.signalExternal(pick(workflowIds), signal: "x")
        case 14: return Commands.upsert(pick(["CustomKeywordField", "Nope"]), keyword: "k")
        default: return Ballast_V1_Command()
        }
    }

    mutating func activityOutcome() -> Payload {
        let token = Data(recent(activityTokens) ?? [9])
        switch Int.random(in: 0..<5, using: &random) {
        case 0, 1:
            var request = Ballast_V1_RespondActivityTaskCompletedRequest()
            request.taskToken = token
            return .activityTaskCompleted(request)
        case 2:
            var request = Ballast_V1_RespondActivityTaskFailedRequest()
            request.taskToken = token
            request.failure.type = pick(["Flaky", "Fatal"])
            request.failure.nonRetryable = chance(20)
            return .activityTaskFailed(request)
        case 3:
            var request = Ballast_V1_RecordActivityTaskHeartbeatRequest()
            request.taskToken = token
            return .activityTaskHeartbeat(request)
        default:
            var request = Ballast_V1_RespondActivityTaskCanceledRequest()
            request.taskToken = token
            return .activityTaskCanceled(request)
        }
    }

    mutating func fireDeadline(_ engine: WorkflowEngine) -> (Payload, Int64) {
        guard let due = engine.dueTimers().first else { return (garbage(), 1_000_000) }
        let wait = max(1, due.dueTimeUnixNanos - engine.clock)
        // Sometimes propose it early, which must be rejected as stale.
        return (due.payload, chance(10) ? 1 : wait)
    }

    mutating func garbage() -> Payload {
        var request = Ballast_V1_TimerFiredRequest()
        request.workflowExecution.workflowID = pick(workflowIds)
        request.timerID = "t0"
        return .timerFired(request)
    }
}

/// Checks the history invariants of every run in a store.
func checkHistoryInvariants(_ store: InMemoryHistoryStore, runs: Set<String>, seed: UInt64) {
    for runId in runs.sorted() {
        let events = store.events(runId: runId)
        #expect(events.map(\.eventID) == Array(0..<Int64(events.count)).map { $0 + 1 }, "seed \(seed): ids of \(runId) are contiguous")
        var resolvedActivities: [Int64: Int] = [:]
        var resolvedTimers: [Int64: Int] = [:]
        var closedAt: Int?
        for (position, event) in events.enumerated() {
            switch event.attributes {
            case let .activityTaskCompleted(value)?: resolvedActivities[value.scheduledEventID, default: 0] += 1
            case let .activityTaskFailed(value)?: resolvedActivities[value.scheduledEventID, default: 0] += 1
            case let .activityTaskTimedOut(value)?: resolvedActivities[value.scheduledEventID, default: 0] += 1
            case let .activityTaskCanceled(value)?: resolvedActivities[value.scheduledEventID, default: 0] += 1
            case let .timerFired(value)?: resolvedTimers[value.startedEventID, default: 0] += 1
            case let .timerCanceled(value)?: resolvedTimers[value.startedEventID, default: 0] += 1
            case .workflowExecutionCompleted?, .workflowExecutionFailed?, .workflowExecutionCanceled?,
                 .workflowExecutionTerminated?, .workflowExecutionTimedOut?, .workflowExecutionContinuedAsNew?:
                if closedAt == nil { closedAt = position }
            default: break
            }
            if event.eventTimeUnixNanos < (position > 0 ? events[position - 1].eventTimeUnixNanos : 0) {
                Issue.record("seed \(seed): event time moved back in \(runId) at \(event.eventID)")
            }
        }
        #expect(resolvedActivities.values.allSatisfy { $0 == 1 }, "seed \(seed): an activity of \(runId) resolved twice")
        #expect(resolvedTimers.values.allSatisfy { $0 == 1 }, "seed \(seed): a timer of \(runId) fired twice")
        if let closedAt { #expect(closedAt == events.count - 1, "seed \(seed): events after the close of \(runId)") }
    }
}

@Suite("Properties over random entry sequences")
struct PropertyTests {
    @Test("invariants hold and rejected entries change nothing", arguments: [UInt64(1), 2, 3, 4, 5, 6, 7, 8])
    func invariants(seed: UInt64) {
        var h = Harness()
        var generator = EntryGenerator(seed: seed)
        var runIds: Set<String> = []
        for _ in 0..<600 {
            let (payload, advance) = generator.next(h.engine)
            let before = h.engine.stateDigest()
            let result = h.apply(payload, advance: advance)
            for batch in result.events { runIds.insert(batch.run.runId) }
            if result.response.rejection != nil {
                #expect(h.engine.stateDigest() == before, "seed \(seed): rejected \(payload) changed the state")
                #expect(result.events.isEmpty && result.newTasks.isEmpty && result.newTimers.isEmpty)
            }
        }
        checkHistoryInvariants(h.store, runs: runIds, seed: seed)
        #expect(runIds.count > 3, "seed \(seed): the generator exercised several runs")
    }

    @Test("snapshot mid-way + restore + the rest equals applying everything", arguments: [UInt64(11), 12, 13, 14, 15, 16])
    func snapshotRoundTrip(seed: UInt64) throws {
        var generator = EntryGenerator(seed: seed)
        var whole = Harness()
        var entries: [(Payload, Int64)] = []
        for _ in 0..<500 {
            let next = generator.next(whole.engine)
            entries.append(next)
            whole.apply(next.0, advance: next.1)
        }
        var prefix = Harness()
        let cut = 250
        for entry in entries[..<cut] { prefix.apply(entry.0, advance: entry.1) }
        let bytes = prefix.engine.snapshot()
        var restored = prefix
        restored.engine = try WorkflowEngine.restore(bytes)
        #expect(restored.engine.stateDigest() == prefix.engine.stateDigest(), "seed \(seed)")
        #expect(restored.engine.snapshot() == bytes, "seed \(seed): snapshot bytes are canonical")
        #expect(restored.engine.readyTasks(taskQueue: "q") == prefix.engine.readyTasks(taskQueue: "q"))
        #expect(restored.engine.dueTimers() == prefix.engine.dueTimers())
        for entry in entries[cut...] { restored.apply(entry.0, advance: entry.1) }
        #expect(restored.engine.stateDigest() == whole.engine.stateDigest(), "seed \(seed): digests diverged")
        #expect(restored.engine.lastAppliedIndex == whole.engine.lastAppliedIndex)
    }

    @Test("two engines fed the same entries agree byte for byte")
    func replicasAgree() {
        var generator = EntryGenerator(seed: 99)
        var first = Harness(), second = Harness()
        for _ in 0..<400 {
            let (payload, advance) = generator.next(first.engine)
            let a = first.apply(payload, advance: advance)
            let b = second.apply(payload, advance: advance)
            #expect(a.events == b.events)
            #expect(a.response == b.response)
            #expect(a.newTasks == b.newTasks)
        }
        #expect(first.engine.snapshot() == second.engine.snapshot())
    }

    @Test("a corrupt snapshot is refused with a clear error")
    func corruptSnapshot() {
        #expect(throws: EngineError.self) { _ = try WorkflowEngine.restore([0xff, 0x01, 0x02]) }
    }
}
