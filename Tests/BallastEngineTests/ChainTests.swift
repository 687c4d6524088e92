import BallastEngine
import BallastProto
import Foundation
import Testing

@Suite("Continue-as-new chains, transient tasks and leader rebuild")
struct ChainTests {
    @Test("continue-as-new with a backoff holds the first workflow task until the backoff entry")
    func continueAsNewBackoff() {
        var h = Harness()
        let run = h.start("w")
        var command = Commands.continueAsNew()
        command.continueAsNewWorkflowExecution.backoffStartIntervalNanos = 30 * second
        h.workflowTask(run, [command])
        let next = RunKey(namespace: "default", workflowId: "w",
                          runId: h.events(run).last?.workflowExecutionContinuedAsNew.newExecutionRunID ?? "")
        #expect(h.eventNames(next) == ["WorkflowExecutionStarted"])
        #expect(h.readyWorkflowTask(next) == nil)
        _ = h.fireDue(within: 30 * second)
        #expect(h.eventNames(next) == ["WorkflowExecutionStarted", "WorkflowTaskScheduled"])
    }

    @Test("the execution timeout spans the continue-as-new chain")
    func executionTimeoutAcrossChain() {
        var h = Harness()
        let run = h.start("w") { $0.workflowExecutionTimeoutNanos = 60 * second }
        h.now += 40 * second
        h.workflowTask(run, [Commands.continueAsNew()])
        let next = RunKey(namespace: "default", workflowId: "w",
                          runId: h.events(run).last?.workflowExecutionContinuedAsNew.newExecutionRunID ?? "")
        _ = h.fireDue(within: 21 * second)
        #expect(h.status(next) == .timedOut, "the new run inherits the chain's deadline")
    }

    @Test("a child that continues as new reports its last run's completion to the parent")
    func childContinuesAsNew() {
        var h = Harness()
        let parent = h.start("parent")
        h.workflowTask(parent, [Commands.startChild("child")])
        let first = RunKey(namespace: "default", workflowId: "child",
                           runId: h.events(parent).first { $0.typeName == "ChildWorkflowExecutionStarted" }?
                               .childWorkflowExecutionStarted.workflowExecution.runID ?? "")
        h.workflowTask(first, [Commands.continueAsNew()])
        #expect(!h.eventNames(parent).contains("ChildWorkflowExecutionCompleted"))
        let second = RunKey(namespace: "default", workflowId: "child",
                            runId: h.events(first).last?.workflowExecutionContinuedAsNew.newExecutionRunID ?? "")
        #expect(h.events(second)[0].workflowExecutionStarted.parentWorkflowExecution.runID == parent.runId)
        h.workflowTask(second, [Commands.fail("child gave up")])
        let failed = h.events(parent).last { $0.typeName == "ChildWorkflowExecutionFailed" }
        #expect(failed?.childWorkflowExecutionFailed.workflowExecution.runID == second.runId)
        #expect(failed?.childWorkflowExecutionFailed.failure.message == "child gave up")
    }

    @Test("signals that arrive during a transient attempt are written when it fails, before the next attempt")
    func signalDuringTransientAttempt() {
        var h = Harness()
        let run = h.start("w")
        var fail = Ballast_V1_RespondWorkflowTaskFailedRequest()
        fail.taskToken = Data(h.startWorkflowTask(run))
        h.apply(.workflowTaskFailed(fail))
        let lengthAfterFirstFailure = h.events(run).count
        fail.taskToken = Data(h.startWorkflowTask(run))
        h.apply(signal(run, "hello"))
        #expect(h.events(run).count == lengthAfterFirstFailure, "buffered while the transient attempt runs")
        h.apply(.workflowTaskFailed(fail))
        #expect(h.eventNames(run).last == "WorkflowExecutionSignaled")
        let task = h.readyWorkflowTask(run)
        #expect(task?.attempt == 3)
        #expect(task?.scheduledEventId == Int64(lengthAfterFirstFailure + 2))
        h.workflowTask(run, [Commands.complete()])
        #expect(h.status(run) == .completed)
        #expect(h.events(run).map(\.eventID) == Array(1...Int64(h.events(run).count)))
    }

    @Test("a new leader rebuilds the same dispatch queue and timer wheel from a restored snapshot")
    func leaderRebuild() throws {
        var h = Harness()
        for index in 0..<5 {
            let run = h.start("w\(index)")
            if index % 2 == 0 {
                h.workflowTask(run, [Commands.scheduleActivity("a"), Commands.startTimer("t", after: Int64(index + 1) * second)])
            }
        }
        let restored = try WorkflowEngine.restore(h.engine.snapshot())
        #expect(restored.readyTasks(taskQueue: "q") == h.engine.readyTasks(taskQueue: "q"))
        #expect(restored.dueTimers() == h.engine.dueTimers())
        #expect(restored.readyTasks(taskQueue: "q").count == 5, "2 workflow tasks and 3 activities")
        #expect(restored.dueTimers().count(where: { if case .timerFired = $0.payload { return true }; return false }) == 3)
    }
}
