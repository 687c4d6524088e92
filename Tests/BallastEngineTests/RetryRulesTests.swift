import BallastProto
import Testing

@testable import BallastEngine

/// The backoff arithmetic at its edges: a wait is never computed by a conversion or a loop
/// that could trap or run for billions of steps on a value a user chose.
@Suite struct RetryRulesTests {
    static func policy(initial: Int64, coefficient: Double, maximum: Int64) -> Ballast_V1_RetryPolicy {
        var policy = Ballast_V1_RetryPolicy()
        policy.initialIntervalNanos = initial
        policy.backoffCoefficient = coefficient
        policy.maximumIntervalNanos = maximum
        return policy
    }

    @Test func waitsGrowByTheCoefficientUpToTheCap() {
        let policy = Self.policy(initial: 1_000, coefficient: 2, maximum: 10_000)
        #expect((1...6).map { RetryRules.backoff(policy: policy, attempt: $0, bounded: true) } == [1_000, 2_000, 4_000, 8_000, 10_000, 10_000])
    }

    @Test func aCapOfTheLargestIntervalSaturates() {
        // Int64.max as a Double is 2^63, one past the largest Int64: converting it traps.
        let policy = Self.policy(initial: .max, coefficient: 2, maximum: .max)
        #expect(RetryRules.backoff(policy: policy, attempt: 1, bounded: true) == .max)
        let growing = Self.policy(initial: 1_000_000_000, coefficient: 2, maximum: .max)
        #expect(RetryRules.backoff(policy: growing, attempt: 100, bounded: true) == .max)
        #expect(RetryRules.backoff(policy: growing, attempt: 3, bounded: true) == 4_000_000_000)
        let unbounded = Self.policy(initial: 1_000, coefficient: .infinity, maximum: .max)
        #expect(RetryRules.backoff(policy: unbounded, attempt: 2, bounded: true) == .max)
    }

    @Test func aCoefficientOfOneKeepsTheInitialIntervalAtTheLastAttempt() {
        // The loop now stops at once for a coefficient of 1; that is not asserted here (there is
        // no timed test): the loop that ran once per earlier attempt gave this same value, in
        // 24 s of a debug build for these two billion attempts.
        let policy = Self.policy(initial: 1_000, coefficient: 1, maximum: 10_000)
        #expect(RetryRules.backoff(policy: policy, attempt: .max, bounded: true) == 1_000)
    }

    @Test func aRetryThatWouldPassTheEndOfTimeIsATimeout() {
        let policy = Self.policy(initial: .max, coefficient: 2, maximum: .max)
        var failure = Ballast_V1_Failure()
        failure.type = "Flaky"
        let decision = RetryRules.decide(policy: policy, attempt: 1, failure: failure, now: 1_800_000_000_000_000_000,
                                         scheduleToCloseDeadline: 1_800_000_600_000_000_000, bounded: true)
        #expect(decision.state == .timeout)
    }

    @Test func wholeNanosConvertsExactlyBelowTheBound() {
        #expect(RetryRules.wholeNanos(1_234.9) == 1_234)
        #expect(RetryRules.wholeNanos(0x1p62) == 1 << 62)
        #expect(RetryRules.wholeNanos(0x1p63) == .max)
        #expect(RetryRules.wholeNanos(.infinity) == .max)
        #expect(RetryRules.wholeNanos(.nan) == .max)
        #expect(RetryRules.wholeNanos(-.infinity) == .min)
    }

    @Test func attemptsStopCountingAtTheLargestNumber() {
        #expect(Int32(1).nextAttempt == 2)
        #expect(Int32.max.nextAttempt == .max)
        #expect(Int64(5).addingSaturated(7) == 12)
        #expect(Int64.max.addingSaturated(1) == .max)
        #expect(Int64(1_800_000_000_000_000_000).addingSaturated(.max) == .max)
        #expect(Int64.min.addingSaturated(-1) == .min)
    }
}
