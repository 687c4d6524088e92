import BallastProto

/// Temporal's retry-policy defaults and backoff arithmetic.
enum RetryRules {
    static let defaultInitialIntervalNanos: Int64 = 1_000_000_000
    static let defaultBackoffCoefficient = 2.0
    static let defaultMaximumIntervalFactor: Int64 = 100

    enum Validation: Equatable { case valid, invalid(String) }

    /// Checks the fields a user may set.
    static func validate(_ policy: Ballast_V1_RetryPolicy) -> Validation {
        if policy.initialIntervalNanos < 0 { return .invalid("initial_interval must not be negative") }
        if policy.maximumIntervalNanos < 0 { return .invalid("maximum_interval must not be negative") }
        if policy.backoffCoefficient != 0, !(policy.backoffCoefficient >= 1) {
            return .invalid("backoff_coefficient must be at least 1")
        }
        if policy.maximumAttempts < 0 { return .invalid("maximum_attempts must not be negative") }
        if policy.maximumIntervalNanos > 0, policy.initialIntervalNanos > 0,
           policy.maximumIntervalNanos < policy.initialIntervalNanos {
            return .invalid("maximum_interval must not be below initial_interval")
        }
        return .valid
    }

    /// Fills unset fields with the defaults: 1 s, x2.0, 100 x initial, unlimited attempts.
    static func withDefaults(_ policy: Ballast_V1_RetryPolicy) -> Ballast_V1_RetryPolicy {
        var filled = policy
        if filled.initialIntervalNanos == 0 { filled.initialIntervalNanos = defaultInitialIntervalNanos }
        if filled.backoffCoefficient == 0 { filled.backoffCoefficient = defaultBackoffCoefficient }
        if filled.maximumIntervalNanos == 0 {
            filled.maximumIntervalNanos = filled.initialIntervalNanos.multipliedReportingOverflow(
                by: defaultMaximumIntervalFactor).partialValue
        }
        return filled
    }

    /// The wait before attempt `attempt + 1`: initial x coefficient^(attempt-1), capped.
    static func backoff(policy: Ballast_V1_RetryPolicy, attempt: Int32) -> Int64 {
        var interval = Double(policy.initialIntervalNanos)
        let cap = Double(policy.maximumIntervalNanos)
        var step: Int32 = 1
        // A coefficient of 1 leaves the interval as it is: without the test this looped once
        // per earlier attempt (up to two billion times) for the same result.
        while step < attempt, interval < cap, policy.backoffCoefficient != 1 {
            interval *= policy.backoffCoefficient
            step += 1
        }
        return wholeNanos(min(interval, cap))
    }

    /// An interval computed in `Double`, as whole nanoseconds. A cap of `Int64.max` nanoseconds
    /// is 2^63 as a `Double`, one past the largest `Int64`, where a plain conversion traps; such
    /// an interval saturates (and so does one that is not a number, which the validated policies
    /// cannot produce). Below 2^63 this is the conversion itself.
    static func wholeNanos(_ interval: Double) -> Int64 {
        if interval.isNaN || interval >= 0x1p63 { return .max }
        if interval < -0x1p63 { return .min }
        return Int64(interval)
    }

    /// Whether a failed attempt is retried, and after how long.
    static func decide(
        policy: Ballast_V1_RetryPolicy, attempt: Int32, failure: Ballast_V1_Failure,
        now: Int64, scheduleToCloseDeadline: Int64
    ) -> (state: Ballast_V1_RetryState, backoffNanos: Int64) {
        if failure.nonRetryable || policy.nonRetryableErrorTypes.contains(failure.type) {
            return (.nonRetryableFailure, 0)
        }
        if policy.maximumAttempts > 0, attempt >= policy.maximumAttempts {
            return (.maximumAttemptsReached, 0)
        }
        let wait = backoff(policy: policy, attempt: attempt)
        if scheduleToCloseDeadline > 0, now.addingSaturated(wait) >= scheduleToCloseDeadline {
            return (.timeout, 0)
        }
        return (.inProgress, wait)
    }
}
