import BallastRaft
import Testing

@testable import BallastSimulation

/// Each invariant must fire on a hand-made history that breaks it: a checker that can never
/// fail is not a check.
@Suite struct InvariantCheckerTests {
    private let n1 = NodeID(1), n2 = NodeID(2), n3 = NodeID(3)

    private func entry(_ index: UInt64, _ term: UInt64, _ payload: UInt8 = 0) -> Entry {
        Entry(term: Term(term), index: LogIndex(index), data: [payload])
    }

    private func expectViolation(_ invariant: Invariant, _ body: () throws(Violation) -> Void) {
        do {
            try body()
            Issue.record("expected a violation of \(invariant.rawValue)")
        } catch {
            #expect(error.invariant == invariant, "\(error)")
        }
    }

    @Test func twoLeadersInOneTermBreakElectionSafety() {
        var checker = InvariantChecker()
        expectViolation(.electionSafety) { () throws(Violation) in
            try checker.observeRole(node: n1, role: .leader, term: Term(2), newlyLeader: true)
            try checker.observeRole(node: n2, role: .leader, term: Term(3), newlyLeader: true)
            try checker.observeRole(node: n3, role: .leader, term: Term(2), newlyLeader: true)
        }
    }

    @Test func sameIndexAndTermWithDifferentPrefixesBreakLogMatching() {
        var checker = InvariantChecker()
        expectViolation(.logMatching) { () throws(Violation) in
            try checker.observeAppend(node: n1, entries: [entry(1, 1, 1), entry(2, 2, 2)])
            try checker.observeAppend(node: n2, entries: [entry(1, 2, 9), entry(2, 2, 2)])
        }
    }

    @Test func aLeaderMissingACommittedEntryBreaksLeaderCompleteness() {
        var checker = InvariantChecker()
        expectViolation(.leaderCompleteness) { () throws(Violation) in
            try checker.observeAppend(node: n1, entries: [entry(1, 1), entry(2, 1)])
            try checker.observeApplied(node: n1, term: Term(1), entry: entry(1, 1))
            try checker.observeApplied(node: n1, term: Term(1), entry: entry(2, 1))
            try checker.observeAppend(node: n2, entries: [entry(1, 1)])
            // A stale leader of the same term may lag; a leader of a later term may not.
            try checker.observeRole(node: n2, role: .leader, term: Term(1), newlyLeader: false)
            try checker.observeRole(node: n2, role: .leader, term: Term(2), newlyLeader: true)
        }
    }

    @Test func twoEntriesAppliedAtOneIndexBreakStateMachineSafety() {
        var checker = InvariantChecker()
        expectViolation(.stateMachineSafety) { () throws(Violation) in
            try checker.observeAppend(node: n1, entries: [entry(1, 1, 1)])
            try checker.observeApplied(node: n1, term: Term(1), entry: entry(1, 1, 1))
            try checker.observeAppend(node: n2, entries: [entry(1, 2, 2)])
            try checker.observeApplied(node: n2, term: Term(2), entry: entry(1, 2, 2))
        }
    }

    @Test func aLeaderWithoutAnAcknowledgedProposalBreaksTheAcknowledgement() {
        var checker = InvariantChecker()
        expectViolation(.acknowledgedNotLost) { () throws(Violation) in
            // n3, already in term 5, applies first, so the commit-term bound (5) exempts leaders
            // of term 3 from the completeness check; the acknowledgement (term 1) still binds them.
            try checker.observeAppend(node: n3, entries: [entry(1, 1, 7)])
            try checker.observeApplied(node: n3, term: Term(5), entry: entry(1, 1, 7))
            try checker.observeAppend(node: n1, entries: [entry(1, 1, 7)])
            try checker.observeApplied(node: n1, term: Term(1), entry: entry(1, 1, 7))
            try checker.observeAcknowledged(id: 42, entry: entry(1, 1, 7), leaderTerm: Term(1))
            try checker.observeAppend(node: n2, entries: [entry(1, 2, 8)])
            try checker.observeRole(node: n2, role: .leader, term: Term(3), newlyLeader: true)
        }
    }

    @Test func aReadMissingAnEarlierAcknowledgedWriteIsNotLinearizable() {
        let checker = InvariantChecker()
        expectViolation(.linearizableRead) { () throws(Violation) in
            try checker.checkRead(context: 1, node: n1, acknowledgedAtStart: LogIndex(5), servedIndex: LogIndex(5))
            try checker.checkRead(context: 2, node: n1, acknowledgedAtStart: LogIndex(5), servedIndex: LogIndex(4))
        }
    }

    @Test func applyingAnEntryThatIsNotInTheLogBreaksTheContract() {
        var checker = InvariantChecker()
        expectViolation(.contract) { () throws(Violation) in
            try checker.observeAppend(node: n1, entries: [entry(1, 1, 1)])
            try checker.observeApplied(node: n1, term: Term(1), entry: entry(1, 1, 2))
        }
    }

    @Test func aCorrectHistoryPasses() throws {
        var checker = InvariantChecker()
        try checker.observeAppend(node: n1, entries: [entry(1, 1, 1), entry(2, 1, 2)])
        try checker.observeRole(node: n1, role: .leader, term: Term(1), newlyLeader: true)
        try checker.observeAppend(node: n2, entries: [entry(1, 1, 1), entry(2, 1, 2)])
        for node in [n1, n2] {
            try checker.observeApplied(node: node, term: Term(1), entry: entry(1, 1, 1))
            try checker.observeApplied(node: node, term: Term(1), entry: entry(2, 1, 2))
        }
        try checker.observeAcknowledged(id: 1, entry: entry(2, 1, 2), leaderTerm: Term(1))
        try checker.observeAppend(node: n2, entries: [entry(3, 2, 3)])
        try checker.observeRole(node: n2, role: .leader, term: Term(2), newlyLeader: true)
        try checker.checkRead(context: 1, node: n2, acknowledgedAtStart: LogIndex(2), servedIndex: LogIndex(2))
        #expect(checker.maxAcknowledgedIndex == LogIndex(2) && checker.electedTerms == 2)
    }
}
