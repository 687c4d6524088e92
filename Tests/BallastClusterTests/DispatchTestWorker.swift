import BallastProto
import BallastWire
import Foundation
import NIOCore
import Synchronization
import Testing

/// A minimal worker built on GRPCClient: one StreamTasks call whose events a pump task collects,
/// so a test can wait for the next one with a deadline; plus the Respond calls it needs.
final class DispatchTestWorker: Sendable {
    struct Received: Sendable {
        var event: Ballast_V1_TaskStreamEvent
        var at: ContinuousClock.Instant
    }

    let client: GRPCClient
    let streamToken: Data
    private let events = Mutex<(queue: [Received], end: (any Error)?, ended: Bool)>(([], nil, false))
    private let pump: Mutex<Task<Void, Never>?> = Mutex(nil)

    private init(client: GRPCClient, streamToken: Data) {
        self.client = client
        self.streamToken = streamToken
    }

    /// Connects to `port` and opens a task stream; throws the call's status (e.g. UNAVAILABLE
    /// with `ballast-leader`) when the node refuses it.
    static func connect(port: Int, group: EventLoopGroup, taskQueue: String = "payments", identity: String = "test-worker",
                        workflowSlots: UInt32 = 1, activitySlots: UInt32 = 1, acceptQueries: Bool = true,
                        partialHistory: Bool = false) async throws -> DispatchTestWorker {
        let client = try await GRPCClient.connect(host: "127.0.0.1", port: port, group: group)
        var request = Ballast_V1_StreamTasksRequest()
        request.taskQueue = taskQueue
        request.identity = identity
        request.partialHistory = partialHistory
        (request.workflowTaskSlots, request.activityTaskSlots, request.acceptQueries) = (workflowSlots, activitySlots, acceptQueries)
        let stream = try client.serverStreaming(BallastMethod.Worker.streamTasks, request: request,
                                                responseType: Ballast_V1_TaskStreamEvent.self)
        var iterator = stream.makeAsyncIterator()
        do {
            guard let first = try await iterator.next(), case .started(let started)? = first.event else {
                throw ClusterTestFailure("the task stream did not begin with a started event")
            }
            let worker = DispatchTestWorker(client: client, streamToken: started.streamToken)
            worker.startPump(iterator)
            return worker
        } catch {
            await client.close()
            throw error
        }
    }

    /// Hands the stream's iterator to the pump task (only the pump uses it from then on).
    private final class IteratorBox: @unchecked Sendable {
        var iterator: GRPCResponseStream<Ballast_V1_TaskStreamEvent>.AsyncIterator
        init(_ iterator: GRPCResponseStream<Ballast_V1_TaskStreamEvent>.AsyncIterator) { self.iterator = iterator }
    }

    /// `connect`, retried while the node answers UNAVAILABLE naming itself (just elected: it
    /// takes streams once it has applied its own no-op), as a real worker's backoff would.
    static func connectToLeader(port: Int, group: EventLoopGroup, workflowSlots: UInt32 = 1,
                                activitySlots: UInt32 = 1, partialHistory: Bool = false) async throws -> DispatchTestWorker {
        let deadline = ContinuousClock.now + .seconds(10)
        while true {
            do {
                return try await connect(port: port, group: group, workflowSlots: workflowSlots, activitySlots: activitySlots,
                                         partialHistory: partialHistory)
            } catch let status as GRPCStatus where status.code == .unavailable && ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(20))
            }
        }
    }

    private func startPump(_ iterator: GRPCResponseStream<Ballast_V1_TaskStreamEvent>.AsyncIterator) {
        let box = IteratorBox(iterator)
        let task = Task { [self] in
            do {
                while let event = try await box.iterator.next() {
                    let now = ContinuousClock.now
                    events.withLock { $0.queue.append(Received(event: event, at: now)) }
                }
                events.withLock { $0.ended = true }
            } catch {
                events.withLock { ($0.end, $0.ended) = (error, true) }
            }
        }
        pump.withLock { $0 = task }
    }

    /// The next event, waiting up to `timeout`; throws how the stream ended if it did.
    func next(within timeout: Duration = .seconds(10)) async throws -> Received {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            let (received, ended, error) = events.withLock { state -> (Received?, Bool, (any Error)?) in
                if !state.queue.isEmpty { return (state.queue.removeFirst(), false, nil) }
                return (nil, state.ended, state.end)
            }
            if let received { return received }
            if ended { throw error ?? ClusterTestFailure("the task stream ended") }
            try await Task.sleep(for: .milliseconds(2))
        }
        throw ClusterTestFailure("no task stream event within \(timeout)")
    }

    /// How the stream ended, waiting up to `timeout` for it to end.
    func end(within timeout: Duration) async throws -> (any Error)? {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            let (ended, error) = events.withLock { ($0.ended, $0.end) }
            if ended { return error }
            try await Task.sleep(for: .milliseconds(10))
        }
        throw ClusterTestFailure("the task stream did not end within \(timeout)")
    }

    func nextWorkflowTask(within timeout: Duration = .seconds(10)) async throws -> Ballast_V1_WorkflowTask {
        guard case .workflowTask(let task)? = try await next(within: timeout).event.event else {
            throw ClusterTestFailure("expected a workflow task")
        }
        return task
    }

    func nextActivityTask(within timeout: Duration = .seconds(10)) async throws -> Ballast_V1_ActivityTaskInfo {
        guard case .activityTask(let task)? = try await next(within: timeout).event.event else {
            throw ClusterTestFailure("expected an activity task")
        }
        return task
    }

    func grant(workflow: UInt32, activity: UInt32) async throws {
        var request = Ballast_V1_GrantTaskSlotsRequest()
        (request.streamToken, request.workflowTaskSlots, request.activityTaskSlots) = (streamToken, workflow, activity)
        let _: Ballast_V1_GrantTaskSlotsResponse = try await client.unary(BallastMethod.Worker.grantTaskSlots, request: request,
                                                                          timeout: .seconds(5))
    }

    /// Completes a workflow task with `commands` and returns its slot.
    func complete(_ task: Ballast_V1_WorkflowTask, _ commands: [Ballast_V1_Command], via client: GRPCClient? = nil) async throws {
        var request = Ballast_V1_RespondWorkflowTaskCompletedRequest()
        (request.taskToken, request.commands, request.identity) = (task.info.taskToken, commands, "test-worker")
        let _: Ballast_V1_RespondWorkflowTaskCompletedResponse = try await (client ?? self.client).unary(
            BallastMethod.Worker.respondWorkflowTaskCompleted, request: request, timeout: .seconds(10))
        if client == nil { try await grant(workflow: 1, activity: 0) }
    }

    /// Completes an activity task with `result` and returns its slot.
    func complete(_ task: Ballast_V1_ActivityTaskInfo, result: String) async throws {
        try await Self.completeActivity(task, result: result, client: client)
        try await grant(workflow: 0, activity: 1)
    }

    static func completeActivity(_ task: Ballast_V1_ActivityTaskInfo, result: String, client: GRPCClient) async throws {
        var request = Ballast_V1_RespondActivityTaskCompletedRequest()
        request.taskToken = task.taskToken
        var payload = Ballast_V1_Payload()
        payload.data = Data(result.utf8)
        request.result.payloads = [payload]
        let _: Ballast_V1_RespondActivityTaskCompletedResponse = try await client.unary(
            BallastMethod.Worker.respondActivityTaskCompleted, request: request, timeout: .seconds(10))
    }

    func close() async {
        pump.withLock { $0 }?.cancel()
        await client.close()
    }

    static func isStarted(_ event: Ballast_V1_HistoryEvent) -> Bool {
        if case .workflowExecutionStarted? = event.attributes { return true }
        return false
    }

    /// The events of a workflow task's first page, decoded from its LZ4 batches.
    static func history(_ task: Ballast_V1_WorkflowTask) throws -> [Ballast_V1_HistoryEvent] {
        try task.history.flatMap { try LZ4EventBatchCodec.decode(LZ4EventBatch($0), as: Ballast_V1_HistoryEvent.self) }
    }
}

/// Commands and requests the dispatch tests send.
enum DispatchFixtures {
    static func start(_ workflowID: String, taskQueue: String = "payments") -> Ballast_V1_StartWorkflowRequest {
        var request = Ballast_V1_StartWorkflowRequest()
        request.workflowID = workflowID
        request.workflowType.name = "Transfer"
        request.taskQueue = taskQueue
        request.requestID = "start-\(workflowID)"
        return request
    }

    static func scheduleActivity(_ id: String, startToClose: Duration = .seconds(30), retryInitial: Duration = .milliseconds(100)) -> Ballast_V1_Command {
        var attributes = Ballast_V1_ScheduleActivityTaskCommandAttributes()
        attributes.activityID = id
        attributes.activityType.name = "Debit"
        attributes.startToCloseTimeoutNanos = nanoseconds(startToClose)
        attributes.retryPolicy.initialIntervalNanos = nanoseconds(retryInitial)
        attributes.retryPolicy.backoffCoefficient = 1
        attributes.retryPolicy.maximumAttempts = 5
        var command = Ballast_V1_Command()
        command.scheduleActivityTask = attributes
        return command
    }

    static func startTimer(_ id: String, after: Duration) -> Ballast_V1_Command {
        var command = Ballast_V1_Command()
        command.startTimer.timerID = id
        command.startTimer.startToFireTimeoutNanos = nanoseconds(after)
        return command
    }

    static func completeWorkflow(_ result: String = "done") -> Ballast_V1_Command {
        var command = Ballast_V1_Command()
        var payload = Ballast_V1_Payload()
        payload.data = Data(result.utf8)
        command.completeWorkflowExecution.result.payloads = [payload]
        return command
    }

    static func nanoseconds(_ duration: Duration) -> Int64 {
        duration.components.seconds * 1_000_000_000 + duration.components.attoseconds / 1_000_000_000
    }

    static func status(_ client: GRPCClient, _ workflowID: String) async throws -> Ballast_V1_WorkflowExecutionStatus {
        var request = Ballast_V1_DescribeWorkflowExecutionRequest()
        request.execution.workflowID = workflowID
        let response: Ballast_V1_DescribeWorkflowExecutionResponse = try await client.unary(
            BallastMethod.Workflow.describe, request: request, timeout: .seconds(5))
        return response.info.status
    }
}
