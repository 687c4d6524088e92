@testable import BallastEngine
import BallastProto
import Foundation
import Testing

/// From engine format 5, what a run's pending activities keep for their next attempts (heartbeat
/// details, last failures) is at most `EngineLimits.maxKeptActivityBytes` together.
@Suite("What pending activities keep (engine format 5)")
struct KeptActivityBytesTests {
    static var limits: EngineLimits {
        var limits = EngineLimits()
        limits.maxKeptActivityBytes = 10_000
        return limits
    }

    /// A run with activities "a0"…"a(n-1)" started; their tokens.
    static func started(_ h: inout Harness, activities: Int) -> (RunKey, [[UInt8]]) {
        let run = h.start("w")
        h.workflowTask(run, (0..<activities).map { Commands.scheduleActivity("a\($0)", startToClose: 60 * second) })
        return (run, (0..<activities).map { h.startActivity(run, "a\($0)") })
    }

    static func heartbeat(_ token: [UInt8], bytes: Int) -> Payload {
        var request = Ballast_V1_RecordActivityTaskHeartbeatRequest()
        request.taskToken = Data(token)
        request.details.payloads = [Ballast_V1_Payload.with { $0.data = Data(repeating: 7, count: bytes) }]
        return .activityTaskHeartbeat(request)
    }

    static func kept(_ h: Harness, _ run: RunKey) -> (derived: Int, counted: Int) {
        let state = h.engine.runs[run.runId]!
        return (state.keptActivityBytes, state.activities.values.reduce(0) { $0 + $1.keptBytes })
    }

    @Test("a heartbeat that would take the run past the limit is rejected and changes nothing; smaller details still go")
    func heartbeatOverTheLimit() {
        var h = Harness(limits: Self.limits)
        let (run, tokens) = Self.started(&h, activities: 3)
        #expect(h.apply(Self.heartbeat(tokens[0], bytes: 4_000)).response.rejection == nil)
        #expect(h.apply(Self.heartbeat(tokens[1], bytes: 4_000)).response.rejection == nil)
        let digest = h.engine.stateDigest()
        let refused = h.apply(Self.heartbeat(tokens[2], bytes: 4_000)).response.rejection
        #expect(refused?.code == .resourceExhausted)
        #expect(h.engine.stateDigest() == digest, "a rejected heartbeat changes nothing")
        #expect(h.apply(Self.heartbeat(tokens[2], bytes: 1_000)).response.rejection == nil)
        #expect(h.apply(Self.heartbeat(tokens[0], bytes: 3_000)).response.rejection == nil, "shrinking is always allowed")
        let kept = Self.kept(h, run)
        #expect(kept.derived == 8_000 && kept.counted == 8_000)
    }

    @Test("a failure that would take the run past the limit is kept trimmed; the next attempt sees the trimmed one")
    func failureTrimmed() throws {
        var h = Harness(limits: Self.limits)
        let (run, tokens) = Self.started(&h, activities: 2)
        #expect(h.apply(Self.heartbeat(tokens[0], bytes: 9_000)).response.rejection == nil)
        var failed = Ballast_V1_RespondActivityTaskFailedRequest()
        failed.taskToken = Data(tokens[1])
        failed.failure.message = String(repeating: "é", count: 1_500)  // 3,000 bytes, two per scalar
        failed.failure.type = "Flaky"
        failed.failure.stackTrace = String(repeating: "s", count: 500)
        failed.failure.cause.message = "inner"
        #expect(h.apply(.activityTaskFailed(failed)).response.rejection == nil)
        let kept = try #require(h.engine.runs[run.runId]?.activities.values.first { $0.activityId == "a1" }?.lastFailure)
        #expect(kept.type == "Flaky")
        #expect(kept.message == String(repeating: "é", count: 512) + " [trimmed]")
        #expect(kept.stackTrace.isEmpty && !kept.hasCause)
        let counts = Self.kept(h, run)
        #expect(counts.derived == counts.counted)
        _ = h.fireDue(within: second)
        let next = h.startActivity(run, "a1")
        _ = h.completeActivity(next)
        let startedEvent = try #require(h.events(run).last { $0.typeName == "ActivityTaskStarted" }?.activityTaskStarted)
        #expect(startedEvent.lastFailure == kept)
    }

    @Test("heartbeat details sent with a failure are not kept when they would pass the limit; the failure is")
    func failureDetailsNotKept() throws {
        var h = Harness(limits: Self.limits)
        let (run, tokens) = Self.started(&h, activities: 1)
        var failed = Ballast_V1_RespondActivityTaskFailedRequest()
        failed.taskToken = Data(tokens[0])
        failed.failure.message = "boom"
        failed.lastHeartbeatDetails.payloads = [Ballast_V1_Payload.with { $0.data = Data(repeating: 1, count: 20_000) }]
        #expect(h.apply(.activityTaskFailed(failed)).response.rejection == nil)
        let activity = try #require(h.engine.runs[run.runId]?.activities.values.first)
        #expect(activity.heartbeatDetails == nil)
        #expect(activity.lastFailure?.message == "boom")
        #expect(activity.attempt == 2)
    }

    @Test("entries of format 4 keep whatever they are given, as every earlier build did")
    func olderFormatsKeepEverything() {
        var h = Harness(limits: Self.limits)
        h.formatVersion = historySizeFormatVersion
        let (run, tokens) = Self.started(&h, activities: 3)
        for token in tokens { #expect(h.apply(Self.heartbeat(token, bytes: 6_000)).response.rejection == nil) }
        #expect(Self.kept(h, run).derived == 18_000)
    }

    @Test("the derived count equals the activities' after random sequences and after a restore", arguments: [UInt64(1), 2, 3])
    func derivedCountIsExact(seed: UInt64) throws {
        var h = Harness()
        var generator = EntryGenerator(seed: seed)
        for _ in 0..<600 {
            let (payload, advance) = generator.next(h.engine)
            h.apply(payload, advance: advance)
            let exact = h.engine.runs.values.allSatisfy { $0.keptActivityBytes == $0.activities.values.reduce(0) { $0 + $1.keptBytes } }
            try #require(exact, "seed \(seed): a run's derived count differs from its activities'")
        }
        let restored = try WorkflowEngine.restore(h.engine.snapshot())
        for run in h.engine.runs.values {
            #expect(restored.runs[run.key.runId]?.keptActivityBytes == run.keptActivityBytes)
        }
    }

    @Test("utf8Prefix cuts between scalars, never inside one")
    func prefixCutsBetweenScalars() {
        #expect(utf8Prefix("aé", 2) == "a")
        #expect(utf8Prefix("aé", 3) == "aé")
        #expect(utf8Prefix("e\u{301}x", 2) == "e", "a combining accent is a scalar of its own")
        #expect(utf8Prefix("🙂🙂", 7) == "🙂")
    }
}
