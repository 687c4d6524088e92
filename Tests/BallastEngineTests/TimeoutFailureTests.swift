import BallastEngine
import BallastProto
import Foundation
import SwiftProtobuf
import Testing

/// An activity attempt that times out and is retried keeps its timeout failure for the next
/// attempt. Until format 5 that failure named the previously kept one as its cause, so each
/// timeout nested it one level deeper; past about a hundred the run's snapshot no longer decoded
/// (swift-protobuf stops at 100 levels), and neither did its ActivityTaskStarted event.
@Suite("Timeout failures kept for the next attempt (engine format 5)")
struct TimeoutFailureTests {
    /// A run whose activity "a" times out (start-to-close, 1 s) `timeouts` times, retried each
    /// time after 1 s, at most `attempts` attempts.
    static func timingOut(_ timeouts: Int, attempts: Int32 = 0, format: UInt32) -> (Harness, RunKey) {
        var h = Harness()
        h.formatVersion = format
        let run = h.start("w")
        h.workflowTask(run, [Commands.scheduleActivity("a", startToClose: second) {
            $0.retryPolicy.maximumIntervalNanos = second
            $0.retryPolicy.maximumAttempts = attempts
        }])
        for _ in 0..<timeouts {
            _ = h.startActivity(run, "a")
            _ = h.fireDue(within: second)
            _ = h.fireDue(within: second)
        }
        return (h, run)
    }

    /// How many failures deep `failure` is (1 with no cause).
    static func depth(_ failure: Ballast_V1_Failure) -> Int {
        var depth = 1
        var current = failure
        while current.hasCause { depth += 1; current = current.cause }
        return depth
    }

    static func keptFailure(_ h: Harness) throws -> Ballast_V1_Failure {
        let activity = try #require(h.engine.snapshotMessage().runs.first?.activities.first)
        return activity.lastFailure
    }

    @Test("150 timeouts: the kept failure stays one level deep and the snapshot restores")
    func keptFailureStaysFlat() throws {
        let (h, _) = Self.timingOut(150, format: flatTimeoutFailureFormatVersion)
        let kept = try Self.keptFailure(h)
        #expect(Self.depth(kept) == 1)
        #expect(kept.timeoutType == .startToClose)
        let bytes = h.engine.snapshot()
        let restored = try WorkflowEngine.restore(bytes)
        #expect(restored.snapshot() == bytes)
    }

    @Test("the final ActivityTaskTimedOut names the last kept failure as its cause, one level deep")
    func finalEventHasTheCause() throws {
        let (h, run) = Self.timingOut(5, attempts: 5, format: flatTimeoutFailureFormatVersion)
        let events = h.events(run)
        let timedOut = try #require(events.last { $0.typeName == "ActivityTaskTimedOut" }?.activityTaskTimedOut)
        #expect(timedOut.retryState == .maximumAttemptsReached)
        #expect(timedOut.failure.timeoutType == .startToClose)
        #expect(Self.depth(timedOut.failure) == 2)
        #expect(timedOut.failure.cause.timeoutType == .startToClose)
        let started = try #require(events.last { $0.typeName == "ActivityTaskStarted" }?.activityTaskStarted)
        #expect(started.attempt == 5)
        #expect(Self.depth(started.lastFailure) == 1)
    }

    @Test("entries of format 4 keep nesting, as every earlier build applied them; 150 timeouts make a snapshot that does not restore")
    func olderFormatsNest() throws {
        let (h, _) = Self.timingOut(20, format: historySizeFormatVersion)
        #expect(Self.depth(try Self.keptFailure(h)) == 20)
        let (deep, _) = Self.timingOut(150, format: historySizeFormatVersion)
        #expect(throws: EngineError.self) { _ = try WorkflowEngine.restore(deep.engine.snapshot()) }
    }

    @Test("a worker's failure is kept as it came, its own causes included")
    func workerFailureKeptAsItCame() throws {
        var h = Harness()
        let run = h.start("w")
        h.workflowTask(run, [Commands.scheduleActivity("a")])
        var request = Ballast_V1_RespondActivityTaskFailedRequest()
        request.taskToken = Data(h.startActivity(run, "a"))
        request.failure.message = "outer"
        request.failure.cause.message = "inner"
        #expect(h.apply(.activityTaskFailed(request)).response.rejection == nil)
        #expect(try Self.keptFailure(h) == request.failure)
    }
}
