import BallastProto

/// Marks an outcome event whose started event id is "the event just before me" (filled on append).
let startedEventIdOfPreviousEvent: Int64 = -1

extension WorkflowEngine {
    /// ScheduleActivityTask: applies Temporal's timeout and retry defaults and queues attempt 1.
    mutating func scheduleActivity(
        _ command: Ballast_V1_ScheduleActivityTaskCommandAttributes, run: inout RunState, completedEventId: Int64,
        _ context: inout ApplyContext
    ) {
        var event = Ballast_V1_ActivityTaskScheduledEventAttributes()
        event.activityID = command.activityID
        event.activityType = command.activityType
        event.taskQueue = command.taskQueue.isEmpty ? run.taskQueue : command.taskQueue
        if command.hasHeader { event.header = command.header }
        if command.hasInput { event.input = command.input }
        var scheduleToClose = command.scheduleToCloseTimeoutNanos
        if scheduleToClose == 0, run.runExpiration > 0 { scheduleToClose = run.runExpiration - context.now }
        var startToClose = command.startToCloseTimeoutNanos == 0 ? scheduleToClose : command.startToCloseTimeoutNanos
        var scheduleToStart = command.scheduleToStartTimeoutNanos == 0 ? scheduleToClose : command.scheduleToStartTimeoutNanos
        if scheduleToClose > 0 {
            startToClose = min(startToClose, scheduleToClose)
            scheduleToStart = min(scheduleToStart, scheduleToClose)
        }
        event.scheduleToCloseTimeoutNanos = scheduleToClose
        event.scheduleToStartTimeoutNanos = scheduleToStart
        event.startToCloseTimeoutNanos = startToClose
        event.heartbeatTimeoutNanos = min(command.heartbeatTimeoutNanos, startToClose)
        event.workflowTaskCompletedEventID = completedEventId
        event.retryPolicy = RetryRules.withDefaults(command.retryPolicy, bounded: context.boundedRetries)
        let scheduledId = run.append(.activityTaskScheduled(event), &context)
        let activity = PendingActivity(
            scheduledEventId: scheduledId, attributes: event, firstScheduledTime: context.now,
            attemptScheduledTime: context.now, sequence: takeSequence())
        run.putActivity(activity)
        run.activityIds[event.activityID] = scheduledId
        context.ready(readyTask(run.key, activity))
        if let due = activityDeadline(run.key, activity) { context.arm(due) }
    }

    /// RequestCancelActivityTask; returns true when the activity was canceled at once (it had not started).
    mutating func cancelActivity(
        _ scheduledId: Int64, run: inout RunState, completedEventId: Int64, _ context: inout ApplyContext
    ) -> Bool {
        guard var activity = run.activities[scheduledId] else { return false }
        var requested = Ballast_V1_ActivityTaskCancelRequestedEventAttributes()
        requested.scheduledEventID = scheduledId
        requested.workflowTaskCompletedEventID = completedEventId
        let requestedId = run.append(.activityTaskCancelRequested(requested), &context)
        guard activity.phase == .started else {
            removeActivity(scheduledId, from: &run)
            var canceled = Ballast_V1_ActivityTaskCanceledEventAttributes()
            canceled.latestCancelRequestedEventID = requestedId
            canceled.scheduledEventID = scheduledId
            run.append(.activityTaskCanceled(canceled), &context)
            return true
        }
        activity.cancelRequestedEventId = requestedId
        run.putActivity(activity)
        return false
    }

    func removeActivity(_ scheduledId: Int64, from run: inout RunState) {
        if let activity = run.takeActivity(scheduledId) {
            run.activityIds.removeValue(forKey: activity.activityId)
        }
    }

    /// The dispatchable task of an activity attempt.
    func readyTask(_ key: RunKey, _ activity: PendingActivity) -> ReadyTask {
        ReadyTask(kind: .activity, taskQueue: activity.attributes.taskQueue, run: key,
                  scheduledEventId: activity.scheduledEventId, attempt: activity.attempt,
                  activityId: activity.activityId, sequence: activity.sequence)
    }

    /// The earliest deadline of an activity in its current phase.
    func activityDeadline(_ key: RunKey, _ activity: PendingActivity) -> DueTimer? {
        if activity.phase == .backoff {
            var request = Ballast_V1_ActivityRetryDueRequest()
            request.namespace = key.namespace
            request.workflowExecution = key.execution
            request.scheduledEventID = activity.scheduledEventId
            request.attempt = activity.attempt
            return DueTimer(dueTimeUnixNanos: activity.retryTime, run: key, payload: .activityRetryDue(request))
        }
        // Candidates in a fixed order, so equal deadlines always pick the same type.
        var earliest: (time: Int64, type: Ballast_V1_TimeoutType)?
        for type in [Ballast_V1_TimeoutType.startToClose, .scheduleToStart, .scheduleToClose, .heartbeat] {
            if let time = activityTimeoutDeadline(activity, type), earliest.map({ time < $0.time }) ?? true {
                earliest = (time, type)
            }
        }
        guard let earliest else { return nil }
        var request = Ballast_V1_ActivityTimedOutRequest()
        request.namespace = key.namespace
        request.workflowExecution = key.execution
        request.scheduledEventID = activity.scheduledEventId
        request.attempt = activity.attempt
        request.timeoutType = earliest.type
        return DueTimer(dueTimeUnixNanos: earliest.time, run: key, payload: .activityTimedOut(request))
    }

    /// The deadline of one timeout type for an activity, if it applies in its current phase.
    func activityTimeoutDeadline(_ activity: PendingActivity, _ type: Ballast_V1_TimeoutType) -> Int64? {
        let attributes = activity.attributes
        switch type {
        case .scheduleToClose where attributes.scheduleToCloseTimeoutNanos > 0:
            return activity.firstScheduledTime.addingSaturated(attributes.scheduleToCloseTimeoutNanos)
        case .scheduleToStart where activity.phase == .scheduled && attributes.scheduleToStartTimeoutNanos > 0:
            return activity.attemptScheduledTime.addingSaturated(attributes.scheduleToStartTimeoutNanos)
        case .startToClose where activity.phase == .started && attributes.startToCloseTimeoutNanos > 0:
            return activity.startedTime.addingSaturated(attributes.startToCloseTimeoutNanos)
        case .heartbeat where activity.phase == .started && attributes.heartbeatTimeoutNanos > 0:
            return max(activity.startedTime, activity.lastHeartbeatTime).addingSaturated(attributes.heartbeatTimeoutNanos)
        default:
            return nil
        }
    }

    /// Takes out the open run and pending activity an activity token names (current attempt,
    /// started if required); a mismatch puts the run back untouched and rejects.
    mutating func takeActivityRun(
        _ token: Ballast_V1_TaskToken, mustBeStarted: Bool
    ) throws(EngineRejection) -> (RunState, PendingActivity) {
        guard token.isActivity else { throw .staleTaskToken("a workflow task token was given for an activity") }
        guard let run = runs.removeValue(forKey: token.runID) else {
            throw .staleTaskToken("run \(token.namespace)/\(token.workflowID)/\(token.runID) is not open")
        }
        do {
            let activity = try Self.checkActivity(run, token, mustBeStarted: mustBeStarted)
            return (run, activity)
        } catch {
            runs[token.runID] = run
            throw error
        }
    }

    private static func checkActivity(
        _ run: RunState, _ token: Ballast_V1_TaskToken, mustBeStarted: Bool
    ) throws(EngineRejection) -> PendingActivity {
        guard run.key.namespace == token.namespace, run.key.workflowId == token.workflowID else {
            throw .staleTaskToken("run \(token.runID) does not belong to \(token.namespace)/\(token.workflowID)")
        }
        guard let activity = run.activities[token.scheduledEventID], activity.attempt == token.attempt else {
            throw .staleTaskToken("activity \(token.scheduledEventID) attempt \(token.attempt) of \(run.key) is not pending")
        }
        guard token.taskQueue.isEmpty || token.taskQueue == activity.attributes.taskQueue else {
            throw .staleTaskToken("the token names task queue \(token.taskQueue), not the activity's")
        }
        if mustBeStarted, activity.phase != .started {
            throw .staleTaskToken("activity \(token.scheduledEventID) attempt \(token.attempt) of \(run.key) is not started")
        }
        return activity
    }
}
