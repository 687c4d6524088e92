import Testing
@testable import BallastRaft

/// The scenario of figure 8 of the Raft paper (§5.4.2), with our no-ops shifting indexes by one:
/// an entry of an old term that reaches a majority under a later leader must not count as committed,
/// because a candidate with a later last term can still win and overwrite it.
private func runFigureEight(mutated: Bool) -> TestCluster {
    var cluster = TestCluster(voters: [1, 2, 3, 4, 5]) {
        $0.preVote = false
        $0.checkQuorum = false
        $0.maxEntriesPerAppend = 1
        $0.mutations.commitOldTermEntriesByCounting = mutated
    }
    let (n1, n3, n4, n5) = (NodeID(1), NodeID(3), NodeID(4), NodeID(5))
    // (a) n1 leads term 1; its no-op commits everywhere; "x" (index 2, term 1) reaches only n2.
    cluster.elect(1)
    cluster.tickAll()
    for other: UInt64 in [3, 4, 5] { cluster.cut(1, other) }
    _ = try? cluster.propose(1, "x")
    cluster.stabilize()
    // (b) n1 crashes; n5 wins term 2 with n3 and n4 and appends its no-op at index 2, which reaches no one.
    cluster.down = [n1]
    cluster.heal()
    cluster.accepts = { message in !(message.from == n5 && isAppendMessage(message)) }
    campaignUntilLeader(&cluster, 5)
    // (c) n5 crashes; n1 returns and wins term 3; "x" reaches n3 (a majority: n1, n2, n3) but its no-op does not.
    cluster.down = [n5]
    cluster.restart(1)
    cluster.accepts = { message in message.to != n4 || message.from != n1 || !isAppendMessage(message) }
    cluster.rewrite = { message in
        guard message.from == n1, message.to == n3, case .append(let previousIndex, let previousTerm, let entries, let commit) = message.body else { return message }
        var stripped = message
        stripped.body = .append(previousIndex: previousIndex, previousTerm: previousTerm, entries: entries.filter { $0.index.rawValue < 3 }, commit: commit)
        return stripped
    }
    campaignUntilLeader(&cluster, 1)
    #expect(cluster[3].log.entry(at: LogIndex(2))?.data == Array("x".utf8), "x is on a majority")
    if !mutated {
        #expect(cluster[1].status.commit == LogIndex(1), "§5.4.2: an old-term entry is not committed by counting")
    }
    // (d) n1 crashes; n5 wins term 4 with n3 and n4 and overwrites index 2 everywhere.
    cluster.down = [n1]
    cluster.restart(5)
    cluster.accepts = { _ in true }
    cluster.rewrite = { $0 }
    campaignUntilLeader(&cluster, 5)
    cluster.tickAll(3)
    return cluster
}

private func isAppendMessage(_ message: Message) -> Bool {
    if case .append = message.body { true } else { false }
}

private func campaignUntilLeader(_ cluster: inout TestCluster, _ raw: UInt64) {
    for _ in 0..<10 where cluster[raw].status.role != .leader { cluster.campaign(raw) }
}

@Suite("Figure 8: committing entries from previous terms")
struct FigureEightTests {
    @Test("given the figure-8 history, the leader of term 3 does not commit x, and no two members apply different entries")
    func figureEightIsSafe() {
        let cluster = runFigureEight(mutated: false)
        #expect(cluster[5].status.role == .leader)
        #expect(cluster[5].status.term == Term(4))
        let conflict = cluster.appliedEntriesConflict
        #expect(!conflict)
        #expect(cluster.appliedTexts(1).isEmpty)
    }

    @Test("with commitOldTermEntriesByCounting the same history commits x and then loses it")
    func figureEightMutationBreaksSafety() {
        let cluster = runFigureEight(mutated: true)
        #expect(cluster.appliedTexts(1) == ["x"], "the broken leader applied x")
        let conflict = cluster.appliedEntriesConflict
        #expect(conflict, "index 2 was later applied with another entry")
    }
}
