import BallastEngine
import BallastProto
import BallastRaft
import Foundation
import Logging
import Testing
@testable import BallastServer

/// A new leader lists the engine's deadlines on a thread of its own (`Dispatcher.reloadDeadlines`).
@Suite("Leader deadline listing")
struct DeadlineListingTests {
    @Test("leadership flipping over a large state lists on one thread at a time and ends with every deadline of the last term")
    func oneListingAtATime() async throws {
        let runs = 5_000
        var scenario = HistoryScenario()
        for number in 0 ..< runs { try scenario.start("timed-\(number)", executionTimeoutNanos: 3_600 * 1_000_000_000) }
        let machine = EngineStateMachine(logger: Logger(label: "test.deadlines")) { why in Issue.record("fatal: \(why)") }
        for entry in scenario.entries { _ = machine.apply(entry) }
        let expected = machine.read { $0.dueTimers().count }
        #expect(expected >= runs, "every run has its execution deadline")

        let dispatcher = Dispatcher(logger: Logger(label: "test.deadlines"), metrics: NodeMetrics(),
                                    stateMachine: machine, history: StoreHistorySource(stateMachine: machine))
        // Twenty leadership changes in a row, far faster than one listing of 5,000 runs: one
        // thread lists, the last request waits for it, the others are replaced.
        for term in 1 ... 20 {
            if term > 1 { dispatcher.leadershipChanged(.notLeading) }
            dispatcher.leadershipChanged(.leading(term: Term(UInt64(term))))
        }
        try await waitUntil("the last term's deadlines are loaded and no listing runs", timeout: .seconds(60)) {
            dispatcher.state.withLock { !$0.listingDeadlines && $0.timers.count == expected }
        }
        let started = dispatcher.state.withLock { $0.deadlineListings }
        #expect(started <= 3, "\(started) listings for 20 leadership changes")
        #expect(started >= 1)
    }
}
