import BallastProto
import Logging
import Synchronization

/// Why a run in the test environment did not produce a result.
public enum WorkflowTestError: Error, CustomStringConvertible, Sendable {
    /// The workflow failed; `failure` is its close failure and `error` the Swift error for it.
    case failed(Ballast_V1_Failure, error: any Error & Sendable)
    /// The workflow was canceled.
    case canceled
    /// A workflow task failed (non-determinism, bad input, unregistered type).
    case workflowTaskFailed(Ballast_V1_WorkflowTaskFailedCause, message: String)
    /// The workflow waits for something that nothing in the environment will deliver (a signal).
    case blocked(String)
    /// A query failed.
    case queryFailed(String)

    /// Describes the error.
    public var description: String {
        switch self {
        case .failed(let failure, _): return "workflow failed: \(failure.message)"
        case .canceled: return "workflow canceled"
        case .workflowTaskFailed(let cause, let message): return "workflow task failed (\(cause)): \(message)"
        case .blocked(let message): return message
        case .queryFailed(let message): return "query failed: \(message)"
        }
    }
}

/// Runs workflows in-process without a cluster: workflow tasks go through the real runtime,
/// activities through the real activity executor (with your implementations or fakes), and
/// time is virtual — timers fire as soon as the workflow is otherwise blocked, so a workflow
/// that sleeps for days finishes in milliseconds.
///
/// By default every workflow task replays the whole history (no cache), so a test also checks
/// that the workflow replays deterministically.
public final class WorkflowTestEnvironment: @unchecked Sendable {
    let runtime: WorkflowRuntime
    let activities: ActivityExecutor
    let converter: DataConverter
    let workflowTypes: [String: any Workflow.Type]
    /// The most attempts of a failing activity when its retry policy allows unlimited ones.
    public let maxActivityAttempts: Int
    /// The virtual time (UTC nanoseconds), shared by every run of this environment.
    public internal(set) var nowUnixNanos: Int64
    var runCounter = 0

    /// Creates an environment.
    public init(workflows: [any Workflow.Type], activities: ActivityRegistry = ActivityRegistry(),
                dataConverter: DataConverter = .default, replayEveryTask: Bool = true, maxActivityAttempts: Int = 10,
                startTimeUnixNanos: Int64 = 1_700_000_000_000_000_000) {
        precondition(maxActivityAttempts > 0, "maxActivityAttempts must be positive")
        var logger = Logger(label: "ballast.sdk.test")
        logger.logLevel = .critical
        self.runtime = WorkflowRuntime(workflows: workflows, dataConverter: dataConverter,
                                       maxCachedRuns: replayEveryTask ? 0 : 100, logger: logger)
        self.activities = ActivityExecutor(activities: activities, dataConverter: dataConverter, logger: logger)
        self.converter = dataConverter
        self.workflowTypes = Dictionary(workflows.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        self.maxActivityAttempts = maxActivityAttempts
        self.nowUnixNanos = startTimeUnixNanos
    }

    /// Starts a workflow and runs it until it blocks on time or a signal (or closes).
    public func start<W: Workflow>(_ type: W.Type, input: W.Input, workflowId: String = "test-workflow") async throws -> TestWorkflowHandle<W> {
        let run = TestRun(environment: self, workflowType: W.name, input: try converter.toPayloads(input), workflowId: workflowId)
        try await run.runUntilBlocked()
        return TestWorkflowHandle(run: run)
    }

    /// Runs a workflow to its end, skipping time, and returns its result.
    public func execute<W: Workflow>(_ type: W.Type, input: W.Input, workflowId: String = "test-workflow") async throws -> W.Output {
        try await start(type, input: input, workflowId: workflowId).result()
    }

    func nextRunId() -> String {
        runCounter += 1
        return "test-run-\(runCounter)"
    }
}

/// A workflow started in a `WorkflowTestEnvironment`.
public struct TestWorkflowHandle<W: Workflow>: @unchecked Sendable {
    let run: TestRun

    /// The history of the current run so far.
    public var history: [Ballast_V1_HistoryEvent] { run.builder.events }
    /// Whether the workflow closed (and did not continue as new).
    public var isClosed: Bool { run.close != nil }
    /// The activity types scheduled so far, in order, across continue-as-new runs.
    public var scheduledActivities: [String] { run.scheduledActivities }
    /// How many times the workflow continued as new.
    public var continuedAsNew: Int { run.continuedAsNew }

    /// Sends a signal and runs the workflow until it blocks again.
    public func signal<T: Encodable & Sendable>(_ name: String, _ input: T) async throws {
        run.builder.signal(name, input: try run.environment.converter.toPayloads(input))
        run.needsTask = true
        try await run.runUntilBlocked()
    }

    /// Requests cancellation and runs the workflow until it blocks again.
    public func cancel() async throws {
        run.builder.cancelRequested(reason: "test")
        run.needsTask = true
        try await run.runUntilBlocked()
    }

    /// Asks a query handler.
    public func query<R: Decodable & Sendable>(_ name: String, as type: R.Type = R.self) async throws -> R {
        var task = Ballast_V1_QueryTask()
        task.namespace = "default"
        task.execution = run.builder.execution
        task.workflowType.name = run.builder.workflowType
        task.queryType = name
        switch await run.environment.runtime.handleQuery(task, history: run.builder.events) {
        case .answered(let payloads): return try run.environment.converter.fromPayloads(payloads, as: type)
        case .failed(let failure): throw WorkflowTestError.queryFailed(failure.message)
        }
    }

    /// Moves virtual time forward by `duration`, firing due timers in order.
    public func skipTime(_ duration: Duration) async throws {
        try await run.skipTime(to: run.environment.nowUnixNanos + duration.nanoseconds)
    }

    /// Runs the workflow to its end (skipping time) and returns its result.
    public func result() async throws -> W.Output {
        let payloads = try await run.result()
        return try run.environment.converter.fromPayloads(payloads, as: W.Output.self)
    }
}

/// One workflow (and its continue-as-new successors) driven by the test environment.
final class TestRun: @unchecked Sendable {
    let environment: WorkflowTestEnvironment
    var builder: HistoryBuilder
    var needsTask = true
    var close: Ballast_V1_HistoryEvent.OneOf_Attributes?
    var pendingActivities: [(scheduledEventId: Int64, attributes: Ballast_V1_ScheduleActivityTaskCommandAttributes)] = []
    var pendingChildren: [(initiatedEventId: Int64, attributes: Ballast_V1_StartChildWorkflowExecutionCommandAttributes)] = []
    var timers: [String: (startedEventId: Int64, fireAt: Int64)] = [:]
    var scheduledActivities: [String] = []
    var continuedAsNew = 0

    init(environment: WorkflowTestEnvironment, workflowType: String, input: Ballast_V1_Payloads, workflowId: String) {
        self.environment = environment
        self.builder = HistoryBuilder(workflowType: workflowType, input: input, workflowId: workflowId,
                                      runId: environment.nextRunId(), startTimeUnixNanos: environment.nowUnixNanos)
    }

    /// Runs workflow tasks, activities and children until only time or a signal can move the run.
    func runUntilBlocked() async throws {
        while close == nil {
            builder.timeUnixNanos = environment.nowUnixNanos
            if needsTask {
                needsTask = false
                try await runWorkflowTask()
            } else if !pendingActivities.isEmpty {
                let activity = pendingActivities.removeFirst()
                await runActivity(activity.scheduledEventId, activity.attributes)
                needsTask = true
            } else if !pendingChildren.isEmpty {
                let child = pendingChildren.removeFirst()
                try await runChild(child.initiatedEventId, child.attributes)
                needsTask = true
            } else {
                return
            }
        }
    }

    /// Fires the timers due by `target` in time order, running the workflow after each.
    func skipTime(to target: Int64) async throws {
        try await runUntilBlocked()
        while close == nil, let (id, timer) = timers.min(by: { ($0.value.fireAt, $0.key) < ($1.value.fireAt, $1.key) }),
              timer.fireAt <= target {
            environment.nowUnixNanos = max(environment.nowUnixNanos, timer.fireAt)
            builder.timeUnixNanos = environment.nowUnixNanos
            timers.removeValue(forKey: id)
            builder.timerFired(id, startedEventId: timer.startedEventId)
            needsTask = true
            try await runUntilBlocked()
        }
        environment.nowUnixNanos = max(environment.nowUnixNanos, target)
    }

    /// Runs to the end, skipping to each next timer; follows continue-as-new.
    func result() async throws -> Ballast_V1_Payloads {
        while true {
            try await runUntilBlocked()
            if let close {
                switch close {
                case .workflowExecutionCompleted(let completed): return completed.result
                case .workflowExecutionFailed(let failed):
                    throw WorkflowTestError.failed(failed.failure, error: FailureConverter.error(from: failed.failure))
                case .workflowExecutionCanceled: throw WorkflowTestError.canceled
                case .workflowExecutionContinuedAsNew(let next): continueAsNew(next)
                default: throw WorkflowTestError.blocked("unexpected close event \(close)")
                }
                continue
            }
            guard let next = timers.values.map(\.fireAt).min() else {
                throw WorkflowTestError.blocked("workflow \(builder.workflowType) (id \(builder.execution.workflowID)) waits with no timer, activity or child pending (a signal it needs was never sent?)")
            }
            try await skipTime(to: next)
        }
    }

    private func continueAsNew(_ next: Ballast_V1_WorkflowExecutionContinuedAsNewEventAttributes) {
        continuedAsNew += 1
        let type = next.workflowType.name.isEmpty ? builder.workflowType : next.workflowType.name
        builder = HistoryBuilder(workflowType: type, input: next.input, workflowId: builder.execution.workflowID,
                                 runId: environment.nextRunId(), startTimeUnixNanos: environment.nowUnixNanos)
        close = nil
        needsTask = true
        pendingActivities.removeAll()
        pendingChildren.removeAll()
        timers.removeAll()
    }

    private func runWorkflowTask() async throws {
        let info = builder.startWorkflowTask()
        switch await environment.runtime.handleWorkflowTask(info, history: builder.events) {
        case .failed(let cause, let failure):
            throw WorkflowTestError.workflowTaskFailed(cause, message: failure.message)
        case .needsWholeHistory:
            // The environment always gives the whole history.
            throw WorkflowTestError.workflowTaskFailed(.workflowWorkerUnhandledFailure, message: "the runtime asked for the whole history")
        case .completed(let commands):
            let eventIds = builder.completeWorkflowTask(with: commands)
            for (command, eventId) in zip(commands, eventIds) { record(command, eventId: eventId) }
        }
    }

    /// Tracks what a command asks the environment to do.
    private func record(_ command: Ballast_V1_Command, eventId: Int64) {
        switch command.attributes {
        case .scheduleActivityTask(let attributes):
            pendingActivities.append((eventId, attributes))
            scheduledActivities.append(attributes.activityType.name)
        case .startTimer(let attributes):
            timers[attributes.timerID] = (eventId, environment.nowUnixNanos + attributes.startToFireTimeoutNanos)
        case .cancelTimer(let attributes):
            timers.removeValue(forKey: attributes.timerID)
        case .requestCancelActivityTask(let attributes):
            // Activities run to completion as soon as the workflow blocks, so one still pending
            // has not started: it is canceled at once, as the engine does.
            if let index = pendingActivities.firstIndex(where: { $0.scheduledEventId == attributes.scheduledEventID }) {
                pendingActivities.remove(at: index)
                builder.activityCanceled(attributes.scheduledEventID, cancelRequestedEventId: eventId)
                needsTask = true
            }
        case .startChildWorkflowExecution(let attributes):
            pendingChildren.append((eventId, attributes))
        case .signalExternalWorkflowExecution(let attributes):
            var signaled = Ballast_V1_ExternalWorkflowExecutionSignaledEventAttributes()
            signaled.initiatedEventID = eventId
            signaled.workflowExecution = attributes.execution
            builder.add(.externalWorkflowExecutionSignaled(signaled))
            needsTask = true
        case .completeWorkflowExecution, .failWorkflowExecution, .cancelWorkflowExecution, .continueAsNewWorkflowExecution:
            close = builder.events[Int(eventId) - 1].attributes
        case .recordMarker, .upsertWorkflowSearchAttributes, .none:
            break
        }
    }
}
