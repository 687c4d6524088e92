import Foundation

/// One international money transfer: what `transfers start` sends as the `Transfer` workflow's
/// input. Everything a worker needs to decide travels here (the bank's behavior included), so
/// every worker process handles a transfer the same way.
public struct TransferInput: Codable, Sendable, Equatable {
    /// The transfer's id; also its workflow id and the ledger's transfer id.
    public var transferID: String
    /// The account debited.
    public var fromAccount: String
    /// The account credited.
    public var toAccount: String
    /// The amount in minor units of the source currency (the ledger's currency).
    public var amount: Int64
    /// ISO 4217 code of the sender's currency, e.g. "USD".
    public var sourceCurrency: String
    /// ISO 4217 code of the beneficiary's currency, e.g. "EUR".
    public var targetCurrency: String
    /// Amounts at or above this (minor units) wait for an `approve` signal.
    public var approvalThreshold: Int64
    /// How long a large transfer waits for its approval before it is refunded, milliseconds.
    public var approvalTimeoutMilliseconds: Int64
    /// The simulated correspondent bank (seed, permanent and transient failure rates, latency).
    public var bank: BankBehavior

    /// Creates an input.
    public init(transferID: String, fromAccount: String, toAccount: String, amount: Int64, sourceCurrency: String = "USD",
                targetCurrency: String = "EUR", approvalThreshold: Int64 = TransferDefaults.approvalThreshold,
                approvalTimeoutMilliseconds: Int64 = TransferDefaults.approvalTimeoutMilliseconds,
                bank: BankBehavior = BankBehavior(seed: 0)) {
        self.transferID = transferID
        self.fromAccount = fromAccount
        self.toAccount = toAccount
        self.amount = amount
        self.sourceCurrency = sourceCurrency
        self.targetCurrency = targetCurrency
        self.approvalThreshold = approvalThreshold
        self.approvalTimeoutMilliseconds = approvalTimeoutMilliseconds
        self.bank = bank
    }

    /// Whether this transfer waits for an approval.
    public var needsApproval: Bool { amount >= approvalThreshold }

    /// Why the input cannot be processed, or nil when it can.
    public var problem: String? {
        if transferID.isEmpty || transferID.utf8.count > 200 { return "the transfer id must be 1-200 bytes" }
        if fromAccount.isEmpty || toAccount.isEmpty || fromAccount.utf8.count > 200 || toAccount.utf8.count > 200 {
            return "account ids must be 1-200 bytes"
        }
        if fromAccount == toAccount { return "the sender and the recipient are the same account \(fromAccount)" }
        if amount <= 0 || amount > Ledger.maximumAmount { return "the amount \(amount) is not in 1...\(Ledger.maximumAmount)" }
        if approvalThreshold <= 0 { return "the approval threshold must be positive" }
        if approvalTimeoutMilliseconds <= 0 || approvalTimeoutMilliseconds > 30 * 86_400_000 {
            return "the approval timeout must be 1 ms to 30 days"
        }
        do { _ = try bank.validated() } catch { return error.description }
        return nil
    }
}

/// Defaults shared by the workflow, `transfers start` and the tests.
public enum TransferDefaults {
    /// The task queue workers serve and transfers are started on.
    public static let taskQueue = "transfers"
    /// The workflow type name.
    public static let workflowType = "Transfer"
    /// The keyword search attribute holding the outcome.
    public static let outcomeAttribute = "TransferOutcome"
    /// 10,000.00 in minor units.
    public static let approvalThreshold: Int64 = 1_000_000
    /// 30 s.
    public static let approvalTimeoutMilliseconds: Int64 = 30_000
}

/// How a transfer ended.
public enum TransferOutcome: String, Codable, Sendable, CaseIterable {
    /// The recipient was credited.
    case completed
    /// The sender got the money back (or never lost it): a permanent failure, a missing
    /// approval or a cancel request stopped the transfer.
    case compensated
}

/// The `Transfer` workflow's result: `{"outcome": "completed"|"compensated", "reason": …}`
/// plus what the FX desk and the bank answered, when they did.
public struct TransferResult: Codable, Sendable, Equatable {
    /// Completed or compensated.
    public var outcome: TransferOutcome
    /// Why it ended so, in words.
    public var reason: String
    /// The bank's confirmation reference (completed transfers).
    public var bankReference: String?
    /// What the beneficiary receives in the target currency, minor units (when quoted).
    public var receivedAmount: Int64?
    /// The exchange rate applied (when quoted).
    public var exchangeRate: Double?

    /// Creates a result.
    public init(outcome: TransferOutcome, reason: String, bankReference: String? = nil, receivedAmount: Int64? = nil,
                exchangeRate: Double? = nil) {
        self.outcome = outcome
        self.reason = reason
        self.bankReference = bankReference
        self.receivedAmount = receivedAmount
        self.exchangeRate = exchangeRate
    }
}

/// The steps of a transfer, as the `status` query reports them.
public enum TransferStep: String, Codable, Sendable {
    /// Started, nothing done yet.
    case started
    /// Moving the money from the sender into the transfer.
    case debiting
    /// Asking the FX desk for a rate.
    case quoting
    /// Checking limits and the sanctions list.
    case checkingCompliance = "checking-compliance"
    /// Waiting for the `approve` signal.
    case awaitingApproval = "awaiting-approval"
    /// Instructing the correspondent bank.
    case instructingBank = "instructing-bank"
    /// Moving the money to the recipient.
    case crediting
    /// Refunding the sender.
    case compensating
    /// Done: the recipient has the money.
    case completed
    /// Done: the sender has the money back.
    case compensated
}

/// The answer of the `status` query.
public struct TransferStatus: Codable, Sendable, Equatable {
    /// The current step.
    public var step: TransferStep
    /// The transfer id.
    public var transferID: String
    /// Whether the transfer waits (or waited) for an approval.
    public var needsApproval: Bool
    /// The approval received: true approved, false denied, nil none yet.
    public var approved: Bool?
    /// The reason of a compensation, once known.
    public var reason: String?
}

/// The money movement an activity applies to the ledger.
public struct LedgerMovement: Codable, Sendable, Equatable {
    /// The transfer.
    public var transferID: String
    /// The account debited, credited or refunded.
    public var account: String
    /// Minor units.
    public var amount: Int64

    /// Creates a movement.
    public init(transferID: String, account: String, amount: Int64) {
        self.transferID = transferID
        self.account = account
        self.amount = amount
    }
}

/// What a ledger activity did.
public struct LedgerReceipt: Codable, Sendable, Equatable {
    /// The amount moved (0: a refund that found nothing to give back).
    public var amount: Int64
    /// The account's balance after the operation (nil when nothing moved).
    public var balanceAfter: Int64?
    /// False when an earlier attempt had already applied it.
    public var appliedNow: Bool
}
