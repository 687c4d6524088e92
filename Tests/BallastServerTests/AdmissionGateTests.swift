import Synchronization
import Testing
@testable import BallastServer

/// The order callers got in, shared with their tasks.
private final class Arrivals: Sendable {
    private let order = Mutex<[Int]>([])
    func record(_ caller: Int) { order.withLock { $0.append(caller) } }
    var all: [Int] { order.withLock { $0 } }
}

@Suite("Admission gate: a few at a time, in order, a bounded queue", .timeLimit(.minutes(1)))
struct AdmissionGateTests {
    /// Waits until `condition` holds, for at most ten seconds.
    private func eventually(_ what: String, _ condition: () -> Bool) async throws {
        let deadline = ContinuousClock.now + .seconds(10)
        while !condition() {
            guard ContinuousClock.now < deadline else {
                Issue.record("timed out waiting: \(what)")
                return
            }
            try await Task.sleep(for: .milliseconds(1))
        }
    }

    @Test func callersBeyondTheCapacityWaitAndRunInArrivalOrder() async throws {
        let gate = AdmissionGate(capacity: 2, maxWaiting: 8)
        try await gate.enter()
        try await gate.enter()
        #expect(gate.runningCount == 2)
        let order = Arrivals()
        var waiting: [Task<Void, any Error>] = []
        for caller in 0..<4 {
            waiting.append(Task {
                try await gate.enter()
                order.record(caller)
            })
            // Each one queued before the next arrives, so arrival order is known.
            try await eventually("caller \(caller) waits") { gate.waitingCount == caller + 1 }
        }
        #expect(order.all.isEmpty, "nobody runs while the two places are taken")
        gate.leave()
        try await eventually("one caller runs") { order.all.count == 1 }
        gate.leave()
        try await eventually("two callers run") { order.all.count == 2 }
        #expect(gate.runningCount == 2 && gate.waitingCount == 2)
        // One turn at a time, so that the order the callers record is the order they got in.
        gate.leave()
        try await eventually("three callers run") { order.all.count == 3 }
        gate.leave()
        for task in waiting { try await task.value }
        #expect(order.all == [0, 1, 2, 3])
        #expect(gate.runningCount == 2, "the last two callers hold the places until they leave")
        gate.leave()
        gate.leave()
        #expect(gate.runningCount == 0)
        try await gate.enter()
        #expect(gate.runningCount == 1, "a free place is taken at once")
        gate.leave()
    }

    @Test func oneCallerMoreThanTheQueueHoldsIsRefusedAtOnce() async throws {
        let gate = AdmissionGate(capacity: 1, maxWaiting: 2)
        try await gate.enter()
        let first = Task { try await gate.enter() }
        let second = Task { try await gate.enter() }
        try await eventually("two wait") { gate.waitingCount == 2 }
        await #expect(throws: AdmissionGate.Refusal.tooManyWaiting(limit: 2)) { try await gate.enter() }
        #expect(gate.waitingCount == 2 && gate.runningCount == 1, "the refusal changed nothing")
        gate.leave()
        try await eventually("one of the two runs") { gate.waitingCount == 1 }
        gate.leave()
        try await eventually("the other runs") { gate.waitingCount == 0 }
        gate.leave()
        try await first.value
        try await second.value
        #expect(gate.runningCount == 0 && gate.waitingCount == 0)
    }

    @Test func aCancelledWaiterLeavesTheQueueAndTheTurnPassesOver() async throws {
        let gate = AdmissionGate(capacity: 1, maxWaiting: 4)
        try await gate.enter()
        let cancelled = Task { try await gate.enter() }
        try await eventually("the first waits") { gate.waitingCount == 1 }
        let next = Task { try await gate.enter() }
        try await eventually("the second waits") { gate.waitingCount == 2 }
        cancelled.cancel()
        await #expect(throws: CancellationError.self) { try await cancelled.value }
        #expect(gate.waitingCount == 1)
        gate.leave()
        try await next.value
        #expect(gate.runningCount == 1 && gate.waitingCount == 0)
        gate.leave()
        #expect(gate.runningCount == 0)
    }
}
