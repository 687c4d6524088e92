import BallastEngine
import BallastProto
import Foundation
import Testing

@Suite("Child workflows and external signals")
struct ChildWorkflowTests {
    func childKey(_ h: Harness, parent: RunKey) -> RunKey? {
        guard let started = h.events(parent).first(where: { $0.typeName == "ChildWorkflowExecutionStarted" }) else { return nil }
        let execution = started.childWorkflowExecutionStarted.workflowExecution
        return RunKey(namespace: "default", workflowId: execution.workflowID, runId: execution.runID)
    }

    @Test("a child starts, is linked to its parent, and its completion reaches the parent")
    func childCompletes() {
        var h = Harness()
        let parent = h.start("parent")
        h.workflowTask(parent, [Commands.startChild("child")])
        #expect(Array(h.eventNames(parent).suffix(3)) == [
            "StartChildWorkflowExecutionInitiated", "ChildWorkflowExecutionStarted", "WorkflowTaskScheduled",
        ])
        guard let child = childKey(h, parent: parent) else { Issue.record("no child"); return }
        let started = h.events(child)[0].workflowExecutionStarted
        #expect(started.parentWorkflowExecution.runID == parent.runId)
        #expect(started.parentInitiatedEventID == 5)
        h.workflowTask(parent, [])
        h.workflowTask(child, [Commands.complete("child-result")])
        let completed = h.events(parent).last { $0.typeName == "ChildWorkflowExecutionCompleted" }
        #expect(completed?.childWorkflowExecutionCompleted.result == payloads("child-result"))
        #expect(completed?.childWorkflowExecutionCompleted.initiatedEventID == 5)
        #expect(completed?.childWorkflowExecutionCompleted.startedEventID == 6)
        #expect(h.readyWorkflowTask(parent) != nil)
    }

    @Test("terminating a tree of 61 runs in one entry gives each run its own events, in the order the runs were first touched")
    func treeTerminatedInOneEntry() throws {
        var h = Harness()
        let parent = h.start("parent")
        h.workflowTask(parent, (0 ..< 20).map { Commands.startChild("c\($0)") })
        var children: [RunKey] = []
        for started in h.events(parent) where started.typeName == "ChildWorkflowExecutionStarted" {
            let execution = started.childWorkflowExecutionStarted.workflowExecution
            children.append(RunKey(namespace: "default", workflowId: execution.workflowID, runId: execution.runID))
        }
        try #require(children.count == 20)
        for (number, child) in children.enumerated() {
            h.workflowTask(child, [Commands.startChild("g\(number)-a"), Commands.startChild("g\(number)-b")])
        }
        let result = h.apply(terminate(parent))
        // Past `ApplyContext.linearSlots` runs the slots are indexed: one batch per run all the same.
        #expect(result.events.count == 61)
        #expect(Set(result.events.map(\.run.runId)).count == 61, "one batch per run")
        #expect(result.events.first?.run.runId == parent.runId)
        #expect(result.closedRuns.count == 61)
        for batch in result.events {
            let history = h.events(batch.run)
            #expect(history.map(\.eventID) == Array(1 ... Int64(history.count)), "\(batch.run): contiguous ids")
            #expect(batch.events.last?.typeName == "WorkflowExecutionTerminated", "\(batch.run)")
            #expect(batch.events.map(\.eventID) == Array(history.suffix(batch.events.count)).map(\.eventID))
        }
        // Children are closed as each parent's policy is applied: c0 first, its own children after all 20.
        #expect(result.events[1].run.workflowId == "c0")
        #expect(result.events[21].run.workflowId.hasPrefix("g0-"))
    }

    @Test("one workflow task signalling 20 runs: each run's events stay in its own batch, the sender's among them")
    func manyRunsTouchedTwiceInOneEntry() throws {
        var h = Harness()
        var targets: [RunKey] = []
        for number in 0 ..< 20 {
            let target = h.start("target-\(number)")
            h.workflowTask(target, [])  // no workflow task pending: a signal schedules one
            targets.append(target)
        }
        let sender = h.start("sender")
        let token = h.startWorkflowTask(sender)
        let result = h.completeWorkflowTask(token, targets.map { Commands.signalExternal($0.workflowId, signal: "go") })
        #expect(result.events.count == 21 && Set(result.events.map(\.run.runId)).count == 21, "one batch per run")
        for batch in result.events {
            let history = h.events(batch.run)
            #expect(batch.events.map(\.eventID) == history.suffix(batch.events.count).map(\.eventID), "\(batch.run.workflowId)")
            #expect(history.map(\.eventID) == Array(1 ... Int64(history.count)), "\(batch.run.workflowId): contiguous ids")
        }
        for target in targets {
            #expect(Array(h.eventNames(target).suffix(2)) == ["WorkflowExecutionSignaled", "WorkflowTaskScheduled"], "\(target.workflowId)")
        }
        #expect(h.eventNames(sender).filter { $0 == "ExternalWorkflowExecutionSignaled" }.count == 20)
    }

    @Test("a child whose workflow id is running fails to start")
    func childAlreadyExists() {
        var h = Harness()
        h.start("taken")
        let parent = h.start("parent")
        h.workflowTask(parent, [Commands.startChild("taken")])
        let failed = h.events(parent).last { $0.typeName == "StartChildWorkflowExecutionFailed" }
        #expect(failed?.startChildWorkflowExecutionFailed.cause == .workflowAlreadyExists)
    }

    @Test("terminating a parent terminates its children (ParentClosePolicy TERMINATE) and abandons the others")
    func parentClosePolicy() {
        var h = Harness()
        let parent = h.start("parent")
        h.workflowTask(parent, [Commands.startChild("c1"), Commands.startChild("c2", policy: .abandon),
                                Commands.startChild("c3", policy: .requestCancel)])
        h.apply(terminate(parent))
        let c1 = RunKey(namespace: "default", workflowId: "c1", runId: "")
        let c2 = RunKey(namespace: "default", workflowId: "c2", runId: "")
        let c3 = RunKey(namespace: "default", workflowId: "c3", runId: "")
        #expect(h.status(c1) == .terminated)
        #expect(h.status(c2) == .running)
        #expect(h.status(c3) == .running)
        let c3Describe = try? h.engine.describe(namespace: "default", execution: c3.execution)
        #expect(c3Describe?.cancelRequested == true)
    }

    @Test("signal external delivers the signal and reports it to the sender; a missing target fails")
    func signalExternal() {
        var h = Harness()
        let target = h.start("target")
        h.workflowTask(target, [])
        let sender = h.start("sender")
        h.workflowTask(sender, [Commands.signalExternal("target", signal: "ping"), Commands.signalExternal("ghost", signal: "ping")])
        let names = h.eventNames(sender)
        #expect(names.contains("ExternalWorkflowExecutionSignaled"))
        #expect(names.contains("SignalExternalWorkflowExecutionFailed"))
        let signaled = h.events(target).last { $0.typeName == "WorkflowExecutionSignaled" }
        #expect(signaled?.workflowExecutionSignaled.externalWorkflowExecution.workflowID == "sender")
        #expect(h.readyWorkflowTask(target) != nil)
    }
}

@Suite("Limits")
struct LimitTests {
    @Test("pending timers and activities per run are bounded; the task fails with the limit cause")
    func pendingLimits() {
        var limits = EngineLimits()
        limits.maxPendingTimers = 2
        limits.maxPendingActivities = 1
        var h = Harness(limits: limits)
        let run = h.start("w")
        h.workflowTask(run, [Commands.startTimer("a", after: second), Commands.startTimer("b", after: second),
                             Commands.startTimer("c", after: second)])
        #expect(h.events(run).last?.workflowTaskFailed.cause == .pendingTimersLimitExceeded)
        h.workflowTask(run, [Commands.scheduleActivity("x"), Commands.scheduleActivity("y")])
        #expect(h.readyWorkflowTask(run)?.attempt == 3, "the second task failed too (transient, not written)")
        #expect(!h.eventNames(run).contains("ActivityTaskScheduled"))
    }

    @Test("a run reaching the history limit is failed; the warning is reported once")
    func historyLimit() {
        var limits = EngineLimits()
        limits.historyWarnEvents = 10
        limits.historyMaxEvents = 20
        var h = Harness(limits: limits)
        let run = h.start("w")
        var warnings = 0
        for round in 0..<10 {
            h.apply(signal(run, "s\(round)"))
            warnings += h.last.warnings.count
            if h.status(run) != .running { break }
            if h.readyWorkflowTask(run) != nil {
                h.workflowTask(run, [Commands.marker("m")])
                warnings += h.last.warnings.count
            }
            if h.status(run) != .running { break }
        }
        #expect(h.status(run) == .failed)
        #expect(h.events(run).last?.workflowExecutionFailed.failure.type == "HistoryLengthLimitExceeded")
        #expect(warnings == 1)
    }

    @Test("oversized payloads in commands fail the task; in worker responses they are rejected")
    func payloadLimits() {
        var limits = EngineLimits()
        limits.maxPayloadBytes = 16
        var h = Harness(limits: limits)
        let run = h.start("w")
        h.workflowTask(run, [Commands.scheduleActivity("abcdefghijklmnopqrstuvwxyz")])
        #expect(h.events(run).last?.workflowTaskFailed.cause == .payloadTooLarge)
        let token = h.startWorkflowTask(run)
        var command = Commands.scheduleActivity("a")
        command.scheduleActivityTask.input = payloads("ok")
        h.completeWorkflowTask(token, [command])
        let activity = h.startActivity(run, "a")
        #expect(h.completeActivity(activity, result: String(repeating: "x", count: 17)).response.rejection?.code == .resourceExhausted)
    }

    @Test("closed-run summaries are bounded: the oldest is dropped and its history deleted")
    func closedSummaryBound() {
        var limits = EngineLimits()
        limits.maxClosedSummaries = 2
        var h = Harness(limits: limits)
        var runs: [RunKey] = []
        for index in 0..<3 {
            let run = h.start("w\(index)")
            h.apply(terminate(run))
            runs.append(run)
        }
        #expect(h.engine.closedRunCount == 2)
        #expect(h.last.deletedRuns == [runs[0]])
    }
}

@Suite("Engine-wide bounds")
struct EngineBoundTests {
    @Test("open runs, namespaces and registered search attributes are bounded")
    func bounds() {
        var limits = EngineLimits()
        limits.maxOpenRuns = 2
        limits.maxNamespaces = 2
        limits.maxSearchAttributesPerNamespace = 1
        var h = Harness(limits: limits)
        h.start("a")
        h.start("b")
        var request = Ballast_V1_StartWorkflowRequest()
        request.workflowID = "c"
        request.workflowType.name = "T"
        request.taskQueue = "q"
        #expect(h.apply(.startWorkflow(request)).response.rejection?.code == .resourceExhausted)
        var namespace = Ballast_V1_RegisterNamespaceRequest()
        namespace.name = "second"
        #expect(h.apply(.registerNamespace(namespace)).response.rejection == nil)
        namespace.name = "third"
        #expect(h.apply(.registerNamespace(namespace)).response.rejection?.code == .resourceExhausted)
        var attributes = Ballast_V1_AddSearchAttributesRequest()
        attributes.searchAttributes = ["Region": .keyword, "Desk": .keyword]
        #expect(h.apply(.addSearchAttributes(attributes)).response.rejection?.code == .resourceExhausted)
        attributes.searchAttributes = ["Region": .keyword]
        #expect(h.apply(.addSearchAttributes(attributes)).response.rejection == nil)
        #expect(h.apply(.startWorkflow({ var r = request; r.workflowID = "a"; r.workflowIDReusePolicy = .terminateIfRunning; return r }())).response.rejection == nil,
                "replacing a running run does not need a free slot")
    }
}
