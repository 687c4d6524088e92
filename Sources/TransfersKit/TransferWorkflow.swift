import BallastSDK

/// The international money transfer: debit the sender, quote FX, check compliance, wait for an
/// approval when the amount is large, instruct the correspondent bank, credit the recipient.
///
/// A saga: once the debit may have happened, any permanent failure, a missing or denied
/// approval, or a cancel request refunds the sender (a retried activity). The bank instruction
/// and the credit run outside the workflow's cancellation: a payment the correspondent bank
/// has accepted is not recalled by a cancel. So the run always completes (status Completed)
/// with `{"outcome": "completed"|"compensated", "reason": …}` and sets the keyword search
/// attribute `TransferOutcome` to the same word. The `status` query answers the current step;
/// the `approve` signal (`true` approves, `false` denies) releases a large transfer.
public struct TransferWorkflow: Workflow {
    /// The workflow type on the wire.
    public static let name = TransferDefaults.workflowType

    /// Ledger operations: quick, retried until they succeed or are refused for good. An attempt
    /// lost with its worker is retried elsewhere after the start-to-close timeout (10 s; workers
    /// open the ledger with a shorter busy timeout, so a busy database fails first).
    static let ledgerOptions = ActivityOptions(
        startToCloseTimeout: .seconds(10),
        retryPolicy: RetryPolicy(initialInterval: .milliseconds(100), backoffCoefficient: 2, maximumInterval: .seconds(2)))

    /// The bank: transient failures retried with backoff, rejections final; an attempt may take
    /// 10 s plus twice the simulated mean latency.
    static func bankOptions(_ bank: BankBehavior) -> ActivityOptions {
        ActivityOptions(
            startToCloseTimeout: .seconds(10) + .milliseconds(2 * bank.latencyMilliseconds),
            retryPolicy: RetryPolicy(initialInterval: .milliseconds(100), backoffCoefficient: 2, maximumInterval: .seconds(2),
                                     nonRetryableErrorTypes: ["BankRejected"]))
    }

    /// Creates the workflow.
    public init() {}

    /// Runs one transfer.
    public func run(context: WorkflowContext, input: TransferInput) async throws -> TransferResult {
        let state = TransferState(input: input)
        context.setQueryHandler("status") { state.status }
        context.setSignalHandler("approve", of: Bool.self) { approved in
            if state.approved == nil { state.approved = approved }
        }
        let result: TransferResult
        if let problem = input.problem {
            result = TransferResult(outcome: .compensated, reason: "invalid transfer, nothing moved: \(problem)")
        } else if context.isCancelRequested {
            result = TransferResult(outcome: .compensated, reason: "canceled before the debit, nothing moved")
        } else {
            result = await transfer(context: context, input: input, state: state)
        }
        state.step = result.outcome == .completed ? .completed : .compensated
        state.reason = result.outcome == .completed ? nil : result.reason
        try context.upsertSearchAttributes([TransferDefaults.outcomeAttribute: .keyword(result.outcome.rawValue)])
        return result
    }

    /// The steps after validation; a failure after the debit was attempted is compensated.
    func transfer(context: WorkflowContext, input: TransferInput, state: TransferState) async -> TransferResult {
        let sender = LedgerMovement(transferID: input.transferID, account: input.fromAccount, amount: input.amount)
        do {
            state.step = .debiting
            // Not cancellable: a debit abandoned half-way could still apply after the refund.
            _ = try await context.nonCancellable {
                try await context.executeActivity(DebitActivity.self, input: sender, options: Self.ledgerOptions)
            }
        } catch {
            // A refused debit moved nothing; the refund confirms it and ends the saga cleanly.
            return await compensate(context: context, sender: sender, state: state, reason: "debit refused: \(Self.describe(error))")
        }
        do {
            let quote = try await prepare(context: context, input: input, state: state)
            // From here on the payment is committed: the bank and the credit ignore a cancel.
            let confirmation = try await context.nonCancellable {
                state.step = .instructingBank
                let request = InstructBankActivity.Request(transferID: input.transferID, amount: input.amount, bank: input.bank)
                let confirmation = try await context.executeActivity(InstructBankActivity.self, input: request, options: Self.bankOptions(input.bank))
                state.step = .crediting
                let recipient = LedgerMovement(transferID: input.transferID, account: input.toAccount, amount: input.amount)
                _ = try await context.executeActivity(CreditActivity.self, input: recipient, options: Self.ledgerOptions)
                return confirmation
            }
            return TransferResult(outcome: .completed, reason: "credited \(input.toAccount)", bankReference: confirmation.reference,
                                  receivedAmount: quote.receivedAmount, exchangeRate: quote.rate)
        } catch {
            let reason = context.isCancelRequested && Self.isCancellation(error)
                ? "canceled at step \(state.step.rawValue)" : Self.describe(error)
            return await compensate(context: context, sender: sender, state: state, reason: reason)
        }
    }

    /// Quote, compliance and (for large amounts) the approval; throws to stop the transfer.
    func prepare(context: WorkflowContext, input: TransferInput, state: TransferState) async throws -> FXQuote {
        state.step = .quoting
        let quote = try await context.executeActivity(
            QuoteActivity.self, input: QuoteActivity.Request(amount: input.amount, source: input.sourceCurrency, target: input.targetCurrency),
            options: Self.ledgerOptions)
        state.step = .checkingCompliance
        let check = ComplianceRequest(transferID: input.transferID, fromAccount: input.fromAccount, toAccount: input.toAccount,
                                      amount: input.amount, currency: input.sourceCurrency)
        let decision = try await context.executeActivity(ComplianceActivity.self, input: check, options: Self.ledgerOptions)
        guard decision.cleared else { throw TransferStopped("compliance: \(decision.reason)") }
        if input.needsApproval {
            state.step = .awaitingApproval
            let answered = try await context.condition(timeout: .milliseconds(input.approvalTimeoutMilliseconds)) { state.approved != nil }
            guard answered else { throw TransferStopped("no approval within \(input.approvalTimeoutMilliseconds) ms") }
            guard state.approved == true else { throw TransferStopped("approval denied") }
        }
        return quote
    }

    /// Refunds the sender (retried until it succeeds; never canceled) and reports the compensation.
    func compensate(context: WorkflowContext, sender: LedgerMovement, state: TransferState, reason: String) async -> TransferResult {
        state.step = .compensating
        state.reason = reason
        do {
            _ = try await context.nonCancellable {
                try await context.executeActivity(RefundActivity.self, input: sender, options: Self.ledgerOptions)
            }
        } catch {
            // The refund policy retries without limit, so this is a refusal for good (a bug in
            // the ledger's bookkeeping): say so; `transfers verify` reports the money in flight.
            return TransferResult(outcome: .compensated, reason: "\(reason); REFUND FAILED: \(Self.describe(error))")
        }
        return TransferResult(outcome: .compensated, reason: reason)
    }

    static func isCancellation(_ error: any Error) -> Bool {
        if error is CanceledError || error is CancellationError { return true }
        if let activity = error as? ActivityError { return activity.cause is CanceledError }
        return false
    }

    /// A short reason: the application error's message rather than the whole chain.
    static func describe(_ error: any Error) -> String {
        switch error {
        case let stopped as TransferStopped: stopped.reason
        case let activity as ActivityError:
            if let cause = activity.cause as? ApplicationError { "\(activity.activityType): \(cause.message)" } else { "\(activity.activityType): \(activity.cause)" }
        default: "\(error)"
        }
    }
}

/// Ends a transfer before the bank is instructed (compliance, approval).
struct TransferStopped: Error {
    let reason: String
    init(_ reason: String) { self.reason = reason }
}

/// The workflow's mutable state, read by the query handler. Used only by the workflow's own
/// code, which the runtime runs on one thread at a time (hence the unchecked Sendable).
final class TransferState: @unchecked Sendable {
    let input: TransferInput
    var step: TransferStep = .started
    var approved: Bool?
    var reason: String?

    init(input: TransferInput) { self.input = input }

    var status: TransferStatus {
        TransferStatus(step: step, transferID: input.transferID, needsApproval: input.needsApproval, approved: approved, reason: reason)
    }
}
