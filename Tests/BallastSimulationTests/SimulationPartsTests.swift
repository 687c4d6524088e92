import BallastRaft
import Testing

@testable import BallastSimulation

/// The smaller parts: the event queue's order, the state machine's snapshots, the trace ring,
/// and the liveness check firing on a cluster that cannot elect a leader.
@Suite struct SimulationPartsTests {
    @Test func eventsRunInTimeOrderThenInSchedulingOrder() {
        var queue = EventQueue<String>(capacity: 16)
        queue.push("c", at: 5)
        queue.push("a", at: 1)
        queue.push("d", at: 5)
        queue.push("b", at: 3)
        queue.push("e", at: 5)
        var order: [String] = []
        while let item = queue.pop() { order.append(item.payload) }
        #expect(order == ["a", "b", "c", "d", "e"])
    }

    @Test func theStateMachineRoundTripsThroughASnapshot() throws {
        var machine = ListStateMachine(membership: Membership(voters: [NodeID(1), NodeID(2), NodeID(3)]))
        _ = machine.apply(Entry(term: Term(1), index: LogIndex(1), kind: .noop))
        _ = machine.apply(Entry(term: Term(1), index: LogIndex(2), data: ListStateMachine.payload(for: 77)))
        _ = machine.apply(Entry(term: Term(2), index: LogIndex(3), kind: .configChange, data: ConfigChange.addLearner(NodeID(4)).encoded))
        let restored = try #require(ListStateMachine(snapshot: machine.snapshot()))
        #expect(restored == machine)
        #expect(restored.values == [77] && restored.membership.learners == [NodeID(4)])
        let skipped = machine.apply(Entry(term: Term(2), index: LogIndex(5)))
        #expect(skipped == .failure(.outOfOrder(expected: LogIndex(4), got: LogIndex(5))))
    }

    @Test func theTraceKeepsOnlyTheLatestEvents() {
        var ring = TraceRing(capacity: 3)
        for step in 1...5 { ring.record(.fault("step \(step)"), at: UInt64(step)) }
        #expect(ring.lines() == ["[0.000003s] FAULT step 3", "[0.000004s] FAULT step 4", "[0.000005s] FAULT step 5"])
    }

    @Test func aClusterThatCannotElectALeaderFailsLiveness() {
        var options = SimulationOptions(seed: 3, nodeCount: 3)
        // Elections need 100,000 ticks: no leader can appear within the liveness bound.
        options.configureRaft = { $0.electionTimeoutTicks = 100_000 }
        let report = Simulation.run(options)
        #expect(report.violation?.invariant == .liveness)
        #expect(report.trace.last?.contains("VIOLATION") == true)
    }
}
