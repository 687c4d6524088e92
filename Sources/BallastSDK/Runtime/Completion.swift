/// A one-shot result that workflow code awaits and the runtime resolves from history.
///
/// Only touched on the thread draining the run (see `WorkflowRun`), so it needs no lock.
final class Completion<Value: Sendable>: @unchecked Sendable {
    private(set) var result: Result<Value, any Error>?
    private var waiters: [UnsafeContinuation<Value, any Error>] = []

    /// Whether the result is known.
    var isResolved: Bool { result != nil }

    /// Sets the result once and wakes the waiter; later calls are ignored (e.g. a completion
    /// event for an activity whose wait was already canceled).
    @discardableResult
    func resolve(_ outcome: Result<Value, any Error>) -> Bool {
        guard result == nil else { return false }
        result = outcome
        let waiting = waiters
        waiters.removeAll()
        for waiter in waiting { waiter.resume(with: outcome) }
        return true
    }

    /// Waits for the result (several branches may wait for the same completion).
    func value() async throws -> Value {
        if let result { return try result.get() }
        return try await withUnsafeThrowingContinuation { (waiter: UnsafeContinuation<Value, any Error>) in
            if let result {
                waiter.resume(with: result)
            } else {
                waiters.append(waiter)
            }
        }
    }
}
