import BallastEngine
import BallastProto
import Foundation
import Testing

@Suite("Timers, signals, markers, search attributes")
struct TimerSignalTests {
    @Test("a timer fires once at its time; a second fire entry is rejected")
    func timerFires() {
        var h = Harness()
        let run = h.start("w")
        h.workflowTask(run, [Commands.startTimer("t", after: 30 * second)])
        guard let due = h.engine.dueTimers().first(where: { if case .timerFired = $0.payload { return true }; return false }) else {
            Issue.record("no timer deadline"); return
        }
        #expect(due.dueTimeUnixNanos == h.now + 30 * second)
        #expect(h.apply(due.payload).response.rejection?.code == .failedPrecondition, "not due yet")
        _ = h.fireDue(within: 30 * second)
        #expect(Array(h.eventNames(run).suffix(2)) == ["TimerFired", "WorkflowTaskScheduled"])
        let digest = h.engine.stateDigest()
        #expect(h.apply(due.payload).response.rejection?.code == .failedPrecondition, "a timer fires once")
        #expect(h.engine.stateDigest() == digest)
    }

    @Test("signals schedule a workflow task, are deduplicated by request id and bounded per run")
    func signals() {
        var limits = EngineLimits()
        limits.maxPendingSignals = 3
        var h = Harness(limits: limits)
        let run = h.start("w")
        h.workflowTask(run, [])
        #expect(h.readyWorkflowTask(run) == nil)
        h.apply(signal(run, "s", requestId: "r1"))
        h.apply(signal(run, "s", requestId: "r1"))
        #expect(h.eventNames(run).filter { $0 == "WorkflowExecutionSignaled" }.count == 1)
        #expect(h.readyWorkflowTask(run) != nil)
        h.apply(signal(run, "s", requestId: "r2"))
        h.apply(signal(run, "s", requestId: "r3"))
        #expect(h.apply(signal(run, "s", requestId: "r4")).response.rejection?.code == .resourceExhausted)
        h.workflowTask(run, [])
        #expect(h.apply(signal(run, "s", requestId: "r5")).response.rejection == nil, "handled signals free the budget")
    }

    @Test("signal-with-start starts a run and signals it, or only signals a running one")
    func signalWithStart() {
        var h = Harness()
        var request = Ballast_V1_SignalWithStartWorkflowRequest()
        request.start.workflowID = "w"
        request.start.workflowType.name = "T"
        request.start.taskQueue = "q"
        request.start.requestID = "r"
        request.signalName = "go"
        guard case let .started(first) = h.apply(.signalWithStart(request)).response else { Issue.record("no start"); return }
        let run = RunKey(namespace: "default", workflowId: "w", runId: first.runID)
        #expect(h.eventNames(run) == ["WorkflowExecutionStarted", "WorkflowTaskScheduled", "WorkflowExecutionSignaled"])
        request.start.requestID = "r-2"
        guard case let .started(second) = h.apply(.signalWithStart(request)).response else { Issue.record("no answer"); return }
        #expect(second.runID == first.runID)
        #expect(h.eventNames(run).filter { $0 == "WorkflowExecutionSignaled" }.count == 2)
    }

    @Test("markers and search attribute upserts are recorded; List filters on them")
    func markersAndSearchAttributes() {
        var h = Harness()
        let run = h.start("w")
        h.start("other", type: "Other")
        h.workflowTask(run, [Commands.marker("version"), Commands.upsert("CustomKeywordField", keyword: "eur")])
        #expect(Array(h.eventNames(run).suffix(2)) == ["MarkerRecorded", "UpsertWorkflowSearchAttributes"])
        var filter = ListFilter()
        var value = Ballast_V1_SearchAttributeValue()
        value.keywordValue = "eur"
        filter.searchAttributes = ["CustomKeywordField": value]
        #expect(h.engine.list(filter).map(\.execution.workflowID) == ["w"])
        var byType = ListFilter()
        byType.workflowType = "Other"
        #expect(h.engine.list(byType).map(\.execution.workflowID) == ["other"])
        h.apply(signal(run, "finish"))
        h.workflowTask(run, [Commands.complete()])
        var closedOnly = ListFilter()
        closedOnly.status = .completed
        #expect(h.engine.list(closedOnly).map(\.execution.workflowID) == ["w"])
        var byClose = ListFilter()
        byClose.closeTimeRange = (h.now - second)...h.now
        #expect(h.engine.list(byClose).count == 1)
    }

    @Test("history is paged through the store")
    func historyPaging() throws {
        var h = Harness()
        let run = h.start("w")
        h.workflowTask(run, [Commands.marker("a"), Commands.marker("b"), Commands.marker("c")])
        var request = Ballast_V1_GetWorkflowExecutionHistoryRequest()
        request.execution = run.execution
        request.maximumPageSize = 3
        var ids: [Int64] = []
        var pages = 0
        repeat {
            let page = try h.engine.history(request, store: h.store)
            ids += page.history.events.map(\.eventID)
            request.nextPageToken = page.nextPageToken
            pages += 1
        } while !request.nextPageToken.isEmpty && pages < 10
        #expect(ids == Array(1...7))
        #expect(pages == 3)
    }
}
