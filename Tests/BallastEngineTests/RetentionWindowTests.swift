import BallastProto
import Testing
@testable import BallastEngine

/// Retention deadlines go out a window at a time (RetentionOrder.swift): one deadline per
/// closed run filled the leader's deadline queue once a million closed runs were retained.
@Suite("Retention deadlines, a window at a time")
struct RetentionWindowTests {
    static let window = WorkflowEngine.retentionDeadlineWindow

    /// A harness that remembers every retention deadline any entry armed (what a leader's queue
    /// would have received), by run id.
    struct Leader {
        var h: Harness
        var armed: [String: DueTimer] = [:]
        var armings = 0

        init(limits: EngineLimits = EngineLimits()) { h = Harness(limits: limits) }

        mutating func note(_ result: ApplyResult) {
            for timer in result.newTimers {
                guard case .retentionExpired = timer.payload else { continue }
                armed[timer.run.runId] = timer
                armings += 1
            }
        }

        /// Starts and terminates a run in `namespace`; returns its key.
        mutating func closeOne(_ workflowId: String, namespace: String = "default") -> RunKey {
            var request = Ballast_V1_StartWorkflowRequest()
            request.namespace = namespace
            request.workflowID = workflowId
            request.workflowType.name = "Transfer"
            request.taskQueue = "q"
            let started = h.apply(.startWorkflow(request))
            note(started)
            guard case let .started(response) = started.response else {
                Issue.record("start of \(workflowId) not accepted: \(started.response)")
                return RunKey(namespace: namespace, workflowId: workflowId, runId: "")
            }
            let run = RunKey(namespace: namespace, workflowId: workflowId, runId: response.runID)
            note(h.apply(terminate(run)))
            return run
        }

        /// The retention deadlines `dueTimers()` lists.
        var listed: [DueTimer] {
            h.engine.dueTimers().filter { if case .retentionExpired = $0.payload { true } else { false } }
        }

        /// Plays the leader with only the armed deadlines: fires the earliest armed one still
        /// pending, noting what that arms, until none is left; returns the runs deleted, in order.
        mutating func expireAll() -> [RunKey] {
            var deleted: [RunKey] = []
            while let next = armed.values.filter({ h.engine.isPending($0) })
                .min(by: { ($0.dueTimeUnixNanos, $0.run.runId) < ($1.dueTimeUnixNanos, $1.run.runId) }) {
                armed[next.run.runId] = nil
                let result = h.apply(next.payload, advance: max(0, next.dueTimeUnixNanos - h.now))
                #expect(result.response.rejection == nil, "retention of \(next.run) was rejected")
                note(result)
                deleted += result.deletedRuns
            }
            return deleted
        }
    }

    /// Every remembered closed run's deadline, in the engine's expiry order.
    static func expected(_ leader: Leader, _ runs: [RunKey]) -> [DueTimer] {
        runs.compactMap { run -> DueTimer? in
            guard let summary = leader.h.engine.closed[run.runId] else { return nil }
            return leader.h.engine.retentionDeadline(summary)
        }.sorted { ($0.dueTimeUnixNanos, $0.run.runId) < ($1.dueTimeUnixNanos, $1.run.runId) }
    }

    @Test("closing 1,000 runs arms 256 retention deadlines, and dueTimers lists those; firing only armed ones expires all 1,000 in order")
    func oneNamespace() {
        var leader = Leader()
        let runs = (0..<1_000).map { leader.closeOne("w\($0)") }
        #expect(leader.armings == Self.window)
        let expected = Self.expected(leader, runs)
        #expect(leader.listed == Array(expected.prefix(Self.window)))
        #expect(leader.listed.allSatisfy { leader.armed[$0.run.runId] == $0 }, "every listed deadline was armed")
        let deleted = leader.expireAll()
        #expect(deleted == expected.map(\.run))
        #expect(leader.h.engine.closedRunCount == 0 && leader.listed.isEmpty)
    }

    @Test("runs of a namespace with a shorter retention enter the window ahead of older ones; all expire in expiry order")
    func twoRetentions() {
        var leader = Leader()
        var namespace = Ballast_V1_RegisterNamespaceRequest()
        namespace.name = "short"
        namespace.workflowExecutionRetentionNanos = 3_600 * second
        #expect(leader.h.apply(.registerNamespace(namespace)).response.rejection == nil)
        var runs = (0..<600).map { leader.closeOne("long-\($0)") }
        runs += (0..<400).map { leader.closeOne("short-\($0)", namespace: "short") }
        // 256 long-retention runs, then the first 256 short ones (each landed in front).
        #expect(leader.armings == 2 * Self.window)
        let expected = Self.expected(leader, runs)
        #expect(expected.prefix(400).allSatisfy { $0.run.namespace == "short" })
        #expect(leader.listed == Array(expected.prefix(Self.window)))
        #expect(leader.expireAll() == expected.map(\.run))
        #expect(leader.h.engine.closedRunCount == 0)
    }

    @Test("runs evicted beyond the closed-summary limit leave the window to the next, which are armed")
    func evictionsArmTheNext() {
        var limits = EngineLimits()
        limits.maxClosedSummaries = 300
        var leader = Leader(limits: limits)
        let runs = (0..<500).map { leader.closeOne("w\($0)") }
        #expect(leader.h.engine.closedRunCount == 300)
        // The 200 evicted were the window's oldest: each armed the run that took its place.
        #expect(leader.armings == Self.window + 200)
        let expected = Self.expected(leader, runs)
        #expect(expected.count == 300 && expected.first?.run == runs[200])
        #expect(leader.listed == Array(expected.prefix(Self.window)))
        #expect(leader.listed.allSatisfy { leader.armed[$0.run.runId] == $0 })
        #expect(leader.expireAll() == expected.map(\.run))
    }

    @Test("a restored engine lists the same retention window and arms the same next deadlines")
    func restoreRebuildsTheOrder() throws {
        var leader = Leader()
        let runs = (0..<700).map { leader.closeOne("w\($0)") }
        let restored = try WorkflowEngine.restore(leader.h.engine.snapshot())
        #expect(restored.dueTimers() == leader.h.engine.dueTimers())
        #expect(restored.stateDigest() == leader.h.engine.stateDigest())
        // Expiring the first run on both arms the same newcomer.
        var twin = leader
        twin.h.engine = restored
        let first = Self.expected(leader, runs)[0]
        let wait = first.dueTimeUnixNanos - leader.h.now
        let original = leader.h.apply(first.payload, advance: wait).newTimers
        let fromSnapshot = twin.h.apply(first.payload, advance: wait).newTimers
        #expect(original.count == 1 && original == fromSnapshot)
        #expect(original.first?.run == Self.expected(leader, runs)[Self.window - 1].run)
    }
}
