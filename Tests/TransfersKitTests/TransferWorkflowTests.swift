import BallastProto
import BallastSDK
import Foundation
import Synchronization
import Testing
@testable import TransfersKit

/// A ledger with two funded accounts and a test environment running the real workflow and the
/// real activities against it (virtual time: approval timers fire without waiting).
final class TransferFixture: @unchecked Sendable {
    let file: TemporaryLedger
    let ledger: Ledger
    let environment: WorkflowTestEnvironment
    /// Bank attempts seen (counted through the simulated latency's wait).
    let bankCalls = AttemptCounter()

    init(compliance: ComplianceRules = .standard) throws {
        file = try TemporaryLedger()
        ledger = try Ledger(path: file.path)
        try ledger.openAccount("alice", initialBalance: 10_000_000)
        try ledger.openAccount("bob", initialBalance: 0)
        let calls = bankCalls
        let registry = TransferActivities.registry(ledger: ledger, compliance: compliance) { _ in
            // Every bank attempt waits its simulated latency once: count attempts here.
            calls.count.withLock { $0 += 1 }
        }
        environment = WorkflowTestEnvironment(workflows: [TransferWorkflow.self], activities: registry)
    }

    func input(_ id: String = "t-1", amount: Int64 = 2_500, bank: BankBehavior = BankBehavior(seed: 7, transientFailureRate: 0, latencyMilliseconds: 1),
               from: String = "alice", to: String = "bob") -> TransferInput {
        TransferInput(transferID: id, fromAccount: from, toAccount: to, amount: amount, sourceCurrency: "USD", targetCurrency: "EUR",
                      approvalThreshold: 1_000_000, approvalTimeoutMilliseconds: 60_000, bank: bank)
    }

    var bankAttempts: Int { bankCalls.count.withLock { $0 } }

    func kinds(_ transfer: String) throws -> [LedgerOperationKind] {
        try ledger.record(ofTransfer: transfer).operations.map(\.kind)
    }

    /// The value of `TransferOutcome` in the history's last upsert.
    static func outcomeAttribute(_ history: [Ballast_V1_HistoryEvent]) -> String? {
        for event in history.reversed() {
            if case .upsertWorkflowSearchAttributes(let upsert)? = event.attributes,
               case .keywordValue(let word)? = upsert.searchAttributes.indexedFields[TransferDefaults.outcomeAttribute]?.value {
                return word
            }
        }
        return nil
    }
}

/// A counter shared with activity closures.
final class AttemptCounter: Sendable {
    let count = Mutex(0)
}

@Suite("Transfer workflow in the SDK test environment")
struct TransferWorkflowTests {
    @Test("happy path: debit, quote, compliance, bank, credit; the money reaches the recipient once")
    func happyPath() async throws {
        let fixture = try TransferFixture()
        let handle = try await fixture.environment.start(TransferWorkflow.self, input: fixture.input())
        let result = try await handle.result()
        #expect(result.outcome == .completed)
        #expect(result.bankReference?.hasPrefix("CB-") == true)
        #expect(result.exchangeRate == 0.92 && result.receivedAmount == 2_300)
        #expect(handle.scheduledActivities == ["Debit", "FXQuote", "ComplianceCheck", "InstructBank", "Credit"])
        #expect(try fixture.kinds("t-1") == [.debit, .credit])
        #expect(try fixture.ledger.balance(of: "alice") == 10_000_000 - 2_500)
        #expect(try fixture.ledger.balance(of: "bob") == 2_500)
        #expect(TransferFixture.outcomeAttribute(handle.history) == "completed")
        #expect(try await handle.query("status", as: TransferStatus.self).step == .completed)
    }

    @Test("a permanent bank rejection refunds the sender: compensated, the ledger shows debit then refund")
    func bankRejectionRefunds() async throws {
        let fixture = try TransferFixture()
        let bank = BankBehavior(seed: 7, permanentRejectionRate: 1, transientFailureRate: 0, latencyMilliseconds: 1)
        let handle = try await fixture.environment.start(TransferWorkflow.self, input: fixture.input(bank: bank))
        let result = try await handle.result()
        #expect(result.outcome == .compensated)
        #expect(result.reason.contains("InstructBank") && result.reason.contains("rejected"), "\(result.reason)")
        #expect(handle.scheduledActivities == ["Debit", "FXQuote", "ComplianceCheck", "InstructBank", "Refund"])
        // A rejection is final: one bank attempt, no retries.
        #expect(fixture.bankAttempts == 1)
        #expect(try fixture.kinds("t-1") == [.debit, .refund])
        #expect(try fixture.ledger.balance(of: "alice") == 10_000_000)
        #expect(try fixture.ledger.balance(of: "bob") == 0)
        #expect(TransferFixture.outcomeAttribute(handle.history) == "compensated")
    }

    @Test("transient bank failures are retried by the activity's retry policy and the transfer completes")
    func transientFailuresRetried() async throws {
        let fixture = try TransferFixture()
        let bank = BankBehavior(seed: 7, transientFailureRate: 1, latencyMilliseconds: 1, maximumTransientFailures: 3)
        let handle = try await fixture.environment.start(TransferWorkflow.self, input: fixture.input(bank: bank))
        let result = try await handle.result()
        #expect(result.outcome == .completed)
        #expect(fixture.bankAttempts == 4, "three transient failures, then success")
        #expect(try fixture.kinds("t-1") == [.debit, .credit])
    }

    @Test("a large transfer waits for the approve signal; the status query shows the step")
    func approvalBySignal() async throws {
        let fixture = try TransferFixture()
        let handle = try await fixture.environment.start(TransferWorkflow.self, input: fixture.input(amount: 2_000_000))
        let waiting = try await handle.query("status", as: TransferStatus.self)
        #expect(waiting.step == .awaitingApproval && waiting.needsApproval && waiting.approved == nil)
        #expect(!handle.isClosed)
        #expect(try fixture.kinds("t-1") == [.debit])
        try await handle.signal("approve", true)
        let result = try await handle.result()
        #expect(result.outcome == .completed)
        #expect(try fixture.ledger.balance(of: "bob") == 2_000_000)
    }

    @Test("no approval before the durable timer expires: refunded, compensated")
    func approvalTimeoutRefunds() async throws {
        let fixture = try TransferFixture()
        let handle = try await fixture.environment.start(TransferWorkflow.self, input: fixture.input(amount: 2_000_000))
        try await handle.skipTime(.seconds(59))
        #expect(!handle.isClosed, "the approval timer is 60 s")
        let result = try await handle.result()
        #expect(result.outcome == .compensated)
        #expect(result.reason.contains("no approval"), "\(result.reason)")
        #expect(!handle.scheduledActivities.contains("InstructBank"))
        #expect(try fixture.kinds("t-1") == [.debit, .refund])
        #expect(try fixture.ledger.balance(of: "alice") == 10_000_000)
        #expect(handle.history.contains { if case .timerFired? = $0.attributes { true } else { false } })
    }

    @Test("a denied approval is refunded")
    func approvalDenied() async throws {
        let fixture = try TransferFixture()
        let handle = try await fixture.environment.start(TransferWorkflow.self, input: fixture.input(amount: 2_000_000))
        try await handle.signal("approve", false)
        let result = try await handle.result()
        #expect(result.outcome == .compensated && result.reason == "approval denied")
        #expect(try fixture.kinds("t-1") == [.debit, .refund])
    }

    @Test("a cancel request while waiting for approval refunds the sender; the run still completes")
    func cancelRefunds() async throws {
        let fixture = try TransferFixture()
        let handle = try await fixture.environment.start(TransferWorkflow.self, input: fixture.input(amount: 2_000_000))
        try await handle.cancel()
        let result = try await handle.result()
        #expect(result.outcome == .compensated)
        #expect(result.reason == "canceled at step awaiting-approval", "\(result.reason)")
        #expect(try fixture.kinds("t-1") == [.debit, .refund])
        #expect(try fixture.ledger.balance(of: "alice") == 10_000_000)
        #expect(TransferFixture.outcomeAttribute(handle.history) == "compensated")
    }

    @Test("compliance refuses a sanctioned recipient before the bank is called")
    func sanctionsRefund() async throws {
        let fixture = try TransferFixture()
        try fixture.ledger.openAccount("acct-blocked", initialBalance: 0)
        let handle = try await fixture.environment.start(TransferWorkflow.self, input: fixture.input(to: "acct-blocked"))
        let result = try await handle.result()
        #expect(result.outcome == .compensated && result.reason.contains("sanctions list"), "\(result.reason)")
        #expect(!handle.scheduledActivities.contains("InstructBank"))
        #expect(try fixture.kinds("t-1") == [.debit, .refund])
    }

    @Test("a debit refused for insufficient funds moves nothing and is reported as compensated")
    func insufficientFunds() async throws {
        let fixture = try TransferFixture()
        let handle = try await fixture.environment.start(TransferWorkflow.self, input: fixture.input(amount: 20_000_000))
        let result = try await handle.result()
        #expect(result.outcome == .compensated && result.reason.contains("debit refused"), "\(result.reason)")
        #expect(handle.scheduledActivities == ["Debit", "Refund"])
        #expect(try fixture.kinds("t-1").isEmpty)
        #expect(try fixture.ledger.totals().inFlight == 0)
    }

    @Test("an invalid input completes as compensated without touching the ledger")
    func invalidInput() async throws {
        let fixture = try TransferFixture()
        let result = try await fixture.environment.execute(TransferWorkflow.self, input: fixture.input(to: "alice"))
        #expect(result.outcome == .compensated && result.reason.contains("invalid transfer"))
        #expect(try fixture.kinds("t-1").isEmpty)
    }
}

@Suite("Transfer activities")
struct TransferActivityTests {
    /// Heartbeats go nowhere.
    struct NoHeartbeat: ActivityHeartbeating {
        func heartbeat(_ details: Ballast_V1_Payloads) async -> Bool { false }
    }

    func task(_ type: String, input: some Encodable, activityID: String = "1", attempt: Int32) throws -> Ballast_V1_ActivityTaskInfo {
        var task = Ballast_V1_ActivityTaskInfo()
        task.namespace = "default"
        task.workflowExecution.workflowID = "t-1"
        task.workflowExecution.runID = "run-1"
        task.activityID = activityID
        task.activityType.name = type
        task.attempt = attempt
        task.input = try DataConverter.default.toPayloads(input)
        return task
    }

    @Test("a retried debit (same idempotency key, next attempt) is applied once")
    func debitAppliedOnce() async throws {
        let file = try TemporaryLedger()
        let ledger = try Ledger(path: file.path)
        try ledger.openAccount("alice", initialBalance: 1_000)
        let executor = ActivityExecutor(activities: TransferActivities.registry(ledger: ledger))
        let movement = LedgerMovement(transferID: "t-1", account: "alice", amount: 300)
        for attempt: Int32 in 1 ... 3 {
            let result = await executor.handleActivityTask(try task("Debit", input: movement, attempt: attempt), heartbeat: NoHeartbeat())
            guard case .completed(let payloads) = result else { Issue.record("attempt \(attempt): \(result)"); return }
            let receipt = try DataConverter.default.fromPayloads(payloads, as: LedgerReceipt.self)
            #expect(receipt.appliedNow == (attempt == 1) && receipt.balanceAfter == 700)
        }
        #expect(try ledger.balance(of: "alice") == 700)
        #expect(try ledger.record(ofTransfer: "t-1").operations.count == 1)
    }

    @Test("ledger refusals are non-retryable failures with a type; a refund of nothing debited succeeds with 0")
    func refusalsAndEmptyRefund() async throws {
        let file = try TemporaryLedger()
        let ledger = try Ledger(path: file.path)
        try ledger.openAccount("alice", initialBalance: 100)
        let executor = ActivityExecutor(activities: TransferActivities.registry(ledger: ledger))
        let tooMuch = LedgerMovement(transferID: "t-1", account: "alice", amount: 500)
        let refused = await executor.handleActivityTask(try task("Debit", input: tooMuch, attempt: 1), heartbeat: NoHeartbeat())
        guard case .failed(let failure, _) = refused else { Issue.record("\(refused)"); return }
        #expect(failure.type == "InsufficientFunds" && failure.nonRetryable)
        let unknown = LedgerMovement(transferID: "t-2", account: "nobody", amount: 5)
        guard case .failed(let unknownFailure, _) = await executor.handleActivityTask(try task("Debit", input: unknown, attempt: 1),
                                                                                     heartbeat: NoHeartbeat()) else {
            Issue.record("an unknown account must fail"); return
        }
        #expect(unknownFailure.type == "UnknownAccount" && unknownFailure.nonRetryable)
        let refund = await executor.handleActivityTask(try task("Refund", input: tooMuch, activityID: "2", attempt: 1), heartbeat: NoHeartbeat())
        guard case .completed(let payloads) = refund else { Issue.record("\(refund)"); return }
        #expect(try DataConverter.default.fromPayloads(payloads, as: LedgerReceipt.self).amount == 0)
        #expect(try ledger.balance(of: "alice") == 100)
    }

    @Test("a bank rejection is non-retryable, a transient failure is retryable")
    func bankErrors() async throws {
        let file = try TemporaryLedger()
        let executor = ActivityExecutor(activities: TransferActivities.registry(ledger: try Ledger(path: file.path)))
        let rejecting = InstructBankActivity.Request(transferID: "t-1", amount: 5, bank: BankBehavior(seed: 1, permanentRejectionRate: 1, transientFailureRate: 0))
        guard case .failed(let rejected, _) = await executor.handleActivityTask(try task("InstructBank", input: rejecting, attempt: 1),
                                                                               heartbeat: NoHeartbeat()) else { Issue.record("must fail"); return }
        #expect(rejected.type == "BankRejected" && rejected.nonRetryable)
        let flaky = InstructBankActivity.Request(transferID: "t-1", amount: 5, bank: BankBehavior(seed: 1, transientFailureRate: 1))
        guard case .failed(let transient, _) = await executor.handleActivityTask(try task("InstructBank", input: flaky, attempt: 1),
                                                                                heartbeat: NoHeartbeat()) else { Issue.record("must fail"); return }
        #expect(transient.type == "BankUnavailable" && !transient.nonRetryable)
    }
}
