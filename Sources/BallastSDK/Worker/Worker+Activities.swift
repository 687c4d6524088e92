import BallastProto
import BallastWire
import Logging

extension Worker {
    /// Runs one activity attempt and reports its outcome. A cancel request seen in a heartbeat
    /// answer cancels the attempt's Swift task (reported canceled if the activity says so); a
    /// shutdown that outlasts the grace period cancels it too, but then the attempt is
    /// reported failed (retryable), since the workflow did not ask for a cancel.
    func runActivityTask(_ info: Ballast_V1_ActivityTaskInfo) async {
        guard let activities else {
            await report(info, .failed(Self.failure("NoActivities", "worker \(options.identity) runs no activities"),
                                       lastHeartbeatDetails: nil))
            return
        }
        let handlerID = state.withLock { state in state.nextID += 1; return state.nextID }
        let heartbeater = ActivityHeartbeater(worker: self, info: info, interval: heartbeatInterval(info)) { [weak self] in
            self?.state.withLock { $0.handlerCancels[handlerID] }?()
        }
        let outcome = await runHandler({ await activities.handleActivityTask(info, heartbeat: heartbeater) }, id: handlerID)
        await heartbeater.finish()
        let lastDetails = await heartbeater.lastDetails
        let result = outcome ?? .failed(Self.failure("WorkerShutdown", "the worker shut down during the attempt"),
                                        lastHeartbeatDetails: lastDetails)
        await report(info, result)
    }

    /// The heartbeat throttle: 80% of the heartbeat timeout, at most the configured maximum.
    func heartbeatInterval(_ info: Ballast_V1_ActivityTaskInfo) -> Duration {
        guard info.heartbeatTimeoutNanos > 0 else { return options.maxHeartbeatThrottleInterval }
        return min(.nanoseconds(info.heartbeatTimeoutNanos * 4 / 5), options.maxHeartbeatThrottleInterval)
    }

    func report(_ info: Ballast_V1_ActivityTaskInfo, _ result: ActivityTaskResult) async {
        do {
            switch result {
            case .completed(let payloads):
                var request = Ballast_V1_RespondActivityTaskCompletedRequest()
                request.taskToken = info.taskToken
                request.result = payloads
                request.identity = options.identity
                _ = try await respond(BallastMethod.Worker.respondActivityTaskCompleted, request,
                                      as: Ballast_V1_RespondActivityTaskCompletedResponse.self)
                options.onAcknowledged?(WorkerAcknowledgement(.activityCompleted, activity: info, identity: options.identity))
            case .failed(let failure, let details):
                var request = Ballast_V1_RespondActivityTaskFailedRequest()
                request.taskToken = info.taskToken
                request.failure = failure
                request.identity = options.identity
                if let details { request.lastHeartbeatDetails = details }
                _ = try await respond(BallastMethod.Worker.respondActivityTaskFailed, request,
                                      as: Ballast_V1_RespondActivityTaskFailedResponse.self)
                options.onAcknowledged?(WorkerAcknowledgement(.activityFailed, activity: info, identity: options.identity))
            case .canceled(let details):
                var request = Ballast_V1_RespondActivityTaskCanceledRequest()
                request.taskToken = info.taskToken
                request.identity = options.identity
                if let details { request.details = details }
                _ = try await respond(BallastMethod.Worker.respondActivityTaskCanceled, request,
                                      as: Ballast_V1_RespondActivityTaskCanceledResponse.self)
                options.onAcknowledged?(WorkerAcknowledgement(.activityCanceled, activity: info, identity: options.identity))
            }
        } catch {
            logStaleOrFailed(error, "activity response", taskLogger(info.workflowExecution, "activityId", info.activityID))
        }
    }
}

/// Sends an activity's heartbeats, throttled: the first goes at once, later ones at most once
/// per interval; details given in between replace each other and the latest is sent when the
/// interval ends. Each answer may ask for cancellation, which cancels the attempt.
actor ActivityHeartbeater: ActivityHeartbeating {
    let worker: Worker
    let info: Ballast_V1_ActivityTaskInfo
    let interval: Duration
    let cancelAttempt: @Sendable () -> Void
    private var lastSent: ContinuousClock.Instant?
    private var pending: Ballast_V1_Payloads?
    private var flush: Task<Void, Never>?
    private var cancelRequested = false
    private var finished = false
    /// The latest details the activity reported (sent or not).
    private(set) var lastDetails: Ballast_V1_Payloads?

    init(worker: Worker, info: Ballast_V1_ActivityTaskInfo, interval: Duration, cancelAttempt: @escaping @Sendable () -> Void) {
        self.worker = worker
        self.info = info
        self.interval = interval
        self.cancelAttempt = cancelAttempt
    }

    func heartbeat(_ details: Ballast_V1_Payloads) async -> Bool {
        guard !finished else { return cancelRequested }
        lastDetails = details
        let now = ContinuousClock.now
        if let lastSent, now - lastSent < interval {
            pending = details
            if flush == nil {
                let due = lastSent + interval
                flush = Task { [weak self] in
                    try? await Task.sleep(until: due)
                    await self?.flushPending()
                }
            }
            return cancelRequested
        }
        await send(details)
        return cancelRequested
    }

    private func flushPending() async {
        flush = nil
        guard !finished, let details = pending else { return }
        pending = nil
        await send(details)
    }

    private func send(_ details: Ballast_V1_Payloads) async {
        lastSent = ContinuousClock.now
        var request = Ballast_V1_RecordActivityTaskHeartbeatRequest()
        request.taskToken = info.taskToken
        request.details = details
        request.identity = worker.options.identity
        do {
            let response = try await worker.respond(BallastMethod.Worker.recordActivityTaskHeartbeat, request,
                                                    as: Ballast_V1_RecordActivityTaskHeartbeatResponse.self)
            if response.cancelRequested { requestCancel() }
        } catch {
            // The attempt is no longer current (timed out, run closed): stop working on it.
            if error.code == .notFound || error.code == .failedPrecondition { requestCancel() }
            // Refused details (too large for the run, docs/engine.md): not recorded, and the
            // heartbeat deadline not extended either, so say so rather than let it time out unexplained.
            if error.code == .resourceExhausted || error.code == .invalidArgument {
                worker.logger.warning("activity heartbeat refused", metadata: [
                    "activity_id": "\(info.activityID)", "attempt": "\(info.attempt)", "error": "\(error)"])
            }
        }
    }

    private func requestCancel() {
        guard !cancelRequested else { return }
        cancelRequested = true
        cancelAttempt()
    }

    /// The attempt ended: drop any heartbeat still waiting.
    func finish() {
        finished = true
        flush?.cancel()
        flush = nil
    }
}
