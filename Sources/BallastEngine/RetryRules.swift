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
    /// `bounded` (entry format 3 on): 100 x an initial interval above `Int64.max` / 100 (about
    /// 2.9 years) is `Int64.max`; before, the product wrapped, often to a negative maximum that
    /// made every backoff negative (an immediate retry). Older entries keep the wrap.
    static func withDefaults(_ policy: Ballast_V1_RetryPolicy, bounded: Bool) -> Ballast_V1_RetryPolicy {
        var filled = policy
        if filled.initialIntervalNanos == 0 { filled.initialIntervalNanos = defaultInitialIntervalNanos }
        if filled.backoffCoefficient == 0 { filled.backoffCoefficient = defaultBackoffCoefficient }
        if filled.maximumIntervalNanos == 0 {
            let product = filled.initialIntervalNanos.multipliedReportingOverflow(by: defaultMaximumIntervalFactor)
            filled.maximumIntervalNanos = bounded && product.overflow ? .max : product.partialValue
        }
        return filled
    }

    /// Multiplications a bounded backoff makes one by one, as every format does, before it
    /// raises the coefficient to the remaining power by squaring.
    static let exactSteps: Int32 = 1_000

    /// The wait before attempt `attempt + 1`: initial x coefficient^(attempt-1), capped.
    static func backoff(policy: Ballast_V1_RetryPolicy, attempt: Int32, bounded: Bool) -> Int64 {
        backoffCounted(policy: policy, attempt: attempt, bounded: bounded).nanos
    }

    /// `backoff`, with the number of multiplications it made (tests check the bound).
    ///
    /// The interval is multiplied by the coefficient once per earlier attempt until it reaches
    /// the cap. Unbounded (formats 1 and 2), that is one multiplication per attempt when the
    /// coefficient is just above 1 — 1.0000001 takes 46 million to grow a hundredfold, each
    /// retry decision on the Raft loop of every node. Bounded, the first `exactSteps` are made
    /// the same way (so a policy that reaches its cap within them, or an attempt up to 1,001,
    /// gets exactly the interval formats 1 and 2 give) and the rest as one power, by repeated
    /// squaring: at most about 60 more, in plain IEEE multiplications, the same on every node.
    /// A stored maximum that is not positive can only be a wrapped default (validation refuses
    /// negative ones): bounded, it counts as `Int64.max`.
    static func backoffCounted(
        policy: Ballast_V1_RetryPolicy, attempt: Int32, bounded: Bool
    ) -> (nanos: Int64, multiplications: Int) {
        var interval = Double(policy.initialIntervalNanos)
        let cap = bounded && policy.maximumIntervalNanos <= 0 ? 0x1p63 : Double(policy.maximumIntervalNanos)
        let coefficient = policy.backoffCoefficient
        let oneByOne = bounded ? min(attempt, exactSteps + 1) : attempt
        var step: Int32 = 1
        var multiplications = 0
        // A coefficient of 1 leaves the interval as it is: without the test this looped once
        // per earlier attempt (up to two billion times) for the same result.
        while step < oneByOne, interval < cap, coefficient != 1 {
            interval *= coefficient
            step += 1
            multiplications += 1
        }
        if step < attempt, interval < cap, coefficient != 1 {
            var remaining = attempt - step
            var square = coefficient
            var power = 1.0
            while remaining > 0 {
                if remaining & 1 == 1 {
                    power *= square
                    multiplications += 1
                }
                remaining >>= 1
                if remaining > 0 {
                    square *= square
                    multiplications += 1
                }
            }
            interval *= power
            multiplications += 1
        }
        return (wholeNanos(min(interval, cap)), multiplications)
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
        now: Int64, scheduleToCloseDeadline: Int64, bounded: Bool
    ) -> (state: Ballast_V1_RetryState, backoffNanos: Int64) {
        if failure.nonRetryable || policy.nonRetryableErrorTypes.contains(failure.type) {
            return (.nonRetryableFailure, 0)
        }
        if policy.maximumAttempts > 0, attempt >= policy.maximumAttempts {
            return (.maximumAttemptsReached, 0)
        }
        let wait = backoff(policy: policy, attempt: attempt, bounded: bounded)
        if scheduleToCloseDeadline > 0, now.addingSaturated(wait) >= scheduleToCloseDeadline {
            return (.timeout, 0)
        }
        return (.inProgress, wait)
    }
}
