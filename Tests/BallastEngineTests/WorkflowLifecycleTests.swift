import BallastEngine
import BallastProto
import Foundation
import Testing

@Suite("Workflow lifecycle scenarios")
struct WorkflowLifecycleTests {
    @Test("start → workflow task → activity → workflow task → complete writes Temporal's event sequence")
    func happyPath() {
        var h = Harness()
        let run = h.start("transfer-1")
        #expect(h.eventNames(run) == ["WorkflowExecutionStarted", "WorkflowTaskScheduled"])
        h.workflowTask(run, [Commands.scheduleActivity("debit")])
        let activity = h.startActivity(run, "debit")
        #expect(h.engine.readyTasks(taskQueue: "q").isEmpty, "the activity is no longer ready once started")
        _ = h.completeActivity(activity)
        h.workflowTask(run, [Commands.complete()])
        #expect(h.eventNames(run) == [
            "WorkflowExecutionStarted", "WorkflowTaskScheduled", "WorkflowTaskStarted", "WorkflowTaskCompleted",
            "ActivityTaskScheduled", "ActivityTaskStarted", "ActivityTaskCompleted", "WorkflowTaskScheduled",
            "WorkflowTaskStarted", "WorkflowTaskCompleted", "WorkflowExecutionCompleted",
        ])
        let events = h.events(run)
        #expect(events.map(\.eventID) == Array(1...11))
        #expect(events[6].activityTaskCompleted.startedEventID == 6)
        #expect(events[6].activityTaskCompleted.scheduledEventID == 5)
        #expect(h.status(run) == .completed)
        #expect(h.engine.openRunCount == 0)
        #expect(h.engine.closedRunCount == 1)
    }

    @Test("a start with the same request id returns the same run; another start is rejected while running")
    func startIdempotencyAndDuplicate() {
        var h = Harness()
        var request = Ballast_V1_StartWorkflowRequest()
        request.workflowID = "w"
        request.workflowType.name = "T"
        request.taskQueue = "q"
        request.requestID = "r1"
        guard case let .started(first) = h.apply(.startWorkflow(request)).response else { Issue.record("not started"); return }
        #expect(first.started)
        guard case let .started(again) = h.apply(.startWorkflow(request)).response else { Issue.record("not answered"); return }
        #expect(again.runID == first.runID)
        #expect(!again.started)
        let digest = h.engine.stateDigest()
        request.requestID = "r2"
        let rejected = h.apply(.startWorkflow(request))
        #expect(rejected.response.rejection == .workflowAlreadyStarted(namespace: "default", workflowId: "w", runId: first.runID))
        #expect(h.engine.stateDigest() == digest, "a rejected entry changes nothing")
    }

    @Test("reuse policies decide whether a closed workflow id may start again")
    func reusePolicies() {
        var h = Harness()
        let run = h.start("w")
        h.workflowTask(run, [Commands.complete()])
        let reject = h.start("w2")
        _ = reject
        var request = Ballast_V1_StartWorkflowRequest()
        request.workflowID = "w"
        request.workflowType.name = "T"
        request.taskQueue = "q"
        request.workflowIDReusePolicy = .rejectDuplicate
        #expect(h.apply(.startWorkflow(request)).response.rejection?.code == .alreadyExists)
        request.workflowIDReusePolicy = .allowDuplicateFailedOnly
        #expect(h.apply(.startWorkflow(request)).response.rejection?.code == .alreadyExists, "the previous run completed")
        request.workflowIDReusePolicy = .allowDuplicate
        guard case let .started(second) = h.apply(.startWorkflow(request)).response else { Issue.record("not started"); return }
        #expect(second.runID != run.runId)
        request.workflowIDReusePolicy = .terminateIfRunning
        guard case let .started(third) = h.apply(.startWorkflow(request)).response else { Issue.record("not started"); return }
        let secondKey = RunKey(namespace: "default", workflowId: "w", runId: second.runID)
        #expect(h.status(secondKey) == .terminated)
        #expect(h.eventNames(secondKey).last == "WorkflowExecutionTerminated")
        #expect(h.status(RunKey(namespace: "default", workflowId: "w", runId: third.runID)) == .running)
    }

    @Test("invalid start requests are rejected with a clear reason and change nothing")
    func invalidStart() {
        var h = Harness()
        let digest = h.engine.stateDigest()
        var request = Ballast_V1_StartWorkflowRequest()
        request.workflowType.name = "T"
        request.taskQueue = "q"
        #expect(h.apply(.startWorkflow(request)).response.rejection?.code == .invalidArgument)
        request.workflowID = "w"
        request.namespace = "nope"
        #expect(h.apply(.startWorkflow(request)).response.rejection == .namespaceNotFound("nope"))
        request.namespace = ""
        request.input = payloads(String(repeating: "x", count: 2 * 1024 * 1024 + 1))
        #expect(h.apply(.startWorkflow(request)).response.rejection?.code == .resourceExhausted)
        #expect(h.engine.stateDigest() == digest)
    }

    @Test("terminate during a running workflow task fails the task, then writes Terminated")
    func terminateWhileTaskRuns() {
        var h = Harness()
        let run = h.start("w")
        let token = h.startWorkflowTask(run)
        h.apply(signal(run, "late"))
        h.apply(terminate(run))
        #expect(h.eventNames(run) == [
            "WorkflowExecutionStarted", "WorkflowTaskScheduled", "WorkflowTaskStarted", "WorkflowTaskFailed",
            "WorkflowExecutionSignaled", "WorkflowExecutionTerminated",
        ])
        #expect(h.status(run) == .terminated)
        let late = h.completeWorkflowTask(token, [Commands.complete()])
        #expect(late.response.rejection?.code == .notFound, "a closed run accepts no more commands")
        #expect(h.apply(signal(run, "after")).response.rejection?.code == .failedPrecondition)
    }

    @Test("cancel request is recorded once and the workflow may then cancel itself")
    func cancellation() {
        var h = Harness()
        let run = h.start("w")
        h.workflowTask(run, [Commands.startTimer("t", after: 60 * second)])
        h.apply(cancelRequest(run))
        h.apply(cancelRequest(run))
        #expect(h.eventNames(run).filter { $0 == "WorkflowExecutionCancelRequested" }.count == 1)
        h.workflowTask(run, [Commands.cancelTimer("t"), Commands.cancelWorkflow()])
        #expect(Array(h.eventNames(run).suffix(3)) == ["WorkflowTaskCompleted", "TimerCanceled", "WorkflowExecutionCanceled"])
        #expect(h.status(run) == .canceled)
    }

    @Test("the workflow fails itself with FailWorkflowExecution")
    func failWorkflow() {
        var h = Harness()
        let run = h.start("w")
        h.workflowTask(run, [Commands.fail("insufficient funds")])
        #expect(h.status(run) == .failed)
        #expect(h.events(run).last?.workflowExecutionFailed.failure.message == "insufficient funds")
    }

    @Test("run timeout closes the run with TimedOut; an early timeout entry is rejected as stale")
    func runTimeout() {
        var h = Harness()
        let run = h.start("w") { $0.workflowRunTimeoutNanos = 30 * second }
        var early = Ballast_V1_WorkflowExecutionTimedOutRequest()
        early.workflowExecution = run.execution
        #expect(h.apply(.workflowExecutionTimedOut(early)).response.rejection?.code == .failedPrecondition)
        _ = h.fireDue(within: 31 * second)
        #expect(h.status(run) == .timedOut)
        #expect(h.eventNames(run).last == "WorkflowExecutionTimedOut")
    }

    @Test("continue-as-new closes the run and starts the next one with the same workflow id")
    func continueAsNew() {
        var h = Harness()
        let run = h.start("w") { $0.workflowExecutionTimeoutNanos = 3_600 * second }
        h.workflowTask(run, [Commands.continueAsNew()])
        #expect(h.status(run) == .continuedAsNew)
        let newRunId = h.events(run).last?.workflowExecutionContinuedAsNew.newExecutionRunID ?? ""
        let next = RunKey(namespace: "default", workflowId: "w", runId: newRunId)
        #expect(h.eventNames(next) == ["WorkflowExecutionStarted", "WorkflowTaskScheduled"])
        let started = h.events(next)[0].workflowExecutionStarted
        #expect(started.continuedExecutionRunID == run.runId)
        #expect(started.firstExecutionRunID == run.runId)
        #expect(started.workflowExecutionExpirationTimeUnixNanos > 0)
        let current = try? h.engine.describe(namespace: "default", execution: RunKey(namespace: "default", workflowId: "w", runId: "").execution)
        #expect(current?.info.execution.runID == newRunId)
    }

    @Test("retention expiry forgets a closed run and asks the node to delete its history")
    func retention() {
        var h = Harness()
        var namespace = Ballast_V1_RegisterNamespaceRequest()
        namespace.name = "payments"
        namespace.workflowExecutionRetentionNanos = 3_600 * second
        #expect(h.apply(.registerNamespace(namespace)).response.rejection == nil)
        #expect(h.apply(.registerNamespace(namespace)).response.rejection == .namespaceAlreadyExists("payments"))
        var request = Ballast_V1_StartWorkflowRequest()
        request.namespace = "payments"
        request.workflowID = "w"
        request.workflowType.name = "T"
        request.taskQueue = "q"
        guard case let .started(started) = h.apply(.startWorkflow(request)).response else { Issue.record("no start"); return }
        let run = RunKey(namespace: "payments", workflowId: "w", runId: started.runID)
        h.apply(terminate(run))
        #expect(h.engine.closedRunCount == 1)
        let results = h.fireDue(within: 3_601 * second)
        #expect(results.contains { $0.deletedRuns == [run] })
        #expect(h.engine.closedRunCount == 0)
        #expect(h.events(run).isEmpty)
    }

    @Test("an entry with an unknown format version stops the apply")
    func unknownFormatVersion() {
        var engine = WorkflowEngine()
        var entry = Ballast_V1_EngineEntry()
        entry.formatVersion = newestEngineFormatVersion + 1
        entry.leaderTimeUnixNanos = 1
        entry.signalWorkflow = Ballast_V1_SignalWorkflowRequest()
        #expect(throws: EngineError.unsupportedFormatVersion(found: 7, supported: 6, index: 1)) {
            _ = try engine.apply(entry, index: 1)
        }
        entry.formatVersion = 0
        #expect(throws: EngineError.unsupportedFormatVersion(found: 0, supported: 6, index: 1)) {
            _ = try engine.apply(entry, index: 1)
        }
        #expect(engine.lastAppliedIndex == 0)
        // A build that knows formats up to N stops at the first entry of format N + 1.
        let builds: [(knows: UInt32, stopsAt: UInt32)] = [
            (keptActivityBytesFormatVersion, identifierLengthFormatVersion),  // the build before format 6
            (historySizeFormatVersion, flatTimeoutFailureFormatVersion),  // before format 5
            (boundedRetryFormatVersion, historySizeFormatVersion),  // before format 4
            (eagerDispatchFormatVersion, boundedRetryFormatVersion),  // before format 3
        ]
        for build in builds {
            var older = WorkflowEngine()
            older.newestFormatVersion = build.knows
            entry.formatVersion = build.stopsAt
            #expect(throws: EngineError.unsupportedFormatVersion(found: build.stopsAt, supported: build.knows, index: 1)) {
                _ = try older.apply(entry, index: 1)
            }
        }
        #expect(builds.map(\.stopsAt) == [6, 5, 4, 3])
        entry.formatVersion = 1
        #expect(throws: EngineError.indexNotIncreasing(index: 0, lastApplied: 0)) { _ = try engine.apply(entry, index: 0) }
    }

    @Test("engine time never moves back when a leader stamps an earlier time")
    func timeNeverMovesBack() {
        var h = Harness()
        h.start("w")
        let clock = h.engine.clock
        h.now -= 3_600 * second
        h.start("w2")
        #expect(h.engine.clock == clock)
    }
}
