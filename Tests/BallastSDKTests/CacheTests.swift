import BallastProto
@testable import BallastSDK
import Synchronization
import Testing

let unwoundRuns = Atomic<Int>(0)

/// Sleeps; counts how often its code was unwound (evicted) instead of finishing.
struct UnwindingWorkflow: Workflow {
    func run(context: WorkflowContext, input: Empty) async throws -> Int {
        var finished = false
        defer { if !finished { unwoundRuns.add(1, ordering: .relaxed) } }
        try await context.sleep(for: .seconds(60))
        finished = true
        return 1
    }
}

@Suite("Workflow cache teardown", .serialized)
struct CacheTests {
    @Test("an evicted run's suspended code is unwound, and shutdown unwinds the rest")
    func evictionUnwinds() async throws {
        let before = unwoundRuns.load(ordering: .relaxed)
        let runtime = WorkflowRuntime(workflows: [UnwindingWorkflow.self], maxCachedRuns: 1)
        for index in 0..<2 {
            var history = HistoryBuilder(workflowType: "UnwindingWorkflow", workflowId: "u-\(index)", runId: "u-run-\(index)")
            #expect(summary(commands(await runtime.handleWorkflowTask(history.startWorkflowTask(), history: history.events))) == ["timer #1 60s"])
        }
        #expect(unwoundRuns.load(ordering: .relaxed) - before == 1)
        #expect(runtime.cachedRuns == 1)
        runtime.shutdown()
        #expect(unwoundRuns.load(ordering: .relaxed) - before == 2)
        #expect(runtime.cachedRuns == 0)
    }

    @Test("a query replays into a fresh run and leaves the cached run usable")
    func queryLeavesCache() async throws {
        let runtime = WorkflowRuntime(workflows: [ApprovalWorkflow.self])
        var history = HistoryBuilder(workflowType: "ApprovalWorkflow")
        let first = commands(await runtime.handleWorkflowTask(history.startWorkflowTask(), history: history.events))
        history.completeWorkflowTask(with: first)
        var query = Ballast_V1_QueryTask()
        query.workflowType.name = "ApprovalWorkflow"
        query.queryType = "status"
        guard case .answered(let answer) = await runtime.handleQuery(query, history: history.events) else {
            Issue.record("query failed")
            return
        }
        #expect(try decode(answer, as: String.self) == "waiting")
        query.queryType = "balance"
        guard case .failed(let failure) = await runtime.handleQuery(query, history: history.events) else {
            Issue.record("an unknown query should fail")
            return
        }
        #expect(failure.message.contains("no query handler for 'balance' (known: status)"))
        history.signal("approve", input: payloads("erin"))
        let second = commands(await runtime.handleWorkflowTask(history.startWorkflowTask(), history: history.events))
        #expect(summary(second) == ["cancel timer #1", "complete"])
        #expect(runtime.statistics.cacheHits == 1)
    }
}

/// An actor outside the workflow's executor.
actor SlowService {
    func value() async -> Int {
        // Slow enough that the workflow task has ended when the workflow code comes back.
        try? await Task.sleep(for: .milliseconds(20))
        return 7
    }
}

/// Awaits an actor: forbidden in workflow code.
struct EscapingWorkflow: Workflow {
    func run(context: WorkflowContext, input: Empty) async throws -> Int {
        let value = await SlowService().value()
        try await context.sleep(for: .seconds(1))
        return value
    }
}

@Suite("Workflow code that leaves the executor")
struct StrayCodeTests {
    @Test("code that resumed outside a workflow task fails the next task with a clear error")
    func awaitingAnActorIsReported() async throws {
        let definition = try #require(WorkflowRegistry([EscapingWorkflow.self]).definitions["EscapingWorkflow"])
        let info = WorkflowInfo(namespace: "default", workflowId: "e-1", runId: "e-run-1", workflowType: "EscapingWorkflow",
                                taskQueue: "q", attempt: 1, continuedRunId: nil, parent: nil, startTimeUnixNanos: 0)
        let run = WorkflowRun(definition: definition, info: info, converter: .default, logger: .init(label: "test"))
        defer { run.tearDown() }
        var history = HistoryBuilder(workflowType: "EscapingWorkflow", workflowId: "e-1", runId: "e-run-1")
        let firstTask = history.startWorkflowTask()
        let first = try run.process(history.events, liveStartedEventId: firstTask.startedEventID)
        #expect(first == [])
        let deadline = ContinuousClock.now + .seconds(10)
        while run.executor.strayJobs == 0, ContinuousClock.now < deadline { await Task.yield() }
        #expect(run.executor.strayJobs > 0)
        history.completeWorkflowTask(with: [])
        history.signal("nudge")
        let secondTask = history.startWorkflowTask()
        #expect {
            _ = try run.process(history.events, liveStartedEventId: secondTask.startedEventID)
        } throws: { error in
            guard case RunFailure.task(let failure) = error else { return false }
            return failure.message.hasPrefix("workflow EscapingWorkflow (id e-1): the workflow code resumed outside a workflow task")
        }
    }
}
