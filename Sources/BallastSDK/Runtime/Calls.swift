import BallastProto

/// An activity the code scheduled.
final class ActivityCall: @unchecked Sendable {
    let id: String
    let type: String
    /// 0 until history records the ActivityTaskScheduled event.
    var scheduledEventId: Int64 = 0
    let completion = Completion<Ballast_V1_Payloads>()
    init(id: String, type: String) {
        self.id = id
        self.type = type
    }
}

/// A durable timer the code started.
final class TimerCall: @unchecked Sendable {
    let id: String
    let completion = Completion<Void>()
    /// Called when the timer fires (used by `condition(timeout:)`).
    var onFired: (() -> Void)?
    init(id: String) { self.id = id }
}

/// A child workflow the code started.
final class ChildCall: @unchecked Sendable {
    let workflowId: String
    let type: String
    var initiatedEventId: Int64 = 0
    let started = Completion<Ballast_V1_WorkflowExecution>()
    let result = Completion<Ballast_V1_Payloads>()
    init(workflowId: String, type: String) {
        self.workflowId = workflowId
        self.type = type
    }
}

/// A `condition` wait: resolved true when the predicate holds, false when its timer fires.
final class ConditionWait: @unchecked Sendable {
    let predicate: () -> Bool
    let completion = Completion<Bool>()
    var timer: TimerCall?
    init(predicate: @escaping () -> Bool) { self.predicate = predicate }
}
