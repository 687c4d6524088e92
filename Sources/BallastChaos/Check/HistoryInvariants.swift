import BallastProto

/// What the acknowledgement check needs from one run's history, kept after the events are
/// dropped (a soak reads millions of events; only this stays in memory).
public struct RunHistorySummary: Sendable, Equatable {
    /// How an activity closed.
    public enum ActivityClose: String, Sendable, Equatable {
        case completed, failed, timedOut = "timed out", canceled
    }

    /// How a workflow task closed (keyed by its started event id).
    public enum WorkflowTaskClose: String, Sendable, Equatable {
        case completed, failed, timedOut = "timed out"
    }

    /// An activity's closing event, with the attempt of the ActivityTaskStarted written with it
    /// (nil: it closed without a started attempt, e.g. timed out while backing off).
    public struct ActivityOutcome: Sendable, Equatable {
        /// How it closed.
        public var close: ActivityClose
        /// The attempt that produced the outcome.
        public var startedAttempt: Int32?

        /// An outcome.
        public init(close: ActivityClose, startedAttempt: Int32?) {
            self.close = close
            self.startedAttempt = startedAttempt
        }
    }

    /// The workflow id.
    public var workflowID: String
    /// The run id.
    public var runID: String
    /// Events read.
    public var events = 0
    /// The first event is WorkflowExecutionStarted.
    public var hasStartedEvent = false
    /// The history ends with a close event.
    public var closed = false
    /// The next run, when this one continued as new (or was retried).
    public var nextRunID: String?
    /// WorkflowExecutionSignaled events per signal name.
    public var signals: [String: Int] = [:]
    /// Scheduled event ids of the run's activities.
    public var scheduledActivities: Set<Int64> = []
    /// The first closing event of each activity, by scheduled event id.
    public var activityOutcomes: [Int64: ActivityOutcome] = [:]
    /// The closing event of each workflow task, by its started event id.
    public var workflowTaskCloses: [Int64: WorkflowTaskClose] = [:]
    /// Events per caller identity the history records (started, signaled, task started): who
    /// started the run, who signaled it, which workers took its tasks.
    public var identities: [String: Int] = [:]

    /// An empty summary of a run.
    public init(workflowID: String, runID: String) {
        self.workflowID = workflowID
        self.runID = runID
    }
}

/// The invariants a single history must satisfy, as pure functions: single-completion,
/// attempts and timers (docs/reliability.md, "Invariants").
public enum HistoryInvariants {
    /// Summarizes `events` of a run and checks the per-history invariants on them.
    public static func analyze(workflowID: String, runID: String,
                               events: [Ballast_V1_HistoryEvent]) -> (summary: RunHistorySummary, violations: [ChaosViolation]) {
        var summary = RunHistorySummary(workflowID: workflowID, runID: runID)
        var violations: [ChaosViolation] = []
        func violate(_ invariant: String, _ detail: String) {
            violations.append(ChaosViolation(invariant: invariant, workflowID: workflowID, detail: "run \(runID): " + detail))
        }
        var retryPolicies: [Int64: Ballast_V1_RetryPolicy] = [:]
        var lastStartedAttempt: [Int64: Int32] = [:]
        var timers: [Int64: Ballast_V1_HistoryEvent] = [:]
        var firedTimers: Set<Int64> = []
        summary.events = events.count
        summary.hasStartedEvent = events.first.map { if case .workflowExecutionStarted? = $0.attributes { true } else { false } } ?? false
        for event in events {
            switch event.attributes {
            case .activityTaskScheduled(let scheduled)?:
                summary.scheduledActivities.insert(event.eventID)
                retryPolicies[event.eventID] = scheduled.retryPolicy
            case .activityTaskStarted(let started)?:
                lastStartedAttempt[started.scheduledEventID] = started.attempt
                if let problem = attemptProblem(started, policy: retryPolicies[started.scheduledEventID]) {
                    violate(ChaosInvariant.attempts, "event \(event.eventID): \(problem)")
                }
            case .activityTaskCompleted(let closing)?:
                closeActivity(closing.scheduledEventID, .completed, event, &summary, lastStartedAttempt, violate)
            case .activityTaskFailed(let closing)?:
                closeActivity(closing.scheduledEventID, .failed, event, &summary, lastStartedAttempt, violate)
            case .activityTaskTimedOut(let closing)?:
                closeActivity(closing.scheduledEventID, .timedOut, event, &summary, lastStartedAttempt, violate)
            case .activityTaskCanceled(let closing)?:
                closeActivity(closing.scheduledEventID, .canceled, event, &summary, lastStartedAttempt, violate)
            case .timerStarted?:
                timers[event.eventID] = event
            case .timerFired(let fired)?:
                if let problem = timerProblem(fired: event, started: timers[fired.startedEventID], alreadyFired: firedTimers.contains(fired.startedEventID)) {
                    violate(ChaosInvariant.timers, problem)
                }
                firedTimers.insert(fired.startedEventID)
            case .workflowExecutionSignaled(let signaled)?:
                summary.signals[signaled.signalName, default: 0] += 1
            case .workflowTaskCompleted(let closing)?:
                summary.workflowTaskCloses[closing.startedEventID] = .completed
            case .workflowTaskFailed(let closing)?:
                summary.workflowTaskCloses[closing.startedEventID] = .failed
            case .workflowTaskTimedOut(let closing)?:
                summary.workflowTaskCloses[closing.startedEventID] = .timedOut
            default:
                break
            }
            noteClose(event, &summary)
            if let identity = callerIdentity(event) { summary.identities[identity, default: 0] += 1 }
        }
        return (summary, violations)
    }

    /// The caller identity an event records, for the events a client or a worker causes.
    static func callerIdentity(_ event: Ballast_V1_HistoryEvent) -> String? {
        switch event.attributes {
        case .workflowExecutionStarted(let started)?: started.identity
        case .workflowExecutionSignaled(let signaled)?: signaled.identity
        case .workflowTaskStarted(let started)?: started.identity
        case .activityTaskStarted(let started)?: started.identity
        default: nil
        }
    }

    /// Records the run's close event and the next run it names.
    static func noteClose(_ event: Ballast_V1_HistoryEvent, _ summary: inout RunHistorySummary) {
        switch event.attributes {
        case .workflowExecutionContinuedAsNew(let next)?:
            summary.closed = true
            summary.nextRunID = next.newExecutionRunID
        case .workflowExecutionFailed(let failed)?:
            summary.closed = true
            if !failed.newExecutionRunID.isEmpty { summary.nextRunID = failed.newExecutionRunID }
        case .workflowExecutionTimedOut(let timedOut)?:
            summary.closed = true
            if !timedOut.newExecutionRunID.isEmpty { summary.nextRunID = timedOut.newExecutionRunID }
        case .workflowExecutionCompleted?, .workflowExecutionCanceled?, .workflowExecutionTerminated?:
            summary.closed = true
        default:
            break
        }
    }

    /// single-completion: an activity's second closing event, or one for an activity never scheduled.
    static func closeActivity(_ scheduledEventID: Int64, _ close: RunHistorySummary.ActivityClose, _ event: Ballast_V1_HistoryEvent,
                              _ summary: inout RunHistorySummary, _ lastStartedAttempt: [Int64: Int32],
                              _ violate: (String, String) -> Void) {
        guard summary.scheduledActivities.contains(scheduledEventID) else {
            violate(ChaosInvariant.singleCompletion, "event \(event.eventID) closes activity \(scheduledEventID), which was never scheduled")
            return
        }
        if let first = summary.activityOutcomes[scheduledEventID] {
            violate(ChaosInvariant.singleCompletion,
                    "activity \(scheduledEventID) closed twice: \(first.close.rawValue), then \(close.rawValue) at event \(event.eventID)")
            return
        }
        summary.activityOutcomes[scheduledEventID] = RunHistorySummary.ActivityOutcome(close: close, startedAttempt: lastStartedAttempt[scheduledEventID])
    }

    /// attempts: an attempt below 1, or above a policy's positive maximum.
    static func attemptProblem(_ started: Ballast_V1_ActivityTaskStartedEventAttributes, policy: Ballast_V1_RetryPolicy?) -> String? {
        guard let policy else { return "activity \(started.scheduledEventID) started but was never scheduled" }
        if started.attempt < 1 { return "activity \(started.scheduledEventID) attempt \(started.attempt) is below 1" }
        if policy.maximumAttempts > 0 && started.attempt > policy.maximumAttempts {
            return "activity \(started.scheduledEventID) attempt \(started.attempt) exceeds the retry policy's maximum of \(policy.maximumAttempts)"
        }
        return nil
    }

    /// timers: a fire before start time + duration (no slack: engine time never moves back,
    /// DESIGN.md "Time"), a second fire, or a fire of an unknown timer.
    static func timerProblem(fired: Ballast_V1_HistoryEvent, started: Ballast_V1_HistoryEvent?, alreadyFired: Bool) -> String? {
        guard case .timerFired(let attributes)? = fired.attributes else { return nil }
        guard let started, case .timerStarted(let timer)? = started.attributes else {
            return "event \(fired.eventID) fires timer \(attributes.timerID) of event \(attributes.startedEventID), which never started"
        }
        if alreadyFired { return "timer \(timer.timerID) (event \(started.eventID)) fired twice" }
        let due = started.eventTimeUnixNanos + timer.startToFireTimeoutNanos
        if fired.eventTimeUnixNanos < due {
            return "timer \(timer.timerID) (event \(started.eventID)) fired at \(fired.eventTimeUnixNanos), "
                + "\(due - fired.eventTimeUnixNanos) ns before it was due at \(due)"
        }
        return nil
    }
}
