import Synchronization

/// Lets at most `capacity` callers run at once, the others wait first come first served, and at
/// most `maxWaiting` wait: one more is refused at once rather than queued without bound.
///
/// For reads that walk many rows (`BallastNode.readOnCopy`, `listWorkflows`): a burst of them,
/// which any client with the reader role can send, waits here, in order and in bounded number,
/// not on the Raft loop thread.
final class AdmissionGate: Sendable {
    /// Why `enter()` did not admit the caller.
    enum Refusal: Error, Equatable {
        /// `maxWaiting` callers were waiting already.
        case tooManyWaiting(limit: Int)
    }

    private struct Waiter {
        let id: UInt64
        let continuation: CheckedContinuation<Void, any Error>
    }

    private struct State {
        var running = 0
        var waiters: [Waiter] = []
        var nextId: UInt64 = 0
    }

    private enum Decision {
        case run, refuse, wait
    }

    /// The most callers that run at once.
    let capacity: Int
    /// The most callers that may wait while `capacity` run.
    let maxWaiting: Int
    private let state = Mutex(State())

    init(capacity: Int, maxWaiting: Int) {
        precondition(capacity >= 1 && maxWaiting >= 0, "an admission gate needs a capacity of at least one")
        self.capacity = capacity
        self.maxWaiting = maxWaiting
    }

    /// Returns when the caller may run; it must call `leave()` when done. Throws `Refusal` when
    /// too many are waiting, and `CancellationError` if the task is cancelled while it waits
    /// (neither needs a `leave()`).
    func enter() async throws {
        let capacity = self.capacity, limit = maxWaiting
        let id = state.withLock { state -> UInt64? in
            if state.running < capacity {
                state.running += 1
                return nil
            }
            state.nextId += 1
            return state.nextId
        }
        guard let id else { return }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let decision = state.withLock { state -> Decision in
                    // A runner may have left since the first look.
                    if state.running < capacity {
                        state.running += 1
                        return .run
                    }
                    if state.waiters.count >= limit || Task.isCancelled { return .refuse }
                    state.waiters.append(Waiter(id: id, continuation: continuation))
                    return .wait
                }
                switch decision {
                case .run: continuation.resume()
                case .refuse:
                    continuation.resume(throwing: Task.isCancelled ? CancellationError() : Refusal.tooManyWaiting(limit: limit))
                case .wait: break
                }
            }
        } onCancel: {
            let removed = state.withLock { state -> Waiter? in
                guard let index = state.waiters.firstIndex(where: { $0.id == id }) else { return nil }
                return state.waiters.remove(at: index)
            }
            removed?.continuation.resume(throwing: CancellationError())
        }
    }

    /// Ends a caller's turn: the longest waiting caller runs next.
    func leave() {
        let next = state.withLock { state -> Waiter? in
            precondition(state.running > 0, "leave() without enter()")
            guard !state.waiters.isEmpty else {
                state.running -= 1
                return nil
            }
            // The turn passes straight to the next caller: `running` stays as it is.
            return state.waiters.removeFirst()
        }
        next?.continuation.resume()
    }

    /// Callers running now.
    var runningCount: Int { state.withLock { $0.running } }
    /// Callers waiting now.
    var waitingCount: Int { state.withLock { $0.waiters.count } }
}
