import BallastProto
import Foundation

/// What identifies a command for matching against the history event it produced: kind plus the
/// deterministic ids the code chose (activity id and type, timer id, marker id, child id…).
enum CommandKey: Equatable, Sendable {
    case scheduleActivity(id: String, type: String)
    case requestCancelActivity(scheduledEventId: Int64)
    case startTimer(id: String)
    case cancelTimer(id: String)
    case completeWorkflow
    case failWorkflow
    case cancelWorkflow
    case continueAsNew
    case marker(name: String, id: String)
    case startChild(workflowId: String, type: String)
    case signalExternal(workflowId: String, signal: String)
    case upsertSearchAttributes

    /// The marker name of `patched` markers; history markers of this name that the code no
    /// longer produces are skipped (a removed patch), any other unmatched event is non-determinism.
    static let patchMarkerName = "Patch"
    /// The marker name of side effects.
    static let sideEffectMarkerName = "SideEffect"
    /// The details key holding a marker's id.
    static let markerIdKey = "id"
    /// The details key holding a side effect's value.
    static let markerDataKey = "data"

    /// The key of the command that produced `event`, or nil when the event is not a command's.
    init?(event: Ballast_V1_HistoryEvent) {
        switch event.attributes {
        case .activityTaskScheduled(let a): self = .scheduleActivity(id: a.activityID, type: a.activityType.name)
        case .activityTaskCancelRequested(let a): self = .requestCancelActivity(scheduledEventId: a.scheduledEventID)
        case .timerStarted(let a): self = .startTimer(id: a.timerID)
        case .timerCanceled(let a): self = .cancelTimer(id: a.timerID)
        case .workflowExecutionCompleted: self = .completeWorkflow
        case .workflowExecutionFailed: self = .failWorkflow
        case .workflowExecutionCanceled: self = .cancelWorkflow
        case .workflowExecutionContinuedAsNew: self = .continueAsNew
        case .markerRecorded(let a): self = .marker(name: a.markerName, id: Self.markerId(a.details))
        case .startChildWorkflowExecutionInitiated(let a):
            self = .startChild(workflowId: a.workflowID, type: a.workflowType.name)
        case .signalExternalWorkflowExecutionInitiated(let a):
            self = .signalExternal(workflowId: a.workflowExecution.workflowID, signal: a.signalName)
        case .upsertWorkflowSearchAttributes: self = .upsertSearchAttributes
        default: return nil
        }
    }

    /// A marker's id from its details ("" when absent).
    static func markerId(_ details: [String: Ballast_V1_Payloads]) -> String {
        guard let data = details[markerIdKey]?.payloads.first?.data else { return "" }
        return String(decoding: data, as: UTF8.self)
    }

    /// The payloads that carry a marker id (plain UTF-8, never passed through codecs).
    static func markerIdPayloads(_ id: String) -> Ballast_V1_Payloads {
        var payload = Ballast_V1_Payload()
        payload.metadata[DataConverter.encodingKey] = Data("binary/plain".utf8)
        payload.data = Data(id.utf8)
        var payloads = Ballast_V1_Payloads()
        payloads.payloads = [payload]
        return payloads
    }

    /// Whether this is a `patched` marker (skippable when the code no longer has the patch).
    var isPatchMarker: Bool {
        if case .marker(let name, _) = self { return name == Self.patchMarkerName }
        return false
    }

    /// What the code does, for non-determinism messages ("schedules Credit").
    var codeDescription: String {
        switch self {
        case .scheduleActivity(_, let type): return "schedules \(type)"
        case .requestCancelActivity(let id): return "cancels the activity scheduled at event \(id)"
        case .startTimer(let id): return "starts timer \(id)"
        case .cancelTimer(let id): return "cancels timer \(id)"
        case .completeWorkflow: return "completes the workflow"
        case .failWorkflow: return "fails the workflow"
        case .cancelWorkflow: return "cancels the workflow"
        case .continueAsNew: return "continues as new"
        case .marker(let name, let id): return "records marker \(name)(\(id))"
        case .startChild(let workflowId, let type): return "starts child workflow \(type) (id \(workflowId))"
        case .signalExternal(let workflowId, let signal): return "signals workflow \(workflowId) with \(signal)"
        case .upsertSearchAttributes: return "upserts search attributes"
        }
    }
}

/// Short descriptions of history events for error messages ("ActivityTaskScheduled(Debit)").
enum EventDescription {
    static func describe(_ event: Ballast_V1_HistoryEvent) -> String {
        switch event.attributes {
        case .activityTaskScheduled(let a): return "ActivityTaskScheduled(\(a.activityType.name))"
        case .activityTaskCancelRequested(let a): return "ActivityTaskCancelRequested(\(a.scheduledEventID))"
        case .timerStarted(let a): return "TimerStarted(\(a.timerID))"
        case .timerCanceled(let a): return "TimerCanceled(\(a.timerID))"
        case .timerFired(let a): return "TimerFired(\(a.timerID))"
        case .markerRecorded(let a): return "MarkerRecorded(\(a.markerName)(\(CommandKey.markerId(a.details))))"
        case .startChildWorkflowExecutionInitiated(let a):
            return "StartChildWorkflowExecutionInitiated(\(a.workflowType.name), id \(a.workflowID))"
        case .signalExternalWorkflowExecutionInitiated(let a):
            return "SignalExternalWorkflowExecutionInitiated(\(a.workflowExecution.workflowID), \(a.signalName))"
        case .workflowExecutionSignaled(let a): return "WorkflowExecutionSignaled(\(a.signalName))"
        case .none: return "an event without attributes"
        case .some(let attributes):
            // The case name with its first letter upper-cased: workflowTaskScheduled → WorkflowTaskScheduled.
            let name = String(describing: attributes).prefix { $0 != "(" }
            return name.prefix(1).uppercased() + name.dropFirst()
        }
    }
}

/// A command produced by workflow code and not yet matched by its history event.
struct PendingCommand {
    var key: CommandKey
    var command: Ballast_V1_Command
    /// Called with the event id when history records the command (e.g. an activity's scheduled event id).
    var onRecorded: ((Int64) -> Void)?
}
