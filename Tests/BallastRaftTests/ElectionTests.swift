import Testing
@testable import BallastRaft

@Suite("Leader election")
struct ElectionTests {
    @Test("given three fresh followers, when one times out, then it wins term 1 and commits a no-op")
    func firstElection() {
        var cluster = TestCluster(voters: [1, 2, 3])
        cluster.elect(1)
        #expect(cluster[1].status.term == Term(1))
        #expect(cluster[2].status.leader == NodeID(1))
        #expect(cluster[3].status.leader == NodeID(1))
        // The no-op of term 1 is committed everywhere once heartbeats carry the commit index.
        cluster.tickAll()
        for raw: UInt64 in [1, 2, 3] {
            #expect(cluster[raw].status.commit == LogIndex(1))
            #expect(cluster.applied[NodeID(raw)]?.map(\.kind) == [.noop])
        }
    }

    @Test("election timeouts are drawn in [timeout, 2·timeout) and differ between seeds")
    func randomizedTimeouts() {
        var seen = Set<Int>()
        for seed: UInt64 in 1...50 {
            var configuration = RaftConfiguration(id: NodeID(1))
            configuration.electionTimeoutTicks = 10
            var node = RaftNode(configuration: configuration, restored: RestoredState(), bootstrap: Membership(voters: [NodeID(1), NodeID(2)]), randomSeed: seed)
            for _ in 0..<5 {
                #expect((10..<20).contains(node.randomizedElectionTimeout))
                seen.insert(node.randomizedElectionTimeout)
                node.resetElectionTimer()
            }
        }
        #expect(seen.count > 5)
    }

    @Test("given a single-voter cluster, when it times out, then it leads and commits once its own write is durable")
    func singleVoter() throws {
        var cluster = TestCluster(voters: [1])
        cluster.slowDisks = [NodeID(1)]
        cluster.campaign(1)
        #expect(cluster[1].status.role == .leader)
        try cluster.propose(1, "a")
        cluster.stabilize()
        #expect(cluster[1].status.commit == .zero, "nothing commits before the leader's own fsync")
        cluster.slowDisks = []
        cluster.flushDisk(NodeID(1))
        cluster.stabilize()
        #expect(cluster[1].status.commit == LogIndex(2))
        #expect(cluster.appliedTexts(1) == ["a"])
    }

    @Test("a candidate sends vote requests only after its new term and self-vote are durable")
    func voteRequestsWaitForPersistence() {
        var cluster = TestCluster(voters: [1, 2, 3]) { $0.preVote = false }
        for _ in 0..<cluster[1].randomizedElectionTimeout { cluster[1].tick() }
        let ready = cluster[1].takeReady()
        #expect(ready.hardState == HardState(term: Term(1), votedFor: NodeID(1), commit: .zero))
        #expect(ready.messages.isEmpty)
        #expect(ready.messagesAfterPersist.count == 2)
        #expect(ready.messagesAfterPersist.allSatisfy { if case .vote = $0.body { true } else { false } })
    }

    @Test("given a voter whose log is behind, when it campaigns, then it is refused (§5.4.1)")
    func upToDateCheck() throws {
        // Without pre-vote and lease, only the log comparison can stop n3.
        var cluster = TestCluster(voters: [1, 2, 3]) { $0.preVote = false; $0.checkQuorum = false }
        cluster.elect(1)
        cluster.isolate(3)
        try cluster.propose(1, "x")
        cluster.tickAll()
        cluster.down = [NodeID(1)]
        cluster.heal()
        // n3 missed "x": n2 refuses it, so n3 cannot win; n2 then wins.
        for _ in 0..<30 where cluster[3].status.role != .leader && cluster[2].status.role != .leader {
            cluster[3].tick()
            cluster.stabilize()
        }
        #expect(cluster[3].status.role != .leader)
        cluster.campaign(2)
        #expect(cluster[2].status.role == .leader)
    }

    @Test("mutation grantVoteWithoutLogCheck lets a stale candidate win")
    func mutationGrantsStaleVote() throws {
        var cluster = TestCluster(voters: [1, 2, 3]) {
            $0.mutations.grantVoteWithoutLogCheck = true
            $0.preVote = false
            $0.checkQuorum = false
        }
        cluster.elect(1)
        cluster.isolate(3)
        try cluster.propose(1, "x")
        cluster.tickAll()
        cluster.down = [NodeID(1)]
        cluster.heal()
        cluster.campaign(3)
        #expect(cluster[3].status.role == .leader)
    }

    @Test("given a partitioned follower, when it keeps timing out, then pre-vote keeps its term and the leader is undisturbed on return")
    func preVotePreventsDisruption() throws {
        var cluster = TestCluster(voters: [1, 2, 3])
        cluster.elect(1)
        cluster.isolate(3)
        for _ in 0..<100 { cluster[3].tick(); cluster.stabilize() }
        #expect(cluster[3].status.term == Term(1), "pre-vote rounds never raise the term")
        #expect(cluster[3].status.role == .preCandidate)
        cluster.heal()
        cluster.tickAll(3)
        #expect(cluster[1].status.role == .leader)
        #expect(cluster[1].status.term == Term(1))
        #expect(cluster[3].status.leader == NodeID(1))
    }

    @Test("without pre-vote, the same partitioned follower forces a new term when it returns")
    func withoutPreVoteTheTermIsDisrupted() {
        var cluster = TestCluster(voters: [1, 2, 3]) { $0.preVote = false; $0.checkQuorum = false }
        cluster.elect(1)
        cluster.isolate(3)
        for _ in 0..<25 { cluster[3].tick(); cluster.stabilize() }
        #expect(cluster[3].status.term > Term(1))
        cluster.heal()
        cluster.tickAll(3)
        #expect(cluster[1].status.term > Term(1), "the leader was deposed by the higher term")
    }

    @Test("given a leader cut off from both followers, when an election timeout passes, then check-quorum makes it step down")
    func checkQuorumStepDown() {
        var cluster = TestCluster(voters: [1, 2, 3])
        cluster.elect(1)
        cluster.isolate(1)
        // The first window still counts the answers to the leader's first appends.
        for _ in 0..<10 { cluster[1].tick(); cluster.stabilize() }
        #expect(cluster[1].status.role == .leader)
        for _ in 0..<10 { cluster[1].tick(); cluster.stabilize() }
        #expect(cluster[1].status.role == .follower)
        #expect(cluster[1].status.term == Term(1), "stepping down does not start an election")
    }

    @Test("given a leader that hears from one follower, when an election timeout passes, then it keeps leading")
    func checkQuorumKeepsMajority() {
        var cluster = TestCluster(voters: [1, 2, 3])
        cluster.elect(1)
        cluster.isolate(3)
        for _ in 0..<30 { cluster[1].tick(); cluster[2].tick(); cluster.stabilize() }
        #expect(cluster[1].status.role == .leader)
    }

    @Test("given followers in a leader's lease, when a vote request with a higher term arrives, then they ignore it")
    func leaderLeaseIgnoresVotes() {
        var cluster = TestCluster(voters: [1, 2, 3])
        cluster.elect(1)
        cluster.tickAll()
        let request = Message(from: NodeID(3), to: NodeID(2), term: Term(5), body: .vote(lastLogIndex: LogIndex(100), lastLogTerm: Term(4), leadershipTransfer: false))
        cluster[2].step(request)
        #expect(cluster[2].status.term == Term(1))
        #expect(cluster[2].takeReady().messagesAfterPersist.isEmpty)
        // A leadership-transfer vote goes through the lease.
        let transfer = Message(from: NodeID(3), to: NodeID(2), term: Term(5), body: .vote(lastLogIndex: LogIndex(100), lastLogTerm: Term(4), leadershipTransfer: true))
        cluster[2].step(transfer)
        #expect(cluster[2].status.term == Term(5))
        let answers = cluster[2].takeReady().messagesAfterPersist
        #expect(answers.map(\.body) == [.voteResponse(granted: true)])
    }

    @Test("a pre-vote changes no state on the voter")
    func preVoteChangesNothing() {
        var cluster = TestCluster(voters: [1, 2, 3])
        _ = cluster[2].takeReady()
        let before = cluster[2].currentHardState
        cluster[2].step(Message(from: NodeID(3), to: NodeID(2), term: Term(1), body: .preVote(lastLogIndex: .zero, lastLogTerm: .zero)))
        let ready = cluster[2].takeReady()
        #expect(cluster[2].currentHardState == before)
        #expect(ready.hardState == nil)
        #expect(ready.messages.map(\.body) == [.preVoteResponse(granted: true)])
        #expect(ready.messages.first?.term == Term(1))
    }

    @Test("given a voter that granted its vote in term 1, when it restarts, then it refuses another candidate in term 1")
    func voteSurvivesRestart() {
        var cluster = TestCluster(voters: [1, 2, 3]) { $0.preVote = false; $0.checkQuorum = false }
        let request = { (from: UInt64) in
            Message(from: NodeID(from), to: NodeID(2), term: Term(1), body: .vote(lastLogIndex: .zero, lastLogTerm: .zero, leadershipTransfer: false))
        }
        cluster[2].step(request(1))
        cluster.processReadies()
        #expect(cluster.disks[NodeID(2)]?.hardState.votedFor == NodeID(1))
        cluster.restart(2)
        cluster[2].step(request(3))
        #expect(cluster[2].takeReady().messagesAfterPersist.map(\.body) == [.voteResponse(granted: false)])
        cluster[2].step(request(1))
        #expect(cluster[2].takeReady().messagesAfterPersist.map(\.body) == [.voteResponse(granted: true)], "the same candidate may ask again")
    }

    @Test("given a heartbeat, then the follower's commit never passes what the leader knows it holds")
    func heartbeatCommitIsCapped() throws {
        var cluster = TestCluster(voters: [1, 2, 3])
        cluster.elect(1)
        cluster.tickAll()
        cluster.isolate(3)
        try cluster.propose(1, "a")
        cluster.tickAll()
        cluster.heal()
        cluster.accepts = { message in
            if case .append = message.body { false } else { true }
        }
        cluster.tickAll()
        let heartbeatsToThree = cluster.sent.filter { $0.to == NodeID(3) }.compactMap { message -> LogIndex? in
            if case .heartbeat(let commit, _) = message.body { commit } else { nil }
        }
        #expect(heartbeatsToThree.last == LogIndex(1), "n3 is known to hold only the no-op")
        #expect(cluster[3].status.commit == LogIndex(1))
        #expect(cluster[1].status.commit == LogIndex(2))
    }
}
