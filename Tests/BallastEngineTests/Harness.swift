import Foundation
import BallastEngine
import BallastProto
import Testing

typealias Payload = Ballast_V1_EngineEntry.OneOf_Payload

let second: Int64 = 1_000_000_000

/// Drives an engine with entries and keeps an in-memory history store, like a node would.
struct Harness {
    var engine: WorkflowEngine
    var store = InMemoryHistoryStore()
    var index: UInt64 = 0
    var now: Int64 = 1_700_000_000 * second
    var last = ApplyResult()
    /// The format of the entries `apply` writes unless told otherwise: the newest, as a cluster
    /// of this build writes.
    var formatVersion = newestEngineFormatVersion

    init(limits: EngineLimits = EngineLimits()) {
        engine = WorkflowEngine(limits: limits)
    }

    /// Applies one entry at the current time (after advancing by `advance`), with `eager` if given.
    @discardableResult
    mutating func apply(_ payload: Payload, advance: Int64 = 1_000_000, eager: Ballast_V1_EagerDispatch? = nil,
                        version: UInt32? = nil) -> ApplyResult {
        now += advance
        index += 1
        var entry = Ballast_V1_EngineEntry()
        entry.formatVersion = version ?? formatVersion
        entry.eager = eager
        entry.leaderTimeUnixNanos = now
        entry.payload = payload
        do {
            last = try engine.apply(entry, index: index)
            try store.record(last)
        } catch {
            Issue.record("apply failed: \(error)")
        }
        return last
    }

    /// Starts a workflow and returns its run key.
    @discardableResult
    mutating func start(_ workflowId: String, type: String = "Transfer", queue: String = "q",
                        configure: (inout Ballast_V1_StartWorkflowRequest) -> Void = { _ in }) -> RunKey {
        var request = Ballast_V1_StartWorkflowRequest()
        request.workflowID = workflowId
        request.workflowType.name = type
        request.taskQueue = queue
        request.requestID = "start-\(workflowId)-\(index)"
        configure(&request)
        let result = apply(.startWorkflow(request))
        guard case let .started(response) = result.response else {
            Issue.record("start of \(workflowId) not accepted: \(result.response)")
            return RunKey(namespace: "default", workflowId: workflowId, runId: "")
        }
        return RunKey(namespace: "default", workflowId: workflowId, runId: response.runID)
    }

    /// The ready workflow task of a run, if any.
    func readyWorkflowTask(_ run: RunKey, queue: String = "q") -> ReadyTask? {
        engine.readyTasks(taskQueue: queue).first { $0.kind == .workflow && $0.run == run }
    }

    /// The ready activity task of a run with this activity id, if any.
    func readyActivity(_ run: RunKey, _ activityId: String, queue: String = "q") -> ReadyTask? {
        engine.readyTasks(taskQueue: queue).first { $0.kind == .activity && $0.run == run && $0.activityId == activityId }
    }

    /// Starts the run's ready workflow task and returns its token bytes.
    mutating func startWorkflowTask(_ run: RunKey, queue: String = "q") -> [UInt8] {
        guard let task = readyWorkflowTask(run, queue: queue) else {
            Issue.record("no ready workflow task for \(run)")
            return []
        }
        var request = Ballast_V1_RecordWorkflowTaskStartedRequest()
        request.taskToken = Data(task.taskTokenBytes)
        request.identity = "worker-1"
        request.requestID = "poll-\(index)"
        let result = apply(.workflowTaskStarted(request))
        #expect(result.response.rejection == nil, "workflow task start rejected: \(result.response)")
        return task.taskTokenBytes
    }

    /// Completes a workflow task with commands.
    @discardableResult
    mutating func completeWorkflowTask(_ token: [UInt8], _ commands: [Ballast_V1_Command]) -> ApplyResult {
        var request = Ballast_V1_RespondWorkflowTaskCompletedRequest()
        request.taskToken = Data(token)
        request.commands = commands
        request.identity = "worker-1"
        return apply(.workflowTaskCompleted(request))
    }

    /// Runs one workflow task of a run: start it and complete it with commands.
    @discardableResult
    mutating func workflowTask(_ run: RunKey, _ commands: [Ballast_V1_Command]) -> ApplyResult {
        let token = startWorkflowTask(run)
        return completeWorkflowTask(token, commands)
    }

    /// Starts the ready activity and returns its token bytes.
    mutating func startActivity(_ run: RunKey, _ activityId: String) -> [UInt8] {
        guard let task = readyActivity(run, activityId) else {
            Issue.record("no ready activity \(activityId) for \(run)")
            return []
        }
        var request = Ballast_V1_RecordActivityTaskStartedRequest()
        request.taskToken = Data(task.taskTokenBytes)
        request.identity = "worker-2"
        request.requestID = "poll-\(index)"
        let result = apply(.activityTaskStarted(request))
        #expect(result.response.rejection == nil, "activity start rejected: \(result.response)")
        return task.taskTokenBytes
    }

    mutating func completeActivity(_ token: [UInt8], result value: String = "ok") -> ApplyResult {
        var request = Ballast_V1_RespondActivityTaskCompletedRequest()
        request.taskToken = Data(token)
        request.result = payloads(value)
        return apply(.activityTaskCompleted(request))
    }

    mutating func failActivity(_ token: [UInt8], type: String = "Flaky", nonRetryable: Bool = false) -> ApplyResult {
        var request = Ballast_V1_RespondActivityTaskFailedRequest()
        request.taskToken = Data(token)
        request.failure.message = "boom"
        request.failure.type = type
        request.failure.nonRetryable = nonRetryable
        return apply(.activityTaskFailed(request))
    }

    /// Fires every deadline due at or before the current time plus `advance` (advancing the clock to it).
    mutating func fireDue(within advance: Int64) -> [ApplyResult] {
        let horizon = now + advance
        var results: [ApplyResult] = []
        while let due = engine.dueTimers().first(where: { $0.dueTimeUnixNanos <= horizon }) {
            let wait = max(0, due.dueTimeUnixNanos - now)
            results.append(apply(due.payload, advance: wait))
        }
        now = max(now, horizon)
        return results
    }

    /// Event type names of a run's stored history.
    func eventNames(_ run: RunKey) -> [String] {
        store.events(runId: run.runId).map(\.typeName)
    }

    func events(_ run: RunKey) -> [Ballast_V1_HistoryEvent] { store.events(runId: run.runId) }

    func status(_ run: RunKey) -> Ballast_V1_WorkflowExecutionStatus? {
        try? engine.describe(namespace: run.namespace, execution: run.execution).info.status
    }
}

func payloads(_ text: String) -> Ballast_V1_Payloads {
    var payload = Ballast_V1_Payload()
    payload.data = Data(text.utf8)
    var payloads = Ballast_V1_Payloads()
    payloads.payloads = [payload]
    return payloads
}

enum Commands {
    static func scheduleActivity(_ id: String, type: String = "Debit", startToClose: Int64 = 10 * second,
                                 configure: (inout Ballast_V1_ScheduleActivityTaskCommandAttributes) -> Void = { _ in }) -> Ballast_V1_Command {
        var attributes = Ballast_V1_ScheduleActivityTaskCommandAttributes()
        attributes.activityID = id
        attributes.activityType.name = type
        attributes.startToCloseTimeoutNanos = startToClose
        attributes.input = payloads("in-\(id)")
        configure(&attributes)
        var command = Ballast_V1_Command()
        command.scheduleActivityTask = attributes
        return command
    }

    static func complete(_ result: String = "done") -> Ballast_V1_Command {
        var command = Ballast_V1_Command()
        command.completeWorkflowExecution.result = payloads(result)
        return command
    }

    static func fail(_ message: String) -> Ballast_V1_Command {
        var command = Ballast_V1_Command()
        command.failWorkflowExecution.failure.message = message
        return command
    }

    static func cancelWorkflow() -> Ballast_V1_Command {
        var command = Ballast_V1_Command()
        command.cancelWorkflowExecution = Ballast_V1_CancelWorkflowExecutionCommandAttributes()
        return command
    }

    static func startTimer(_ id: String, after: Int64) -> Ballast_V1_Command {
        var command = Ballast_V1_Command()
        command.startTimer.timerID = id
        command.startTimer.startToFireTimeoutNanos = after
        return command
    }

    static func cancelTimer(_ id: String) -> Ballast_V1_Command {
        var command = Ballast_V1_Command()
        command.cancelTimer.timerID = id
        return command
    }

    static func cancelActivity(_ scheduledEventId: Int64) -> Ballast_V1_Command {
        var command = Ballast_V1_Command()
        command.requestCancelActivityTask.scheduledEventID = scheduledEventId
        return command
    }

    static func marker(_ name: String) -> Ballast_V1_Command {
        var command = Ballast_V1_Command()
        command.recordMarker.markerName = name
        command.recordMarker.details["data"] = payloads("x")
        return command
    }

    static func continueAsNew(input: String = "next") -> Ballast_V1_Command {
        var command = Ballast_V1_Command()
        command.continueAsNewWorkflowExecution.input = payloads(input)
        return command
    }

    static func startChild(_ workflowId: String, type: String = "Child",
                           policy: Ballast_V1_ParentClosePolicy = .terminate) -> Ballast_V1_Command {
        var command = Ballast_V1_Command()
        command.startChildWorkflowExecution.workflowID = workflowId
        command.startChildWorkflowExecution.workflowType.name = type
        command.startChildWorkflowExecution.parentClosePolicy = policy
        return command
    }

    static func signalExternal(_ workflowId: String, signal: String) -> Ballast_V1_Command {
        var command = Ballast_V1_Command()
        command.signalExternalWorkflowExecution.execution.workflowID = workflowId
        command.signalExternalWorkflowExecution.signalName = signal
        command.signalExternalWorkflowExecution.input = payloads("hi")
        return command
    }

    static func upsert(_ name: String, keyword: String) -> Ballast_V1_Command {
        var command = Ballast_V1_Command()
        var value = Ballast_V1_SearchAttributeValue()
        value.keywordValue = keyword
        command.upsertWorkflowSearchAttributes.searchAttributes.indexedFields[name] = value
        return command
    }
}

func signal(_ run: RunKey, _ name: String, requestId: String = "") -> Payload {
    var request = Ballast_V1_SignalWorkflowRequest()
    request.namespace = run.namespace
    request.workflowExecution.workflowID = run.workflowId
    request.signalName = name
    request.input = payloads("s")
    request.requestID = requestId
    return .signalWorkflow(request)
}

func terminate(_ run: RunKey, reason: String = "ops") -> Payload {
    var request = Ballast_V1_TerminateWorkflowRequest()
    request.namespace = run.namespace
    request.workflowExecution = run.execution
    request.reason = reason
    return .terminate(request)
}

func cancelRequest(_ run: RunKey) -> Payload {
    var request = Ballast_V1_RequestCancelWorkflowRequest()
    request.namespace = run.namespace
    request.workflowExecution = run.execution
    request.reason = "user asked"
    return .requestCancel(request)
}
