import BallastProto
import Logging
import Synchronization

/// The workflow runtime: runs workflow tasks and queries for the worker (`WorkflowTaskHandling`).
///
/// Each task is run on the run's cached state when the cache holds the run at the position the
/// task expects (sticky execution); otherwise the whole history is replayed through the code.
public final class WorkflowRuntime: WorkflowTaskHandling, Sendable {
    /// Counters of the cache's behaviour (for tests and metrics).
    public struct Statistics: Sendable, Equatable {
        /// Tasks run on a cached run.
        public var cacheHits = 0
        /// Tasks that replayed the whole history.
        public var fullReplays = 0
        /// Runs evicted because the cache was full.
        public var evictions = 0
        /// Tasks that came with only the events since the previous task for a run no longer
        /// cached: answered `.needsWholeHistory`.
        public var partialHistoryMisses = 0
    }

    private let registry: WorkflowRegistry
    private let converter: DataConverter
    private let logger: Logger
    private let state: Mutex<(cache: WorkflowCache, statistics: Statistics)>

    /// Creates a runtime for `workflows`, keeping at most `maxCachedRuns` runs between tasks.
    public init(workflows: [any Workflow.Type], dataConverter: DataConverter = .default, maxCachedRuns: Int = 1_000,
                logger: Logger = Logger(label: "ballast.sdk.workflow")) {
        self.registry = WorkflowRegistry(workflows)
        self.converter = dataConverter
        self.logger = logger
        self.state = Mutex((WorkflowCache(capacity: maxCachedRuns), Statistics()))
    }

    /// The registered workflow type names.
    public var workflowTypes: [String] { registry.names }
    /// The cache's counters so far.
    public var statistics: Statistics { state.withLock { $0.statistics } }
    /// How many runs are cached now.
    public var cachedRuns: Int { state.withLock { $0.cache.count } }

    /// Runs one workflow task.
    public func handleWorkflowTask(_ task: Ballast_V1_WorkflowTaskInfo, history: [Ballast_V1_HistoryEvent]) async -> WorkflowTaskResult {
        runTask(task, history: history)
    }

    /// The synchronous body of `handleWorkflowTask` (the code runs on the calling thread).
    func runTask(_ task: Ballast_V1_WorkflowTaskInfo, history: [Ballast_V1_HistoryEvent]) -> WorkflowTaskResult {
        let firstEventId = history.first?.eventID ?? 1
        if let run = cachedRun(for: task, firstEventId: firstEventId) { return execute(run, task, history) }
        guard firstEventId <= 1 else {
            state.withLock { $0.statistics.partialHistoryMisses += 1 }
            return .needsWholeHistory
        }
        guard let run = newRun(task) else {
            return unregistered(task.workflowType.name, workflowId: task.workflowExecution.workflowID)
        }
        return execute(run, task, history)
    }

    private func execute(_ run: WorkflowRun, _ task: Ballast_V1_WorkflowTaskInfo, _ history: [Ballast_V1_HistoryEvent]) -> WorkflowTaskResult {
        let runId = task.workflowExecution.runID
        do {
            guard let commands = try run.process(history, liveStartedEventId: task.startedEventID) else {
                run.tearDown()
                return failed(.task(WorkflowTaskError(message: "\(run.label): the history does not contain the task's started event \(task.startedEventID)")), run)
            }
            if run.isClosed {
                run.tearDown()
            } else {
                let evicted = state.withLock { state in
                    let evicted = state.cache.put(runId, run)
                    state.statistics.evictions += evicted.filter { $0 !== run }.count
                    return evicted
                }
                for old in evicted { old.tearDown() }
            }
            return .completed(commands)
        } catch {
            run.tearDown()
            return failed(error, run)
        }
    }

    /// The cached run this task continues, taken out of the cache; nil (and the run torn down)
    /// when it is not where the task continues from or has not seen the events before `firstEventId`.
    private func cachedRun(for task: Ballast_V1_WorkflowTaskInfo, firstEventId: Int64) -> WorkflowRun? {
        let (run, usable) = state.withLock { state -> (WorkflowRun?, Bool) in
            guard let run = state.cache.take(task.workflowExecution.runID) else { return (nil, false) }
            // The cached run must be exactly where this task continues from; another worker may
            // have completed tasks in between, or our last completion may have been refused.
            let usable = run.lastStartedEventId == task.previousStartedEventID && run.processedEventId < task.startedEventID
                && run.processedEventId + 1 >= firstEventId
            if usable { state.statistics.cacheHits += 1 }
            return (run, usable)
        }
        guard let run else { return nil }
        if usable { return run }
        run.tearDown()
        return nil
    }

    private func newRun(_ task: Ballast_V1_WorkflowTaskInfo) -> WorkflowRun? {
        guard let definition = registry.definitions[task.workflowType.name] else { return nil }
        state.withLock { $0.statistics.fullReplays += 1 }
        let info = WorkflowInfo(namespace: task.namespace, workflowId: task.workflowExecution.workflowID,
                                runId: task.workflowExecution.runID, workflowType: task.workflowType.name,
                                taskQueue: task.taskQueue, attempt: 1, continuedRunId: nil, parent: nil, startTimeUnixNanos: 0)
        return WorkflowRun(definition: definition, info: info, converter: converter, logger: logger)
    }

    private func unregistered(_ type: String, workflowId: String) -> WorkflowTaskResult {
        var failure = Ballast_V1_Failure()
        failure.source = FailureConverter.source
        failure.type = "WorkflowTypeNotRegistered"
        failure.message = "workflow \(type) (id \(workflowId)): the type is not registered on this worker (registered: \(registry.names.joined(separator: ", "))); the run waits for a worker that has it"
        return .failed(.workflowWorkerUnhandledFailure, failure)
    }

    private func failed(_ error: RunFailure, _ run: WorkflowRun) -> WorkflowTaskResult {
        let (cause, failure) = error.reported
        logger.error("workflow task failed", metadata: [
            "workflowId": "\(run.info.workflowId)", "runId": "\(run.info.runId)", "cause": "\(cause)", "error": "\(failure.message)",
        ])
        return .failed(cause, failure)
    }

    /// Answers a query by replaying `history` into a fresh run (the cached run, if any, is left
    /// untouched: it may be in the middle of a task) and calling the handler.
    public func handleQuery(_ query: Ballast_V1_QueryTask, history: [Ballast_V1_HistoryEvent]) async -> QueryTaskResult {
        guard let definition = registry.definitions[query.workflowType.name] else {
            return .failed(queryFailure("workflow type \(query.workflowType.name) is not registered on this worker"))
        }
        let info = WorkflowInfo(namespace: query.namespace, workflowId: query.execution.workflowID, runId: query.execution.runID,
                                workflowType: query.workflowType.name, taskQueue: "", attempt: 1, continuedRunId: nil,
                                parent: nil, startTimeUnixNanos: 0)
        let run = WorkflowRun(definition: definition, info: info, converter: converter, logger: logger)
        defer { run.tearDown() }
        return Self.answer(query.queryType, args: query.queryArgs, run: run, history: history)
    }

    /// Replays `history` into `run` and calls the query handler.
    static func answer(_ name: String, args: Ballast_V1_Payloads, run: WorkflowRun, history: [Ballast_V1_HistoryEvent]) -> QueryTaskResult {
        do {
            _ = try run.process(history, liveStartedEventId: nil)
        } catch {
            return .failed(queryFailure("\(error.publicError)"))
        }
        guard let handler = run.queryHandlers[name] else {
            let known = run.queryHandlers.keys.sorted().joined(separator: ", ")
            return .failed(queryFailure("\(run.label): no query handler for '\(name)' (known: \(known))"))
        }
        do {
            return .answered(try handler(args))
        } catch {
            return .failed(FailureConverter.failure(from: error))
        }
    }

    private static func queryFailure(_ message: String) -> Ballast_V1_Failure {
        var failure = Ballast_V1_Failure()
        failure.source = FailureConverter.source
        failure.type = "QueryFailed"
        failure.message = message
        return failure
    }

    private func queryFailure(_ message: String) -> Ballast_V1_Failure { Self.queryFailure(message) }

    /// Tears down every cached run (worker shutdown).
    public func shutdown() {
        let runs = state.withLock { $0.cache.removeAll() }
        for run in runs { run.tearDown() }
    }
}
