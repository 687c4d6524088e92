import BallastEngine
import BallastProto
import Testing
@testable import BallastServer

@Suite("Run close signals")
struct RunCloseSignalsTests {
    private func key(_ runId: String) -> RunKey { RunKey(namespace: "default", workflowId: "w-\(runId)", runId: runId) }

    private func target(_ runId: String, length: Int64) -> RunProgress {
        var execution = Ballast_V1_WorkflowExecution()
        (execution.workflowID, execution.runID) = ("w-\(runId)", runId)
        return RunProgress(execution: execution, status: .completed, historyLength: length)
    }

    @Test("a close wakes every waiter of that run with where the run stood, and only them")
    func closeCarriesTheTarget() async throws {
        let signals = RunCloseSignals(limit: 10)
        let far = ContinuousClock.now + .seconds(60)
        let first = try #require(signals.register(runId: "a", deadline: far))
        let second = try #require(signals.register(runId: "a", deadline: far))
        let other = try #require(signals.register(runId: "b", deadline: far))
        var asked: [String] = []
        signals.closed([key("a"), key("c")]) { run in
            asked.append(run.runId)
            return target(run.runId, length: 9)
        }
        #expect(asked == ["a"], "progress is read only for runs someone waits for")
        for signal in [first, second] {
            guard case .closed(let found) = await signal.wait() else { Issue.record("not closed"); continue }
            #expect(found.execution.runID == "a" && found.historyLength == 9 && found.status == .completed)
        }
        #expect(signals.count == 1)
        signals.closed([key("b")]) { _ in nil }
        guard case .lookAgain = await other.wait() else { Issue.record("a run the engine no longer holds: look again"); return }
        #expect(signals.count == 0)
    }

    @Test("the sweep times out only the waits past their deadline, and the first outcome stays")
    func expireTimesOutLateWaits() async throws {
        let signals = RunCloseSignals(limit: 10)
        let now = ContinuousClock.now
        let late = try #require(signals.register(runId: "a", deadline: now - .seconds(1)))
        let due = try #require(signals.register(runId: "b", deadline: now))
        let early = try #require(signals.register(runId: "a", deadline: now + .seconds(60)))
        signals.expire(now: now)
        #expect(signals.count == 1)
        for signal in [late, due] {
            guard case .timedOut = await signal.wait() else { Issue.record("not timed out"); continue }
        }
        // Closing afterwards reaches only the waiter still registered; the expired keep their outcome.
        signals.closed([key("a")]) { run in target(run.runId, length: 3) }
        guard case .closed = await early.wait() else { Issue.record("not closed"); return }
        guard case .timedOut = await late.wait() else { Issue.record("the first outcome changed"); return }
        #expect(signals.count == 0)
    }

    @Test("a replaced engine wakes everyone to look again; the limit bounds the waiters")
    func fireAllAndLimit() async throws {
        let signals = RunCloseSignals(limit: 2)
        let far = ContinuousClock.now + .seconds(60)
        let one = try #require(signals.register(runId: "a", deadline: far))
        let two = try #require(signals.register(runId: "b", deadline: far))
        #expect(signals.register(runId: "c", deadline: far) == nil)
        signals.fireAll()
        for signal in [one, two] {
            guard case .lookAgain = await signal.wait() else { Issue.record("not told to look again"); continue }
        }
        #expect(signals.count == 0)
        #expect(signals.register(runId: "c", deadline: far) != nil)
    }

    @Test("cancelling the waiting task ends the wait as cancelled")
    func cancellation() async throws {
        let signals = RunCloseSignals(limit: 2)
        let signal = try #require(signals.register(runId: "a", deadline: ContinuousClock.now + .seconds(60)))
        let waiter = Task { await signal.wait() }
        waiter.cancel()
        guard case .cancelled = await waiter.value else { Issue.record("not cancelled"); return }
    }
}
