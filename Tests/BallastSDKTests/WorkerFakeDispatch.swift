import BallastProto
import BallastSDK
import BallastWire
import Foundation
import Synchronization

/// A fake leader's dispatch: queued tasks are pushed to a connected stream only while it has
/// credit (initial slots + grants − pushes), as the real dispatcher does; it records
/// completions and checks the worker never needs more credit than it gave.
actor FakeDispatch {
    struct Stream {
        var workflowCredit: Int
        var activityCredit: Int
        var waiter: CheckedContinuation<Ballast_V1_TaskStreamEvent?, any Error>?
    }

    var queue: [Ballast_V1_TaskStreamEvent] = []
    var streams: [String: Stream] = [:]
    var nextToken = 0
    var completed: [Data] = []
    var failedWorkflowTasks: [Ballast_V1_RespondWorkflowTaskFailedRequest] = []
    var workflowCompletions: [Ballast_V1_RespondWorkflowTaskCompletedRequest] = []
    var activityFailures: [Ballast_V1_RespondActivityTaskFailedRequest] = []
    var activityCancels: [Data] = []
    var queryAnswers: [Ballast_V1_RespondQueryTaskCompletedRequest] = []
    var heartbeats: [Ballast_V1_RecordActivityTaskHeartbeatRequest] = []
    var grants: [Ballast_V1_GrantTaskSlotsRequest] = []
    var openedStreams: [Ballast_V1_StreamTasksRequest] = []
    var cancelRequestedTokens: Set<Data> = []

    func enqueue(_ event: Ballast_V1_TaskStreamEvent) {
        queue.append(event)
        match()
    }

    func requestCancel(token: Data) { cancelRequestedTokens.insert(token) }

    func open(_ request: Ballast_V1_StreamTasksRequest) -> String {
        nextToken += 1
        let token = "stream-\(nextToken)"
        openedStreams.append(request)
        streams[token] = Stream(workflowCredit: Int(request.workflowTaskSlots), activityCredit: Int(request.activityTaskSlots))
        return token
    }

    /// The next event for stream `token`; suspends until a task and credit meet.
    func next(_ token: String) async throws -> Ballast_V1_TaskStreamEvent? {
        try await withCheckedThrowingContinuation { continuation in
            streams[token]?.waiter = continuation
            match()
        }
    }

    func close(_ token: String) {
        streams[token]?.waiter?.resume(returning: nil)
        streams[token] = nil
    }

    /// Breaks every stream with `status` (a leader change).
    func breakStreams(_ status: GRPCStatus) {
        for token in streams.keys { streams[token]?.waiter?.resume(throwing: status) }
        streams.removeAll()
    }

    func grant(_ request: Ballast_V1_GrantTaskSlotsRequest) throws -> Ballast_V1_GrantTaskSlotsResponse {
        let token = String(decoding: request.streamToken, as: UTF8.self)
        guard streams[token] != nil else { throw GRPCStatus(.notFound, "no stream \(token)") }
        grants.append(request)
        streams[token]?.workflowCredit += Int(request.workflowTaskSlots)
        streams[token]?.activityCredit += Int(request.activityTaskSlots)
        match()
        var response = Ballast_V1_GrantTaskSlotsResponse()
        response.workflowTaskSlots = UInt32(streams[token]?.workflowCredit ?? 0)
        response.activityTaskSlots = UInt32(streams[token]?.activityCredit ?? 0)
        return response
    }

    private func match() {
        for token in streams.keys.sorted() {
            guard var stream = streams[token], let waiter = stream.waiter else { continue }
            guard let index = queue.firstIndex(where: { event in
                if case .activityTask? = event.event { return stream.activityCredit > 0 }
                return stream.workflowCredit > 0
            }) else { continue }
            let event = queue.remove(at: index)
            if case .activityTask? = event.event { stream.activityCredit -= 1 } else { stream.workflowCredit -= 1 }
            stream.waiter = nil
            streams[token] = stream
            waiter.resume(returning: event)
        }
    }

    func recordCompleted(_ token: Data) { completed.append(token) }
    func record(_ request: Ballast_V1_RespondWorkflowTaskCompletedRequest) { workflowCompletions.append(request); completed.append(request.taskToken) }
    func record(_ request: Ballast_V1_RespondWorkflowTaskFailedRequest) { failedWorkflowTasks.append(request) }
    func record(_ request: Ballast_V1_RespondActivityTaskFailedRequest) { activityFailures.append(request) }
    func recordCanceled(_ token: Data) { activityCancels.append(token) }
    func record(_ request: Ballast_V1_RespondQueryTaskCompletedRequest) { queryAnswers.append(request) }
    func heartbeat(_ request: Ballast_V1_RecordActivityTaskHeartbeatRequest) -> Ballast_V1_RecordActivityTaskHeartbeatResponse {
        heartbeats.append(request)
        var response = Ballast_V1_RecordActivityTaskHeartbeatResponse()
        response.cancelRequested = cancelRequestedTokens.contains(request.taskToken)
        return response
    }
}

/// Registers the worker service (and history paging) of a fake node backed by `dispatch`.
func registerWorkerService(_ registry: inout FakeRegistry, _ dispatch: FakeDispatch, servedBy: String) {
    registry.streaming(BallastMethod.Worker.streamTasks) { (request: Ballast_V1_StreamTasksRequest, writer: GRPCStreamWriter<Ballast_V1_TaskStreamEvent>) in
        let token = await dispatch.open(request)
        var started = Ballast_V1_TaskStreamEvent()
        started.started.streamToken = Data(token.utf8)
        started.started.servedBy = servedBy
        try await writer.send(started)
        do {
            while let event = try await withTaskCancellationHandler(operation: { try await dispatch.next(token) },
                                                                    onCancel: { Task { await dispatch.close(token) } }) {
                try await writer.send(event)
            }
        } catch {
            await dispatch.close(token)
            throw error
        }
    }
    registry.unary(BallastMethod.Worker.grantTaskSlots) { (request: Ballast_V1_GrantTaskSlotsRequest) in
        try await dispatch.grant(request)
    }
    registry.unary(BallastMethod.Worker.respondWorkflowTaskCompleted) { (request: Ballast_V1_RespondWorkflowTaskCompletedRequest) in
        await dispatch.record(request)
        return Ballast_V1_RespondWorkflowTaskCompletedResponse()
    }
    registry.unary(BallastMethod.Worker.respondWorkflowTaskFailed) { (request: Ballast_V1_RespondWorkflowTaskFailedRequest) in
        await dispatch.record(request)
        return Ballast_V1_RespondWorkflowTaskFailedResponse()
    }
    registry.unary(BallastMethod.Worker.respondActivityTaskCompleted) { (request: Ballast_V1_RespondActivityTaskCompletedRequest) in
        await dispatch.recordCompleted(request.taskToken)
        return Ballast_V1_RespondActivityTaskCompletedResponse()
    }
    registry.unary(BallastMethod.Worker.respondActivityTaskFailed) { (request: Ballast_V1_RespondActivityTaskFailedRequest) in
        await dispatch.record(request)
        return Ballast_V1_RespondActivityTaskFailedResponse()
    }
    registry.unary(BallastMethod.Worker.respondActivityTaskCanceled) { (request: Ballast_V1_RespondActivityTaskCanceledRequest) in
        await dispatch.recordCanceled(request.taskToken)
        return Ballast_V1_RespondActivityTaskCanceledResponse()
    }
    registry.unary(BallastMethod.Worker.recordActivityTaskHeartbeat) { (request: Ballast_V1_RecordActivityTaskHeartbeatRequest) in
        await dispatch.heartbeat(request)
    }
    registry.unary(BallastMethod.Worker.respondQueryTaskCompleted) { (request: Ballast_V1_RespondQueryTaskCompletedRequest) in
        await dispatch.record(request)
        return Ballast_V1_RespondQueryTaskCompletedResponse()
    }
}

func activityEvent(_ name: String, heartbeatTimeout: Duration = .zero) -> Ballast_V1_TaskStreamEvent {
    var info = Ballast_V1_ActivityTaskInfo()
    info.taskToken = Data(name.utf8)
    info.activityID = name
    info.activityType.name = "Debit"
    info.attempt = 1
    info.heartbeatTimeoutNanos = Int64(heartbeatTimeout.components.seconds * 1_000_000_000 + heartbeatTimeout.components.attoseconds / 1_000_000_000)
    var event = Ballast_V1_TaskStreamEvent()
    event.activityTask = info
    return event
}

/// Activities that wait until released (a gate per test), counting how many run at once.
final class GatedActivities: ActivityTaskHandling {
    let state = Mutex<(running: Int, peak: Int, released: Bool, seen: [String])>((0, 0, false, []))
    let heartbeatsFirst: Bool

    init(heartbeatsFirst: Bool = false) { self.heartbeatsFirst = heartbeatsFirst }

    func release() { state.withLock { $0.released = true } }

    func handleActivityTask(_ task: Ballast_V1_ActivityTaskInfo, heartbeat: any ActivityHeartbeating) async -> ActivityTaskResult {
        state.withLock { state in
            state.running += 1
            state.peak = max(state.peak, state.running)
            state.seen.append(task.activityID)
        }
        defer { state.withLock { $0.running -= 1 } }
        while !state.withLock({ $0.released }) {
            if heartbeatsFirst {
                var details = Ballast_V1_Payloads()
                details.payloads = [Ballast_V1_Payload()]
                if await heartbeat.heartbeat(details) || Task.isCancelled { return .canceled(details: nil) }
            }
            if Task.isCancelled { return .canceled(details: nil) }
            try? await Task.sleep(for: .milliseconds(2))
        }
        var result = Ballast_V1_Payloads()
        result.payloads = [Ballast_V1_Payload()]
        return .completed(result)
    }
}

/// Workflow tasks answered with one CompleteWorkflowExecution command, recording the history seen.
final class RecordingWorkflows: WorkflowTaskHandling {
    let histories = Mutex<[[Int64]]>([])

    func handleWorkflowTask(_ task: Ballast_V1_WorkflowTaskInfo, history: [Ballast_V1_HistoryEvent]) async -> WorkflowTaskResult {
        histories.withLock { $0.append(history.map(\.eventID)) }
        var command = Ballast_V1_Command()
        command.completeWorkflowExecution = Ballast_V1_CompleteWorkflowExecutionCommandAttributes()
        return .completed([command])
    }

    func handleQuery(_ query: Ballast_V1_QueryTask, history: [Ballast_V1_HistoryEvent]) async -> QueryTaskResult {
        var payloads = Ballast_V1_Payloads()
        payloads.payloads = [JSONClientPayloadConverter.payload(jsonData: Data("\(history.count)".utf8))]
        return .answered(payloads)
    }
}
