import BallastWire

/// How a client retries calls that failed for a reason that may pass (no leader yet, a
/// leader change, a lost connection): exponential backoff with full jitter, bounded by the
/// call's deadline.
public struct CallRetryPolicy: Sendable {
    /// The first delay.
    public var initialBackoff: Duration = .milliseconds(25)
    /// The largest delay.
    public var maximumBackoff: Duration = .seconds(1)
    /// Each delay is the previous one times this (before jitter).
    public var multiplier: Double = 2
    /// Each attempt's own deadline (capped by what is left of the call's); a hung attempt is
    /// then retried on another node instead of using the whole call deadline.
    public var attemptTimeout: Duration = .seconds(10)

    /// The default policy.
    public init() {}
}

/// The delays between attempts: exponential with full jitter ("decorrelated" enough for a
/// cluster of clients), driven by a generator passed in so tests can seed it.
public struct Backoff: Sendable {
    let policy: CallRetryPolicy
    private(set) var ceiling: Duration

    /// Starts at the policy's initial delay.
    public init(policy: CallRetryPolicy) {
        self.policy = policy
        self.ceiling = policy.initialBackoff
    }

    /// The next delay: uniform in [ceiling/2, ceiling], then the ceiling grows.
    public mutating func next<Generator: RandomNumberGenerator>(using generator: inout Generator) -> Duration {
        let ceilingNanos = max(Self.nanoseconds(ceiling), 1)
        let delay = Duration.nanoseconds(Int64.random(in: (ceilingNanos / 2) ... ceilingNanos, using: &generator))
        let grown = min(Double(ceilingNanos) * policy.multiplier, Double(Self.nanoseconds(policy.maximumBackoff)))
        // Saturating: a maximum of `Int64.max` nanoseconds is 2^63 as a Double, where (as for a
        // NaN or a huge negative from an odd multiplier) a plain conversion traps.
        ceiling = .nanoseconds(grown < 0x1p63 ? (grown > -0x1p63 ? Int64(grown) : 1) : .max)
        return delay
    }

    /// Back to the initial delay (after a success).
    public mutating func reset() { ceiling = policy.initialBackoff }

    /// Whole nanoseconds, saturating (`Duration.nanoseconds`): a timeout of a thousand years is
    /// sent as `Int64.max` rather than trapping in the caller.
    static func nanoseconds(_ duration: Duration) -> Int64 { duration.nanoseconds }
}

/// What to do after a failed attempt.
public enum RetryDecision: Sendable, Equatable {
    /// Give up and report the status.
    case fail
    /// Retry on another node: `leader` is where the cluster said the leader is (nil: the next address).
    case retry(leader: BallastEndpoint?)
    /// Retry on the same node (it is busy or saw a conflicting change).
    case retrySameNode
}

/// Classifies statuses into retriable and final; pure.
public enum RetryClassifier {
    /// UNAVAILABLE (not the leader, no leader, shutting down, connection lost or refused) is
    /// retried, following `ballast-leader` when present; ABORTED (a conflicting concurrent
    /// change) is retried on the same node when `retryBusy`. Everything else is final: the
    /// request reached a node that decided.
    public static func decide(_ status: GRPCStatus, retryBusy: Bool = true) -> RetryDecision {
        switch status.code {
        case .unavailable:
            let leader = status.leaderAddress.flatMap { try? BallastEndpoint(parsing: $0) }
            return .retry(leader: leader)
        case .aborted where retryBusy:
            return .retrySameNode
        default:
            return .fail
        }
    }
}
