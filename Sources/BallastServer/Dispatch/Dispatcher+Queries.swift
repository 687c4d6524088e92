import BallastEngine
import BallastProto
import BallastWire
import Foundation
import Synchronization

/// A caller waiting for a query's answer; resumed exactly once (answer, failure or deadline).
final class QueryWaiter: Sendable {
    /// The task pushed to the worker (without history: added when pushed).
    let task: Ballast_V1_QueryTask
    /// Events of the run when the query was taken: the history the worker replays.
    let historyLength: Int64
    /// Secret half of the query id, so an answer cannot be forged by guessing a number.
    let nonce: UInt64
    private let continuation: Mutex<CheckedContinuation<Ballast_V1_QueryWorkflowResponse, any Error>?>
    private let deadline = Mutex<Task<Void, Never>?>(nil)

    init(task: Ballast_V1_QueryTask, historyLength: Int64, nonce: UInt64,
         continuation: CheckedContinuation<Ballast_V1_QueryWorkflowResponse, any Error>) {
        self.task = task
        self.historyLength = historyLength
        self.nonce = nonce
        self.continuation = Mutex(continuation)
    }

    /// Keeps the task that abandons the query at its deadline, to cancel it once answered.
    func setDeadline(_ task: Task<Void, Never>) {
        deadline.withLock { $0 = task }
    }

    /// Answers the caller (first call wins).
    func answer(_ response: Ballast_V1_QueryWorkflowResponse) {
        deadline.withLock { $0.take() }?.cancel()
        continuation.withLock { $0.take() }?.resume(returning: response)
    }

    /// Fails the caller with `status` (first call wins).
    func fail(_ status: GRPCStatus) {
        deadline.withLock { $0.take() }?.cancel()
        continuation.withLock { $0.take() }?.resume(throwing: status)
    }
}

extension Dispatcher {
    /// Sends a query to a worker of the run's task queue that accepts queries (the one that last
    /// ran the run first) and waits for its answer up to `timeout`. Nothing is written to history.
    func query(_ template: Ballast_V1_QueryTask, queue: TaskQueueKey, historyLength: Int64,
               timeout: Duration) async throws -> Ballast_V1_QueryWorkflowResponse {
        let id = state.withLock { state -> QueryID in
            defer { state.nextQueryID += 1 }
            return state.nextQueryID
        }
        let nonce = UInt64.random(in: 1 ... .max)
        var task = template
        task.queryID = Data(Dispatcher.idToken(id: id, nonce: nonce))
        let pushed = task
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                let waiter = QueryWaiter(task: pushed, historyLength: historyLength, nonce: nonce, continuation: continuation)
                do {
                    try state.withLock { state throws(DispatchRefusal) in
                        try state.core.enqueueQuery(id, queue: queue, runId: template.execution.runID)
                        state.queryWaiters[id] = waiter
                    }
                } catch let refusal as DispatchRefusal {
                    waiter.fail(status(for: refusal))
                    return
                } catch {
                    waiter.fail(GRPCStatus(.internal, "\(error)"))
                    return
                }
                waiter.setDeadline(Task { [self] in
                    guard (try? await Task.sleep(for: timeout)) != nil else { return }
                    abandonQuery(id, GRPCStatus(.deadlineExceeded, "the worker did not answer the query within \(timeout)"))
                })
                rematch()
            }
        } onCancel: {
            abandonQuery(id, GRPCStatus(.cancelled, "the caller cancelled the query"))
        }
    }

    /// Gives up on a query (deadline, cancellation); a later answer is refused as unknown.
    func abandonQuery(_ id: QueryID, _ status: GRPCStatus) {
        let waiter = state.withLock { state -> QueryWaiter? in
            state.core.queryFinished(id)
            return state.queryWaiters.removeValue(forKey: id)
        }
        waiter?.fail(status)
    }

    /// A worker's answer; false when the query is unknown here (answered, abandoned, or another node's).
    func answerQuery(_ request: Ballast_V1_RespondQueryTaskCompletedRequest) -> Bool {
        guard let (id, nonce) = Self.decodeIdToken([UInt8](request.queryID)) else { return false }
        let waiter = state.withLock { state -> QueryWaiter? in
            guard state.queryWaiters[id]?.nonce == nonce else { return nil }
            state.core.queryFinished(id)
            return state.queryWaiters.removeValue(forKey: id)
        }
        guard let waiter else { return false }
        var response = Ballast_V1_QueryWorkflowResponse()
        if request.hasFailure { response.queryFailure = request.failure } else { response.queryResult = request.result }
        waiter.answer(response)
        return true
    }

    /// Pushes a query with the run's first history page to a stream, off the Raft loop thread.
    func pushQuery(_ template: Ballast_V1_QueryTask, historyLength: Int64, to sink: TaskSink) {
        Task { [self] in
            var task = template
            (task.history, task.nextPageToken) = firstHistoryPage(runId: template.execution.runID, endEventId: historyLength + 1)
            var event = Ballast_V1_TaskStreamEvent()
            event.queryTask = task
            sink.push(event)
        }
    }

    func status(for refusal: DispatchRefusal) -> GRPCStatus {
        switch refusal {
        case .notLeading: GRPCStatus(.unavailable, "this node is not the leader")
        case .limitReached(let what): GRPCStatus(.resourceExhausted, "\(what); retry later")
        case .noQueryWorker(let queue):
            GRPCStatus(.failedPrecondition, "no worker of task queue \(queue.taskQueue) in namespace \(queue.namespace) "
                + "accepts queries: start a worker for it (StreamTasks with accept_queries) and retry")
        }
    }
}
