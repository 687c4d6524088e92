import BallastProto
import BallastWire
import Foundation
import Logging

extension Worker {
    /// Runs one workflow task: reads the rest of its history, runs the runtime, responds.
    func runWorkflowTask(_ task: Ballast_V1_WorkflowTask) async {
        let info = task.info
        func logger() -> Logger { taskLogger(info.workflowExecution, "runId", info.workflowExecution.runID) }
        var result: WorkflowTaskResult
        do {
            let history = try await fullHistory(info.namespace, info.workflowExecution, task.history, task.nextPageToken,
                                                transient: info.transientEvents)
            if let workflows {
                result = await runHandler { await workflows.handleWorkflowTask(info, history: history) }
                    ?? .failed(.workflowWorkerUnhandledFailure, Self.failure("WorkerShutdown", "the worker shut down during the workflow task"))
                if case .needsWholeHistory = result, task.firstEventID > 1 {
                    // Only the events since our previous task came, and the run is no longer
                    // cached here: read the whole history and run the task from a full replay.
                    let whole = try await fullHistory(info.namespace, info.workflowExecution, [], Data(), transient: info.transientEvents,
                                                      readFromStart: true)
                    result = await runHandler { await workflows.handleWorkflowTask(info, history: whole) }
                        ?? .failed(.workflowWorkerUnhandledFailure, Self.failure("WorkerShutdown", "the worker shut down during the workflow task"))
                }
            } else {
                result = .failed(.workflowWorkerUnhandledFailure, Self.failure("NoWorkflows", "worker \(options.identity) runs no workflows"))
            }
        } catch {
            logger().warning("cannot read the workflow task's history", metadata: ["error": "\(error)"])
            result = .failed(.workflowWorkerUnhandledFailure, Self.failure("HistoryUnavailable", "\(error)"))
        }
        do {
            switch result {
            case .completed(let commands):
                var request = Ballast_V1_RespondWorkflowTaskCompletedRequest()
                request.taskToken = info.taskToken
                request.commands = commands
                request.identity = options.identity
                request.binaryChecksum = options.buildID
                _ = try await respond(BallastMethod.Worker.respondWorkflowTaskCompleted, request,
                                      as: Ballast_V1_RespondWorkflowTaskCompletedResponse.self)
                options.onAcknowledged?(WorkerAcknowledgement(.workflowTaskCompleted, workflowTask: info, commands: commands.count,
                                                              identity: options.identity))
            case .needsWholeHistory:
                try await respondFailed(info, .workflowWorkerUnhandledFailure, Self.failure(
                    "HistoryIncomplete", "the workflow handler asked for the whole history although it had it from event 1"), logger())
            case .failed(let cause, let failure):
                try await respondFailed(info, cause, failure, logger())
            }
        } catch {
            logStaleOrFailed(error, "workflow task response", logger())
        }
    }

    private func respondFailed(_ info: Ballast_V1_WorkflowTaskInfo, _ cause: Ballast_V1_WorkflowTaskFailedCause,
                               _ failure: Ballast_V1_Failure, _ logger: @autoclosure () -> Logger) async throws(BallastClientError) {
        logger().warning("workflow task failed", metadata: ["cause": "\(cause)", "failure": "\(failure.message)"])
        var request = Ballast_V1_RespondWorkflowTaskFailedRequest()
        request.taskToken = info.taskToken
        request.cause = cause
        request.failure = failure
        request.identity = options.identity
        _ = try await respond(BallastMethod.Worker.respondWorkflowTaskFailed, request,
                              as: Ballast_V1_RespondWorkflowTaskFailedResponse.self)
        options.onAcknowledged?(WorkerAcknowledgement(.workflowTaskFailed, workflowTask: info, commands: nil,
                                                      identity: options.identity))
    }

    /// Answers one query from the run's replayed state.
    func runQueryTask(_ task: Ballast_V1_QueryTask) async {
        var request = Ballast_V1_RespondQueryTaskCompletedRequest()
        request.queryID = task.queryID
        request.identity = options.identity
        do {
            let history = try await fullHistory(task.namespace, task.execution, task.history, task.nextPageToken, transient: [])
            let outcome = await runHandler { await self.workflows?.handleQuery(task, history: history) }
            switch outcome ?? nil {
            case .answered(let payloads)?: request.result = payloads
            case .failed(let failure)?: request.failure = failure
            case nil: request.failure = Self.failure("QueryUnhandled", "worker \(options.identity) cannot answer queries now")
            }
        } catch {
            request.failure = Self.failure("HistoryUnavailable", "\(error)")
        }
        do {
            _ = try await respond(BallastMethod.Worker.respondQueryTaskCompleted, request,
                                  as: Ballast_V1_RespondQueryTaskCompletedResponse.self)
        } catch {
            logStaleOrFailed(error, "query response", logger)
        }
    }

    /// Runs `body` in its own task, cancellable by shutdown; nil if shutdown cancelled it.
    func runHandler<Value: Sendable>(_ body: @escaping @Sendable () async -> Value,
                                     id: UInt64? = nil) async -> Value? {
        let handlerID = id ?? state.withLock { state in state.nextID += 1; return state.nextID }
        let work = Task { await body() }
        let cancelledAlready = state.withLock { state -> Bool in
            state.handlerCancels[handlerID] = { work.cancel() }
            return state.cancelledByShutdown
        }
        if cancelledAlready { work.cancel() }
        let value = await work.value
        let byShutdown = state.withLock { state -> Bool in
            state.handlerCancels.removeValue(forKey: handlerID)
            return state.cancelledByShutdown
        }
        return byShutdown && work.isCancelled ? nil : value
    }

    /// The run's history: the pushed batches, further pages while a token is given, then the
    /// transient events of a retried task that follow the stored ones. With `readFromStart`
    /// (and no batches) every page is read from the cluster, starting at event 1.
    func fullHistory(_ namespace: String, _ execution: Ballast_V1_WorkflowExecution, _ batches: [Ballast_V1_HistoryEventBatch],
                     _ nextPageToken: Data, transient: [Ballast_V1_HistoryEvent],
                     readFromStart: Bool = false) async throws(BallastClientError) -> [Ballast_V1_HistoryEvent] {
        var events: [Ballast_V1_HistoryEvent] = []
        try HistoryBatches.append(batches, to: &events)
        var token = nextPageToken
        var pages = 0
        while !token.isEmpty || (readFromStart && pages == 0) {
            pages += 1
            guard pages <= 100_000 else { throw .malformedResponse("history paging did not end") }
            var request = Ballast_V1_GetWorkflowExecutionHistoryRequest()
            request.namespace = namespace
            request.execution = execution
            request.nextPageToken = token
            let page = try await respond(BallastMethod.Workflow.getHistory, request,
                                         as: Ballast_V1_GetWorkflowExecutionHistoryBatchesResponse.self)
            try HistoryBatches.append(page.batches, to: &events)
            guard page.nextPageToken.isEmpty || page.nextPageToken != token else {
                throw .malformedResponse("the server repeated a history page token")
            }
            token = page.nextPageToken
        }
        let lastID = events.last?.eventID ?? 0
        events.append(contentsOf: transient.filter { $0.eventID > lastID })
        return events
    }

    static func failure(_ type: String, _ message: String) -> Ballast_V1_Failure {
        var failure = Ballast_V1_Failure()
        failure.type = type
        failure.message = message
        failure.source = "SwiftSDK"
        return failure
    }

    /// The worker's logger with one task's identifying metadata, built only when something is
    /// logged: setting logger metadata for every task was about 3 % of a busy worker's CPU.
    func taskLogger(_ execution: Ballast_V1_WorkflowExecution, _ key: String, _ value: String) -> Logger {
        var logger = self.logger
        logger[metadataKey: "workflowId"] = "\(execution.workflowID)"
        logger[metadataKey: key] = "\(value)"
        return logger
    }

    /// A response the server refused because the task moved on (timed out, run closed) is
    /// normal after a failover or a slow task; anything else is a warning.
    func logStaleOrFailed(_ error: BallastClientError, _ what: String, _ logger: @autoclosure () -> Logger) {
        switch error.code {
        case .notFound?, .failedPrecondition?:
            logger().info("\(what) refused: the task is no longer current", metadata: ["error": "\(error)"])
        default:
            logger().warning("\(what) not delivered; the task will time out and be retried", metadata: ["error": "\(error)"])
        }
    }
}
