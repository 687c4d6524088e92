import BallastEngine
import BallastProto
import Foundation
import Testing

extension Harness {
    /// Applies one entry carrying `eager` (format version 2 unless told otherwise).
    @discardableResult
    mutating func applyEager(_ payload: Payload, _ eager: Ballast_V1_EagerDispatch,
                             version: UInt32 = eagerDispatchFormatVersion, advance: Int64 = 1_000_000) -> ApplyResult {
        apply(payload, advance: advance, eager: eager, version: version)
    }
}

@Suite("Eager dispatch: tasks started by the entry that made them ready")
struct EagerDispatchTests {
    private func eager(workflow: UInt32 = 0, activity: UInt32 = 0, queue: String = "q") -> Ballast_V1_EagerDispatch {
        var eager = Ballast_V1_EagerDispatch()
        eager.identity = "worker-e"
        eager.taskQueue = queue
        eager.workflowTasks = workflow
        eager.activityTasks = activity
        return eager
    }

    private func startRequest(_ workflowId: String) -> Ballast_V1_StartWorkflowRequest {
        var request = Ballast_V1_StartWorkflowRequest()
        request.workflowID = workflowId
        request.workflowType.name = "Transfer"
        request.taskQueue = "q"
        request.requestID = "start-\(workflowId)"
        return request
    }

    private func taskToken(of start: EagerStart) -> [UInt8] {
        switch start.response {
        case .workflowTaskStarted(let info): [UInt8](info.taskToken)
        case .activityTaskStarted(let info): [UInt8](info.taskToken)
        default: []
        }
    }

    @Test("a start with eager dispatch starts its first workflow task in the same entry, exactly as a started entry right after it would")
    func eagerStartMatchesStartedEntry() throws {
        var eagerly = Harness()
        let result = eagerly.applyEager(.startWorkflow(startRequest("w")), eager(workflow: 1))
        guard case .started(let started) = result.response else { Issue.record("the start's own response is kept: \(result.response)"); return }
        #expect(result.newTasks.isEmpty, "the started task is not also ready")
        #expect(result.eagerStarts.count == 1 && result.eagerStarts.first?.task.kind == .workflow)
        guard case .workflowTaskStarted(let info)? = result.eagerStarts.first?.response else { Issue.record("no task info"); return }
        #expect(info.workflowExecution.runID == started.runID && info.attempt == 1)

        var separately = Harness()
        separately.apply(.startWorkflow(startRequest("w")))
        let run = RunKey(namespace: "default", workflowId: "w", runId: started.runID)
        guard let task = separately.readyWorkflowTask(run) else { Issue.record("no ready task"); return }
        var request = Ballast_V1_RecordWorkflowTaskStartedRequest()
        (request.taskToken, request.identity, request.requestID) = (Data(task.taskTokenBytes), "worker-e", "eager-1-0")
        separately.apply(.workflowTaskStarted(request), advance: 0)
        #expect(eagerly.events(run) == separately.events(run), "same events, ids and times")
        #expect(eagerly.engine.dueTimers() == separately.engine.dueTimers(), "same workflow-task deadline")
        #expect(eagerly.engine.readyTasks(taskQueue: "q") == separately.engine.readyTasks(taskQueue: "q"))
        let described = try eagerly.engine.describe(namespace: "", execution: run.execution)
        #expect(try described == separately.engine.describe(namespace: "", execution: run.execution))
    }

    @Test("a workflow-task completion starts the first-attempt activities it scheduled, up to the limit and only on the named queue")
    func eagerActivities() {
        var h = Harness()
        let run = h.start("w")
        let wft = h.startWorkflowTask(run)
        var completion = Ballast_V1_RespondWorkflowTaskCompletedRequest()
        completion.taskToken = Data(wft)
        completion.identity = "worker-e"
        completion.commands = [Commands.scheduleActivity("a"), Commands.scheduleActivity("b"),
                               Commands.scheduleActivity("c") { $0.taskQueue = "other" }]
        let result = h.applyEager(.workflowTaskCompleted(completion), eager(activity: 5))
        #expect(result.response.rejection == nil)
        #expect(result.eagerStarts.map(\.task.activityId) == ["a", "b"], "only activities of queue q")
        #expect(result.newTasks.map(\.activityId) == ["c"])
        #expect(h.readyActivity(run, "a") == nil && h.readyActivity(run, "c", queue: "other") != nil)

        var limited = Harness()
        let other = limited.start("w")
        let token = limited.startWorkflowTask(other)
        completion.taskToken = Data(token)
        let one = limited.applyEager(.workflowTaskCompleted(completion), eager(activity: 1))
        #expect(one.eagerStarts.map(\.task.activityId) == ["a"])
        #expect(one.newTasks.map(\.activityId) == ["b", "c"])

        // The eagerly started attempt completes like any other, with its started event written lazily.
        guard let first = result.eagerStarts.first else { return }
        let completed = h.completeActivity(taskToken(of: first))
        #expect(completed.response.rejection == nil)
        #expect(h.eventNames(run).contains("ActivityTaskStarted"))
        let started = h.events(run).first { if case .activityTaskStarted? = $0.attributes { true } else { false } }
        if case .activityTaskStarted(let attributes)? = started?.attributes { #expect(attributes.identity == "worker-e" && attributes.attempt == 1) }
    }

    @Test("an activity completion starts the workflow task it made ready; the run then completes through it")
    func eagerWorkflowTaskAfterActivity() {
        var h = Harness()
        let run = h.start("w")
        h.workflowTask(run, [Commands.scheduleActivity("a")])
        let activity = h.startActivity(run, "a")
        var request = Ballast_V1_RespondActivityTaskCompletedRequest()
        request.taskToken = Data(activity)
        request.result = payloads("ok")
        let result = h.applyEager(.activityTaskCompleted(request), eager(workflow: 1))
        #expect(result.response == .accepted)
        #expect(result.newTasks.isEmpty && result.eagerStarts.count == 1)
        #expect(Array(h.eventNames(run).suffix(3)) == ["ActivityTaskCompleted", "WorkflowTaskScheduled", "WorkflowTaskStarted"])
        guard let started = result.eagerStarts.first else { return }
        h.completeWorkflowTask(taskToken(of: started), [Commands.complete()])
        #expect(h.status(run) == .completed)
    }

    @Test("a version-1 entry ignores eager; a rejected entry starts nothing; retries and busy runs are not started eagerly")
    func eagerOnlyWhereItApplies() {
        var h = Harness()
        let v1 = h.applyEager(.startWorkflow(startRequest("w")), eager(workflow: 1), version: 1)
        #expect(v1.eagerStarts.isEmpty && v1.newTasks.count == 1, "version 1 applies as before")
        guard case .started(let started) = v1.response else { return }
        let run = RunKey(namespace: "default", workflowId: "w", runId: started.runID)

        let digest = h.engine.stateDigest()
        var stale = Ballast_V1_RespondActivityTaskCompletedRequest()
        stale.taskToken = Data([1, 2, 3])
        let rejected = h.applyEager(.activityTaskCompleted(stale), eager(workflow: 1))
        #expect(rejected.response.rejection != nil && rejected.eagerStarts.isEmpty)
        #expect(h.engine.stateDigest() == digest, "a rejected entry changes nothing")

        // A signal while the workflow task is started makes nothing ready: nothing to start.
        let wft = h.startWorkflowTask(run)
        var signal = Ballast_V1_SignalWorkflowRequest()
        signal.workflowExecution = run.execution
        signal.signalName = "s"
        let busy = h.applyEager(.signalWorkflow(signal), eager(workflow: 1))
        #expect(busy.eagerStarts.isEmpty && busy.newTasks.isEmpty)

        // A failed workflow task's retry (attempt 2) is left to the dispatcher's backoff.
        var failure = Ballast_V1_RespondWorkflowTaskFailedRequest()
        failure.taskToken = Data(wft)
        failure.failure.message = "bug"
        let retry = h.applyEager(.workflowTaskFailed(failure), eager(workflow: 1))
        #expect(retry.eagerStarts.isEmpty)
        #expect(retry.newTasks.first.map { $0.kind == .workflow && $0.attempt == 2 } == true)

        // Another namespace's worker never gets the task.
        var elsewhere = eager(workflow: 1)
        elsewhere.namespace = "payments"
        let foreign = h.applyEager(.startWorkflow(startRequest("w2")), elsewhere)
        #expect(foreign.eagerStarts.isEmpty && foreign.newTasks.count == 1)
    }

    @Test("random entries with random eager fields: history invariants hold, rejections change nothing, a started task is never also ready, snapshots round-trip",
          arguments: [UInt64(31), 32, 33, 34, 35, 36])
    func randomEagerEntries(seed: UInt64) throws {
        var h = Harness()
        var generator = EntryGenerator(seed: seed)
        var runIds: Set<String> = []
        var eagerStarted = 0
        for _ in 0..<600 {
            let (payload, advance) = generator.next(h.engine)
            var eager = Ballast_V1_EagerDispatch()
            eager.identity = "eager-worker"
            eager.taskQueue = generator.chance(85) ? "q" : "other"
            eager.workflowTasks = UInt32.random(in: 0...1, using: &generator.random)
            eager.activityTasks = UInt32.random(in: 0...3, using: &generator.random)
            let before = h.engine.stateDigest()
            let result = generator.chance(70) ? h.applyEager(payload, eager, advance: advance) : h.apply(payload, advance: advance)
            for batch in result.events { runIds.insert(batch.run.runId) }
            if result.response.rejection != nil {
                #expect(h.engine.stateDigest() == before, "seed \(seed): rejected \(payload) changed the state")
                #expect(result.eagerStarts.isEmpty)
            }
            let ready = h.engine.readyTasks(taskQueue: "q")
            for start in result.eagerStarts {
                #expect(!result.newTasks.contains(start.task) && !ready.contains(start.task), "seed \(seed): started and ready")
                #expect(start.task.attempt == 1 && start.task.taskQueue == "q")
                switch start.response {
                case .workflowTaskStarted(let info): generator.workflowTokens.append([UInt8](info.taskToken))
                case .activityTaskStarted(let info): generator.activityTokens.append([UInt8](info.taskToken))
                default: Issue.record("seed \(seed): an eager start answered \(start.response)")
                }
                eagerStarted += 1
            }
        }
        checkHistoryInvariants(h.store, runs: runIds, seed: seed)
        #expect(eagerStarted > 10, "seed \(seed): the sequence started tasks eagerly")
        let restored = try WorkflowEngine.restore(h.engine.snapshot())
        #expect(restored.stateDigest() == h.engine.stateDigest())
        #expect(restored.dueTimers() == h.engine.dueTimers())
    }
}
