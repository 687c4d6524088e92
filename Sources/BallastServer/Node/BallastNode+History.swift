import BallastEngine
import Foundation
import BallastProto
import BallastStorage
import BallastWire

/// What WaitWorkflowExecutionClosed found at its read point.
enum CloseWait: Sendable {
    case closed(RunProgress)
    case waiting(runId: String, signal: RunCloseSignal)
    case tooManyWaiters
}

extension BallastNode {
    /// The longest a WaitWorkflowExecutionClosed call waits before DEADLINE_EXCEEDED (clients poll again).
    static let maxCloseWait: Duration = .seconds(60)

    /// The read side of WorkflowService: history, list, count and waiting for a run to close.
    /// Each resolves the run on the Raft loop thread at a linearizable read point (or, with
    /// `ballast-read-consistency: stale`, at this node's applied state), then reads the history
    /// store from the calling task, never on the loop thread.
    func registerHistoryService(_ registry: inout GRPCMethodRegistry) {
        let historyMetrics = HistoryMetrics(registry: metrics.registry)
        let machine = stateMachine
        _ = group.next().scheduleRepeatedTask(initialDelay: .seconds(1), delay: .seconds(1)) { _ in
            // WaitWorkflowExecutionClosed calls past `maxCloseWait` end here, not on a timer each.
            machine.closeSignals.expire(now: .now)
            historyMetrics.update(machine.history.statistics, waiters: machine.closeSignals.count)
        }
        registry.unary(BallastMethod.Workflow.getHistory) { [self] (request: Ballast_V1_GetWorkflowExecutionHistoryRequest, context) in
            let (from, pageEvents) = try Self.invalidArgument { () throws(GRPCStatusError) in
                (try HistoryPages.firstEventId(Array(request.nextPageToken)), try HistoryPages.pageEvents(request.maximumPageSize))
            }
            let target = try await historyTarget(namespace: request.namespace, execution: request.execution,
                                                  stale: Self.wantsStaleRead(context))
            let page = try historyPage(target, from: from, maxEvents: pageEvents)
            var response = Ballast_V1_GetWorkflowExecutionHistoryBatchesResponse()
            response.batches = page.batches
            response.nextPageToken = Data(page.token)
            return response
        }
        registry.serverStreaming(BallastMethod.Workflow.streamHistory) {
            [self] (request: Ballast_V1_GetWorkflowExecutionHistoryRequest, context, writer: GRPCStreamWriter<Ballast_V1_HistoryEventBatch>) in
            var from = try Self.invalidArgument { () throws(GRPCStatusError) in try HistoryPages.firstEventId(Array(request.nextPageToken)) }
            let target = try await historyTarget(namespace: request.namespace, execution: request.execution,
                                                  stale: Self.wantsStaleRead(context))
            while from <= target.historyLength {
                try Task.checkCancellation()
                let page = try historyPage(target, from: from, maxEvents: HistoryPages.maxPageEvents)
                for batch in page.batches { try await writer.send(batch) }
                guard !page.token.isEmpty else { break }
                from = try Self.invalidArgument { () throws(GRPCStatusError) in try HistoryPages.firstEventId(page.token) }
            }
        }
        registry.unary(BallastMethod.Workflow.waitClosed) { [self] (request: Ballast_V1_WaitWorkflowExecutionClosedRequest, context) in
            try await waitClosed(request, stale: Self.wantsStaleRead(context))
        }
        registry.unary(BallastMethod.Workflow.list) { [self] (request: Ballast_V1_ListWorkflowExecutionsRequest, context) in
            try await listWorkflows(request, stale: Self.wantsStaleRead(context))
        }
        registry.unary(BallastMethod.Workflow.count) { [self] (request: Ballast_V1_CountWorkflowExecutionsRequest, context) in
            try await countWorkflows(request, stale: Self.wantsStaleRead(context))
        }
    }

    /// List pages built on the Raft loop at once (`listWorkflows`), and how many may wait.
    static let listPagesOnLoopAtOnce = 4
    static let maxWaitingListPages = 256

    /// ListWorkflowExecutions (the API's handler and the web UI's list both call this): the
    /// query is parsed here, typed, planned and paged by the engine at the read point.
    ///
    /// The page is built on the Raft loop thread if it needs at most `listRowsOnLoop` rows of
    /// the index (an indexed, selective query: the usual case), at most `listPagesOnLoopAtOnce`
    /// pages at a time. A page that needs more — a query no index serves over many runs reads
    /// up to 250,000 rows, 60–80 ms in a release build — is built again from the start on a
    /// copy of the engine, off the loop (`readOnCopy`). On the loop, 16 clients listing that way
    /// over 265,000 runs held heartbeats long enough for 37 elections in 25 seconds.
    func listWorkflows(_ request: Ballast_V1_ListWorkflowExecutionsRequest, stale: Bool) async throws -> Ballast_V1_ListWorkflowExecutionsResponse {
        let visibility = try Self.invalidArgument { () throws(GRPCStatusError) in try VisibilityRequest(list: request) }
        let rowsOnLoop = configuration.listRowsOnLoop
        try await admit(listsOnLoop, "list pages")
        let onLoop: Result<VisibilityRequest.ListPage, GRPCStatusError>
        do {
            defer { listsOnLoop.leave() }
            onLoop = try await read(stale: stale) { engine throws(EngineRejection) in visibility.page(engine, maxExaminedRows: rowsOnLoop) }
        }
        let first = try Self.invalidArgument { () throws(GRPCStatusError) in try onLoop.get() }
        guard first.stoppedAtRowLimit, rowsOnLoop < WorkflowEngine.maxExaminedRowsPerPage else { return first.response }
        let offLoop = try await readOnCopy(stale: stale) { engine throws(EngineRejection) in visibility.page(engine) }
        return try Self.invalidArgument { () throws(GRPCStatusError) in try offLoop.get() }.response
    }

    /// CountWorkflowExecutions (the API's handler and the web UI's status counts both call
    /// this): the total and the per-status counts.
    func countWorkflows(_ request: Ballast_V1_CountWorkflowExecutionsRequest, stale: Bool) async throws -> Ballast_V1_CountWorkflowExecutionsResponse {
        let visibility = try Self.invalidArgument { () throws(GRPCStatusError) in try VisibilityRequest(count: request) }
        // Off the loop: a count walks every run that matches.
        let result = try await readOnCopy(stale: stale) { engine throws(EngineRejection) in visibility.count(engine) }
        return try Self.invalidArgument { () throws(GRPCStatusError) in try result.get() }
    }

    /// Resolves the run (its id, history length and status) at the read point.
    func historyTarget(namespace: String, execution: Ballast_V1_WorkflowExecution, stale: Bool) async throws -> RunProgress {
        try await read(stale: stale) { engine throws(EngineRejection) in
            try engine.runProgress(namespace: namespace, execution: execution)
        }
    }

    /// Events `from…` of the target (up to `maxEvents` and the page byte limit), as batches.
    func historyPage(_ target: RunProgress, from: Int64, maxEvents: Int) throws -> (batches: [Ballast_V1_HistoryEventBatch], token: [UInt8]) {
        guard from <= target.historyLength + 1 else {
            throw GRPCStatus(.invalidArgument, "next_page_token points past the end of the history (\(target.historyLength) events)")
        }
        guard from <= target.historyLength else { return ([], []) }
        let wanted = Int(min(Int64(maxEvents), target.historyLength - from + 1))
        let events = try readHistory(runId: target.execution.runID, from: from, max: wanted, maxBytes: HistoryPages.maxPageBytes)
        guard !events.isEmpty else {
            throw GRPCStatus(.notFound, "the history of run \(target.execution.runID) was deleted (retention ended)")
        }
        let batches = try Self.invalidArgument { () throws(GRPCStatusError) in try HistoryPages.batches(events, firstEventId: from) }
        return (batches, HistoryPages.historyToken(after: from + Int64(events.count) - 1, length: target.historyLength))
    }

    /// Reads the history store; a store failure is INTERNAL (the node's log says more).
    func readHistory(runId: String, from: Int64, max: Int, maxBytes: Int) throws -> [[UInt8]] {
        do {
            return try stateMachine.historyEventBytes(runId: runId, from: from, max: max, maxBytes: maxBytes)
        } catch {
            logger.error("history read failed", metadata: ["runId": "\(runId)", "error": "\(error)"])
            throw GRPCStatus(.internal, "reading the history of run \(runId) failed: \(error)")
        }
    }

    /// Waits until the run (and, with follow_runs, the runs continuing it) closes, at most
    /// `maxCloseWait` per call.
    func waitClosed(_ request: Ballast_V1_WaitWorkflowExecutionClosedRequest, stale: Bool) async throws -> Ballast_V1_WaitWorkflowExecutionClosedResponse {
        let giveUp = ContinuousClock.now + Self.maxCloseWait
        let machine = stateMachine
        let namespace = request.namespace
        var execution = request.execution
        var closedAt: RunProgress?
        while true {
            try Task.checkCancellation()
            let target: RunProgress
            if let known = closedAt {
                target = known
                closedAt = nil
            } else {
                let wanted = execution
                let found = try await read(stale: stale) { engine throws(EngineRejection) -> CloseWait in
                    let progress = try engine.runProgress(namespace: namespace, execution: wanted)
                    guard progress.status == .running else { return .closed(progress) }
                    // Registered on the loop thread, where runs close: no close can slip in between.
                    let runId = progress.execution.runID
                    guard let signal = machine.closeSignals.register(runId: runId, deadline: giveUp) else { return .tooManyWaiters }
                    return .waiting(runId: runId, signal: signal)
                }
                switch found {
                case .tooManyWaiters:
                    throw GRPCStatus(.resourceExhausted, "too many callers wait for runs to close on this node; retry later")
                case .waiting(let runId, let signal):
                    execution.runID = runId
                    switch await signal.wait() {
                    case .closed(let target):
                        // Where the run stood when this node applied its close: committed, and
                        // after this call began, so no second read point is needed.
                        closedAt = target
                    case .lookAgain:
                        break
                    case .timedOut, .cancelled:
                        machine.closeSignals.remove(signal, runId: runId)
                        try Task.checkCancellation()
                        throw GRPCStatus(.deadlineExceeded, "run \(runId) is still running after \(Self.maxCloseWait); call again")
                    }
                    continue
                case .closed(let found):
                    target = found
                }
            }
            let last = try readHistory(runId: target.execution.runID, from: target.historyLength, max: 1, maxBytes: .max)
            guard let bytes = last.first, let event = try? HistoryEventCoding.decode(bytes) else {
                throw GRPCStatus(.notFound, "the history of run \(target.execution.runID) was deleted (retention ended)")
            }
            if request.followRuns, let next = HistoryPages.nextRunId(after: event) {
                execution.runID = next
                continue
            }
            var response = Ballast_V1_WaitWorkflowExecutionClosedResponse()
            response.execution = target.execution
            response.status = target.status
            response.closeEvent = event
            return response
        }
    }

    /// Runs `body`, turning a request error into INVALID_ARGUMENT.
    static func invalidArgument<T>(_ body: () throws(GRPCStatusError) -> T) throws -> T {
        do { return try body() } catch { throw GRPCStatus(.invalidArgument, error.message) }
    }
}
