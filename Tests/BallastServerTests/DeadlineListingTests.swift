import BallastEngine
import BallastProto
import BallastRaft
import Foundation
import Logging
import Synchronization
import Testing
@testable import BallastServer

/// A new leader lists the engine's deadlines on a thread of its own (`Dispatcher.reloadDeadlines`).
@Suite("Leader deadline listing")
struct DeadlineListingTests {
    @Test("leadership changes during a listing start no thread of their own; the last one is listed next and its deadlines loaded")
    func oneListingAtATime() async throws {
        let runs = 200
        var scenario = HistoryScenario()
        for number in 0 ..< runs { try scenario.start("timed-\(number)", executionTimeoutNanos: 3_600 * 1_000_000_000) }
        let machine = EngineStateMachine(logger: Logger(label: "test.deadlines")) { why in Issue.record("fatal: \(why)") }
        for entry in scenario.entries { _ = machine.apply(entry) }
        let expected = machine.read { $0.dueTimers().count }
        #expect(expected >= runs, "every run has its execution deadline")

        let dispatcher = Dispatcher(logger: Logger(label: "test.deadlines"), metrics: NodeMetrics(),
                                    stateMachine: machine, history: StoreHistorySource(stateMachine: machine))
        // The first listing is held until the test lets it go, as a large state's would take long.
        let gate = DispatchSemaphore(value: 0)
        defer { for _ in 0 ..< 4 { gate.signal() } }
        let held = Atomic<Int>(0)
        dispatcher.state.withLock { state in
            state.beforeListing = {
                if held.add(1, ordering: .relaxed).newValue == 1 { gate.wait() }
            }
        }
        for term in 1 ... 20 {
            if term > 1 { dispatcher.leadershipChanged(.notLeading) }
            dispatcher.leadershipChanged(.leading(term: Term(UInt64(term))))
        }
        try await waitUntil("the first listing is held") { held.load(ordering: .relaxed) == 1 }
        let waiting = dispatcher.state.withLock { (listing: $0.listingDeadlines, queued: $0.queuedListing?.epoch, epoch: $0.epoch) }
        #expect(waiting.listing && waiting.queued == waiting.epoch, "one listing runs; only the last term's waits")
        gate.signal()
        try await waitUntil("the last term's deadlines are loaded and no listing runs") {
            dispatcher.state.withLock { !$0.listingDeadlines && $0.timers.count == expected }
        }
        #expect(dispatcher.state.withLock { $0.deadlineListings } == 2, "the held listing and the last term's, nothing between")
    }
}
