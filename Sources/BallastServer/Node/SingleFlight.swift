import Synchronization

/// Runs one computation at a time for any number of callers: a caller that arrives while one
/// runs waits for it to end, and all who arrived meanwhile share the next run. Every caller
/// gets the value of a run that started after it asked, so the value is never older than the
/// request; and a burst of requests costs two runs, not one each.
///
/// For `/status?digest=1`: a digest walks the whole engine (about a second per 100,000 open
/// runs) on a thread of its own. One thread per request let a burst of requests on the admin
/// port start threads without bound.
final class SingleFlight<Value: Sendable>: Sendable {
    private struct State {
        var running = false
        var waiting: [CheckedContinuation<Value, Never>] = []
    }

    private let state = Mutex(State())
    private let start: @Sendable (@escaping @Sendable (Value) -> Void) -> Void

    /// `start` begins one run and calls its argument once, from any thread, with the value.
    init(_ start: @escaping @Sendable (@escaping @Sendable (Value) -> Void) -> Void) {
        self.start = start
    }

    /// The value of a run started after this call.
    func next() async -> Value {
        await withCheckedContinuation { continuation in
            let idle = state.withLock { state in
                state.waiting.append(continuation)
                defer { state.running = true }
                return !state.running
            }
            if idle { runRound() }
        }
    }

    /// Callers waiting for the next run (for tests).
    var waitingCount: Int { state.withLock { $0.waiting.count } }

    /// Starts a run for everyone waiting now; at its end, another for those who came meanwhile.
    private func runRound() {
        let callers = state.withLock { state in
            defer { state.waiting = [] }
            return state.waiting
        }
        start { [self] value in
            for caller in callers { caller.resume(returning: value) }
            let more = state.withLock { state in
                state.running = !state.waiting.isEmpty
                return state.running
            }
            if more { runRound() }
        }
    }
}
