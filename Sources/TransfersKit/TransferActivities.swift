import BallastSDK
import Dispatch
import Foundation
import Synchronization

/// Runs the ledger's blocking SQLite calls on a thread of their own, so an operation waiting
/// for another process's write lock (up to the busy timeout) never holds one of Swift's few
/// cooperative threads — on a 2-core machine two such waits would stall the whole worker.
///
/// Operations that queue while one batch is being written go together into the next
/// (`Ledger.batch`, up to `maxBatch`): one transaction and one fsync for all of them, each in
/// its own savepoint, and each caller hears its outcome only once the batch is committed
/// (group commit; with the ledger's `synchronous=FULL`, an fsync per debit or credit was about
/// a tenth of the transfer benchmark's time). FIFO order, bounded by the worker's activity slots.
public final class LedgerExecutor: Sendable {
    /// One queued operation: `perform` runs it inside the batch and keeps its outcome;
    /// `finish` reports that outcome, or the batch's commit error, to its caller.
    private struct Job: Sendable {
        let perform: @Sendable (Ledger) -> Void
        let finish: @Sendable (LedgerError?) -> Void
    }

    private struct Queue {
        var jobs: [Job] = []
        var draining = false
        var batchesWritten = 0
    }

    /// The ledger.
    public let ledger: Ledger
    /// The most operations written in one transaction.
    public let maxBatch: Int
    private let queue: DispatchQueue
    private let state = Mutex(Queue())

    /// Wraps `ledger`.
    public init(ledger: Ledger, maxBatch: Int = 64) {
        precondition(maxBatch > 0, "a batch holds at least one operation")
        self.ledger = ledger
        self.maxBatch = maxBatch
        self.queue = DispatchQueue(label: "transfers.ledger")
    }

    /// Runs `body` with the ledger on the ledger's thread, in the next batch; returns once the
    /// batch is committed.
    public func run<T: Sendable>(_ body: @escaping @Sendable (Ledger) throws(LedgerError) -> T) async throws(LedgerError) -> T {
        let result: Result<T, LedgerError> = await withCheckedContinuation { continuation in
            let outcome = Mutex<Result<T, LedgerError>?>(nil)
            submit(Job(perform: { ledger in
                let value: Result<T, LedgerError>
                do throws(LedgerError) { value = .success(try body(ledger)) } catch { value = .failure(error) }
                outcome.withLock { $0 = value }
            }, finish: { commitError in
                if let commitError { return continuation.resume(returning: .failure(commitError)) }
                let value = outcome.withLock { $0 } ?? .failure(.storage("the operation did not run", busy: false))
                continuation.resume(returning: value)
            }))
        }
        return try result.get()
    }

    /// Operations waiting for the next batch.
    var queuedCount: Int { state.withLock { $0.jobs.count } }
    /// Batches written so far.
    var batchesWritten: Int { state.withLock { $0.batchesWritten } }

    private func submit(_ job: Job) {
        let start = state.withLock { state -> Bool in
            state.jobs.append(job)
            guard !state.draining else { return false }
            state.draining = true
            return true
        }
        if start { queue.async { self.drain() } }
    }

    /// Writes batches until nothing waits.
    private func drain() {
        while true {
            let jobs = state.withLock { state -> [Job] in
                let taken = Array(state.jobs.prefix(maxBatch))
                state.jobs.removeFirst(taken.count)
                if taken.isEmpty { state.draining = false } else { state.batchesWritten += 1 }
                return taken
            }
            guard !jobs.isEmpty else { return }
            let commitError = ledger.batch(jobs.map(\.perform))
            for job in jobs { job.finish(commitError) }
        }
    }
}

extension LedgerError {
    /// The activity error for this ledger error: a busy or failing database is retried, a
    /// business refusal (insufficient funds, unknown account…) is final.
    var activityError: ApplicationError {
        switch self {
        case .storage: ApplicationError(description, type: "LedgerUnavailable")
        case .insufficientFunds: ApplicationError(description, type: "InsufficientFunds", nonRetryable: true)
        case .unknownAccount: ApplicationError(description, type: "UnknownAccount", nonRetryable: true)
        case .invalidAmount, .invalidIdentifier: ApplicationError(description, type: "InvalidTransfer", nonRetryable: true)
        case .notInFlight: ApplicationError(description, type: "NotInFlight", nonRetryable: true)
        case .idempotencyConflict: ApplicationError(description, type: "IdempotencyConflict", nonRetryable: true)
        }
    }
}

extension LedgerOperation {
    var receipt: LedgerReceipt { LedgerReceipt(amount: amount, balanceAfter: balanceAfter, appliedNow: appliedNow) }
}

/// Moves the amount from the sender into the transfer's in-flight money, once per activity
/// (the idempotency key is the same for every attempt, so a retried debit is applied once).
public struct DebitActivity: ActivityDefinition {
    /// The wire name.
    public static let name = "Debit"
    let ledger: LedgerExecutor

    /// Runs one attempt.
    public func run(_ input: LedgerMovement, context: ActivityContext) async throws -> LedgerReceipt {
        let key = context.idempotencyKey
        do throws(LedgerError) {
            return try await ledger.run { ledger throws(LedgerError) in
                try ledger.debit(input.account, amount: input.amount, transfer: input.transferID, idempotencyKey: key).receipt
            }
        } catch {
            throw error.activityError
        }
    }
}

/// Moves the transfer's in-flight money to the recipient.
public struct CreditActivity: ActivityDefinition {
    /// The wire name.
    public static let name = "Credit"
    let ledger: LedgerExecutor

    /// Runs one attempt.
    public func run(_ input: LedgerMovement, context: ActivityContext) async throws -> LedgerReceipt {
        let key = context.idempotencyKey
        do throws(LedgerError) {
            return try await ledger.run { ledger throws(LedgerError) in
                try ledger.credit(input.account, amount: input.amount, transfer: input.transferID, idempotencyKey: key).receipt
            }
        } catch {
            throw error.activityError
        }
    }
}

/// Gives the transfer's in-flight money back to the sender: the saga's compensation. A
/// transfer whose debit never applied (refused, or canceled before it ran) has nothing in
/// flight; the refund then moves nothing and succeeds, so compensation always ends.
public struct RefundActivity: ActivityDefinition {
    /// The wire name.
    public static let name = "Refund"
    let ledger: LedgerExecutor

    /// Runs one attempt.
    public func run(_ input: LedgerMovement, context: ActivityContext) async throws -> LedgerReceipt {
        let key = context.idempotencyKey
        do throws(LedgerError) {
            return try await ledger.run { ledger throws(LedgerError) in
                do throws(LedgerError) {
                    return try ledger.refund(input.account, amount: input.amount, transfer: input.transferID, idempotencyKey: key).receipt
                } catch .notInFlight(_, let inFlight, _) where inFlight == 0 {
                    // Nothing to give back only if nothing was ever debited; anything else is a bug.
                    let record = try ledger.record(ofTransfer: input.transferID)
                    guard !record.operations.contains(where: { $0.kind == .debit }) else {
                        throw LedgerError.notInFlight(transfer: input.transferID, inFlight: 0, requested: input.amount)
                    }
                    return LedgerReceipt(amount: 0, balanceAfter: nil, appliedNow: false)
                }
            }
        } catch {
            throw error.activityError
        }
    }
}

/// Asks the FX desk for a rate.
public struct QuoteActivity: ActivityDefinition {
    /// The wire name.
    public static let name = "FXQuote"

    /// The request: amount and currency pair.
    public struct Request: Codable, Sendable {
        /// Minor units of `source`.
        public var amount: Int64
        /// Currency codes.
        public var source: String, target: String
    }

    /// Runs one attempt.
    public func run(_ input: Request, context: ActivityContext) async throws -> FXQuote {
        do {
            return try FXDesk.quote(amount: input.amount, from: input.source, to: input.target)
        } catch {
            throw ApplicationError(error.description, type: "UnsupportedCurrency", nonRetryable: true)
        }
    }
}

/// Checks amount limits and the sanctions list.
public struct ComplianceActivity: ActivityDefinition {
    /// The wire name.
    public static let name = "ComplianceCheck"
    let rules: ComplianceRules

    /// Runs one attempt.
    public func run(_ input: ComplianceRequest, context: ActivityContext) async throws -> ComplianceDecision {
        rules.check(input)
    }
}

/// Instructs the correspondent bank: transient failures are retried by the activity's retry
/// policy, a permanent rejection is final (the workflow compensates).
public struct InstructBankActivity: ActivityDefinition {
    /// The wire name.
    public static let name = "InstructBank"

    /// The instruction.
    public struct Request: Codable, Sendable {
        /// The transfer.
        public var transferID: String
        /// Minor units.
        public var amount: Int64
        /// How the simulated bank behaves (from the transfer's input).
        public var bank: BankBehavior
    }

    let wait: (@Sendable (Duration) async throws -> Void)?

    /// Runs one attempt.
    public func run(_ input: Request, context: ActivityContext) async throws -> BankConfirmation {
        do {
            let bank = try wait.map { try CorrespondentBank(behavior: input.bank, wait: $0) } ?? CorrespondentBank(behavior: input.bank)
            return try await bank.instruct(transfer: input.transferID, amount: input.amount, attempt: context.attempt)
        } catch let error as BankError {
            switch error {
            case .transient: throw ApplicationError(error.description, type: "BankUnavailable")
            case .rejected: throw ApplicationError(error.description, type: "BankRejected", nonRetryable: true)
            case .invalidBehavior: throw ApplicationError(error.description, type: "InvalidTransfer", nonRetryable: true)
            }
        }
    }
}

/// The transfer example's activities, ready to register on a worker.
public enum TransferActivities {
    /// Every activity of the `Transfer` workflow, using `ledger`. `bankWait` replaces the
    /// simulated bank latency's `Task.sleep` (tests).
    public static func registry(ledger: Ledger, compliance: ComplianceRules = .standard,
                                bankWait: (@Sendable (Duration) async throws -> Void)? = nil) -> ActivityRegistry {
        let executor = LedgerExecutor(ledger: ledger)
        var registry = ActivityRegistry()
        registry.register(DebitActivity(ledger: executor))
        registry.register(CreditActivity(ledger: executor))
        registry.register(RefundActivity(ledger: executor))
        registry.register(QuoteActivity())
        registry.register(ComplianceActivity(rules: compliance))
        registry.register(InstructBankActivity(wait: bankWait))
        return registry
    }
}
