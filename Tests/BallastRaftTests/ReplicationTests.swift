import Testing
@testable import BallastRaft

private func isAppend(_ message: Message, carryingIndexFrom index: UInt64 = 0) -> Bool {
    guard case .append(_, _, let entries, _) = message.body else { return false }
    return entries.contains { $0.index.rawValue >= index }
}

private func appendEntryCount(_ message: Message) -> Int? {
    guard case .append(_, _, let entries, _) = message.body else { return nil }
    return entries.count
}

@Suite("Log replication and commitment")
struct ReplicationTests {
    @Test("given a leader, when it proposes, then every member applies the entry in order")
    func proposeAndApply() throws {
        var cluster = TestCluster(voters: [1, 2, 3])
        cluster.elect(1)
        for text in ["a", "b", "c"] { try cluster.propose(1, text) }
        cluster.stabilize()
        cluster.tickAll()
        for raw: UInt64 in [1, 2, 3] { #expect(cluster.appliedTexts(raw) == ["a", "b", "c"]) }
        let conflict = cluster.appliedEntriesConflict
        #expect(!conflict)
    }

    @Test("a follower or candidate refuses proposals with notLeader and the leader it knows")
    func notLeader() throws {
        var cluster = TestCluster(voters: [1, 2, 3])
        #expect(throws: RaftError.notLeader(leaderHint: nil)) { try cluster.propose(2, "x") }
        cluster.elect(1)
        #expect(throws: RaftError.notLeader(leaderHint: NodeID(1))) { try cluster.propose(2, "x") }
        #expect(throws: RaftError.notLeader(leaderHint: NodeID(1))) { try cluster[3].readIndex(context: 7) }
        #expect(throws: RaftError.notLeader(leaderHint: NodeID(1))) { try cluster[3].proposeConfigChange(.remove(NodeID(2))) }
    }

    @Test("given followers that do not answer, when uncommitted bytes pass the limit, then proposals fail with proposalBacklogFull")
    func backlogFull() throws {
        var cluster = TestCluster(voters: [1, 2, 3]) { $0.maxUncommittedBytes = 1_000 }
        cluster.elect(1)
        cluster.tickAll()
        cluster.isolate(1)
        let payload = String(repeating: "p", count: 100)
        var accepted = 0
        while accepted < 100, (try? cluster.propose(1, payload)) != nil { accepted += 1 }
        #expect(accepted == 8, "8 × 124 bytes fit under 1000")
        #expect(throws: RaftError.proposalBacklogFull(uncommittedBytes: 992, limitBytes: 1_000)) { try cluster.propose(1, payload) }
        cluster.heal()
        cluster.tickAll()
        try cluster.propose(1, payload)
    }

    @Test("given a leader whose own disk is slow, then it counts itself only once persisted (thesis §10.2.1)")
    func leaderCountsItselfWhenDurable() throws {
        var cluster = TestCluster(voters: [1, 2, 3])
        cluster.elect(1)
        cluster.tickAll()
        cluster.isolate(3)
        cluster.slowDisks = [NodeID(1)]
        let index = try cluster.propose(1, "a")
        cluster.stabilize()
        #expect(cluster.sent.contains { $0.to == NodeID(2) && isAppend($0, carryingIndexFrom: index.rawValue) }, "sent before the leader's own write")
        #expect(cluster[1].status.progress[NodeID(2)]?.match == index)
        #expect(cluster[1].status.commit < index, "one durable copy of three is no majority")
        cluster.slowDisks = []
        cluster.flushDisk(NodeID(1))
        cluster.stabilize()
        #expect(cluster[1].status.commit == index)
    }

    @Test("given a follower in replicate state, when the leader proposes ten entries, then several appends are in flight at once")
    func pipelining() throws {
        var cluster = TestCluster(voters: [1, 2]) {
            $0.maxEntriesPerAppend = 1
            $0.maxInflightAppends = 4
        }
        cluster.elect(1)
        cluster.tickAll()
        #expect(cluster[1].status.progress[NodeID(2)]?.state == .replicate)
        for number in 0..<10 { try cluster.propose(1, "\(number)") }
        let ready = cluster[1].takeReady()
        let appends = ready.messages.filter { $0.to == NodeID(2) && (appendEntryCount($0) ?? 0) > 0 }
        #expect(appends.count == 4, "the window of 4 fills without waiting for any answer")
        #expect(cluster[1].status.progress[NodeID(2)]?.next == LogIndex(6))
        cluster.enqueue(ready.messages)
        cluster.complete(ready, on: NodeID(1))
        cluster.stabilize()
        cluster.tickAll()
        #expect(cluster.appliedTexts(2) == (0..<10).map { "\($0)" })
    }

    @Test("given a byte bound on the window, when a follower is far behind, then only that many bytes go out in one Ready; acks let more go")
    func inflightBytesBoundTheWindow() throws {
        // Entries of 100 payload bytes weigh 124 (`sizeBytes`); 300 bytes in flight allow three
        // appends of one entry (the third goes while 248 are in flight), where the count alone
        // would allow 64.
        var cluster = TestCluster(voters: [1, 2]) {
            $0.maxEntriesPerAppend = 1
            $0.maxInflightAppends = 64
            $0.maxInflightBytes = 300
        }
        cluster.elect(1)
        cluster.tickAll()
        #expect(cluster[1].status.progress[NodeID(2)]?.state == .replicate)
        let texts = (0..<10).map { String(repeating: "\($0)", count: 100) }
        for text in texts { try cluster.propose(1, text) }
        let ready = cluster[1].takeReady()
        let appends = ready.messages.filter { $0.to == NodeID(2) && (appendEntryCount($0) ?? 0) > 0 }
        #expect(appends.count == 3, "the byte bound stops the window at three appends, not the count's 64")
        cluster.enqueue(ready.messages)
        cluster.complete(ready, on: NodeID(1))
        cluster.stabilize()
        cluster.tickAll()
        #expect(cluster.appliedTexts(2) == texts, "acknowledgements free the window until everything is sent")
    }

    @Test("given a window full by bytes whose answers were lost, then heartbeat answers free it one append at a time")
    func heartbeatFreesAWindowFullByBytes() throws {
        var cluster = TestCluster(voters: [1, 2]) {
            $0.maxEntriesPerAppend = 1
            $0.maxInflightBytes = 300
        }
        cluster.elect(1)
        cluster.tickAll()
        cluster.accepts = { message in
            if message.from == NodeID(2), case .appendResponse = message.body { false } else { true }
        }
        let sentBefore = cluster.sent.count
        let texts = (0..<6).map { String(repeating: "\($0)", count: 100) }
        for text in texts { try cluster.propose(1, text) }
        cluster.stabilize()
        let appends = cluster.sent[sentBefore...].filter { $0.to == NodeID(2) && (appendEntryCount($0) ?? 0) > 0 }
        #expect(appends.count == 3, "three appends out, none acknowledged: the window is full")
        cluster.accepts = { _ in true }
        cluster.tickAll(4)
        #expect(cluster.appliedTexts(2) == texts)
    }

    @Test("given a new leader and a lagging follower in probe state, then it sends one append at a time")
    func probeSendsOne() {
        var cluster = TestCluster(voters: [1, 2, 3]) { $0.maxEntriesPerAppend = 1 }
        cluster.give(1, logTerms: [1, 1, 1, 1, 1], term: 1)
        cluster.give(2, logTerms: [1], term: 1)
        cluster.give(3, logTerms: [1], term: 1)
        cluster.accepts = { message in
            if message.from == NodeID(2), case .appendResponse = message.body { false } else { true }
        }
        cluster.elect(1)
        #expect(cluster[1].status.progress[NodeID(2)]?.state == .probe)
        #expect(cluster.sent.filter { $0.to == NodeID(2) && appendEntryCount($0) != nil }.count == 1, "paused until an answer or a heartbeat")
        #expect(cluster[1].status.progress[NodeID(3)]?.state == .replicate, "n3 answered and moved on")
        cluster.accepts = { _ in true }
        cluster.tickAll(3)
        #expect(cluster[1].status.progress[NodeID(2)]?.state == .replicate)
        #expect(cluster[2].status.lastIndex == cluster[1].status.lastIndex)
    }

    @Test("given a follower with a long conflicting term, when it rejects with a hint, then the leader skips the whole term in one step")
    func fastBacktracking() {
        var cluster = TestCluster(voters: [1, 2, 3]) { $0.preVote = false }
        cluster.give(1, logTerms: [1, 1, 3, 3, 3, 3, 3, 3], term: 3)
        cluster.give(2, logTerms: [1, 1, 2, 2, 2, 2, 2, 2, 2, 2], term: 3)
        cluster.give(3, logTerms: [1, 1], term: 3)
        cluster.elect(1)
        cluster.tickAll()
        let rejections = cluster.sent.filter {
            if $0.from == NodeID(2), case .appendResponse(let response) = $0.body { !response.success } else { false }
        }
        #expect(rejections.count == 1, "one round trip instead of one per entry")
        if case .appendResponse(let response) = rejections.first?.body {
            #expect(response.conflictTerm == Term(2))
            #expect(response.conflictIndex == LogIndex(3))
        }
        #expect(cluster[2].entryTerms == cluster[1].entryTerms)
        #expect(cluster[2].entryTerms == [1, 1, 3, 3, 3, 3, 3, 3, 4])
        let shortRejections = cluster.sent.filter {
            if $0.from == NodeID(3), case .appendResponse(let response) = $0.body { !response.success && response.conflictTerm == nil && response.conflictIndex == LogIndex(3) } else { false }
        }
        #expect(shortRejections.count == 1, "a short log answers with its last index + 1")
        #expect(cluster[3].entryTerms == cluster[1].entryTerms)
    }

    @Test("given a stale leader on the minority side, when it proposes, then it cannot commit and its entry is replaced")
    func staleLeaderCannotCommit() throws {
        var cluster = TestCluster(voters: [1, 2, 3])
        cluster.elect(1)
        cluster.tickAll()
        cluster.isolate(1)
        try cluster.propose(1, "stale")
        cluster.stabilize()
        for _ in 0..<40 where cluster[2].status.role != .leader && cluster[3].status.role != .leader {
            cluster[2].tick()
            cluster[3].tick()
            cluster.stabilize()
        }
        let newLeader: UInt64 = cluster[2].status.role == .leader ? 2 : 3
        #expect(cluster[newLeader].status.term == Term(2))
        try cluster.propose(newLeader, "fresh")
        cluster.stabilize()
        #expect(cluster[1].status.role == .leader, "it does not know yet")
        #expect(cluster[1].status.commit == LogIndex(1), "but it cannot commit without a majority")
        cluster.heal()
        cluster.tickAll(3)
        #expect(cluster[1].status.role == .follower)
        #expect(cluster[1].status.term == Term(2))
        for raw: UInt64 in [1, 2, 3] { #expect(cluster.appliedTexts(raw) == ["fresh"]) }
        let conflict = cluster.appliedEntriesConflict
        #expect(!conflict)
    }
}
