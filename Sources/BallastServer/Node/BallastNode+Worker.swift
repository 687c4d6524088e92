import BallastEngine
import BallastProto
import BallastRaft
import BallastWire
import Foundation
import NIOCore
import Synchronization

extension BallastNode {
    /// Longest a long poll waits for a task (the call's deadline may make it shorter).
    static let maxPollWait: Duration = .seconds(60)
    /// A poll answers empty this long before the caller's deadline, so the empty answer arrives.
    static let pollDeadlineMargin: Duration = .milliseconds(500)

    /// WorkerService: task streams, polls and task completions (see docs/protocol.md).
    func registerWorkerService(_ registry: inout GRPCMethodRegistry) {
        registerTaskStream(&registry)
        registry.unary(BallastMethod.Worker.grantTaskSlots) { [self] (request: Ballast_V1_GrantTaskSlotsRequest, _) in
            guard dispatcher.isLeading else { throw await notLeaderStatus(waitForLeader: .zero) }
            guard let credit = dispatcher.grant(token: [UInt8](request.streamToken), workflowSlots: request.workflowTaskSlots,
                                                activitySlots: request.activityTaskSlots) else {
                throw GRPCStatus(.notFound, "no open task stream has this token on this leader; reopen StreamTasks")
            }
            var response = Ballast_V1_GrantTaskSlotsResponse()
            (response.workflowTaskSlots, response.activityTaskSlots) = credit
            return response
        }
        registry.unary(BallastMethod.Worker.pollWorkflowTask) { [self] (request: Ballast_V1_PollWorkflowTaskRequest, context) in
            var response = Ballast_V1_PollWorkflowTaskResponse()
            let queue = try Self.taskQueueKey(namespace: request.namespace, taskQueue: request.taskQueue)
            if case .workflowTask(let task)? = try await poll(queue, identity: request.identity, workflow: true, context)?.event {
                response.task = task
            }
            return response
        }
        registry.unary(BallastMethod.Worker.pollActivityTask) { [self] (request: Ballast_V1_PollActivityTaskRequest, context) in
            var response = Ballast_V1_PollActivityTaskResponse()
            let queue = try Self.taskQueueKey(namespace: request.namespace, taskQueue: request.taskQueue)
            if case .activityTask(let task)? = try await poll(queue, identity: request.identity, workflow: false, context)?.event {
                response.task = task
            }
            return response
        }
        registerCompletions(&registry)
        registerQueryService(&registry)
    }

    /// What a completion may start eagerly on the stream that has the token's run cached; nil
    /// for a token that does not decode (the engine rejects it).
    static func stickyEager(_ token: Data, workflowTask: Bool, activities: Int) -> Dispatcher.EagerWant? {
        guard let decoded = try? Ballast_V1_TaskToken(serializedBytes: token), !decoded.runID.isEmpty else { return nil }
        return .sticky(runId: decoded.runID, workflowTask: workflowTask, activities: UInt32(clamping: activities))
    }

    /// The Respond* calls and heartbeats: engine entries through `submit` (rejections map to gRPC codes).
    private func registerCompletions(_ registry: inout GRPCMethodRegistry) {
        let worker = BallastMethod.Worker.self
        // Completions answer from the Raft loop thread once applied (`unaryCompleting`): no Swift
        // task per call.
        registry.unaryCompleting(worker.respondWorkflowTaskCompleted) { [self] (request: Ballast_V1_RespondWorkflowTaskCompletedRequest, _, respond) in
            let activities = request.commands.count { if case .scheduleActivityTask = $0.attributes { true } else { false } }
            submit(.workflowTaskCompleted(request), requestID: "",
                   eager: Self.stickyEager(request.taskToken, workflowTask: true, activities: activities)) { result in
                respond(result.map { _ in Ballast_V1_RespondWorkflowTaskCompletedResponse() })
            }
        }
        registry.unaryCompleting(worker.respondWorkflowTaskFailed) { [self] (request: Ballast_V1_RespondWorkflowTaskFailedRequest, _, respond) in
            submit(.workflowTaskFailed(request), requestID: "") { result in
                respond(result.map { _ in Ballast_V1_RespondWorkflowTaskFailedResponse() })
            }
        }
        registry.unaryCompleting(worker.respondActivityTaskCompleted) { [self] (request: Ballast_V1_RespondActivityTaskCompletedRequest, _, respond) in
            submit(.activityTaskCompleted(request), requestID: "",
                   eager: Self.stickyEager(request.taskToken, workflowTask: true, activities: 0)) { result in
                respond(result.map { _ in Ballast_V1_RespondActivityTaskCompletedResponse() })
            }
        }
        registry.unaryCompleting(worker.respondActivityTaskFailed) { [self] (request: Ballast_V1_RespondActivityTaskFailedRequest, _, respond) in
            submit(.activityTaskFailed(request), requestID: "",
                   eager: Self.stickyEager(request.taskToken, workflowTask: true, activities: 0)) { result in
                respond(result.map { _ in Ballast_V1_RespondActivityTaskFailedResponse() })
            }
        }
        registry.unaryCompleting(worker.respondActivityTaskCanceled) { [self] (request: Ballast_V1_RespondActivityTaskCanceledRequest, _, respond) in
            submit(.activityTaskCanceled(request), requestID: "") { result in
                respond(result.map { _ in Ballast_V1_RespondActivityTaskCanceledResponse() })
            }
        }
        registry.unaryCompleting(worker.recordActivityTaskHeartbeat) { [self] (request: Ballast_V1_RecordActivityTaskHeartbeatRequest, _, respond) in
            submit(.activityTaskHeartbeat(request), requestID: "") { result in
                respond(result.flatMap { response -> Result<Ballast_V1_RecordActivityTaskHeartbeatResponse, any Error> in
                    guard case .heartbeat(let heartbeat) = response else {
                        return .failure(GRPCStatus(.internal, "the engine answered a heartbeat without a heartbeat response"))
                    }
                    return .success(heartbeat)
                })
            }
        }
        registry.unary(worker.respondQueryTaskCompleted) { [self] (request: Ballast_V1_RespondQueryTaskCompletedRequest, _) in
            guard dispatcher.answerQuery(request) else {
                throw GRPCStatus(.notFound, "no query with this id is waiting on this node (answered, timed out, or the leader changed)")
            }
            return Ballast_V1_RespondQueryTaskCompletedResponse()
        }
    }

    /// StreamTasks: registered raw so the stream lives exactly as long as the HTTP/2 stream.
    private func registerTaskStream(_ registry: inout GRPCMethodRegistry) {
        registry.register(BallastMethod.Worker.streamTasks, GRPCMethodHandler(kind: .serverStreaming) { [self] bytes, _, responder in
            let request: Ballast_V1_StreamTasksRequest
            let queue: TaskQueueKey
            do {
                request = try Ballast_V1_StreamTasksRequest(serializedBytes: bytes)
                queue = try Self.taskQueueKey(namespace: request.namespace, taskQueue: request.taskQueue)
            } catch {
                responder.finish(error as? GRPCStatus ?? GRPCStatus(.invalidArgument, "cannot decode StreamTasksRequest: \(error)"))
                return nil
            }
            let sink = TaskSink(
                identity: request.identity, nonce: UInt64.random(in: 1 ... .max),
                push: { event in
                    guard let payload = try? DeterministicBinaryEncoder.encode(event) else { return }
                    _ = responder.send(payload)
                },
                close: { responder.finish($0) },
                sticky: request.partialHistory ? StickyHistory() : nil)
            let servedBy = info.api
            do {
                let id = try dispatcher.openStream(
                    queue: queue, workflowSlots: request.workflowTaskSlots, activitySlots: request.activityTaskSlots,
                    acceptsQueries: request.acceptQueries, oneShot: false, sink: sink) { id in
                    var event = Ballast_V1_TaskStreamEvent()
                    event.started.streamToken = .init(Dispatcher.idToken(id: id, nonce: sink.nonce))
                    event.started.servedBy = servedBy
                    sink.push(event)
                }
                logger.debug("task stream opened", metadata: ["stream": "\(id)", "queue": "\(queue)", "identity": "\(request.identity)"])
                let dispatcher = self.dispatcher
                return { dispatcher.closeStream(id) }
            } catch DispatchRefusal.notLeading {
                Task { responder.finish(await notLeaderStatus(waitForLeader: .zero)) }
            } catch let refusal as DispatchRefusal {
                responder.finish(dispatcher.status(for: refusal))
            } catch {
                responder.finish(GRPCStatus(.internal, "\(error)"))
            }
            return nil
        })
    }

    /// Validates a queue name and resolves the default namespace.
    static func taskQueueKey(namespace: String, taskQueue: String) throws -> TaskQueueKey {
        guard !taskQueue.isEmpty else { throw GRPCStatus(.invalidArgument, "task_queue is required") }
        guard taskQueue.utf8.count <= 1_000, namespace.utf8.count <= 1_000 else {
            throw GRPCStatus(.invalidArgument, "task_queue and namespace are at most 1000 bytes")
        }
        return TaskQueueKey(namespace: namespace.isEmpty ? WorkflowEngine.defaultNamespace : namespace, taskQueue: taskQueue)
    }

    /// A long poll: a one-slot stream that ends with the first task, or empty before the deadline.
    private func poll(_ queue: TaskQueueKey, identity: String, workflow: Bool,
                      _ context: GRPCServerContext) async throws -> Ballast_V1_TaskStreamEvent? {
        var wait = Self.maxPollWait
        if let deadline = context.deadline {
            let left = Duration.nanoseconds((deadline - NIODeadline.now()).nanoseconds) - Self.pollDeadlineMargin
            wait = max(.zero, min(wait, left))
        }
        let waiter = PollWaiter()
        // Its token is never handed out; the nonce is secret all the same (a grant must not find it).
        let sink = TaskSink(identity: identity, nonce: UInt64.random(in: 1 ... .max), push: { waiter.resolve(.success($0)) },
                            close: { waiter.resolve(.failure($0)) })
        let id: TaskStreamID
        do {
            id = try dispatcher.openStream(queue: queue, workflowSlots: workflow ? 1 : 0, activitySlots: workflow ? 0 : 1,
                                           acceptsQueries: false, oneShot: true, sink: sink) { _ in }
        } catch {
            if error == .notLeading { throw await notLeaderStatus(waitForLeader: .zero) }
            throw dispatcher.status(for: error)
        }
        let dispatcher = self.dispatcher
        let timer = Task {
            guard (try? await Task.sleep(for: wait)) != nil else { return }
            // A task already matched to this poll is on its way: wait for it rather than strand it.
            let giveUp = ContinuousClock.now + .seconds(2)
            while !dispatcher.endPoll(id), ContinuousClock.now < giveUp {
                guard (try? await Task.sleep(for: .milliseconds(5))) != nil else { return }
            }
            waiter.resolve(.success(nil))
        }
        defer {
            timer.cancel()
            dispatcher.closeStream(id)
        }
        return try await withTaskCancellationHandler {
            try await waiter.value()
        } onCancel: {
            waiter.resolve(.failure(GRPCStatus(.cancelled, "the poll was cancelled")))
        }
    }

    /// UNAVAILABLE with the `ballast-leader` trailer; waits up to `waitForLeader` for a leader
    /// other than this node to be known (after a step-down the new one takes an election).
    func notLeaderStatus(waitForLeader: Duration) async -> GRPCStatus {
        let deadline = ContinuousClock.now + waitForLeader
        var leader = await knownLeader()
        while leader == nil || leader == configuration.id, ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(20))
            leader = await knownLeader()
        }
        var answer = status(for: .refused(.notLeader(leaderHint: leader)))
        if leader == configuration.id {
            answer.message = "this node was just elected and takes task streams once it has applied its first entry; retry shortly"
        }
        return answer
    }

    /// The leader the Raft core knows, or nil (also when the driver has stopped and cannot answer).
    /// The half-second bound is a task's sleep, not a task on the event loops: this runs while
    /// a node stops (its dispatcher closing worker streams), after its loops may have shut down,
    /// and NIO drops a task scheduled on a loop that has shut down without completing it (a
    /// debug build traps on the leaked promise; a release build would wait here forever).
    private func knownLeader() async -> NodeID? {
        let answer = PollWaiter.Box<NodeID?>()
        driver.inspect { answer.resolve($0.leader) }
        let bound = Task {
            try? await Task.sleep(for: .milliseconds(500))
            answer.resolve(nil)
        }
        defer { bound.cancel() }
        return await answer.value()
    }
}

/// One long poll's outcome: a task, nothing (timed out), or a failure; resolved once.
final class PollWaiter: Sendable {
    /// A value set once and awaited once.
    final class Box<Value: Sendable>: Sendable {
        private let state = Mutex<(value: Value?, done: Bool, continuation: CheckedContinuation<Value, Never>?)>((nil, false, nil))

        /// Sets the value (first call wins) and wakes the waiter.
        func resolve(_ value: Value) {
            let continuation = state.withLock { state -> CheckedContinuation<Value, Never>? in
                guard !state.done else { return nil }
                state.done = true
                state.value = value
                defer { state.continuation = nil }
                return state.continuation
            }
            continuation?.resume(returning: value)
        }

        /// Waits for the value.
        func value() async -> Value {
            await withCheckedContinuation { continuation in
                let ready = state.withLock { state -> Value? in
                    if state.done { return state.value }
                    state.continuation = continuation
                    return nil
                }
                if let ready { continuation.resume(returning: ready) }
            }
        }
    }

    private let box = Box<Result<Ballast_V1_TaskStreamEvent?, GRPCStatus>>()

    /// Resolves the poll (first call wins).
    func resolve(_ result: Result<Ballast_V1_TaskStreamEvent?, GRPCStatus>) { box.resolve(result) }

    /// Waits for the poll's outcome.
    func value() async throws -> Ballast_V1_TaskStreamEvent? { try await box.value().get() }
}
