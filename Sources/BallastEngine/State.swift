import BallastProto

/// A registered namespace.
struct NamespaceState: Equatable {
    var name: String
    var description: String = ""
    var retentionNanos: Int64
    var searchAttributes: [String: Ballast_V1_IndexedValueType] = [:]
}

/// The run's one pending workflow task (Temporal has at most one at a time).
struct WorkflowTaskState: Equatable {
    /// Written for attempt 1; reserved but unwritten (transient) for attempts > 1.
    var scheduledEventId: Int64
    var attempt: Int32
    var scheduledTime: Int64
    var sequence: UInt64
    /// 0 until started.
    var startedEventId: Int64 = 0
    var startedTime: Int64 = 0
    var identity: String = ""
    var requestId: String = ""

    var isStarted: Bool { startedEventId != 0 }
    var isTransient: Bool { attempt > 1 }
}

/// Where an activity is in its life.
enum ActivityPhase: Int, Equatable {
    case scheduled = 0, started = 1, backoff = 2
}

/// A scheduled activity that has not reached its final outcome.
struct PendingActivity: Equatable {
    var scheduledEventId: Int64
    var attributes: Ballast_V1_ActivityTaskScheduledEventAttributes
    var firstScheduledTime: Int64
    var attempt: Int32 = 1
    var attemptScheduledTime: Int64
    var phase: ActivityPhase = .scheduled
    var sequence: UInt64
    var startedTime: Int64 = 0
    var identity: String = ""
    var requestId: String = ""
    var lastHeartbeatTime: Int64 = 0
    var heartbeatDetails: Ballast_V1_Payloads?
    var lastFailure: Ballast_V1_Failure?
    var retryTime: Int64 = 0
    var cancelRequestedEventId: Int64 = 0

    var activityId: String { attributes.activityID }
    var cancelRequested: Bool { cancelRequestedEventId != 0 }
    /// What this activity keeps for its next attempt outside the history: its heartbeat details'
    /// and its last failure's bytes (`payloadBytes`, `failureBytes`).
    var keptBytes: Int { (heartbeatDetails.map(payloadBytes) ?? 0) + (lastFailure.map(failureBytes) ?? 0) }
}

/// A started timer.
struct PendingTimer: Equatable {
    var timerId: String
    var startedEventId: Int64
    var fireTime: Int64
}

/// A child workflow the run initiated and that has not closed.
struct PendingChild: Equatable {
    var initiatedEventId: Int64
    var namespace: String
    var workflowId: String
    var runId: String = ""
    var workflowType: String
    var parentClosePolicy: Ballast_V1_ParentClosePolicy
    var startedEventId: Int64 = 0
}

/// The parent of a child run.
struct ParentLink: Equatable {
    var namespace: String
    var workflowId: String
    var runId: String
    var initiatedEventId: Int64

    var key: RunKey { RunKey(namespace: namespace, workflowId: workflowId, runId: runId) }
}

/// What a run started with a retry policy needs to start its next attempt.
struct RunRetry: Equatable {
    var policy: Ballast_V1_RetryPolicy
    var attempt: Int32
    var input: Ballast_V1_Payloads?
    var header: Ballast_V1_Header?
    var runTimeout: Int64
}

/// The mutable state of one open run.
struct RunState: Equatable {
    var key: RunKey
    var workflowType: String
    var taskQueue: String
    var startTime: Int64
    var startRequestId: String
    var firstRunId: String
    var nextEventId: Int64 = 1
    var historyHash: UInt64 = RollingHash.empty
    var workflowTaskTimeout: Int64
    var runExpiration: Int64 = 0
    var executionExpiration: Int64 = 0
    /// The first workflow task is held back until this time (continue-as-new backoff).
    var backoffUntil: Int64 = 0
    var parent: ParentLink?
    var workflowTask: WorkflowTaskState?
    var previousStartedEventId: Int64 = 0
    /// Events that arrived while a workflow task was in flight; written after it resolves.
    var buffered: [Ballast_V1_HistoryEvent] = []
    /// The counted size of `buffered` (`RunState.countedSize`): derived from it, so not in the
    /// snapshot (a restore counts it again). From entry format 4 it counts toward the history size.
    var bufferedSize: Int64 = 0
    /// Pending activities by scheduled event id. Changed only through `putActivity` and
    /// `takeActivity`, which keep `keptActivityBytes` in step.
    private(set) var activities: [Int64: PendingActivity] = [:]
    /// What the pending activities keep for their next attempts outside the history: heartbeat
    /// details and last failures (`PendingActivity.keptBytes`). Derived from `activities`, so
    /// not in the snapshot (a restore counts it again). Entries of format 5 on limit it
    /// (`EngineLimits.maxKeptActivityBytes`).
    private(set) var keptActivityBytes = 0
    var activityIds: [String: Int64] = [:]
    var timers: [String: PendingTimer] = [:]
    var children: [Int64: PendingChild] = [:]
    var cancelRequested = false
    var signalRequestIds: [String] = []
    var signalRequestIdSet: Set<String> = []
    var pendingSignals = 0
    var memo = Ballast_V1_Memo()
    var searchAttributes = Ballast_V1_SearchAttributes()
    var historyWarned = false
    /// Counted bytes of the events appended by entries of format 4 on (`historySizeFormatVersion`).
    var historySizeBytes: Int64 = 0
    var historySizeWarned = false
    var retry: RunRetry?

    /// Adds or replaces a pending activity.
    mutating func putActivity(_ activity: PendingActivity) {
        let previous = activities.updateValue(activity, forKey: activity.scheduledEventId)
        keptActivityBytes += activity.keptBytes - (previous?.keptBytes ?? 0)
    }

    /// Removes a pending activity, returning it.
    @discardableResult
    mutating func takeActivity(_ scheduledId: Int64) -> PendingActivity? {
        guard let removed = activities.removeValue(forKey: scheduledId) else { return nil }
        keptActivityBytes -= removed.keptBytes
        return removed
    }

    /// A workflow task is running (or is a transient retry): new events wait in `buffered`.
    var isTaskInFlight: Bool {
        guard let task = workflowTask else { return false }
        return task.isStarted || task.isTransient
    }

    var historyLength: Int64 { nextEventId - 1 }
}

/// What stays in memory of a closed run until its retention ends (visibility and reuse policy).
struct ClosedRun: Equatable {
    var key: RunKey
    var workflowType: String
    var taskQueue: String
    var status: Ballast_V1_WorkflowExecutionStatus
    var startTime: Int64
    var closeTime: Int64
    var historyLength: Int64
    var historyHash: UInt64
    var startRequestId: String
    var firstRunId: String
    var memo: Ballast_V1_Memo
    var searchAttributes: Ballast_V1_SearchAttributes
    var parent: ParentLink?
    var retentionExpiry: Int64
}
