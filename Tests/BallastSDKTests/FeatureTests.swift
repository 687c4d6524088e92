import BallastProto
@testable import BallastSDK
import Foundation
import Testing

@Suite("Workflow features in the test environment (every task replays the whole history)")
struct FeatureTests {
    let transfer = TransferInput(from: "alice", to: "bob", amount: 100)

    func environment(_ workflows: [any Workflow.Type]) -> WorkflowTestEnvironment {
        WorkflowTestEnvironment(workflows: workflows, activities: featureActivities())
    }

    @Test("a three-day durable timer finishes at once in virtual time, and workflow time moves by three days")
    func durableTimer() async throws {
        let clock = ContinuousClock()
        let started = clock.now
        let handle = try await environment([SleepyWorkflow.self]).start(SleepyWorkflow.self, input: Empty())
        #expect(handle.history.contains { if case .timerStarted(let t) = $0.attributes { return t.startToFireTimeoutNanos == 259_200_000_000_000 }; return false })
        #expect(try await handle.result() == 259_200)
        #expect(clock.now - started < .seconds(5))
    }

    @Test("a signal satisfies the condition; the query answers from the current state")
    func signalAndQuery() async throws {
        let handle = try await environment([ApprovalWorkflow.self]).start(ApprovalWorkflow.self, input: Empty())
        #expect(try await handle.query("status", as: String.self) == "waiting")
        try await handle.signal("approve", "carol")
        #expect(handle.isClosed)
        #expect(try await handle.result() == "approved by carol")
    }

    @Test("without the signal the condition times out when its timer fires")
    func conditionTimeout() async throws {
        let env = environment([ApprovalWorkflow.self])
        let start = env.nowUnixNanos
        #expect(try await env.execute(ApprovalWorkflow.self, input: Empty()) == "timed out")
        #expect(env.nowUnixNanos - start == 3_600_000_000_000)
    }

    @Test("a condition met before its timeout cancels the timer")
    func conditionCancelsTimer() async throws {
        let handle = try await environment([ApprovalWorkflow.self]).start(ApprovalWorkflow.self, input: Empty())
        try await handle.signal("approve", "dave")
        #expect(handle.history.contains { if case .timerCanceled = $0.attributes { return true }; return false })
    }

    @Test("signals that arrive before the channel exists are buffered and received in order")
    func signalChannelBuffers() async throws {
        let handle = try await environment([ChannelWorkflow.self]).start(ChannelWorkflow.self, input: Empty())
        try await handle.signal("number", 1)
        try await handle.signal("number", 20)
        try await handle.skipTime(.seconds(2))
        #expect(!handle.isClosed)
        try await handle.signal("number", 300)
        #expect(try await handle.result() == 321)
    }

    @Test("a cancel during a sleep cancels the timer, runs the refund after the cancel and closes Canceled")
    func cancellationWithCompensation() async throws {
        let handle = try await environment([CancellableTransferWorkflow.self]).start(CancellableTransferWorkflow.self, input: transfer)
        #expect(handle.scheduledActivities == ["Debit"])
        try await handle.skipTime(.seconds(86_400))
        try await handle.cancel()
        #expect(handle.scheduledActivities == ["Debit", "Refund"])
        #expect(handle.history.contains { if case .timerCanceled = $0.attributes { return true }; return false })
        await #expect(throws: WorkflowTestError.self) { try await handle.result() }
        guard case .workflowExecutionCanceled? = handle.history.last?.attributes else {
            Issue.record("the run did not close as canceled: \(String(describing: handle.history.last))")
            return
        }
    }

    @Test("a saga runs its compensations in reverse order after a failed step, then fails the workflow")
    func sagaOrder() async throws {
        let handle = try await environment([SagaWorkflow.self]).start(SagaWorkflow.self, input: Empty())
        do {
            _ = try await handle.result()
            Issue.record("the saga should fail")
        } catch WorkflowTestError.failed(let failure, _) {
            #expect(failure.type == "ActivityFailure")
            #expect(failure.cause.type == "Rejected")
        }
        #expect(handle.scheduledActivities == ["Step", "Step", "Step", "Step", "Undo", "Undo", "Undo"])
        let undoInputs: [String] = try handle.history.compactMap {
            guard case .activityTaskScheduled(let a) = $0.attributes, a.activityType.name == "Undo" else { return nil }
            return try decode(a.input, as: String.self)
        }
        #expect(undoInputs == ["undo C", "undo B", "undo A"])
    }

    @Test("continue-as-new starts fresh runs with the new input until the workflow returns")
    func continueAsNew() async throws {
        let handle = try await environment([CounterWorkflow.self]).start(CounterWorkflow.self, input: 0)
        #expect(try await handle.result() == 3)
        #expect(handle.continuedAsNew == 3)
    }

    @Test("continue-as-new is a command carrying the new input")
    func continueAsNewCommand() async throws {
        let runtime = WorkflowRuntime(workflows: [CounterWorkflow.self])
        var history = HistoryBuilder(workflowType: "CounterWorkflow", input: payloads(1))
        let result = commands(await runtime.handleWorkflowTask(history.startWorkflowTask(), history: history.events))
        guard case .continueAsNewWorkflowExecution(let attributes)? = result.first?.attributes else {
            Issue.record("expected continue-as-new, got \(summary(result))")
            return
        }
        #expect(try decode(attributes.input, as: Int.self) == 2)
    }

    @Test("two children run in parallel from a task group, with deterministic ids")
    func childWorkflows() async throws {
        let handle = try await environment([ParentWorkflow.self, DoublerWorkflow.self])
            .start(ParentWorkflow.self, input: 10, workflowId: "parent")
        #expect(try await handle.result() == 42)
        let childIds: [String] = handle.history.compactMap {
            if case .startChildWorkflowExecutionInitiated(let a) = $0.attributes { return a.workflowID }
            return nil
        }
        #expect(childIds == ["parent/child-1", "parent/child-2"])
    }

    @Test("two branches can wait for the same child's result")
    func sharedChild() async throws {
        #expect(try await environment([SharedChildWorkflow.self, DoublerWorkflow.self]).execute(SharedChildWorkflow.self, input: 5) == 20)
    }

    @Test("racing an activity against a timer: the activity wins and the timer is canceled, on every replay")
    func race() async throws {
        let handle = try await environment([RaceWorkflow.self]).start(RaceWorkflow.self, input: Empty())
        #expect(try await handle.result() == "fast")
        #expect(handle.history.contains { if case .timerCanceled(let t) = $0.attributes { return t.timerID == "1" }; return false })
    }

    @Test("side effects, random numbers, UUIDs and time are the same on every replay")
    func deterministicValues() async throws {
        let before = sideEffectRuns.load(ordering: .relaxed)
        let env = environment([ValuesWorkflow.self])
        let values = try await env.execute(ValuesWorkflow.self, input: Empty())
        #expect(sideEffectRuns.load(ordering: .relaxed) - before == 2, "each side effect ran once despite the replays")
        #expect(values[1].sideEffect == values[0].sideEffect + 1)
        #expect(values[0].uuid != values[1].uuid)
        #expect(values[1].now - values[0].now == 60_000_000_000)
        // A second run with the same run id sees the same random values.
        let again = try await WorkflowTestEnvironment(workflows: [ValuesWorkflow.self]).execute(ValuesWorkflow.self, input: Empty())
        #expect(again.map(\.random) == values.map(\.random) && again.map(\.uuid) == values.map(\.uuid))
    }

    @Test("a cancel request while an activity runs sends RequestCancelActivityTask and closes the run as canceled")
    func cancelActivity() async throws {
        let runtime = WorkflowRuntime(workflows: [WaitForActivityWorkflow.self], maxCachedRuns: 0)
        var history = HistoryBuilder(workflowType: "WaitForActivityWorkflow", input: payloads(transfer))
        let first = commands(await runtime.handleWorkflowTask(history.startWorkflowTask(), history: history.events))
        history.completeWorkflowTask(with: first)
        history.cancelRequested()
        let second = commands(await runtime.handleWorkflowTask(history.startWorkflowTask(), history: history.events))
        #expect(summary(second) == ["cancel activity @5", "cancel workflow"])
    }

    @Test("a workflow that never blocks fails its task instead of hanging the worker")
    func runaway() async throws {
        let runtime = WorkflowRuntime(workflows: [RunawayWorkflow.self])
        var history = HistoryBuilder(workflowType: "RunawayWorkflow")
        let result = await runtime.handleWorkflowTask(history.startWorkflowTask(), history: history.events)
        guard case .failed(let cause, let failure) = result else {
            Issue.record("expected failure")
            return
        }
        #expect(cause == .workflowWorkerUnhandledFailure)
        #expect(failure.message.contains("steps without blocking"))
    }

    @Test("upserted search attributes become a command and the workflow's view")
    func searchAttributes() async throws {
        let runtime = WorkflowRuntime(workflows: [TaggingWorkflow.self])
        var history = HistoryBuilder(workflowType: "TaggingWorkflow", input: payloads("completed"))
        let result = commands(await runtime.handleWorkflowTask(history.startWorkflowTask(), history: history.events))
        #expect(summary(result) == ["upsert", "complete"])
        #expect(try decode(try #require(result.last?.completionResult), as: String.self) == "completed")
    }
}

@Suite("Versioning with patched")
struct VersioningTests {
    let transfer = TransferInput(from: "alice", to: "bob", amount: 100)

    func history<W: Workflow>(of type: W.Type) async throws -> [Ballast_V1_HistoryEvent] where W.Input == TransferInput {
        let env = WorkflowTestEnvironment(workflows: [type], activities: featureActivities())
        let handle = try await env.start(type, input: transfer)
        _ = try await handle.result()
        return handle.history
    }

    @Test("new code replays an old history on the old path (no marker, no fee)")
    func oldHistoryOldPath() async throws {
        let old = try await history(of: FeeV1Workflow.self)
        try WorkflowReplayer(workflows: [FeeV2Workflow.self]).replay(old)
    }

    @Test("a new run takes the new path and records a Patch marker")
    func newRunNewPath() async throws {
        let env = WorkflowTestEnvironment(workflows: [FeeV2Workflow.self], activities: featureActivities())
        let handle = try await env.start(FeeV2Workflow.self, input: transfer)
        #expect(try await handle.result() == "v2")
        #expect(handle.scheduledActivities == ["Step", "Debit", "Credit"])
        #expect(handle.history.contains { if case .markerRecorded(let m) = $0.attributes { return m.markerName == "Patch" }; return false })
    }

    @Test("old code cannot replay a history written by the patched code")
    func oldCodeNewHistory() async throws {
        let new = try await history(of: FeeV2Workflow.self)
        let error = try #require(throws: NonDeterminismError.self) {
            try WorkflowReplayer(workflows: [FeeV1Workflow.self]).replay(new, workflowId: "t-9")
        }
        #expect(error.message == "workflow Fee (id t-9): history event 6 is ActivityTaskScheduled(Step) but the code now schedules Debit")
    }
}
