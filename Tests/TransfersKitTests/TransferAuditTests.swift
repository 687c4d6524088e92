import Foundation
import Testing
@testable import TransfersKit

@Suite("transfers verify's audit")
struct TransferAuditTests {
    func op(_ kind: LedgerOperationKind, _ transfer: String, _ amount: Int64) -> LedgerOperation {
        LedgerOperation(idempotencyKey: "\(transfer)/\(kind)", kind: kind, transferID: transfer, accountID: "a", amount: amount,
                        balanceAfter: 0, appliedNow: false)
    }

    @Test("completed and compensated transfers that match the ledger pass; totals equal to deposits are conserved")
    func passing() {
        let runs = [
            TransferAudit.Run(transferID: "t-1", state: .completed, outcome: "completed"),
            TransferAudit.Run(transferID: "t-2", state: .completed, outcome: "compensated"),
            TransferAudit.Run(transferID: "t-3", state: .completed, outcome: "compensated"),
            TransferAudit.Run(transferID: "t-4", state: .running, outcome: nil),
        ]
        let operations = ["t-1": [op(.debit, "t-1", 5), op(.credit, "t-1", 5)], "t-2": [op(.debit, "t-2", 7), op(.refund, "t-2", 7)],
                          "t-4": [op(.debit, "t-4", 9)]]
        let audit = TransferAudit(runs: runs, operations: operations, deposited: 1_000,
                                  totals: LedgerTotals(balances: 991, inFlight: 9, accounts: 2))
        #expect(audit.transfers == 4 && audit.completed == 1 && audit.compensated == 2 && audit.running == 1 && audit.stuck == 0)
        #expect(audit.conserved && audit.passed && audit.ledgerBefore == 1_000 && audit.ledgerAfter == 1_000)
    }

    @Test("every kind of stuck transfer is caught, and a lost cent breaks conservation")
    func failing() {
        let runs = [
            TransferAudit.Run(transferID: "t-1", state: .completed, outcome: "completed"),      // no credit
            TransferAudit.Run(transferID: "t-2", state: .completed, outcome: "compensated"),    // never refunded
            TransferAudit.Run(transferID: "t-3", state: .closedOtherwise("failed"), outcome: nil),
            TransferAudit.Run(transferID: "t-4", state: .completed, outcome: nil),
            TransferAudit.Run(transferID: "t-5", state: .completed, outcome: "completed"),      // debited twice
        ]
        let operations = [
            "t-1": [op(.debit, "t-1", 5)], "t-2": [op(.debit, "t-2", 7)],
            "t-5": [op(.debit, "t-5", 3), op(.debit, "t-5", 3), op(.credit, "t-5", 3)],
            "orphan": [op(.debit, "orphan", 2)],
        ]
        let audit = TransferAudit(runs: runs, operations: operations, deposited: 1_000,
                                  totals: LedgerTotals(balances: 980, inFlight: 17, accounts: 2))
        #expect(audit.stuck == 6, "\(audit.stuckDetails)")
        #expect(audit.stuckDetails.contains { $0.hasPrefix("orphan: 2 in flight") })
        #expect(!audit.conserved && !audit.passed && audit.ledgerAfter == 997)
    }

    @Test("the plan is the same for the same seed, about 10% large, accounts distinct per transfer")
    func plan() {
        let parameters = TransferPlan.Parameters(count: 2_000, seed: 99)
        let plan = TransferPlan(parameters)
        #expect(plan.items == TransferPlan(parameters).items)
        #expect(plan.items != TransferPlan(TransferPlan.Parameters(count: 2_000, seed: 100)).items)
        let large = Double(plan.items.filter { $0.input.needsApproval }.count) / 2_000
        #expect(abs(large - 0.1) < 0.03, "\(large)")
        #expect(plan.items.allSatisfy { $0.input.problem == nil && $0.input.fromAccount != $0.input.toAccount })
        #expect(plan.items.allSatisfy { (100 ..< 1_000).contains($0.approvalDelayMilliseconds) })
        #expect(Set(plan.items.map(\.input.transferID)).count == 2_000)
        #expect(plan.items[0].input.transferID == "transfer-99-0000")
        // Every account can pay for every transfer of the plan.
        let most = plan.items.map(\.input.amount).reduce(0, +)
        #expect(TransferPlan.openingBalance(parameters) >= most)
        #expect(parameters.problem == nil && TransferPlan.Parameters(count: 0, seed: 1).problem != nil)
        #expect(TransferPlan.Parameters(count: 5, seed: 1, failRate: 1.5).problem != nil)
    }

    @Test("FX quotes and compliance decisions")
    func fxAndCompliance() throws {
        let quote = try FXDesk.quote(amount: 10_000, from: "USD", to: "JPY")
        #expect(quote.pair == "USD/JPY" && quote.receivedAmount == 15_130)
        #expect(throws: TransferRuleError.unsupportedCurrency("XXX")) { try FXDesk.quote(amount: 1, from: "XXX", to: "USD") }
        let rules = ComplianceRules.standard
        func request(_ to: String, _ amount: Int64) -> ComplianceRequest {
            ComplianceRequest(transferID: "t", fromAccount: "a", toAccount: to, amount: amount, currency: "USD")
        }
        #expect(rules.check(request("b", 5)).cleared)
        #expect(!rules.check(request("acct-sanctioned-1", 5)).cleared)
        #expect(!rules.check(request("b", rules.maximumAmount + 1)).cleared)
    }
}
