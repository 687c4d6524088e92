import BallastProto
@testable import BallastSDK
import Testing

@Suite("Workflow runtime: replay, cache and non-determinism")
struct ReplayTests {
    let input = TransferInput(from: "alice", to: "bob", amount: 100)

    /// Drives Transfer through its three tasks on `runtime`, checking each task's commands.
    func driveTransfer(_ runtime: WorkflowRuntime, history: inout HistoryBuilder) async throws {
        let first = commands(await runtime.handleWorkflowTask(history.startWorkflowTask(), history: history.events))
        #expect(summary(first) == ["schedule Debit #1"])
        let debitId = history.completeWorkflowTask(with: first)[0]
        #expect(debitId == 5)
        history.activityCompleted(debitId, result: payloads("debited 100"))
        let second = commands(await runtime.handleWorkflowTask(history.startWorkflowTask(), history: history.events))
        #expect(summary(second) == ["schedule Credit #2"])
        let creditId = history.completeWorkflowTask(with: second)[0]
        history.activityCompleted(creditId, result: payloads("credited 100"))
        let third = commands(await runtime.handleWorkflowTask(history.startWorkflowTask(), history: history.events))
        #expect(summary(third) == ["complete"])
        let result: String = try decode(try #require(third.first?.completionResult))
        #expect(result == "debited 100, credited 100")
        history.completeWorkflowTask(with: third)
    }

    @Test("a cached run continues from where it stopped: one replay, then cache hits")
    func cachedRun() async throws {
        let runtime = WorkflowRuntime(workflows: [TransferWorkflow.self])
        var history = HistoryBuilder(workflowType: "Transfer", input: payloads(input))
        try await driveTransfer(runtime, history: &history)
        #expect(runtime.statistics == .init(cacheHits: 2, fullReplays: 1, evictions: 0))
        #expect(runtime.cachedRuns == 0, "a closed run leaves the cache")
    }

    @Test("without a cache every task replays the whole history and yields the same commands")
    func fullReplayEveryTask() async throws {
        let runtime = WorkflowRuntime(workflows: [TransferWorkflow.self], maxCachedRuns: 0)
        var history = HistoryBuilder(workflowType: "Transfer", input: payloads(input))
        try await driveTransfer(runtime, history: &history)
        #expect(runtime.statistics == .init(cacheHits: 0, fullReplays: 3, evictions: 0))
    }

    @Test("the replayer accepts a complete history written by the same code")
    func replayerAcceptsSameCode() async throws {
        var history = HistoryBuilder(workflowType: "Transfer", input: payloads(input))
        try await driveTransfer(WorkflowRuntime(workflows: [TransferWorkflow.self]), history: &history)
        try WorkflowReplayer(workflows: [TransferWorkflow.self]).replay(history.events)
    }

    @Test("reordered activities are reported with the workflow, the event id and expected vs actual")
    func nonDeterminismMessage() async throws {
        var history = HistoryBuilder(workflowType: "Transfer", input: payloads(input), workflowId: "t-1")
        try await driveTransfer(WorkflowRuntime(workflows: [TransferWorkflow.self]), history: &history)
        let replayer = WorkflowReplayer(workflows: [ReorderedTransferWorkflow.self])
        let error = try #require(throws: NonDeterminismError.self) {
            try replayer.replay(history.events, workflowId: "t-1")
        }
        #expect(error.message == "workflow Transfer (id t-1): history event 5 is ActivityTaskScheduled(Debit) but the code now schedules Credit")
        #expect(error.eventId == 5)
    }

    @Test("a worker with changed code fails the task with NON_DETERMINISTIC_ERROR instead of sending commands")
    func nonDeterminismFailsTask() async throws {
        var history = HistoryBuilder(workflowType: "Transfer", input: payloads(input), workflowId: "t-1")
        let original = WorkflowRuntime(workflows: [TransferWorkflow.self])
        let first = commands(await original.handleWorkflowTask(history.startWorkflowTask(), history: history.events))
        let debitId = history.completeWorkflowTask(with: first)[0]
        history.activityCompleted(debitId, result: payloads("debited 100"))
        let changed = WorkflowRuntime(workflows: [ReorderedTransferWorkflow.self])
        let result = await changed.handleWorkflowTask(history.startWorkflowTask(), history: history.events)
        guard case .failed(let cause, let failure) = result else {
            Issue.record("expected a failed task, got \(result)")
            return
        }
        #expect(cause == .nonDeterministicError)
        #expect(failure.message.contains("history event 5 is ActivityTaskScheduled(Debit) but the code now schedules Credit"))
        #expect(changed.cachedRuns == 0)
    }

    @Test("code that produces a command the history lacks is non-deterministic")
    func extraCommand() async throws {
        var history = HistoryBuilder(workflowType: "Transfer", input: payloads(input), workflowId: "t-2")
        history.startWorkflowTask()
        history.completeWorkflowTask(with: [])
        let error = try #require(throws: NonDeterminismError.self) {
            try WorkflowReplayer(workflows: [TransferWorkflow.self]).replay(history.events, workflowId: "t-2")
        }
        #expect(error.message == "workflow Transfer (id t-2): the code now schedules Debit but history has no such command (the history ends at event 4)")
    }

    @Test("parallel branches schedule both activities in one task, in code order, and finish in any order")
    func parallelBranches() async throws {
        let runtime = WorkflowRuntime(workflows: [ParallelWorkflow.self], maxCachedRuns: 0)
        var history = HistoryBuilder(workflowType: "ParallelWorkflow", input: payloads(input))
        let first = commands(await runtime.handleWorkflowTask(history.startWorkflowTask(), history: history.events))
        #expect(summary(first) == ["schedule Debit #1", "schedule Credit #2"])
        let ids = history.completeWorkflowTask(with: first)
        history.activityCompleted(ids[1], result: payloads("credited"))
        let second = commands(await runtime.handleWorkflowTask(history.startWorkflowTask(), history: history.events))
        #expect(second.isEmpty, "still waiting for the debit")
        history.completeWorkflowTask(with: second)
        history.activityCompleted(ids[0], result: payloads("debited"))
        let third = commands(await runtime.handleWorkflowTask(history.startWorkflowTask(), history: history.events))
        #expect(try decode(try #require(third.first?.completionResult), as: String.self) == "debited & credited")
    }

    @Test("an evicted run is rebuilt by replay and gives the same commands as the cached one")
    func evictionReplays() async throws {
        let runtime = WorkflowRuntime(workflows: [TransferWorkflow.self], maxCachedRuns: 1)
        var histories = (0..<2).map { HistoryBuilder(workflowType: "Transfer", input: payloads(input), workflowId: "t-\($0)", runId: "r-\($0)") }
        var scheduled: [Int64] = []
        for index in 0..<2 {
            let first = commands(await runtime.handleWorkflowTask(histories[index].startWorkflowTask(), history: histories[index].events))
            scheduled.append(histories[index].completeWorkflowTask(with: first)[0])
        }
        #expect(runtime.statistics.evictions == 1, "the second run pushed the first out")
        histories[0].activityCompleted(scheduled[0], result: payloads("debited 100"))
        let afterEviction = commands(await runtime.handleWorkflowTask(histories[0].startWorkflowTask(), history: histories[0].events))
        #expect(summary(afterEviction) == ["schedule Credit #2"])
        #expect(runtime.statistics.fullReplays == 3 && runtime.statistics.cacheHits == 0)
    }

    @Test("a cached run whose position does not match the task falls back to full replay")
    func positionMismatch() async throws {
        let runtime = WorkflowRuntime(workflows: [TransferWorkflow.self])
        var history = HistoryBuilder(workflowType: "Transfer", input: payloads(input))
        let first = commands(await runtime.handleWorkflowTask(history.startWorkflowTask(), history: history.events))
        // The completion was refused: the engine wrote WorkflowTaskFailed and a new task.
        var failure = Ballast_V1_Failure()
        failure.message = "refused"
        history.failWorkflowTask(cause: .badScheduleActivityAttributes, failure: failure)
        let retry = commands(await runtime.handleWorkflowTask(history.startWorkflowTask(), history: history.events))
        #expect(summary(retry) == summary(first))
        #expect(runtime.statistics.fullReplays == 2)
    }

    @Test("an unknown workflow type fails the task with a clear message")
    func unknownType() async {
        let runtime = WorkflowRuntime(workflows: [TransferWorkflow.self])
        var history = HistoryBuilder(workflowType: "Payroll")
        let result = await runtime.handleWorkflowTask(history.startWorkflowTask(), history: history.events)
        guard case .failed(let cause, let failure) = result else {
            Issue.record("expected failure")
            return
        }
        #expect(cause == .workflowWorkerUnhandledFailure)
        #expect(failure.message.contains("workflow Payroll (id wf-1): the type is not registered on this worker (registered: Transfer)"))
    }

    @Test("bad input fails the task and names the workflow")
    func badInput() async {
        let runtime = WorkflowRuntime(workflows: [TransferWorkflow.self])
        var history = HistoryBuilder(workflowType: "Transfer", input: payloads("not a transfer"))
        let result = await runtime.handleWorkflowTask(history.startWorkflowTask(), history: history.events)
        guard case .failed(_, let failure) = result else {
            Issue.record("expected failure")
            return
        }
        #expect(failure.message.hasPrefix("workflow Transfer (id wf-1): cannot decode the workflow input"))
    }
}
