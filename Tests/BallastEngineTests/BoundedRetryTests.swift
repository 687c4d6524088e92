import BallastProto
import Foundation
import Testing

@testable import BallastEngine

/// Engine format 3 bounds the retry arithmetic (`RetryRules`); entries of formats 1 and 2 keep
/// the arithmetic they were written under, so that every build replaying them agrees.
@Suite struct BoundedRetryTests {
    @Test("for attempts up to 1,001, and for any attempt once the cap is reached within 1,000 steps, both arithmetics give the same wait")
    func sameWaitWhereFormatsOneAndTwoAreCheap() {
        var random = SeededRandom(seed: 20_261_128)
        for _ in 0..<2_000 {
            let initial = Int64.random(in: 1...1_000_000_000_000, using: &random)
            let coefficient = [1.0, 1.0001, 1.001, 1.01, 1.5, 2, 3.7, 10][Int.random(in: 0..<8, using: &random)]
                + Double(Int.random(in: 0..<1_000, using: &random)) / 1e6
            let maximum = initial.multipliedReportingOverflow(by: Int64.random(in: 1...1_000, using: &random))
            let policy = RetryRulesTests.policy(initial: initial, coefficient: coefficient,
                                                maximum: maximum.overflow ? .max : maximum.partialValue)
            for attempt in [1, 2, 3, 17, 500, 1_000, 1_001] as [Int32] {
                #expect(RetryRules.backoff(policy: policy, attempt: attempt, bounded: true)
                        == RetryRules.backoff(policy: policy, attempt: attempt, bounded: false), "\(policy) attempt \(attempt)")
            }
            // A coefficient that reaches the cap within 1,000 multiplications: the same at any attempt.
            if coefficient >= 1.01 {
                for attempt in [5_000, 1_000_000, .max] as [Int32] {
                    #expect(RetryRules.backoff(policy: policy, attempt: attempt, bounded: true)
                            == RetryRules.backoff(policy: policy, attempt: attempt, bounded: false), "\(policy) attempt \(attempt)")
                }
            }
        }
    }

    @Test("a coefficient just above 1 costs at most about a thousand multiplications at any attempt, for nearly the same wait")
    func aCoefficientJustAboveOneIsBounded() {
        let policy = RetryRulesTests.policy(initial: 1_000_000, coefficient: 1.000_000_1, maximum: 100_000_000)
        let attempt: Int32 = 2_000_000
        let unbounded = RetryRules.backoffCounted(policy: policy, attempt: attempt, bounded: false)
        #expect(unbounded.multiplications == Int(attempt) - 1, "formats 1 and 2: one multiplication per earlier attempt")
        let bounded = RetryRules.backoffCounted(policy: policy, attempt: attempt, bounded: true)
        #expect(bounded.multiplications <= Int(RetryRules.exactSteps) + 64)
        // 1 ms x 1.0000001^1,999,999 ≈ 1.2214 ms: the two agree to within a few nanoseconds.
        #expect(abs(bounded.nanos - unbounded.nanos) <= 2, "\(bounded.nanos) against \(unbounded.nanos)")
        #expect(abs(Double(bounded.nanos) - 1e6 * exp(0.1999999)) < 1, "\(bounded.nanos)")
        // At the largest attempt the wait has long reached the cap.
        let last = RetryRules.backoffCounted(policy: policy, attempt: .max, bounded: true)
        #expect(last.nanos == 100_000_000)
        #expect(last.multiplications <= Int(RetryRules.exactSteps) + 64)
        // Waits never shrink from one attempt to the next.
        var previous: Int64 = 0
        for attempt in stride(from: Int32(1), to: 60_000_000, by: 999_983) {
            let wait = RetryRules.backoff(policy: policy, attempt: attempt, bounded: true)
            #expect(wait >= previous, "attempt \(attempt)")
            previous = wait
        }
    }

    @Test("a default maximum above Int64.max saturates in format 3; formats 1 and 2 keep the wrapped value")
    func defaultMaximumSaturates() {
        let threeYears: Int64 = 100_000_000_000_000_000 // 1e17 ns ≈ 3.2 years; x100 passes Int64.max
        let policy = RetryRulesTests.policy(initial: threeYears, coefficient: 0, maximum: 0)
        let wrapped = RetryRules.withDefaults(policy, bounded: false)
        #expect(wrapped.maximumIntervalNanos < 0, "the old product wraps")
        #expect(RetryRules.backoff(policy: wrapped, attempt: 1, bounded: false) < 0, "an immediate retry")
        let filled = RetryRules.withDefaults(policy, bounded: true)
        #expect(filled.maximumIntervalNanos == .max)
        #expect(RetryRules.backoff(policy: filled, attempt: 1, bounded: true) == threeYears)
        #expect(RetryRules.backoff(policy: filled, attempt: 3, bounded: true) == 4 * threeYears)
        // A maximum that wrapped in a format-2 entry, used by a format-3 retry, counts as no cap.
        #expect(RetryRules.backoff(policy: wrapped, attempt: 1, bounded: true) == threeYears)
        #expect(RetryRules.backoff(policy: wrapped, attempt: 200, bounded: true) == .max)
        // Below the bound both formats fill the same maximum.
        let hour = RetryRulesTests.policy(initial: 3_600_000_000_000, coefficient: 0, maximum: 0)
        #expect(RetryRules.withDefaults(hour, bounded: true) == RetryRules.withDefaults(hour, bounded: false))
    }

    /// An activity whose 3-year initial interval has no maximum, failed once.
    static func failedOnce(format: UInt32) -> (Harness, RunKey) {
        var h = Harness()
        h.formatVersion = format
        let run = h.start("w")
        h.workflowTask(run, [Commands.scheduleActivity("a") { $0.retryPolicy.initialIntervalNanos = 100_000_000_000_000_000 }])
        _ = h.failActivity(h.startActivity(run, "a"))
        return (h, run)
    }

    @Test("the engine retries by the entry's format: a format-1 entry as before, a format-3 entry three years on")
    func theEntryFormatChoosesTheArithmetic() throws {
        var (old, oldRun) = Self.failedOnce(format: engineFormatVersion)
        let oldRetry = old.engine.dueTimers().first { if case .activityRetryDue = $0.payload { true } else { false } }
        #expect(try #require(oldRetry).dueTimeUnixNanos < old.now, "formats 1 and 2: the wrapped maximum retries at once")
        _ = old.fireDue(within: 0)
        #expect(old.readyActivity(oldRun, "a") != nil)

        let (new, newRun) = Self.failedOnce(format: boundedRetryFormatVersion)
        let newRetry = new.engine.dueTimers().first { if case .activityRetryDue = $0.payload { true } else { false } }
        #expect(try #require(newRetry).dueTimeUnixNanos == new.now + 100_000_000_000_000_000)
        #expect(new.readyActivity(newRun, "a") == nil, "waiting three years")
        let scheduled = new.events(newRun).first { $0.typeName == "ActivityTaskScheduled" }
        #expect(scheduled?.activityTaskScheduled.retryPolicy.maximumIntervalNanos == .max)
    }
}
