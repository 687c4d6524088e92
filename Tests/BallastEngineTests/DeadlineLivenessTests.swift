@testable import BallastEngine
import BallastProto
import Testing

/// `WorkflowEngine.isPending` lets the leader drop deadlines instead of proposing them, so it
/// must never call a deadline stale that the engine would still act on.
@Suite("Deadline liveness: what the leader may drop")
struct DeadlineLivenessTests {
    @Test("over random entries: pending is exactly what dueTimers lists, every listed deadline was armed, and a dropped one would be rejected",
          arguments: [UInt64(21), 22, 23, 24, 25, 26])
    func droppedDeadlinesAreStale(seed: UInt64) {
        var h = Harness()
        var generator = EntryGenerator(seed: seed)
        var armed: [DueTimer] = []
        var checkedStale = 0
        for step in 0..<500 {
            let (payload, advance) = generator.next(h.engine)
            let result = h.apply(payload, advance: advance)
            for timer in result.newTimers where !armed.contains(timer) { armed.append(timer) }
            guard step % 10 == 9 else { continue }
            let listed = h.engine.dueTimers()
            #expect(zip(listed, listed.dropFirst()).allSatisfy { !DueTimer.sortKey($1, $0) },
                    "seed \(seed) step \(step): deadlines are listed in their total order")
            for timer in listed {
                #expect(h.engine.isPending(timer), "seed \(seed) step \(step): a listed deadline is pending")
                #expect(armed.contains(timer), "seed \(seed) step \(step): \(timer.payload) is listed but was never armed")
            }
            for timer in armed where !listed.contains(timer) {
                #expect(!h.engine.isPending(timer), "seed \(seed) step \(step): \(timer.payload) is pending but not listed")
            }
            // A deadline the leader would drop, applied at (or after) its due time, is rejected.
            // The leader fires deadlines in due order, so only one due before every listed
            // deadline is checked (a later one may find another timeout of the same activity
            // passed, which the listed deadline fires first).
            let earliestListed = listed.map(\.dueTimeUnixNanos).min() ?? .max
            if let stale = armed.first(where: { !listed.contains($0) && $0.dueTimeUnixNanos < earliestListed }) {
                let digest = h.engine.stateDigest()
                let outcome = h.apply(stale.payload, advance: max(0, stale.dueTimeUnixNanos - h.now))
                #expect(outcome.response.rejection != nil, "seed \(seed) step \(step): dropped \(stale.payload) was applied")
                #expect(h.engine.stateDigest() == digest)
                armed.removeAll { $0 == stale }
                checkedStale += 1
            }
        }
        #expect(checkedStale > 10, "seed \(seed): the sequence produced stale deadlines to check")
    }

    @Test("a one-activity workflow's task deadlines stop being pending as its tasks complete")
    func taskDeadlinesGoStale() {
        var h = Harness()
        let run = h.start("w")
        let token = h.startWorkflowTask(run)
        guard let taskTimeout = h.last.newTimers.first else { Issue.record("no workflow-task deadline"); return }
        #expect(h.engine.isPending(taskTimeout))
        h.completeWorkflowTask(token, [Commands.scheduleActivity("a")])
        #expect(!h.engine.isPending(taskTimeout), "the task completed")
        let activityToken = h.startActivity(run, "a")
        let activityTimeouts = h.last.newTimers
        #expect(!activityTimeouts.isEmpty && activityTimeouts.allSatisfy { h.engine.isPending($0) })
        _ = h.completeActivity(activityToken)
        #expect(activityTimeouts.allSatisfy { !h.engine.isPending($0) }, "the activity completed")
        h.workflowTask(run, [Commands.complete()])
        #expect(h.status(run) == .completed)
        let retention = h.engine.dueTimers()
        #expect(retention.count == 1 && retention.allSatisfy { h.engine.isPending($0) }, "the closed run's retention deadline")
        var other = retention[0]
        other.dueTimeUnixNanos += 1
        #expect(!h.engine.isPending(other), "a different due time is another deadline")
    }
}
