import BallastChaos
import Foundation
import Testing
@testable import TransfersKit

@Suite("Chaos check: digests and outcome")
struct CheckClusterInvariantsTests {
    func reading(_ id: String, index: UInt64, digest: String) -> NodeDigestReading {
        NodeDigestReading(endpoint: "127.0.0.1:\(id)", id: id, applied: index, digestIndex: index, digest: digest)
    }

    @Test("the same digest at the same index on every node agrees")
    func agreed() {
        let verdict = ClusterInvariants.judgeDigests([reading("1", index: 9, digest: "aa"), reading("2", index: 9, digest: "aa")], unreachable: [:])
        #expect(verdict == .agreed(index: 9, digest: "aa"))
    }

    @Test("different digests at the same index diverged, naming both nodes")
    func diverged() {
        let verdict = ClusterInvariants.judgeDigests([reading("1", index: 9, digest: "aa"), reading("2", index: 9, digest: "bb"),
                                                      reading("3", index: 7, digest: "cc")], unreachable: [:])
        guard case .diverged(let violations) = verdict else {
            Issue.record("expected a divergence, got \(verdict)")
            return
        }
        #expect(violations.count == 1 && violations[0].invariant == ChaosInvariant.digest)
        #expect(violations[0].detail.contains("node 1") && violations[0].detail.contains("node 2"))
    }

    @Test("a node behind or unreachable is waited for, and named")
    func waiting() {
        let behind = ClusterInvariants.judgeDigests([reading("1", index: 9, digest: "aa"), reading("2", index: 7, digest: "bb")], unreachable: [:])
        #expect(behind == .waiting("node 2 (127.0.0.1:2) is at index 7, others at 9"))
        let down = ClusterInvariants.judgeDigests([reading("1", index: 9, digest: "aa")], unreachable: ["127.0.0.1:3": "refused"])
        guard case .waiting(let why) = down else {
            Issue.record("expected waiting, got \(down)")
            return
        }
        #expect(why.contains("127.0.0.1:3"))
    }

    @Test("a status body parses; one without a digest is refused")
    func parse() throws {
        let body = Array(#"{"id":"2","role":"follower","applied":41,"digest_index":41,"state_digest":"ab12"}"#.utf8)
        let parsed = try NodeDigestReading.parse(body, endpoint: "e")
        #expect(parsed == NodeDigestReading(endpoint: "e", id: "2", applied: 41, digestIndex: 41, digest: "ab12"))
        #expect(throws: NodeDigestReading.ParseError.self) { try NodeDigestReading.parse(Array(#"{"id":"2","applied":41}"#.utf8), endpoint: "e") }
        #expect(throws: NodeDigestReading.ParseError.self) { try NodeDigestReading.parse(Array("garbage".utf8), endpoint: "e") }
    }

    func operation(_ kind: LedgerOperationKind, _ amount: Int64) -> LedgerOperation {
        LedgerOperation(idempotencyKey: "t1/\(kind)", kind: kind, transferID: "t1", accountID: "a", amount: amount, balanceAfter: 0,
                        appliedNow: true)
    }

    @Test("outcome: a stuck transfer and money not conserved are violations; a clean audit is not")
    func outcome() {
        let clean = TransferAudit(runs: [TransferAudit.Run(transferID: "t1", state: .completed, outcome: "completed")],
                                  operations: ["t1": [operation(.debit, 5), operation(.credit, 5)]],
                                  deposited: 100, totals: LedgerTotals(balances: 100, inFlight: 0, accounts: 2))
        #expect(ClusterInvariants.outcomeViolations(clean).isEmpty)
        let stuck = TransferAudit(runs: [TransferAudit.Run(transferID: "t1", state: .closedOtherwise("failed"), outcome: nil)],
                                  operations: ["t1": [operation(.debit, 5)]],
                                  deposited: 100, totals: LedgerTotals(balances: 85, inFlight: 5, accounts: 2))
        let found = ClusterInvariants.outcomeViolations(stuck)
        #expect(found.map(\.invariant) == [ChaosInvariant.outcome, ChaosInvariant.outcome], "\(found)")
        #expect(found[0].workflowID == "t1" && found[1].detail.contains("not conserved"))
    }
}
