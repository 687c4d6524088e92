import BallastProto
@testable import BallastSDK
import Testing

/// Workflow tasks whose history holds only the events after the previous task (what the server
/// pushes on a stream opened with `partial_history`).
@Suite("Workflow runtime: partial history on sticky tasks")
struct PartialHistoryTests {
    let input = TransferInput(from: "alice", to: "bob", amount: 100)

    /// The events of `history` after the task's previous started event: what a sticky stream gets.
    func partial(_ info: Ballast_V1_WorkflowTaskInfo, _ history: HistoryBuilder) -> [Ballast_V1_HistoryEvent] {
        history.events.filter { $0.eventID > info.previousStartedEventID }
    }

    @Test("a cached run completes tasks from partial histories with the commands a full replay gives")
    func cachedRunTakesPartialHistory() async throws {
        let sticky = WorkflowRuntime(workflows: [TransferWorkflow.self])
        let replaying = WorkflowRuntime(workflows: [TransferWorkflow.self], maxCachedRuns: 0)
        var history = HistoryBuilder(workflowType: "Transfer", input: payloads(input))
        var summaries: [[String]] = []
        while true {
            let info = history.startWorkflowTask()
            let given = partial(info, history)
            #expect(given.first?.eventID == info.previousStartedEventID + 1)
            let fromPartial = commands(await sticky.handleWorkflowTask(info, history: given))
            let fromWhole = commands(await replaying.handleWorkflowTask(info, history: history.events))
            #expect(fromPartial == fromWhole)
            summaries.append(summary(fromPartial))
            let ids = history.completeWorkflowTask(with: fromPartial)
            guard case .scheduleActivityTask(let attributes)? = fromPartial.first?.attributes else { break }
            history.activityCompleted(ids[0], result: payloads(attributes.activityType.name == "Debit" ? "debited 100" : "credited 100"))
        }
        #expect(summaries == [["schedule Debit #1"], ["schedule Credit #2"], ["complete"]])
        #expect(sticky.statistics == .init(cacheHits: 2, fullReplays: 1, evictions: 0, partialHistoryMisses: 0))
    }

    @Test("a partial history for a run no longer cached asks for the whole history, and the whole one completes the task")
    func evictedRunAsksForWholeHistory() async throws {
        let runtime = WorkflowRuntime(workflows: [TransferWorkflow.self], maxCachedRuns: 1)
        var first = HistoryBuilder(workflowType: "Transfer", input: payloads(input), workflowId: "t-1", runId: "run-1")
        var second = HistoryBuilder(workflowType: "Transfer", input: payloads(input), workflowId: "t-2", runId: "run-2")
        let firstCommands = commands(await runtime.handleWorkflowTask(first.startWorkflowTask(), history: first.events))
        let debit = first.completeWorkflowTask(with: firstCommands)[0]
        // The second run takes the only cache slot: the first is evicted.
        let secondCommands = commands(await runtime.handleWorkflowTask(second.startWorkflowTask(), history: second.events))
        second.completeWorkflowTask(with: secondCommands)
        first.activityCompleted(debit, result: payloads("debited 100"))

        let info = first.startWorkflowTask()
        guard case .needsWholeHistory = await runtime.handleWorkflowTask(info, history: partial(info, first)) else {
            Issue.record("a partial history without the cached run must ask for the whole history")
            return
        }
        #expect(runtime.statistics.partialHistoryMisses == 1)
        #expect(summary(commands(await runtime.handleWorkflowTask(info, history: first.events))) == ["schedule Credit #2"])
        #expect(runtime.statistics.fullReplays == 3)
    }

    @Test("a cached run that has not seen the events before the partial history's first one asks for the whole history")
    func gapAsksForWholeHistory() async throws {
        let runtime = WorkflowRuntime(workflows: [TransferWorkflow.self])
        var history = HistoryBuilder(workflowType: "Transfer", input: payloads(input))
        let first = commands(await runtime.handleWorkflowTask(history.startWorkflowTask(), history: history.events))
        let debit = history.completeWorkflowTask(with: first)[0]
        history.activityCompleted(debit, result: payloads("debited 100"))
        let info = history.startWorkflowTask()
        // Events from one past the previous task's completion: the run would miss an event.
        let gapped = history.events.filter { $0.eventID > info.previousStartedEventID + 1 }
        guard case .needsWholeHistory = await runtime.handleWorkflowTask(info, history: gapped) else {
            Issue.record("a history with a gap must not reach the cached run")
            return
        }
        #expect(summary(commands(await runtime.handleWorkflowTask(info, history: history.events))) == ["schedule Credit #2"])
    }
}
