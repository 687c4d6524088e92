import BallastProto

// The operations behind `WorkflowContext`. Each runs on the run's executor (or, for signal
// and query handlers, while the runtime delivers inputs), never concurrently.
extension WorkflowRun {
    /// Throws if the run is being torn down or the calling task is canceled.
    func checkUsable() throws {
        if isTearingDown { throw WorkflowEvictedError() }
        if Task.isCancelled { throw CanceledError("the workflow scope is canceled") }
    }

    // MARK: Activities

    /// Schedules an activity and waits for its outcome.
    func executeActivity(type: String, input: Ballast_V1_Payloads, options: ActivityOptions) async throws -> Ballast_V1_Payloads {
        try checkUsable()
        let call = ActivityCall(id: String(nextActivitySeq), type: type)
        nextActivitySeq += 1
        activities[call.id] = call
        var attributes = Ballast_V1_ScheduleActivityTaskCommandAttributes()
        attributes.activityID = call.id
        attributes.activityType.name = type
        attributes.taskQueue = options.taskQueue ?? info.taskQueue
        attributes.input = input
        attributes.scheduleToCloseTimeoutNanos = options.scheduleToCloseTimeout?.nanoseconds ?? 0
        attributes.scheduleToStartTimeoutNanos = options.scheduleToStartTimeout?.nanoseconds ?? 0
        attributes.startToCloseTimeoutNanos = options.startToCloseTimeout?.nanoseconds
            ?? (options.scheduleToCloseTimeout == nil ? Duration.seconds(60).nanoseconds : 0)
        attributes.heartbeatTimeoutNanos = options.heartbeatTimeout?.nanoseconds ?? 0
        if let policy = options.retryPolicy { attributes.retryPolicy = policy.proto }
        var command = Ballast_V1_Command()
        command.scheduleActivityTask = attributes
        append(.scheduleActivity(id: call.id, type: type), command) { [self] eventId in
            call.scheduledEventId = eventId
            activityIdsByScheduledEventId[eventId] = call.id
        }
        return try await withTaskCancellationHandler {
            try await call.completion.value()
        } onCancel: { [self] in
            cancelActivity(call)
        }
    }

    /// Stops waiting for an activity and asks the cluster to cancel it (or withdraws the
    /// schedule command if it was not sent yet).
    private func cancelActivity(_ call: ActivityCall) {
        guard !isTearingDown, !call.completion.isResolved else { return }
        if call.scheduledEventId == 0 {
            _ = withdraw(.scheduleActivity(id: call.id, type: call.type))
            activities.removeValue(forKey: call.id)
        } else {
            var attributes = Ballast_V1_RequestCancelActivityTaskCommandAttributes()
            attributes.scheduledEventID = call.scheduledEventId
            var command = Ballast_V1_Command()
            command.requestCancelActivityTask = attributes
            append(.requestCancelActivity(scheduledEventId: call.scheduledEventId), command)
        }
        call.completion.resolve(.failure(CanceledError("activity \(call.type) (id \(call.id)) canceled")))
    }

    // MARK: Timers

    /// Starts a durable timer (not awaited).
    func startTimer(_ duration: Duration) -> TimerCall {
        let call = TimerCall(id: String(nextTimerSeq))
        nextTimerSeq += 1
        timers[call.id] = call
        var attributes = Ballast_V1_StartTimerCommandAttributes()
        attributes.timerID = call.id
        attributes.startToFireTimeoutNanos = max(1, duration.nanoseconds)
        var command = Ballast_V1_Command()
        command.startTimer = attributes
        append(.startTimer(id: call.id), command)
        return call
    }

    /// Cancels a timer that has not fired (withdraws its start if not sent yet).
    func cancelTimer(_ call: TimerCall) {
        guard !isTearingDown, !call.completion.isResolved else { return }
        timers.removeValue(forKey: call.id)
        if !withdraw(.startTimer(id: call.id)) {
            var attributes = Ballast_V1_CancelTimerCommandAttributes()
            attributes.timerID = call.id
            var command = Ballast_V1_Command()
            command.cancelTimer = attributes
            append(.cancelTimer(id: call.id), command)
        }
        call.completion.resolve(.failure(CanceledError("timer \(call.id) canceled")))
    }

    /// Sleeps durably for `duration` (nothing when it is not positive).
    func sleep(for duration: Duration) async throws {
        try checkUsable()
        guard duration > .zero else { return }
        let call = startTimer(duration)
        try await withTaskCancellationHandler {
            try await call.completion.value()
        } onCancel: { [self] in
            cancelTimer(call)
        }
    }

    /// Waits until `predicate` holds (true) or `timeout` passes (false).
    func condition(timeout: Duration?, _ predicate: @escaping () -> Bool) async throws -> Bool {
        try checkUsable()
        if predicate() { return true }
        let wait = ConditionWait(predicate: predicate)
        conditions.append(wait)
        if let timeout {
            guard timeout > .zero else {
                conditions.removeAll { $0 === wait }
                return false
            }
            let timer = startTimer(timeout)
            timer.onFired = { [self] in
                wait.completion.resolve(.success(false))
                conditions.removeAll { $0 === wait }
            }
            wait.timer = timer
        }
        return try await withTaskCancellationHandler {
            try await wait.completion.value()
        } onCancel: { [self] in
            guard !isTearingDown, !wait.completion.isResolved else { return }
            if let timer = wait.timer { cancelTimer(timer) }
            wait.completion.resolve(.failure(CanceledError("condition wait canceled")))
        }
    }

    // MARK: Signals

    /// Waits for the next signal named `name` (buffered ones first).
    func receiveSignal(_ name: String) async throws -> Ballast_V1_Payloads {
        if let buffered = takeBufferedSignal(name) { return buffered }
        try checkUsable()
        let waiter = Completion<Ballast_V1_Payloads>()
        signalWaiters[name, default: []].append(waiter)
        return try await withTaskCancellationHandler {
            try await waiter.value()
        } onCancel: { [self] in
            guard !isTearingDown, !waiter.isResolved else { return }
            signalWaiters[name]?.removeAll { $0 === waiter }
            waiter.resolve(.failure(CanceledError("signal wait canceled")))
        }
    }

    /// Registers a handler and hands it the signals buffered so far, in arrival order.
    func setSignalHandler(_ name: String, _ handler: @escaping (Ballast_V1_Payloads) -> Void) {
        signalHandlers[name] = handler
        while let buffered = takeBufferedSignal(name) { handler(buffered) }
    }

    // MARK: Markers

    /// Runs `body` once and records its value; replays return the recorded value.
    func sideEffect(_ body: () throws -> Ballast_V1_Payloads) throws -> Ballast_V1_Payloads {
        try checkUsable()
        let id = String(nextSideEffectSeq)
        nextSideEffectSeq += 1
        let value: Ballast_V1_Payloads
        if isReplaying, let recorded = recordedSideEffects[id] {
            value = recorded
        } else {
            value = try body()
        }
        var attributes = Ballast_V1_RecordMarkerCommandAttributes()
        attributes.markerName = CommandKey.sideEffectMarkerName
        attributes.details[CommandKey.markerIdKey] = CommandKey.markerIdPayloads(id)
        attributes.details[CommandKey.markerDataKey] = value
        var command = Ballast_V1_Command()
        command.recordMarker = attributes
        append(.marker(name: CommandKey.sideEffectMarkerName, id: id), command)
        return value
    }

    /// Whether the run takes the code path of patch `id` (see `WorkflowContext.patched`).
    func patched(_ id: String) -> Bool {
        if let decided = patchDecisions[id] { return decided }
        let decision = isTearingDown ? false : (isReplaying ? recordedPatches.contains(id) : true)
        patchDecisions[id] = decision
        if decision {
            var attributes = Ballast_V1_RecordMarkerCommandAttributes()
            attributes.markerName = CommandKey.patchMarkerName
            attributes.details[CommandKey.markerIdKey] = CommandKey.markerIdPayloads(id)
            var command = Ballast_V1_Command()
            command.recordMarker = attributes
            append(.marker(name: CommandKey.patchMarkerName, id: id), command)
        }
        return decision
    }

    /// Records new search attribute values (an unset value removes the attribute).
    func upsertSearchAttributes(_ attributes: [String: Ballast_V1_SearchAttributeValue]) throws {
        if isTearingDown { throw WorkflowEvictedError() }
        var upsert = Ballast_V1_UpsertWorkflowSearchAttributesCommandAttributes()
        upsert.searchAttributes.indexedFields = attributes
        var command = Ballast_V1_Command()
        command.upsertWorkflowSearchAttributes = upsert
        append(.upsertSearchAttributes, command)
        for (name, value) in attributes {
            searchAttributes[name] = value.value == nil ? nil : value
        }
    }
}
