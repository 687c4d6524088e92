import BallastProto
import Logging

/// One workflow run inside a worker: the run's code on its own deterministic executor, the
/// futures it waits on, and the commands it produced. `process` feeds it history events.
///
/// Threading: a run is used by one thread at a time (the runtime holds it exclusively while
/// processing a task), and its code runs only inside `process`, on that thread, so its mutable
/// state needs no lock. That is what `@unchecked Sendable` asserts.
final class WorkflowRun: @unchecked Sendable {
    /// The largest number of executor jobs one activation may run before the task is failed as
    /// a runaway (a loop that never blocks on the SDK).
    static let maxJobsPerActivation = 1_000_000
    /// Signals kept for handlers and channels not registered yet; beyond this the oldest is
    /// dropped with a warning (deterministically, so replay agrees).
    static let maxBufferedSignals = 10_000

    let definition: WorkflowDefinition
    let converter: DataConverter
    let logger: Logger
    var info: WorkflowInfo
    let executor = DeterministicExecutor()
    private(set) var context: WorkflowContext!

    // Progress through the history.
    private(set) var processedEventId: Int64 = 0
    /// The started event id of the last task whose code ran (the cache's position check).
    private(set) var lastStartedEventId: Int64 = 0
    private var matchingWindowOpen = false
    private var inputs: [Ballast_V1_HistoryEvent] = []
    private(set) var isReplaying = false
    private(set) var currentTimeNanos: Int64 = 0
    /// Whether the run produced its close command (complete, fail, cancel, continue-as-new).
    private(set) var isClosed = false
    private(set) var isTearingDown = false

    // Commands.
    var pendingCommands: [PendingCommand] = []
    private var closeCommand: PendingCommand?

    // Deterministic sequence numbers.
    var nextActivitySeq = 1
    var nextTimerSeq = 1
    var nextChildSeq = 1
    var nextSideEffectSeq = 1
    var nextSignalExternalSeq = 1

    // What the code waits on.
    var activities: [String: ActivityCall] = [:]
    var activityIdsByScheduledEventId: [Int64: String] = [:]
    var timers: [String: TimerCall] = [:]
    var children: [String: ChildCall] = [:]
    var childIdsByInitiatedEventId: [Int64: String] = [:]
    var externalSignals: [Int64: Completion<Void>] = [:]
    var unrecordedExternalSignals: [Completion<Void>] = []
    var conditions: [ConditionWait] = []
    var signalHandlers: [String: (Ballast_V1_Payloads) -> Void] = [:]
    var signalWaiters: [String: [Completion<Ballast_V1_Payloads>]] = [:]
    var bufferedSignals: [(name: String, input: Ballast_V1_Payloads)] = []
    var queryHandlers: [String: (Ballast_V1_Payloads) throws -> Ballast_V1_Payloads] = [:]
    var cancelRequested = false
    var rootTask: Task<Void, Never>?
    var detachedTaskCancels: [() -> Void] = []
    var searchAttributes: [String: Ballast_V1_SearchAttributeValue] = [:]

    // Markers known from history (looked up ahead of the code, as the values are needed when the
    // code calls sideEffect/patched, before the marker event is matched).
    var recordedSideEffects: [String: Ballast_V1_Payloads] = [:]
    var recordedPatches: Set<String> = []
    var patchDecisions: [String: Bool] = [:]
    var random: SplitMix64

    init(definition: WorkflowDefinition, info: WorkflowInfo, converter: DataConverter, logger: Logger) {
        self.definition = definition
        self.info = info
        self.converter = converter
        var logger = logger
        logger[metadataKey: "workflowId"] = "\(info.workflowId)"
        logger[metadataKey: "runId"] = "\(info.runId)"
        self.logger = logger
        self.random = SplitMix64(seed: fnv1a64(info.runId))
        self.context = WorkflowContext(run: self)
    }

    /// "workflow Transfer (id t-1)", the prefix of every error about this run.
    var label: String { "workflow \(info.workflowType) (id \(info.workflowId))" }

    // MARK: - Processing history

    /// Processes the events of `history` after `processedEventId`: replays the code of every
    /// completed workflow task, matching its commands against history, and runs the code of the
    /// task whose started event is `liveStartedEventId`. Returns that task's new commands, or nil
    /// when the history ends without reaching it (queries, replayer).
    func process(_ history: [Ballast_V1_HistoryEvent], liveStartedEventId: Int64?) throws(RunFailure) -> [Ballast_V1_Command]? {
        precondition(!isTearingDown, "a torn-down run is never processed again")
        executor.setActive(true)
        defer { executor.setActive(false) }
        guard executor.strayJobs == 0 else {
            throw .task(WorkflowTaskError(message: "\(label): the workflow code resumed outside a workflow task: it awaited something other than the WorkflowContext (an actor, Task.sleep, I/O, an unstructured Task), which makes replay non-deterministic; await only the context's operations"))
        }
        var index = history.firstIndex { $0.eventID > processedEventId } ?? history.endIndex
        lookAhead(history[index...])
        while index < history.endIndex {
            let event = history[index]
            guard event.eventID == processedEventId + 1 else {
                throw .task(WorkflowTaskError(message: "\(label): history is not contiguous: expected event \(processedEventId + 1), got \(event.eventID)"))
            }
            processedEventId = event.eventID
            if case .workflowTaskStarted = event.attributes {
                switch taskOutcome(startedAt: index, in: history) {
                case .completed:
                    try activate(at: event, replaying: true)
                case .failed:
                    break
                case .open where event.eventID == liveStartedEventId:
                    try activate(at: event, replaying: false)
                    return takeNewCommands()
                case .open:
                    break
                }
            } else {
                try handle(event)
            }
            index += 1
        }
        try closeMatchingWindow(next: nil)
        return nil
    }

    private enum TaskOutcome { case completed, failed, open }

    /// Whether the task started at `index` completed, failed/timed out, or is still open.
    private func taskOutcome(startedAt index: Int, in history: [Ballast_V1_HistoryEvent]) -> TaskOutcome {
        let startedId = history[index].eventID
        for event in history[(index + 1)...] {
            switch event.attributes {
            case .workflowTaskCompleted(let a) where a.startedEventID == startedId: return .completed
            case .workflowTaskFailed(let a) where a.startedEventID == startedId: return .failed
            case .workflowTaskTimedOut(let a) where a.startedEventID == startedId: return .failed
            case .workflowTaskScheduled: return .open
            default: continue
            }
        }
        return .open
    }

    /// One event that is not a workflow task start.
    private func handle(_ event: Ballast_V1_HistoryEvent) throws(RunFailure) {
        if let key = CommandKey(event: event) {
            try match(event, key: key)
            return
        }
        switch event.attributes {
        case .workflowTaskCompleted:
            matchingWindowOpen = true
        case .workflowTaskScheduled:
            try closeMatchingWindow(next: event)
        case .workflowTaskFailed, .workflowTaskTimedOut:
            break
        default:
            inputs.append(event)
        }
    }

    /// Matches a command event against the oldest unmatched command.
    private func match(_ event: Ballast_V1_HistoryEvent, key: CommandKey) throws(RunFailure) {
        guard let head = pendingCommands.first else {
            if key.isPatchMarker { return }
            throw nonDeterminism(event.eventID, "history event \(event.eventID) is \(EventDescription.describe(event)) but the code now issues no command there")
        }
        guard head.key == key else {
            if key.isPatchMarker { return }
            throw nonDeterminism(event.eventID, "history event \(event.eventID) is \(EventDescription.describe(event)) but the code now \(head.key.codeDescription)")
        }
        pendingCommands.removeFirst()
        head.onRecorded?(event.eventID)
    }

    /// Ends the run of command events after a completed task: every command must have matched.
    private func closeMatchingWindow(next: Ballast_V1_HistoryEvent?) throws(RunFailure) {
        guard matchingWindowOpen else { return }
        matchingWindowOpen = false
        guard let extra = pendingCommands.first else { return }
        let whereHistory = next.map { "history event \($0.eventID) is \(EventDescription.describe($0))" }
            ?? "the history ends at event \(processedEventId)"
        throw nonDeterminism(next?.eventID ?? processedEventId,
                             "the code now \(extra.key.codeDescription) but history has no such command (\(whereHistory))")
    }

    private func nonDeterminism(_ eventId: Int64, _ detail: String) -> RunFailure {
        .nonDeterminism(NonDeterminismError(workflowType: info.workflowType, workflowId: info.workflowId,
                                            eventId: eventId, message: "\(label): \(detail)"))
    }

    /// Records the side-effect values and patches that history holds, before the code asks.
    private func lookAhead(_ events: ArraySlice<Ballast_V1_HistoryEvent>) {
        for event in events {
            guard case .markerRecorded(let marker) = event.attributes else { continue }
            let id = CommandKey.markerId(marker.details)
            switch marker.markerName {
            case CommandKey.sideEffectMarkerName: recordedSideEffects[id] = marker.details[CommandKey.markerDataKey]
            case CommandKey.patchMarkerName: recordedPatches.insert(id)
            default: break
            }
        }
    }

    // MARK: - Activations

    /// Delivers the queued input events and runs the code until every branch is blocked.
    private func activate(at started: Ballast_V1_HistoryEvent, replaying: Bool) throws(RunFailure) {
        try closeMatchingWindow(next: started)
        isReplaying = replaying
        currentTimeNanos = max(currentTimeNanos, started.eventTimeUnixNanos)
        lastStartedEventId = started.eventID
        let batch = inputs
        inputs.removeAll(keepingCapacity: true)
        for event in batch { try apply(event) }
        try runUntilBlocked()
    }

    /// Drains the executor, re-checking `condition` waits, until nothing can make progress.
    private func runUntilBlocked() throws(RunFailure) {
        var budget = Self.maxJobsPerActivation
        while true {
            budget -= executor.drain(maxJobs: budget)
            guard budget > 0 else {
                throw .task(WorkflowTaskError(message: "\(label): the code ran \(Self.maxJobsPerActivation) steps without blocking; a loop must await an activity, timer, signal or condition"))
            }
            if !resolveSatisfiedConditions() { break }
        }
        if let close = closeCommand, !isClosed {
            pendingCommands.append(close)
            isClosed = true
        }
    }

    /// Resolves the waits whose predicate now holds, in the order they started waiting.
    private func resolveSatisfiedConditions() -> Bool {
        var progressed = false
        for wait in conditions where !wait.completion.isResolved && wait.predicate() {
            wait.completion.resolve(.success(true))
            if let timer = wait.timer { cancelTimer(timer) }
            progressed = true
        }
        conditions.removeAll { $0.completion.isResolved }
        return progressed
    }

    /// The commands of the live task, in the order the code produced them. They stay pending
    /// until the next task's history matches them.
    private func takeNewCommands() -> [Ballast_V1_Command] {
        pendingCommands.map(\.command)
    }

    // MARK: - Root task

    /// Starts the workflow's code (the first activation).
    func startRoot(_ started: Ballast_V1_WorkflowExecutionStartedEventAttributes) throws(RunFailure) {
        guard rootTask == nil else {
            throw .task(WorkflowTaskError(message: "\(label): history has a second WorkflowExecutionStarted event"))
        }
        info.attempt = Int(max(1, started.attempt))
        info.continuedRunId = started.continuedExecutionRunID.isEmpty ? nil : started.continuedExecutionRunID
        info.parent = started.hasParentWorkflowExecution ? started.parentWorkflowExecution : nil
        if info.taskQueue.isEmpty { info.taskQueue = started.taskQueue }
        searchAttributes = started.searchAttributes.indexedFields
        let body: WorkflowDefinition.Body
        do {
            body = try definition.prepare(started.input, converter)
        } catch {
            throw .task(WorkflowTaskError(message: "\(label): cannot decode the workflow input: \(error)"))
        }
        let context = self.context!
        rootTask = Task(executorPreference: executor) { [self] in
            let outcome: Result<Ballast_V1_Payloads, any Error>
            do {
                outcome = .success(try await body(context))
            } catch {
                outcome = .failure(error)
            }
            finish(outcome)
        }
    }

    /// Turns the root's outcome into the close command (appended when the activation ends).
    private func finish(_ outcome: Result<Ballast_V1_Payloads, any Error>) {
        guard !isTearingDown else { return }
        var command = Ballast_V1_Command()
        let key: CommandKey
        switch outcome {
        case .success(let result):
            var attributes = Ballast_V1_CompleteWorkflowExecutionCommandAttributes()
            attributes.result = result
            command.completeWorkflowExecution = attributes
            key = .completeWorkflow
        case .failure(let request as ContinueAsNewRequest):
            command.continueAsNewWorkflowExecution = continueAsNewAttributes(request)
            key = .continueAsNew
        case .failure(let error) where cancelRequested && isCancellation(error):
            command.cancelWorkflowExecution = Ballast_V1_CancelWorkflowExecutionCommandAttributes()
            key = .cancelWorkflow
        case .failure(let error):
            var attributes = Ballast_V1_FailWorkflowExecutionCommandAttributes()
            attributes.failure = FailureConverter.failure(from: error)
            command.failWorkflowExecution = attributes
            key = .failWorkflow
            logger.debug("workflow code failed", metadata: ["error": "\(error)"])
        }
        closeCommand = PendingCommand(key: key, command: command, onRecorded: nil)
    }

    private func continueAsNewAttributes(_ request: ContinueAsNewRequest) -> Ballast_V1_ContinueAsNewWorkflowExecutionCommandAttributes {
        var attributes = Ballast_V1_ContinueAsNewWorkflowExecutionCommandAttributes()
        attributes.workflowType.name = request.workflowType
        attributes.input = request.input
        attributes.taskQueue = request.options.taskQueue ?? ""
        attributes.workflowRunTimeoutNanos = request.options.runTimeout?.nanoseconds ?? 0
        attributes.backoffStartIntervalNanos = request.options.backoff?.nanoseconds ?? 0
        return attributes
    }

    private func isCancellation(_ error: any Error) -> Bool {
        switch error {
        case is CanceledError, is CancellationError: return true
        case let error as ActivityError: return error.cause is CanceledError
        case let error as ChildWorkflowError: return error.cause is CanceledError
        default: return false
        }
    }

    // MARK: - Commands

    /// Appends a command produced by the code.
    func append(_ key: CommandKey, _ command: Ballast_V1_Command, onRecorded: ((Int64) -> Void)? = nil) {
        guard !isClosed, !isTearingDown else {
            // Code still running after the run closed (a leftover detached scope): the engine
            // would refuse the command (COMMAND_AFTER_CLOSE), so it is dropped here.
            logger.warning("dropping a command produced after the workflow closed", metadata: ["command": "\(key.codeDescription)"])
            return
        }
        pendingCommands.append(PendingCommand(key: key, command: command, onRecorded: onRecorded))
    }

    /// Removes a command the code produced in this task and then took back (e.g. a timer
    /// canceled before it was sent). Returns false if it was already sent.
    func withdraw(_ key: CommandKey) -> Bool {
        guard let index = pendingCommands.firstIndex(where: { $0.key == key }) else { return false }
        pendingCommands.remove(at: index)
        return true
    }

    // MARK: - Teardown

    /// Ends the run's Swift tasks: every wait throws `WorkflowEvictedError`, tasks are
    /// canceled, and the executor is drained (bounded) so nothing is left suspended.
    func tearDown() {
        guard !isTearingDown else { return }
        isTearingDown = true
        executor.setActive(true)
        defer { executor.setActive(false) }
        let evicted = WorkflowEvictedError()
        rootTask?.cancel()
        for cancel in detachedTaskCancels { cancel() }
        for call in activities.values { call.completion.resolve(.failure(evicted)) }
        for call in timers.values { call.completion.resolve(.failure(evicted)) }
        for call in children.values {
            call.started.resolve(.failure(evicted))
            call.result.resolve(.failure(evicted))
        }
        for completion in externalSignals.values { completion.resolve(.failure(evicted)) }
        for completion in unrecordedExternalSignals { completion.resolve(.failure(evicted)) }
        for wait in conditions { wait.completion.resolve(.failure(evicted)) }
        for waiters in signalWaiters.values { for waiter in waiters { waiter.resolve(.failure(evicted)) } }
        _ = executor.drain(maxJobs: Self.maxJobsPerActivation)
        activities.removeAll()
        timers.removeAll()
        children.removeAll()
        externalSignals.removeAll()
        conditions.removeAll()
        signalWaiters.removeAll()
        signalHandlers.removeAll()
        queryHandlers.removeAll()
        detachedTaskCancels.removeAll()
        pendingCommands.removeAll()
        rootTask = nil
        context = nil
    }
}

/// A deterministic pseudo-random generator (SplitMix64) seeded from the run id.
struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// FNV-1a over the UTF-8 bytes of `text`.
func fnv1a64(_ text: String) -> UInt64 {
    var hash: UInt64 = 0xcbf2_9ce4_8422_2325
    for byte in text.utf8 {
        hash ^= UInt64(byte)
        hash &*= 0x0000_0100_0000_01B3
    }
    return hash
}
