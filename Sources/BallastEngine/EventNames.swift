import BallastProto

extension Ballast_V1_HistoryEvent {
    /// Temporal's name for the event's type, e.g. "WorkflowExecutionStarted" ("Unknown" if unset).
    public var typeName: String {
        guard let attributes else { return "Unknown" }
        switch attributes {
        case .workflowExecutionStarted: return "WorkflowExecutionStarted"
        case .workflowExecutionCompleted: return "WorkflowExecutionCompleted"
        case .workflowExecutionFailed: return "WorkflowExecutionFailed"
        case .workflowExecutionTimedOut: return "WorkflowExecutionTimedOut"
        case .workflowExecutionCanceled: return "WorkflowExecutionCanceled"
        case .workflowExecutionTerminated: return "WorkflowExecutionTerminated"
        case .workflowExecutionContinuedAsNew: return "WorkflowExecutionContinuedAsNew"
        case .workflowTaskScheduled: return "WorkflowTaskScheduled"
        case .workflowTaskStarted: return "WorkflowTaskStarted"
        case .workflowTaskCompleted: return "WorkflowTaskCompleted"
        case .workflowTaskTimedOut: return "WorkflowTaskTimedOut"
        case .workflowTaskFailed: return "WorkflowTaskFailed"
        case .activityTaskScheduled: return "ActivityTaskScheduled"
        case .activityTaskStarted: return "ActivityTaskStarted"
        case .activityTaskCompleted: return "ActivityTaskCompleted"
        case .activityTaskFailed: return "ActivityTaskFailed"
        case .activityTaskTimedOut: return "ActivityTaskTimedOut"
        case .activityTaskCancelRequested: return "ActivityTaskCancelRequested"
        case .activityTaskCanceled: return "ActivityTaskCanceled"
        case .timerStarted: return "TimerStarted"
        case .timerFired: return "TimerFired"
        case .timerCanceled: return "TimerCanceled"
        case .workflowExecutionSignaled: return "WorkflowExecutionSignaled"
        case .workflowExecutionCancelRequested: return "WorkflowExecutionCancelRequested"
        case .markerRecorded: return "MarkerRecorded"
        case .upsertWorkflowSearchAttributes: return "UpsertWorkflowSearchAttributes"
        case .startChildWorkflowExecutionInitiated: return "StartChildWorkflowExecutionInitiated"
        case .startChildWorkflowExecutionFailed: return "StartChildWorkflowExecutionFailed"
        case .childWorkflowExecutionStarted: return "ChildWorkflowExecutionStarted"
        case .childWorkflowExecutionCompleted: return "ChildWorkflowExecutionCompleted"
        case .childWorkflowExecutionFailed: return "ChildWorkflowExecutionFailed"
        case .childWorkflowExecutionCanceled: return "ChildWorkflowExecutionCanceled"
        case .childWorkflowExecutionTimedOut: return "ChildWorkflowExecutionTimedOut"
        case .childWorkflowExecutionTerminated: return "ChildWorkflowExecutionTerminated"
        case .signalExternalWorkflowExecutionInitiated: return "SignalExternalWorkflowExecutionInitiated"
        case .signalExternalWorkflowExecutionFailed: return "SignalExternalWorkflowExecutionFailed"
        case .externalWorkflowExecutionSignaled: return "ExternalWorkflowExecutionSignaled"
        }
    }
}
