import BallastChaos
import BallastProto
import Testing

@Suite("Chaos check: per-history invariants")
struct CheckHistoryInvariantsTests {
    func violations(_ history: TestHistory) -> [ChaosViolation] {
        HistoryInvariants.analyze(workflowID: "wf", runID: "run-1", events: history.events).violations
    }

    /// A transfer-like run: activities (one retried), a timer fired late enough, a signal.
    func cleanHistory() -> TestHistory {
        var history = TestHistory()
        history.workflowTask()
        let debit = history.scheduleActivity("1", maximumAttempts: 3)
        let timer = history.startTimer("approval", nanoseconds: 5_000)
        history.completeActivity(debit, attempt: 3)
        history.signal("approve")
        history.fireTimer("approval", started: timer, at: history.time + 5_000)
        history.workflowTask()
        history.complete()
        return history
    }

    @Test("a well-formed history breaks nothing and is summarized")
    func cleanHistoryPasses() {
        let history = cleanHistory()
        let (summary, found) = HistoryInvariants.analyze(workflowID: "wf", runID: "run-1", events: history.events)
        #expect(found.isEmpty, "\(found)")
        #expect(summary.events == history.events.count && summary.hasStartedEvent && summary.closed)
        #expect(summary.signals == ["approve": 1])
        #expect(summary.activityOutcomes[5] == RunHistorySummary.ActivityOutcome(close: .completed, startedAttempt: 3))
        #expect(summary.workflowTaskCloses[3] == .completed)
    }

    @Test("single-completion: an activity closed twice, or closed without being scheduled")
    func activityClosedTwice() {
        var history = cleanHistory()
        history.failActivity(5, attempt: 3)
        let found = violations(history)
        #expect(found.count == 1 && found[0].invariant == ChaosInvariant.singleCompletion && found[0].workflowID == "wf", "\(found)")
        #expect(found[0].detail.contains("closed twice"))

        var orphan = TestHistory()
        orphan.completeActivity(99)
        #expect(violations(orphan).map(\.invariant).contains(ChaosInvariant.singleCompletion))
    }

    @Test("attempts: an attempt above the retry policy's maximum, not when the policy is unlimited")
    func attemptsAboveMaximum() {
        var history = TestHistory()
        let limited = history.scheduleActivity("1", maximumAttempts: 2)
        history.completeActivity(limited, attempt: 3)
        let found = violations(history)
        #expect(found.map(\.invariant) == [ChaosInvariant.attempts], "\(found)")
        #expect(found[0].detail.contains("attempt 3 exceeds the retry policy's maximum of 2"))

        var unlimited = TestHistory()
        let activity = unlimited.scheduleActivity("1", maximumAttempts: 0)
        unlimited.completeActivity(activity, attempt: 40)
        #expect(violations(unlimited).isEmpty)

        var zero = TestHistory()
        let first = zero.scheduleActivity("1")
        zero.completeActivity(first, attempt: 0)
        #expect(violations(zero).map(\.invariant) == [ChaosInvariant.attempts])
    }

    @Test("timers: a fire one nanosecond early, a second fire, a fire of a timer never started")
    func timersFiredEarly() {
        var early = TestHistory()
        let timer = early.startTimer("t", nanoseconds: 1_000)
        early.fireTimer("t", started: timer, at: early.time + 999)
        let found = violations(early)
        #expect(found.map(\.invariant) == [ChaosInvariant.timers], "\(found)")
        #expect(found[0].detail.contains("1 ns before it was due"))

        var onTime = TestHistory()
        let exact = onTime.startTimer("t", nanoseconds: 1_000)
        onTime.fireTimer("t", started: exact, at: onTime.time + 1_000)
        #expect(violations(onTime).isEmpty)
        onTime.fireTimer("t", started: exact, at: onTime.time + 2_000)
        #expect(violations(onTime).map(\.detail).first?.contains("fired twice") == true)

        var unknown = TestHistory()
        unknown.fireTimer("t", started: 1, at: unknown.time)
        #expect(violations(unknown).map(\.invariant) == [ChaosInvariant.timers])
    }

    @Test("the next run of a continued-as-new run is remembered")
    func continuedAsNew() {
        var history = TestHistory()
        history.workflowTask()
        history.continueAsNew("run-2")
        let summary = HistoryInvariants.analyze(workflowID: "wf", runID: "run-1", events: history.events).summary
        #expect(summary.nextRunID == "run-2" && summary.closed)
    }

    @Test("the caller identities a history records are counted: who started, signaled, and took its tasks")
    func identities() {
        var history = TestHistory(started: false)
        var started = Ballast_V1_WorkflowExecutionStartedEventAttributes()
        started.identity = "chaos-load"
        history.add(.workflowExecutionStarted(started))
        var task = Ballast_V1_WorkflowTaskStartedEventAttributes()
        task.identity = "chaos-worker"
        history.add(.workflowTaskStarted(task))
        var activity = Ballast_V1_ActivityTaskStartedEventAttributes()
        activity.identity = "chaos-worker"
        history.add(.activityTaskStarted(activity))
        var signaled = Ballast_V1_WorkflowExecutionSignaledEventAttributes()
        signaled.identity = "web-ui@127.0.0.1 (unverified)"
        history.add(.workflowExecutionSignaled(signaled))
        history.add(.workflowTaskScheduled(Ballast_V1_WorkflowTaskScheduledEventAttributes()))
        let summary = HistoryInvariants.analyze(workflowID: "wf", runID: "run-1", events: history.events).summary
        #expect(summary.identities == ["chaos-load": 1, "chaos-worker": 2, "web-ui@127.0.0.1 (unverified)": 1])
    }
}
