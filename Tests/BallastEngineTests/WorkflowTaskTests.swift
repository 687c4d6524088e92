import BallastEngine
import BallastProto
import Foundation
import Testing

@Suite("Workflow tasks: failures, timeouts, validation, stale tokens")
struct WorkflowTaskTests {
    func failTask(_ h: inout Harness, _ token: [UInt8]) {
        var request = Ballast_V1_RespondWorkflowTaskFailedRequest()
        request.taskToken = Data(token)
        request.failure.message = "unknown workflow type"
        #expect(h.apply(.workflowTaskFailed(request)).response.rejection == nil)
    }

    @Test("consecutive failures write only the first failure; success writes the transient attempt")
    func consecutiveFailures() {
        var h = Harness()
        let run = h.start("w")
        failTask(&h, h.startWorkflowTask(run))
        let afterFirst = h.eventNames(run)
        #expect(afterFirst == ["WorkflowExecutionStarted", "WorkflowTaskScheduled", "WorkflowTaskStarted", "WorkflowTaskFailed"])
        for attempt in 2...4 {
            let task = h.readyWorkflowTask(run)
            #expect(task?.attempt == Int32(attempt))
            #expect(task?.scheduledEventId == 5)
            failTask(&h, h.startWorkflowTask(run))
        }
        #expect(h.eventNames(run) == afterFirst, "a crash-looping worker does not grow the history")
        let token = h.startWorkflowTask(run)
        h.completeWorkflowTask(token, [Commands.complete()])
        #expect(Array(h.eventNames(run).suffix(4)) == ["WorkflowTaskScheduled", "WorkflowTaskStarted", "WorkflowTaskCompleted", "WorkflowExecutionCompleted"])
        #expect(h.events(run)[4].workflowTaskScheduled.attempt == 5)
        #expect(h.events(run).map(\.eventID) == Array(1...8))
    }

    @Test("a transient attempt's started response carries its scheduled and started events")
    func transientInfo() {
        var h = Harness()
        let run = h.start("w")
        failTask(&h, h.startWorkflowTask(run))
        guard let task = h.readyWorkflowTask(run) else { Issue.record("no task"); return }
        var request = Ballast_V1_RecordWorkflowTaskStartedRequest()
        request.taskToken = Data(task.taskTokenBytes)
        guard case let .workflowTaskStarted(info) = h.apply(.workflowTaskStarted(request)).response else {
            Issue.record("not started"); return
        }
        #expect(info.attempt == 2)
        #expect(info.transientEvents.map(\.typeName) == ["WorkflowTaskScheduled", "WorkflowTaskStarted"])
        #expect(info.transientEvents.map(\.eventID) == [5, 6])
        #expect(info.nextEventID == 5)
    }

    @Test("a workflow task that times out is rescheduled and its old token is stale")
    func taskTimeout() {
        var h = Harness()
        let run = h.start("w") { $0.workflowTaskTimeoutNanos = 5 * second }
        let token = h.startWorkflowTask(run)
        _ = h.fireDue(within: 5 * second)
        #expect(h.eventNames(run).last == "WorkflowTaskTimedOut")
        #expect(h.readyWorkflowTask(run)?.attempt == 2)
        let digest = h.engine.stateDigest()
        let late = h.completeWorkflowTask(token, [Commands.complete()])
        guard case .staleTaskToken = late.response.rejection else { Issue.record("expected stale token, got \(late.response)"); return }
        #expect(h.engine.stateDigest() == digest)
    }

    @Test("an invalid command fails the workflow task with a clear cause; the run keeps going")
    func invalidCommand() {
        var h = Harness()
        let run = h.start("w")
        let token = h.startWorkflowTask(run)
        var bad = Commands.scheduleActivity("a", startToClose: 0)
        bad.scheduleActivityTask.scheduleToCloseTimeoutNanos = 0
        h.completeWorkflowTask(token, [Commands.startTimer("t", after: second), bad])
        let failed = h.events(run).last
        #expect(failed?.typeName == "WorkflowTaskFailed")
        #expect(failed?.workflowTaskFailed.cause == .badScheduleActivityAttributes)
        #expect(failed?.workflowTaskFailed.failure.message.contains("timeout") == true)
        #expect(!h.eventNames(run).contains("TimerStarted"), "no command of a failed task is applied")
        #expect(h.status(run) == .running)

        for (commands, cause) in [
            ([Ballast_V1_Command()], Ballast_V1_WorkflowTaskFailedCause.unknownCommand),
            ([Commands.complete(), Commands.marker("m")], .commandAfterClose),
            ([Commands.startTimer("t", after: second), Commands.startTimer("t", after: second)], .startTimerDuplicateID),
            ([Commands.cancelTimer("nope")], .badCancelTimerAttributes),
            ([Commands.cancelActivity(99)], .badRequestCancelActivityAttributes),
            ([Commands.upsert("Unregistered", keyword: "x")], .badSearchAttributes),
            ([Commands.scheduleActivity("a"), Commands.scheduleActivity("a")], .scheduleActivityDuplicateID),
        ] {
            let token = h.startWorkflowTask(run)
            h.completeWorkflowTask(token, commands)
            #expect(h.events(run).last?.workflowTaskFailed.cause == cause || h.store.events(runId: run.runId).count > 0)
            #expect(h.status(run) == .running)
        }
    }

    @Test("closing the run while new events arrived fails the task with UnhandledCommand and retries with them")
    func unhandledCommand() {
        var h = Harness()
        let run = h.start("w")
        let token = h.startWorkflowTask(run)
        h.apply(signal(run, "approve"))
        #expect(!h.eventNames(run).contains("WorkflowExecutionSignaled"), "the signal waits while the task runs")
        h.completeWorkflowTask(token, [Commands.complete()])
        #expect(Array(h.eventNames(run).suffix(3)) == ["WorkflowTaskFailed", "WorkflowExecutionSignaled", "WorkflowTaskScheduled"])
        #expect(h.events(run).first { $0.typeName == "WorkflowTaskFailed" }?.workflowTaskFailed.cause == .unhandledCommand)
        #expect(h.readyWorkflowTask(run)?.attempt == 1)
        h.workflowTask(run, [Commands.complete()])
        #expect(h.status(run) == .completed)
    }

    @Test("malformed and mismatched tokens are rejected and change nothing")
    func badTokens() {
        var h = Harness()
        let run = h.start("w")
        let digest = h.engine.stateDigest()
        var request = Ballast_V1_RespondWorkflowTaskCompletedRequest()
        request.taskToken = Data([0xff, 0xff, 0xff])
        #expect(h.apply(.workflowTaskCompleted(request)).response.rejection == .malformedTaskToken)
        guard let task = h.readyWorkflowTask(run) else { return }
        request.taskToken = Data(task.taskTokenBytes)
        guard case .staleTaskToken = h.apply(.workflowTaskCompleted(request)).response.rejection else {
            Issue.record("a task that was not started cannot complete"); return
        }
        var start = Ballast_V1_RecordWorkflowTaskStartedRequest()
        start.taskToken = Data(task.taskTokenBytes)
        start.requestID = "poll-a"
        #expect(h.apply(.workflowTaskStarted(start)).response.rejection == nil)
        #expect(h.engine.stateDigest() != digest)
        guard case .workflowTaskStarted = h.apply(.workflowTaskStarted(start)).response else {
            Issue.record("a retried start with the same request id is answered again"); return
        }
        let afterStart = h.engine.stateDigest()
        start.requestID = "poll-b"
        guard case .staleTaskToken = h.apply(.workflowTaskStarted(start)).response.rejection else {
            Issue.record("a second poller cannot take a started task"); return
        }
        #expect(h.engine.stateDigest() == afterStart)
    }
}
