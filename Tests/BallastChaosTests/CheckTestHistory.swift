import BallastProto

/// Builds synthetic histories event by event, with explicit times, for the invariant tests.
struct TestHistory {
    var events: [Ballast_V1_HistoryEvent] = []
    var time: Int64 = 1_000_000_000

    init(started: Bool = true) {
        if started { add(.workflowExecutionStarted(Ballast_V1_WorkflowExecutionStartedEventAttributes())) }
    }

    @discardableResult
    mutating func add(_ attributes: Ballast_V1_HistoryEvent.OneOf_Attributes, at eventTime: Int64? = nil) -> Int64 {
        var event = Ballast_V1_HistoryEvent()
        event.eventID = Int64(events.count) + 1
        event.eventTimeUnixNanos = eventTime ?? time
        event.attributes = attributes
        events.append(event)
        return event.eventID
    }

    /// A workflow task scheduled, started and completed; the started event's id.
    @discardableResult
    mutating func workflowTask(failed: Bool = false) -> Int64 {
        add(.workflowTaskScheduled(Ballast_V1_WorkflowTaskScheduledEventAttributes()))
        let started = add(.workflowTaskStarted(Ballast_V1_WorkflowTaskStartedEventAttributes()))
        if failed {
            var closing = Ballast_V1_WorkflowTaskFailedEventAttributes()
            closing.startedEventID = started
            add(.workflowTaskFailed(closing))
        } else {
            var closing = Ballast_V1_WorkflowTaskCompletedEventAttributes()
            closing.startedEventID = started
            add(.workflowTaskCompleted(closing))
        }
        return started
    }

    mutating func scheduleActivity(_ id: String, maximumAttempts: Int32 = 0) -> Int64 {
        var scheduled = Ballast_V1_ActivityTaskScheduledEventAttributes()
        scheduled.activityID = id
        scheduled.retryPolicy.maximumAttempts = maximumAttempts
        return add(.activityTaskScheduled(scheduled))
    }

    mutating func startActivity(_ scheduled: Int64, attempt: Int32) {
        var started = Ballast_V1_ActivityTaskStartedEventAttributes()
        started.scheduledEventID = scheduled
        started.attempt = attempt
        add(.activityTaskStarted(started))
    }

    mutating func completeActivity(_ scheduled: Int64, attempt: Int32 = 1) {
        startActivity(scheduled, attempt: attempt)
        var completed = Ballast_V1_ActivityTaskCompletedEventAttributes()
        completed.scheduledEventID = scheduled
        add(.activityTaskCompleted(completed))
    }

    mutating func failActivity(_ scheduled: Int64, attempt: Int32) {
        startActivity(scheduled, attempt: attempt)
        var failed = Ballast_V1_ActivityTaskFailedEventAttributes()
        failed.scheduledEventID = scheduled
        add(.activityTaskFailed(failed))
    }

    mutating func timeOutActivity(_ scheduled: Int64, startedAttempt: Int32?) {
        if let startedAttempt { startActivity(scheduled, attempt: startedAttempt) }
        var timedOut = Ballast_V1_ActivityTaskTimedOutEventAttributes()
        timedOut.scheduledEventID = scheduled
        add(.activityTaskTimedOut(timedOut))
    }

    mutating func startTimer(_ id: String, nanoseconds: Int64) -> Int64 {
        var timer = Ballast_V1_TimerStartedEventAttributes()
        timer.timerID = id
        timer.startToFireTimeoutNanos = nanoseconds
        return add(.timerStarted(timer))
    }

    mutating func fireTimer(_ id: String, started: Int64, at eventTime: Int64) {
        var fired = Ballast_V1_TimerFiredEventAttributes()
        fired.timerID = id
        fired.startedEventID = started
        add(.timerFired(fired), at: eventTime)
    }

    mutating func signal(_ name: String) {
        var signaled = Ballast_V1_WorkflowExecutionSignaledEventAttributes()
        signaled.signalName = name
        add(.workflowExecutionSignaled(signaled))
    }

    mutating func complete() {
        add(.workflowExecutionCompleted(Ballast_V1_WorkflowExecutionCompletedEventAttributes()))
    }

    mutating func continueAsNew(_ next: String) {
        var continued = Ballast_V1_WorkflowExecutionContinuedAsNewEventAttributes()
        continued.newExecutionRunID = next
        add(.workflowExecutionContinuedAsNew(continued))
    }
}
