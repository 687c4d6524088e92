import BallastProto

extension SnapshotCodec {
    static func encode(_ run: RunState) -> Ballast_V1_SnapshotRun {
        var message = Ballast_V1_SnapshotRun()
        (message.namespace, message.workflowID, message.runID) = (run.key.namespace, run.key.workflowId, run.key.runId)
        message.workflowType = run.workflowType
        message.taskQueue = run.taskQueue
        message.startTimeUnixNanos = run.startTime
        message.startRequestID = run.startRequestId
        message.firstRunID = run.firstRunId
        message.nextEventID = run.nextEventId
        message.historyHash = run.historyHash
        message.workflowTaskTimeoutNanos = run.workflowTaskTimeout
        message.runExpirationTimeUnixNanos = run.runExpiration
        message.executionExpirationTimeUnixNanos = run.executionExpiration
        message.backoffUntilUnixNanos = run.backoffUntil
        if let parent = run.parent { message.parent = encode(parent) }
        if let task = run.workflowTask { message.workflowTask = encode(task) }
        message.previousStartedEventID = run.previousStartedEventId
        message.buffered = run.buffered
        message.activities = run.activities.keys.sorted().compactMap { run.activities[$0].map(encode) }
        message.timers = run.timers.keys.sorted().compactMap { id in
            run.timers[id].map { timer in
                var entry = Ballast_V1_SnapshotTimer()
                (entry.timerID, entry.startedEventID, entry.fireTimeUnixNanos) = (timer.timerId, timer.startedEventId, timer.fireTime)
                return entry
            }
        }
        message.children = run.children.keys.sorted().compactMap { run.children[$0].map(encode) }
        message.cancelRequested = run.cancelRequested
        message.signalRequestIds = run.signalRequestIds
        message.pendingSignals = Int32(run.pendingSignals)
        message.memo = run.memo
        message.searchAttributes = run.searchAttributes
        message.historyWarned = run.historyWarned
        message.historySizeBytes = run.historySizeBytes
        message.historySizeWarned = run.historySizeWarned
        if let retry = run.retry {
            message.retry.policy = retry.policy
            message.retry.attempt = retry.attempt
            if let input = retry.input { message.retry.input = input }
            if let header = retry.header { message.retry.header = header }
            message.retry.workflowRunTimeoutNanos = retry.runTimeout
        }
        return message
    }

    static func decode(_ message: Ballast_V1_SnapshotRun) -> RunState {
        var run = RunState(
            key: RunKey(namespace: message.namespace, workflowId: message.workflowID, runId: message.runID),
            workflowType: message.workflowType, taskQueue: message.taskQueue, startTime: message.startTimeUnixNanos,
            startRequestId: message.startRequestID, firstRunId: message.firstRunID,
            workflowTaskTimeout: message.workflowTaskTimeoutNanos)
        run.nextEventId = message.nextEventID
        run.historyHash = message.historyHash
        run.runExpiration = message.runExpirationTimeUnixNanos
        run.executionExpiration = message.executionExpirationTimeUnixNanos
        run.backoffUntil = message.backoffUntilUnixNanos
        run.parent = message.hasParent ? decode(message.parent) : nil
        run.workflowTask = message.hasWorkflowTask ? decode(message.workflowTask) : nil
        run.previousStartedEventId = message.previousStartedEventID
        run.buffered = message.buffered
        run.bufferedSize = message.buffered.reduce(0) { size, event in
            event.attributes.map { size.addingSaturated(RunState.countedSize($0)) } ?? size
        }
        for entry in message.activities {
            let activity = decode(entry)
            run.putActivity(activity)
            run.activityIds[activity.activityId] = activity.scheduledEventId
        }
        for entry in message.timers {
            run.timers[entry.timerID] = PendingTimer(timerId: entry.timerID, startedEventId: entry.startedEventID,
                                                     fireTime: entry.fireTimeUnixNanos)
        }
        for entry in message.children { run.children[entry.initiatedEventID] = decode(entry) }
        run.cancelRequested = message.cancelRequested
        run.signalRequestIds = message.signalRequestIds
        run.signalRequestIdSet = Set(message.signalRequestIds)
        run.pendingSignals = Int(message.pendingSignals)
        run.memo = message.memo
        run.searchAttributes = message.searchAttributes
        run.historyWarned = message.historyWarned
        run.historySizeBytes = message.historySizeBytes
        run.historySizeWarned = message.historySizeWarned
        if message.hasRetry {
            let retry = message.retry
            run.retry = RunRetry(policy: retry.policy, attempt: retry.attempt, input: retry.hasInput ? retry.input : nil,
                                 header: retry.hasHeader ? retry.header : nil, runTimeout: retry.workflowRunTimeoutNanos)
        }
        return run
    }

    static func encode(_ summary: ClosedRun) -> Ballast_V1_SnapshotClosedRun {
        var message = Ballast_V1_SnapshotClosedRun()
        (message.namespace, message.workflowID, message.runID) = (summary.key.namespace, summary.key.workflowId, summary.key.runId)
        message.workflowType = summary.workflowType
        message.taskQueue = summary.taskQueue
        message.status = summary.status
        message.startTimeUnixNanos = summary.startTime
        message.closeTimeUnixNanos = summary.closeTime
        message.historyLength = summary.historyLength
        message.historyHash = summary.historyHash
        message.startRequestID = summary.startRequestId
        message.firstRunID = summary.firstRunId
        message.memo = summary.memo
        message.searchAttributes = summary.searchAttributes
        if let parent = summary.parent { message.parent = encode(parent) }
        message.retentionExpiryUnixNanos = summary.retentionExpiry
        return message
    }

    static func decode(_ message: Ballast_V1_SnapshotClosedRun) -> ClosedRun {
        ClosedRun(
            key: RunKey(namespace: message.namespace, workflowId: message.workflowID, runId: message.runID),
            workflowType: message.workflowType, taskQueue: message.taskQueue, status: message.status,
            startTime: message.startTimeUnixNanos, closeTime: message.closeTimeUnixNanos,
            historyLength: message.historyLength, historyHash: message.historyHash,
            startRequestId: message.startRequestID, firstRunId: message.firstRunID, memo: message.memo,
            searchAttributes: message.searchAttributes, parent: message.hasParent ? decode(message.parent) : nil,
            retentionExpiry: message.retentionExpiryUnixNanos)
    }
}
