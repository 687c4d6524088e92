import BallastEngine
import Synchronization

/// How a wait for a run to close ended.
enum RunCloseOutcome: Sendable {
    /// The run closed when this node applied the entry that closed it: where it stands then.
    case closed(RunProgress)
    /// Something changed under the wait (the engine was replaced from a snapshot): look again.
    case lookAgain
    /// The wait's deadline passed first.
    case timedOut
    /// The waiting task was cancelled.
    case cancelled
}

/// A one-shot signal that a run closed (or that the caller must look again, or gave up).
/// Fired on the Raft loop thread, by the deadline sweep or by cancellation; awaited by a
/// request task. The first outcome wins; one fired before the wait starts is remembered, so no
/// wake-up is lost.
final class RunCloseSignal: Sendable {
    private enum State {
        case waiting(CheckedContinuation<RunCloseOutcome, Never>?)
        case fired(RunCloseOutcome)
    }

    private let state = Mutex<State>(.waiting(nil))
    /// When the sweep (`RunCloseSignals.expire`) ends the wait with `.timedOut`.
    let deadline: ContinuousClock.Instant

    init(deadline: ContinuousClock.Instant) {
        self.deadline = deadline
    }

    /// Ends the wait with `outcome` (now, or when it starts), unless it already ended.
    func fire(_ outcome: RunCloseOutcome) {
        let continuation = state.withLock { state -> CheckedContinuation<RunCloseOutcome, Never>? in
            guard case .waiting(let continuation) = state else { return nil }
            state = .fired(outcome)
            return continuation
        }
        continuation?.resume(returning: outcome)
    }

    /// Returns the first outcome fired; `.cancelled` once the calling task is cancelled.
    func wait() async -> RunCloseOutcome {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<RunCloseOutcome, Never>) in
                let firedAlready = state.withLock { state -> RunCloseOutcome? in
                    if case .fired(let outcome) = state { return outcome }
                    state = .waiting(continuation)
                    return nil
                }
                if let firedAlready { continuation.resume(returning: firedAlready) }
            }
        } onCancel: {
            fire(.cancelled)
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

    /// Registers a signal for `runId` that times out at `deadline` (see `expire`); nil when
    /// `limit` callers already wait.
    func register(runId: String, deadline: ContinuousClock.Instant) -> RunCloseSignal? {
        let signal = RunCloseSignal(deadline: deadline)
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

    /// Fires and forgets the signals of runs that closed, with where each run stands
    /// (`progress`, asked only for runs someone waits for; nil: look again).
    func closed(_ runs: [RunKey], progress: (RunKey) -> RunProgress?) {
        guard !runs.isEmpty else { return }
        let fired = state.withLock { state -> [(RunKey, [RunCloseSignal])] in
            guard state.count > 0 else { return [] }
            var fired: [(RunKey, [RunCloseSignal])] = []
            for run in runs {
                guard let signals = state.byRun.removeValue(forKey: run.runId) else { continue }
                state.count -= signals.count
                fired.append((run, Array(signals.values)))
            }
            return fired
        }
        for (run, signals) in fired {
            let outcome = progress(run).map(RunCloseOutcome.closed) ?? .lookAgain
            for signal in signals { signal.fire(outcome) }
        }
    }

    /// Fires every signal (the engine was replaced from a snapshot: waiters look again).
    func fireAll() {
        let fired = state.withLock { state -> [RunCloseSignal] in
            defer { state = State() }
            return state.byRun.values.flatMap { Array($0.values) }
        }
        for signal in fired { signal.fire(.lookAgain) }
    }

    /// Ends the waits whose deadline is at or before `now` with `.timedOut` and forgets them
    /// (called once a second: a wait ends up to a second after its deadline).
    func expire(now: ContinuousClock.Instant) {
        let expired = state.withLock { state -> [RunCloseSignal] in
            var expired: [RunCloseSignal] = []
            for (runId, signals) in state.byRun {
                let late = signals.filter { $0.value.deadline <= now }
                guard !late.isEmpty else { continue }
                for key in late.keys { state.byRun[runId]?.removeValue(forKey: key) }
                if state.byRun[runId]?.isEmpty == true { state.byRun.removeValue(forKey: runId) }
                state.count -= late.count
                expired.append(contentsOf: late.values)
            }
            return expired
        }
        for signal in expired { signal.fire(.timedOut) }
    }

    /// Callers waiting now.
    var count: Int { state.withLock { $0.count } }
}
