import Synchronization

/// A one-shot signal that a run closed (or that the engine was replaced and the caller must
/// look again). Fired on the Raft loop thread; awaited by a request task. Firing before the
/// wait starts is remembered, so no wake-up is lost.
final class RunCloseSignal: Sendable {
    private enum State {
        case waiting(CheckedContinuation<Void, Never>?)
        case fired
    }

    private let state = Mutex<State>(.waiting(nil))

    /// Wakes the waiter (now or when it starts waiting).
    func fire() {
        let continuation = state.withLock { state -> CheckedContinuation<Void, Never>? in
            guard case .waiting(let continuation) = state else { return nil }
            state = .fired
            return continuation
        }
        continuation?.resume()
    }

    /// Returns once fired or once the calling task is cancelled.
    func wait() async {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let resumeNow = state.withLock { state -> Bool in
                    guard case .waiting = state else { return true }
                    state = .waiting(continuation)
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            fire()
        }
    }
}

/// The signals of callers waiting for runs to close, by run id. Bounded: registering beyond
/// `limit` waiters fails (the caller answers RESOURCE_EXHAUSTED).
final class RunCloseSignals: Sendable {
    private struct State {
        var byRun: [String: [ObjectIdentifier: RunCloseSignal]] = [:]
        var count = 0
    }

    private let state = Mutex(State())
    /// The most callers that may wait at once.
    let limit: Int

    init(limit: Int) {
        precondition(limit > 0, "the waiter limit must be positive")
        self.limit = limit
    }

    /// Registers a signal for `runId`; nil when `limit` callers already wait.
    func register(runId: String) -> RunCloseSignal? {
        let signal = RunCloseSignal()
        let added = state.withLock { state -> Bool in
            guard state.count < limit else { return false }
            state.byRun[runId, default: [:]][ObjectIdentifier(signal)] = signal
            state.count += 1
            return true
        }
        return added ? signal : nil
    }

    /// Forgets a signal (its caller stopped waiting).
    func remove(_ signal: RunCloseSignal, runId: String) {
        state.withLock { state in
            if state.byRun[runId]?.removeValue(forKey: ObjectIdentifier(signal)) != nil { state.count -= 1 }
            if state.byRun[runId]?.isEmpty == true { state.byRun.removeValue(forKey: runId) }
        }
    }

    /// Fires and forgets the signals of runs that closed.
    func closed(_ runIds: [String]) {
        guard !runIds.isEmpty else { return }
        let fired = state.withLock { state -> [RunCloseSignal] in
            var fired: [RunCloseSignal] = []
            for runId in runIds {
                guard let signals = state.byRun.removeValue(forKey: runId) else { continue }
                state.count -= signals.count
                fired.append(contentsOf: signals.values)
            }
            return fired
        }
        for signal in fired { signal.fire() }
    }

    /// Fires every signal (the engine was replaced from a snapshot: waiters look again).
    func fireAll() {
        let fired = state.withLock { state -> [RunCloseSignal] in
            defer { state = State() }
            return state.byRun.values.flatMap { Array($0.values) }
        }
        for signal in fired { signal.fire() }
    }

    /// Callers waiting now.
    var count: Int { state.withLock { $0.count } }
}
