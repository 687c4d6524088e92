import TransfersKit

/// acknowledged-present: every call the cluster acknowledged is visible in the final history
/// (DESIGN.md, Guarantees 1). A pure function of the ack-log records and the run summaries.
///
/// The rules follow from what the engine accepts (docs/engine.md): a response is accepted only
/// for the current, started attempt of a pending task of an open run, so an acknowledged
/// response is always the event that closed that attempt — nothing can close it "otherwise
/// first". The exceptions are what the engine never writes:
/// * a retryable activity failure writes no event (the next attempt's ActivityTaskStarted, or
///   the final close, shows it), so an acknowledged failure of attempt N needs the activity's
///   closing event to be a failure of attempt N, or to come from a later attempt, or to close
///   it without a started attempt (timed out or canceled while backing off); a run that closed
///   with the activity still pending also satisfies it;
/// * a workflow task of attempt > 1 is transient: if the engine failed it (a bad command) no
///   event is written, so a completion of such a task may leave no trace; a failure of such a
///   task is not checked.
public enum AcknowledgementInvariant {
    /// Checks `records` against `runs` (every run read, by workflow id); how many records were
    /// checked and the violations.
    public static func check(_ records: [AckRecord], runs: [String: [RunHistorySummary]]) -> (checked: Int, violations: [ChaosViolation]) {
        var checked = 0
        var violations: [ChaosViolation] = []
        var signalGroups: [SignalTarget: Set<String>] = [:]
        for (index, record) in records.enumerated() {
            let runsOfWorkflow = runs[record.workflowID] ?? []
            if record.kind == .signal {
                let key = SignalTarget(workflowID: record.workflowID, runID: record.runID, name: record.signalName ?? "")
                signalGroups[key, default: []].insert(record.requestID ?? "unnamed-\(index)")
                checked += 1
                continue
            }
            guard let problem = problem(record, runsOfWorkflow) else {
                if isCheckable(record) { checked += 1 }
                continue
            }
            checked += 1
            violations.append(ChaosViolation(invariant: ChaosInvariant.acknowledgedPresent, workflowID: record.workflowID,
                                             detail: "acknowledged \(record.kind.rawValue) at \(record.time): \(problem)"))
        }
        for (target, requestIDs) in signalGroups.sorted(by: { $0.key < $1.key }) {
            if let problem = signalProblem(target, acknowledged: requestIDs.count, runs[target.workflowID] ?? []) {
                violations.append(ChaosViolation(invariant: ChaosInvariant.acknowledgedPresent, workflowID: target.workflowID, detail: problem))
            }
        }
        return (checked, violations)
    }

    /// Whether the history can show anything about `record` (see the type's doc).
    static func isCheckable(_ record: AckRecord) -> Bool {
        !(record.kind == .workflowTaskFailed && (record.attempt ?? 1) > 1)
    }

    /// What is wrong with one non-signal record, or nil.
    static func problem(_ record: AckRecord, _ runs: [RunHistorySummary]) -> String? {
        guard let run = runs.first(where: { $0.runID == record.runID }) else {
            return "run \(record.runID) is not in the history (runs of this workflow: \(runs.map(\.runID).joined(separator: ", ")))"
        }
        switch record.kind {
        case .start:
            return run.hasStartedEvent ? nil : "run \(run.runID) has no WorkflowExecutionStarted event"
        case .signal:
            return nil
        case .activityCompleted, .activityFailed, .activityCanceled:
            return activityProblem(record, run)
        case .workflowTaskCompleted, .workflowTaskFailed:
            return workflowTaskProblem(record, run)
        }
    }

    /// The activity rules (see the type's doc).
    static func activityProblem(_ record: AckRecord, _ run: RunHistorySummary) -> String? {
        guard let scheduled = record.scheduledEventID, let attempt = record.attempt else { return "the record has no scheduled event id or attempt" }
        let name = "activity \(scheduled) (\(record.activityID ?? "?")) attempt \(attempt) of run \(run.runID)"
        guard run.scheduledActivities.contains(scheduled) else { return "\(name) was never scheduled" }
        guard let outcome = run.activityOutcomes[scheduled] else {
            if record.kind == .activityFailed { return nil }  // retried, and the run ended with the activity pending
            return "\(name) has no closing event\(run.closed ? "" : " (the run is still open)")"
        }
        let seen = "history closes it \(outcome.close.rawValue)" + (outcome.startedAttempt.map { " from attempt \($0)" } ?? " without a started attempt")
        switch record.kind {
        case .activityCompleted:
            return outcome.close == .completed && outcome.startedAttempt == attempt ? nil : "\(name) completed, but \(seen)"
        case .activityCanceled:
            return outcome.close == .canceled && outcome.startedAttempt == attempt ? nil : "\(name) canceled, but \(seen)"
        default:
            guard let started = outcome.startedAttempt else { return nil }
            if started > attempt { return nil }
            return started == attempt && outcome.close == .failed ? nil : "\(name) failed, but \(seen)"
        }
    }

    /// The workflow task rules (see the type's doc).
    static func workflowTaskProblem(_ record: AckRecord, _ run: RunHistorySummary) -> String? {
        guard let started = record.startedEventID, let attempt = record.attempt else { return "the record has no started event id or attempt" }
        let name = "workflow task started at event \(started) (attempt \(attempt)) of run \(run.runID)"
        let close = run.workflowTaskCloses[started]
        if record.kind == .workflowTaskFailed {
            guard attempt == 1 else { return nil }
            return close == .failed ? nil : "\(name) failed, but history shows \(close?.rawValue ?? "no close for it")"
        }
        switch close {
        case .completed?, .failed?: return nil
        case nil where attempt > 1: return nil
        case .timedOut?, nil: return "\(name) completed, but history shows \(close?.rawValue ?? "no close for it")"
        }
    }

    /// Acknowledged signals with distinct request ids to one target need as many
    /// WorkflowExecutionSignaled events of that name in the target run and the runs it
    /// continued into (an empty run id targets whichever run was current: every run counts).
    static func signalProblem(_ target: SignalTarget, acknowledged: Int, _ runs: [RunHistorySummary]) -> String? {
        var chain: [RunHistorySummary] = []
        if target.runID.isEmpty {
            chain = runs
        } else {
            var next: String? = target.runID
            while let runID = next, let run = runs.first(where: { $0.runID == runID }), !chain.contains(where: { $0.runID == runID }) {
                chain.append(run)
                next = run.nextRunID
            }
            guard !chain.isEmpty else {
                return "\(acknowledged) acknowledged \(target.name) signal(s) to run \(target.runID), which is not in the history"
            }
        }
        let seen = chain.reduce(0) { $0 + ($1.signals[target.name] ?? 0) }
        guard seen < acknowledged else { return nil }
        return "\(acknowledged) acknowledged \(target.name) signal(s) (distinct request ids) to run \(target.runID.isEmpty ? "(current)" : target.runID), "
            + "but history has \(seen) WorkflowExecutionSignaled of that name in runs \(chain.map(\.runID).joined(separator: ", "))"
    }

    /// Where acknowledged signals went.
    struct SignalTarget: Hashable, Comparable {
        var workflowID: String
        var runID: String
        var name: String

        static func < (lhs: SignalTarget, rhs: SignalTarget) -> Bool {
            (lhs.workflowID, lhs.runID, lhs.name) < (rhs.workflowID, rhs.runID, rhs.name)
        }
    }
}
