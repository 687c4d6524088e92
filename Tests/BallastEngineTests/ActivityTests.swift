import BallastEngine
import BallastProto
import Foundation
import Testing

@Suite("Activities: retries, timeouts, heartbeats, cancellation")
struct ActivityTests {
    /// A run with one scheduled activity "a".
    func scheduled(_ configure: @escaping (inout Ballast_V1_ScheduleActivityTaskCommandAttributes) -> Void = { _ in }) -> (Harness, RunKey) {
        var h = Harness()
        let run = h.start("w")
        h.workflowTask(run, [Commands.scheduleActivity("a", configure: configure)])
        return (h, run)
    }

    @Test("a retryable failure backs off (1 s, then 2 s) and only the final attempt's events are written")
    func retryThenSucceed() {
        var (h, run) = scheduled()
        let before = h.eventNames(run)
        let first = h.startActivity(run, "a")
        #expect(h.failActivity(first).response.rejection == nil)
        #expect(h.eventNames(run) == before, "a retried failure writes no event")
        #expect(h.readyActivity(run, "a") == nil, "attempt 2 waits for its backoff")
        let retryDue = h.engine.dueTimers().first { if case .activityRetryDue = $0.payload { return true }; return false }
        #expect(retryDue?.dueTimeUnixNanos == h.now + second)
        _ = h.fireDue(within: second)
        let second2 = h.startActivity(run, "a")
        #expect(h.completeActivity(first).response.rejection?.code == .notFound, "attempt 1's token is stale")
        _ = h.failActivity(second2)
        let retry3 = h.engine.dueTimers().first { if case .activityRetryDue = $0.payload { return true }; return false }
        #expect(retry3?.dueTimeUnixNanos == h.now + 2 * second)
        _ = h.fireDue(within: 2 * second)
        let third = h.startActivity(run, "a")
        _ = h.completeActivity(third)
        let events = h.events(run)
        #expect(Array(events.map(\.typeName).suffix(3)) == ["ActivityTaskStarted", "ActivityTaskCompleted", "WorkflowTaskScheduled"])
        let started = events[events.count - 3].activityTaskStarted
        #expect(started.attempt == 3)
        #expect(started.lastFailure.type == "Flaky")
    }

    @Test("non-retryable error types and maximum attempts end the retries")
    func retryLimits() {
        var (h, run) = scheduled { $0.retryPolicy.nonRetryableErrorTypes = ["Fatal"] }
        _ = h.failActivity(h.startActivity(run, "a"), type: "Fatal")
        #expect(h.events(run).last(where: { $0.typeName == "ActivityTaskFailed" })?.activityTaskFailed.retryState == .nonRetryableFailure)

        var (h2, run2) = scheduled { $0.retryPolicy.maximumAttempts = 2 }
        _ = h2.failActivity(h2.startActivity(run2, "a"))
        _ = h2.fireDue(within: second)
        _ = h2.failActivity(h2.startActivity(run2, "a"))
        let failed = h2.events(run2).last { $0.typeName == "ActivityTaskFailed" }
        #expect(failed?.activityTaskFailed.retryState == .maximumAttemptsReached)
        #expect(h2.readyWorkflowTask(run2) != nil, "the workflow is told")

        var (h3, run3) = scheduled()
        _ = h3.failActivity(h3.startActivity(run3, "a"), nonRetryable: true)
        #expect(h3.events(run3).contains { $0.activityTaskFailed.retryState == .nonRetryableFailure })
    }

    @Test("start-to-close timeout retries; schedule-to-close ends it with TimedOut")
    func timeouts() {
        var (h, run) = scheduled { $0.startToCloseTimeoutNanos = 5 * second; $0.scheduleToCloseTimeoutNanos = 12 * second }
        let token = h.startActivity(run, "a")
        var early = Ballast_V1_ActivityTimedOutRequest()
        early.workflowExecution = run.execution
        early.scheduledEventID = 5
        early.attempt = 1
        early.timeoutType = .startToClose
        #expect(h.apply(.activityTimedOut(early)).response.rejection?.code == .failedPrecondition, "not yet due")
        _ = h.fireDue(within: 5 * second)
        #expect(h.completeActivity(token).response.rejection?.code == .notFound, "the timed-out attempt's token is stale")
        #expect(h.readyActivity(run, "a") == nil)
        _ = h.fireDue(within: second)
        let attempt2 = h.readyActivity(run, "a")
        #expect(attempt2?.attempt == 2)
        _ = h.startActivity(run, "a")
        _ = h.fireDue(within: 10 * second)
        let timedOut = h.events(run).last { $0.typeName == "ActivityTaskTimedOut" }
        #expect(timedOut != nil)
        #expect(timedOut?.activityTaskTimedOut.failure.timeoutType == .scheduleToClose
            || timedOut?.activityTaskTimedOut.retryState == .timeout)
    }

    @Test("schedule-to-start timeout is final and writes no started event")
    func scheduleToStart() {
        var (h, run) = scheduled { $0.scheduleToStartTimeoutNanos = 3 * second }
        _ = h.fireDue(within: 3 * second)
        let names = h.eventNames(run)
        #expect(Array(names.suffix(2)) == ["ActivityTaskTimedOut", "WorkflowTaskScheduled"])
        #expect(h.events(run).first { $0.typeName == "ActivityTaskTimedOut" }?.activityTaskTimedOut.failure.timeoutType == .scheduleToStart)
    }

    @Test("heartbeats extend the heartbeat deadline, keep details for the next attempt and carry cancellation")
    func heartbeats() {
        var (h, run) = scheduled { $0.heartbeatTimeoutNanos = 2 * second; $0.startToCloseTimeoutNanos = 60 * second }
        let token = h.startActivity(run, "a")
        var beat = Ballast_V1_RecordActivityTaskHeartbeatRequest()
        beat.taskToken = Data(token)
        beat.details = payloads("progress-1")
        for _ in 0..<3 {
            let result = h.apply(.activityTaskHeartbeat(beat), advance: 1_500_000_000)
            #expect(result.response == .heartbeat(Ballast_V1_RecordActivityTaskHeartbeatResponse()))
        }
        _ = h.fireDue(within: 2 * second)
        _ = h.fireDue(within: second)
        guard let task = h.readyActivity(run, "a") else { Issue.record("no retry after heartbeat timeout"); return }
        #expect(task.attempt == 2)
        var start = Ballast_V1_RecordActivityTaskStartedRequest()
        start.taskToken = Data(task.taskTokenBytes)
        guard case let .activityTaskStarted(info) = h.apply(.activityTaskStarted(start)).response else {
            Issue.record("not started"); return
        }
        #expect(info.heartbeatDetails == payloads("progress-1"))
        #expect(info.attempt == 2)
        h.apply(signal(run, "stop"))
        h.workflowTask(run, [Commands.cancelActivity(5)])
        beat.taskToken = Data(task.taskTokenBytes)
        #expect(h.apply(.activityTaskHeartbeat(beat)).response == .heartbeat({
            var response = Ballast_V1_RecordActivityTaskHeartbeatResponse(); response.cancelRequested = true; return response
        }()))
        var canceled = Ballast_V1_RespondActivityTaskCanceledRequest()
        canceled.taskToken = Data(task.taskTokenBytes)
        h.apply(.activityTaskCanceled(canceled))
        let last = h.events(run).last { $0.typeName == "ActivityTaskCanceled" }
        #expect(last?.activityTaskCanceled.latestCancelRequestedEventID ?? 0 > 0)
    }

    @Test("cancelling an activity that has not started cancels it at once")
    func cancelBeforeStart() {
        var (h, run) = scheduled()
        h.apply(signal(run, "stop"))
        h.workflowTask(run, [Commands.cancelActivity(5)])
        #expect(Array(h.eventNames(run).suffix(3)) == ["ActivityTaskCancelRequested", "ActivityTaskCanceled", "WorkflowTaskScheduled"])
        #expect(h.readyActivity(run, "a") == nil)
    }

    @Test("a completion that arrives while a workflow task runs is buffered after WorkflowTaskCompleted")
    func bufferedCompletion() {
        var h = Harness()
        let run = h.start("w")
        h.workflowTask(run, [Commands.scheduleActivity("a"), Commands.startTimer("t", after: 100 * second)])
        h.apply(signal(run, "poke"))
        let token = h.startWorkflowTask(run)
        _ = h.completeActivity(h.startActivity(run, "a"))
        h.completeWorkflowTask(token, [])
        let names = h.eventNames(run)
        #expect(Array(names.suffix(4)) == ["WorkflowTaskCompleted", "ActivityTaskStarted", "ActivityTaskCompleted", "WorkflowTaskScheduled"])
        let events = h.events(run)
        let completed = events[events.count - 2].activityTaskCompleted
        #expect(completed.startedEventID == events[events.count - 3].eventID)
    }
}
