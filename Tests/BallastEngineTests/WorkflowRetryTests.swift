import BallastEngine
import BallastProto
import Foundation
import Testing

@Suite("Workflow retry policy")
struct WorkflowRetryTests {
    @Test("a failed run with a retry policy starts the next attempt after the backoff, until maximum attempts")
    func retriesUntilMaximumAttempts() {
        var h = Harness()
        var run = h.start("w") {
            $0.retryPolicy.maximumAttempts = 3
            $0.retryPolicy.initialIntervalNanos = 2 * second
            $0.input = payloads("order-7")
        }
        let firstRunId = run.runId
        for attempt in 1...2 {
            h.workflowTask(run, [Commands.fail("attempt \(attempt) failed")])
            let failed = h.events(run).last?.workflowExecutionFailed
            #expect(failed?.retryState == .inProgress)
            let next = RunKey(namespace: "default", workflowId: "w", runId: failed?.newExecutionRunID ?? "")
            let started = h.events(next).first?.workflowExecutionStarted
            #expect(started?.attempt == Int32(attempt + 1))
            #expect(started?.initiator == .retry)
            #expect(started?.input == payloads("order-7"))
            #expect(started?.continuedFailure.message == "attempt \(attempt) failed")
            #expect(started?.firstExecutionRunID == firstRunId)
            #expect(h.readyWorkflowTask(next) == nil, "the next attempt waits for its backoff")
            _ = h.fireDue(within: Int64(attempt) * 2 * second)
            #expect(h.readyWorkflowTask(next) != nil)
            run = next
        }
        h.workflowTask(run, [Commands.fail("attempt 3 failed")])
        #expect(h.events(run).last?.workflowExecutionFailed.retryState == .maximumAttemptsReached)
        #expect(h.status(RunKey(namespace: "default", workflowId: "w", runId: "")) == .failed)
    }

    @Test("a run timeout is retried; a run without a policy is not")
    func runTimeoutRetry() {
        var h = Harness()
        let run = h.start("w") { $0.workflowRunTimeoutNanos = 10 * second; $0.retryPolicy.maximumAttempts = 2 }
        _ = h.fireDue(within: 10 * second)
        let timedOut = h.events(run).last?.workflowExecutionTimedOut
        #expect(timedOut?.retryState == .inProgress)
        #expect(!(timedOut?.newExecutionRunID.isEmpty ?? true))
        let plain = h.start("p")
        h.workflowTask(plain, [Commands.fail("no policy")])
        #expect(h.events(plain).last?.workflowExecutionFailed.retryState == .retryPolicyNotSet)
    }

    @Test("a retried child reports only its final outcome to the parent")
    func retriedChild() {
        var h = Harness()
        let parent = h.start("parent")
        var command = Commands.startChild("child")
        command.startChildWorkflowExecution.retryPolicy.maximumAttempts = 2
        h.workflowTask(parent, [command])
        let first = RunKey(namespace: "default", workflowId: "child",
                           runId: h.events(parent).first { $0.typeName == "ChildWorkflowExecutionStarted" }?
                               .childWorkflowExecutionStarted.workflowExecution.runID ?? "")
        h.workflowTask(first, [Commands.fail("first")])
        #expect(!h.eventNames(parent).contains("ChildWorkflowExecutionFailed"))
        _ = h.fireDue(within: second)
        let second = RunKey(namespace: "default", workflowId: "child", runId: "")
        h.workflowTask(RunKey(namespace: "default", workflowId: "child",
                              runId: (try? h.engine.describe(namespace: "default", execution: second.execution))?.info.execution.runID ?? ""),
                       [Commands.complete("ok")])
        #expect(h.eventNames(parent).contains("ChildWorkflowExecutionCompleted"))
    }
}
