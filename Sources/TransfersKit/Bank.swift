/// How the simulated correspondent bank behaves. Travels in each transfer's input, so every
/// worker process simulates the same bank.
public struct BankBehavior: Sendable, Codable, Equatable {
    /// Seeds every decision.
    public var seed: UInt64
    /// Fraction (0…1) of transfers the bank rejects permanently.
    public var permanentRejectionRate: Double
    /// Fraction (0…1) of calls that fail transiently (the first `maximumTransientFailures`
    /// attempts of a transfer; later attempts never fail transiently, so retries end).
    public var transientFailureRate: Double
    /// Mean simulated latency of one call, in milliseconds (0: answer at once).
    public var latencyMilliseconds: Int
    /// Attempts of one transfer that may fail transiently.
    public var maximumTransientFailures: Int

    /// Creates a behavior; rates are validated by `validated()`.
    public init(seed: UInt64, permanentRejectionRate: Double = 0, transientFailureRate: Double = 0.2,
                latencyMilliseconds: Int = 0, maximumTransientFailures: Int = 3) {
        self.seed = seed
        self.permanentRejectionRate = permanentRejectionRate
        self.transientFailureRate = transientFailureRate
        self.latencyMilliseconds = latencyMilliseconds
        self.maximumTransientFailures = maximumTransientFailures
    }

    /// Throws when a rate is outside 0…1 or a count is negative or absurd.
    public func validated() throws(BankError) -> BankBehavior {
        guard (0 ... 1).contains(permanentRejectionRate) else { throw .invalidBehavior("rejection rate \(permanentRejectionRate) is not in 0...1") }
        guard (0 ... 1).contains(transientFailureRate) else { throw .invalidBehavior("transient rate \(transientFailureRate) is not in 0...1") }
        guard (0 ... 60_000).contains(latencyMilliseconds) else { throw .invalidBehavior("latency \(latencyMilliseconds) ms is not in 0...60000") }
        guard (0 ... 100).contains(maximumTransientFailures) else { throw .invalidBehavior("maximum transient failures must be 0...100") }
        return self
    }
}

/// What the bank answered.
public enum BankError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Try again (a timeout, a busy partner).
    case transient(transfer: String, attempt: Int)
    /// The bank will never accept this transfer (compensate).
    case rejected(transfer: String, reason: String)
    /// The request or the behavior is invalid.
    case invalidBehavior(String)

    /// What happened.
    public var description: String {
        switch self {
        case .transient(let transfer, let attempt): "correspondent bank temporarily unavailable for \(transfer) (attempt \(attempt))"
        case .rejected(let transfer, let reason): "correspondent bank rejected \(transfer): \(reason)"
        case .invalidBehavior(let why): "invalid bank behavior: \(why)"
        }
    }
}

/// The bank's acknowledgement of an instruction.
public struct BankConfirmation: Sendable, Codable, Equatable {
    /// The bank's reference; the same for every attempt of a transfer.
    public var reference: String
    /// The amount instructed, minor units.
    public var amount: Int64
}

/// A simulated correspondent bank: deterministic per transfer (the same seed, transfer id and
/// attempt give the same answer in every process), with configurable permanent rejections,
/// transient failures and latency. Instructing the same transfer twice returns the same
/// confirmation, as a real partner deduplicating by reference would.
public struct CorrespondentBank: Sendable {
    /// The behavior.
    public let behavior: BankBehavior
    /// Waits the simulated latency (injected so tests need not sleep).
    let wait: @Sendable (Duration) async throws -> Void

    /// Creates a bank that waits with `Task.sleep`.
    public init(behavior: BankBehavior) throws(BankError) {
        self.behavior = try behavior.validated()
        self.wait = { try await Task.sleep(for: $0) }
    }

    /// Creates a bank with a custom wait (tests).
    init(behavior: BankBehavior, wait: @escaping @Sendable (Duration) async throws -> Void) throws(BankError) {
        self.behavior = try behavior.validated()
        self.wait = wait
    }

    /// Whether the bank rejects `transfer` permanently (the same answer everywhere).
    public func rejects(_ transfer: String) -> Bool {
        BankDecision.fraction(seed: behavior.seed, "reject", transfer, 0) < behavior.permanentRejectionRate
    }

    /// Whether attempt `attempt` (1-based) of `transfer` fails transiently.
    public func failsTransiently(_ transfer: String, attempt: Int) -> Bool {
        guard attempt <= behavior.maximumTransientFailures else { return false }
        return BankDecision.fraction(seed: behavior.seed, "transient", transfer, UInt64(max(attempt, 0))) < behavior.transientFailureRate
    }

    /// The simulated latency of an attempt: uniform in [0.5, 1.5] × the mean.
    public func latency(_ transfer: String, attempt: Int) -> Duration {
        guard behavior.latencyMilliseconds > 0 else { return .zero }
        let factor = 0.5 + BankDecision.fraction(seed: behavior.seed, "latency", transfer, UInt64(max(attempt, 0)))
        return .microseconds(Int64(Double(behavior.latencyMilliseconds) * 1000 * factor))
    }

    /// Instructs the bank to pay `amount` for `transfer`.
    public func instruct(transfer: String, amount: Int64, attempt: Int) async throws -> BankConfirmation {
        guard !transfer.isEmpty, transfer.utf8.count <= 512 else { throw BankError.invalidBehavior("transfer id must be 1-512 bytes") }
        guard amount > 0 else { throw BankError.invalidBehavior("amount must be positive, got \(amount)") }
        let delay = latency(transfer, attempt: attempt)
        if delay > .zero { try await wait(delay) }
        if failsTransiently(transfer, attempt: attempt) { throw BankError.transient(transfer: transfer, attempt: attempt) }
        if rejects(transfer) { throw BankError.rejected(transfer: transfer, reason: "beneficiary account closed") }
        let reference = BankDecision.hash(seed: behavior.seed, "reference", transfer, 0)
        return BankConfirmation(reference: "CB-" + String(reference, radix: 16, uppercase: true), amount: amount)
    }
}

/// Stable hashing for the bank's decisions (Swift's `Hasher` is seeded per process, so it
/// would make workers disagree). FNV-1a over the inputs, finished with SplitMix64.
enum BankDecision {
    static func hash(seed: UInt64, _ purpose: String, _ transfer: String, _ attempt: UInt64) -> UInt64 {
        var value: UInt64 = 0xcbf2_9ce4_8422_2325 ^ seed
        for byte in purpose.utf8 + [0] + transfer.utf8 + [0] {
            value ^= UInt64(byte)
            value = value &* 0x0000_0100_0000_01B3
        }
        value ^= attempt
        // SplitMix64 finalizer: spreads the bits so low rates are honest.
        value = (value ^ (value >> 30)) &* 0xbf58_476d_1ce4_e5b9
        value = (value ^ (value >> 27)) &* 0x94d0_49bb_1331_11eb
        return value ^ (value >> 31)
    }

    /// A number in [0, 1) derived from the inputs.
    static func fraction(seed: UInt64, _ purpose: String, _ transfer: String, _ attempt: UInt64) -> Double {
        Double(hash(seed: seed, purpose, transfer, attempt) >> 11) / Double(1 << 53)
    }
}
