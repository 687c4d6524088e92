import BallastProto
import BallastWire
import Logging

extension Worker {
    /// Opens the task stream, serves it, and reopens it after any break until shutdown.
    func streamLoop() async -> Result<Void, WorkerError> {
        var backoff = Backoff(policy: options.reconnect)
        var generator = SystemRandomNumberGenerator()
        var followedHintAtOnce = false
        while !Task.isCancelled {
            var generation: UInt64?
            var failure: GRPCStatus
            do {
                let (grpc, current) = try await client.connection.current()
                generation = current
                try await serveStream(on: grpc, backoff: &backoff)
                failure = GRPCStatus(.unavailable, "the server ended the task stream")
            } catch let status as GRPCStatus {
                failure = status
            } catch {
                failure = GRPCStatus(.unknown, "\(error)")
            }
            state.withLock { $0.slots.streamLost() }
            if Task.isCancelled { break }
            switch failure.code {
            case .invalidArgument, .notFound, .permissionDenied, .unauthenticated:
                logger.error("task stream refused", metadata: ["status": "\(failure)"])
                return .failure(.streamRefused("\(failure)"))
            default:
                break
            }
            let decision = RetryClassifier.decide(failure)
            var delay = backoff.next(using: &generator)
            if case .retry(let leader) = decision {
                if let generation { await client.connection.failed(generation: generation, leader: leader) }
                // Follow a leader hint at once, but not twice in a row: stale hints during an
                // election can point nodes at each other, which must not become a busy loop.
                if leader != nil, !followedHintAtOnce {
                    delay = .zero
                    followedHintAtOnce = true
                } else {
                    followedHintAtOnce = false
                }
            } else {
                followedHintAtOnce = false
            }
            let target = await client.connection.currentTarget
            logger.info("task stream lost; reconnecting", metadata: [
                "status": "\(failure)", "delay": "\(delay)", "target": "\(target)",
            ])
            do { try await Task.sleep(for: delay) } catch { break }
        }
        return .success(())
    }

    /// Serves one task stream until it ends (normally only by an error or cancellation).
    func serveStream(on grpc: GRPCClient, backoff: inout Backoff) async throws {
        let (workflowSlots, activitySlots) = state.withLock { state in
            state.streamGeneration += 1
            return state.slots.openStream()
        }
        var request = Ballast_V1_StreamTasksRequest()
        request.namespace = client.options.namespace
        request.taskQueue = options.taskQueue
        request.identity = options.identity
        request.workflowTaskSlots = workflowSlots
        request.activityTaskSlots = activitySlots
        request.acceptQueries = workflows != nil
        // The runtime keeps runs cached and answers `.needsWholeHistory` on a miss.
        request.partialHistory = workflows != nil
        request.buildID = options.buildID
        let stream = try grpc.serverStreaming(BallastMethod.Worker.streamTasks, request: request,
                                              responseType: Ballast_V1_TaskStreamEvent.self, metadata: client.metadata)
        for try await event in stream {
            switch event.event {
            case .started(let started)?:
                logger.info("task stream open", metadata: ["servedBy": "\(started.servedBy)",
                                                           "workflowSlots": "\(workflowSlots)", "activitySlots": "\(activitySlots)"])
                state.withLock { $0.slots.streamStarted(token: [UInt8](started.streamToken)) }
                backoff.reset()
                flushGrants()
            case .workflowTask(let task)?:
                startTask(.workflow) { await self.runWorkflowTask(task) }
            case .activityTask(let task)?:
                startTask(.activity) { await self.runActivityTask(task) }
            case .queryTask(let task)?:
                startTask(.workflow) { await self.runQueryTask(task) }
            case nil:
                logger.warning("task stream sent an empty event; ignored")
            }
        }
    }

    /// Counts the task against its slot and runs `body` in its own Swift task; when it ends,
    /// the slot is given back to the current stream.
    func startTask(_ kind: WorkerTaskKind, _ body: @escaping @Sendable () async -> Void) {
        let overCredit = state.withLock { state -> Bool in
            let before = state.slots.overCreditPushes
            state.slots.taskArrived(kind)
            return state.slots.overCreditPushes > before
        }
        if overCredit { logger.warning("the server pushed a task beyond the worker's credit") }
        Task {
            await body()
            let waiters = self.state.withLock { state -> [CheckedContinuation<Void, Never>] in
                state.slots.taskFinished(kind)
                guard state.slots.idle else { return [] }
                defer { state.idleWaiters.removeAll() }
                return Array(state.idleWaiters.values)
            }
            for waiter in waiters { waiter.resume() }
            self.flushGrants()
        }
    }

    /// Sends the slots owed to the current stream, one grant call at a time: slots freed while
    /// a grant is in flight travel together in the next one.
    func flushGrants() {
        let grant = state.withLock { state -> SlotGrant? in
            guard !state.grantInFlight, state.phase == .running, let grant = state.slots.takeGrant() else { return nil }
            state.grantInFlight = true
            return grant
        }
        guard let grant else { return }
        Task {
            var request = Ballast_V1_GrantTaskSlotsRequest()
            request.streamToken = .init(grant.streamToken)
            request.workflowTaskSlots = grant.workflowSlots
            request.activityTaskSlots = grant.activitySlots
            var delivered = true
            var streamGone = false
            do {
                _ = try await self.respond(BallastMethod.Worker.grantTaskSlots, request, as: Ballast_V1_GrantTaskSlotsResponse.self)
            } catch {
                delivered = false
                // NOT_FOUND: the leader no longer has this stream; the next stream opens with
                // every free slot, so these slots are not owed to anyone.
                streamGone = (error as? BallastClientError)?.code == .notFound
                self.logger.debug("slot grant not delivered", metadata: ["error": "\(error)"])
            }
            self.state.withLock { state in
                state.grantInFlight = false
                if !delivered && !streamGone { state.slots.grantFailed(grant) }
            }
            if delivered || streamGone {
                self.flushGrants()
            } else {
                // Still owed to a live stream: try again shortly rather than leak the slots.
                try? await Task.sleep(for: .seconds(1))
                self.flushGrants()
            }
        }
    }

    /// A worker call with the response deadline and the client's retries.
    func respond<Request: SwiftProtobuf.Message, Response: SwiftProtobuf.Message>(
        _ path: String, _ request: Request, as: Response.Type
    ) async throws(BallastClientError) -> Response {
        try await client.call(path, request, as: Response.self, timeout: options.responseTimeout)
    }
}

import SwiftProtobuf
