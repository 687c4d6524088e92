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
