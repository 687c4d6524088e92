@testable import BallastServer
import Synchronization
import Testing

@Suite("Single flight: one state digest at a time")
struct SingleFlightTests {
    /// A computation that numbers its runs and ends each only when the test says.
    final class Gate: Sendable {
        struct State {
            var started = 0
            var running = 0
            var mostAtOnce = 0
            var pending: [(number: Int, done: @Sendable (Int) -> Void)] = []
            /// Set when the test ends: runs end at once, so a failed test cannot leave callers hanging.
            var open = false
        }

        let state = Mutex(State())

        func start(_ done: @escaping @Sendable (Int) -> Void) {
            let open = state.withLock { state in
                state.started += 1
                state.running += 1
                state.mostAtOnce = max(state.mostAtOnce, state.running)
                state.pending.append((state.started, done))
                return state.open
            }
            if open { endRuns() }
        }

        /// Ends every run now and later.
        func open() {
            state.withLock { $0.open = true }
            endRuns()
        }

        /// Ends the runs started so far (outside the lock: ending one may start the next).
        func endRuns() {
            let ending = state.withLock { state in
                defer { state.pending = [] }
                state.running -= state.pending.count
                return state.pending
            }
            for run in ending { run.done(run.number) }
        }

        var started: Int { state.withLock { $0.started } }
    }

    @Test("callers arriving during a run share the next one, never one that started before they asked")
    func burstSharesOneLaterRun() async throws {
        let gate = Gate()
        let flight = SingleFlight<Int>(gate.start)
        defer { gate.open() }
        let first = Task { await flight.next() }
        try await waitUntil("the first run started") { gate.started == 1 }
        let burst = Task {
            await withTaskGroup(of: Int.self) { group in
                for _ in 0..<10 { group.addTask { await flight.next() } }
                return await group.reduce(into: [Int]()) { $0.append($1) }
            }
        }
        try await waitUntil("the burst is waiting") { flight.waitingCount == 10 }
        #expect(gate.started == 1, "no run starts while one is running")
        gate.endRuns()
        #expect(await first.value == 1)
        try await waitUntil("the burst's run started") { gate.started == 2 }
        gate.endRuns()
        #expect(await burst.value == Array(repeating: 2, count: 10), "all ten share the run started after they asked")
        #expect(gate.started == 2)
        #expect(gate.state.withLock { $0.mostAtOnce } == 1)

        // Idle again: the next caller starts a run of its own.
        let later = Task { await flight.next() }
        try await waitUntil("a later run started") { gate.started == 3 }
        gate.endRuns()
        #expect(await later.value == 3)
    }
}
