import Testing
@testable import BallastRaft

@Suite("Leadership transfer")
struct LeadershipTransferTests {
    @Test("given a caught-up follower, when the leader transfers to it, then TimeoutNow makes it leader through the lease")
    func transferToCaughtUpFollower() throws {
        var cluster = TestCluster(voters: [1, 2, 3])
        cluster.elect(1)
        cluster.tickAll()
        try cluster[1].transferLeadership(to: NodeID(2))
        #expect(throws: RaftError.leadershipTransferInProgress) { try cluster.propose(1, "refused") }
        cluster.stabilize()
        #expect(cluster.sent.contains { $0.to == NodeID(2) && $0.body == .timeoutNow })
        #expect(cluster[2].status.role == .leader)
        #expect(cluster[2].status.term == Term(2))
        #expect(cluster[1].status.role == .follower)
        #expect(cluster[1].status.leader == NodeID(2))
    }

    @Test("given a lagging target, when the leader transfers to it, then it first catches up and only then gets TimeoutNow")
    func transferWaitsForCatchUp() throws {
        var cluster = TestCluster(voters: [1, 2, 3])
        try cluster.electLeavingBehind(3, entries: 5)
        try cluster[1].transferLeadership(to: NodeID(3))
        cluster.stabilize()
        #expect(!cluster.sent.contains { $0.body == .timeoutNow })
        cluster.heal()
        cluster.tickAll(2)
        #expect(cluster[3].status.role == .leader)
        #expect(cluster.appliedTexts(3) == (0..<5).map { "\($0)" })
    }

    @Test("given a target that never answers, when an election timeout passes, then the transfer is abandoned")
    func transferAbandoned() throws {
        var cluster = TestCluster(voters: [1, 2, 3])
        cluster.elect(1)
        cluster.tickAll()
        cluster.isolate(3)
        try cluster.propose(1, "x")
        cluster.stabilize()
        try cluster[1].transferLeadership(to: NodeID(3))
        #expect(throws: RaftError.leadershipTransferInProgress) { try cluster.propose(1, "y") }
        for _ in 0..<10 { cluster[1].tick(); cluster[2].tick(); cluster.stabilize() }
        #expect(cluster[1].status.role == .leader)
        try cluster.propose(1, "z")
    }

    @Test("a transfer to a learner or a stranger is refused")
    func transferToNonVoter() throws {
        var cluster = TestCluster(voters: [1, 2], learners: [3])
        cluster.elect(1)
        #expect(throws: RaftError.unknownTransferTarget(NodeID(3))) { try cluster[1].transferLeadership(to: NodeID(3)) }
        #expect(throws: RaftError.unknownTransferTarget(NodeID(9))) { try cluster[1].transferLeadership(to: NodeID(9)) }
    }
}

@Suite("Membership change one server at a time")
struct MembershipTests {
    @Test("given two voters and a learner, then the learner receives the log but neither votes nor counts for commit")
    func learnersDoNotCount() throws {
        var cluster = TestCluster(voters: [1, 2], learners: [3])
        #expect(cluster[3].status.role == .learner)
        for _ in 0..<50 { cluster[3].tick() }
        cluster.stabilize()
        #expect(cluster[3].status.term == .zero, "a learner never campaigns")
        cluster.elect(1)
        cluster.tickAll()
        #expect(cluster[3].status.commit == LogIndex(1))
        cluster.cut(1, 2)
        let index = try cluster.propose(1, "x")
        cluster.stabilize()
        #expect(cluster[3].status.lastIndex == index, "the learner has it")
        #expect(cluster[1].status.commit < index, "but its copy does not count")
    }

    @Test("a learner that lags too far behind cannot be promoted, and the error names the lag")
    func promotionRequiresCatchUp() throws {
        var cluster = TestCluster(voters: [1, 2], learners: [3]) { $0.maxPromotionLagEntries = 3 }
        try cluster.electLeavingBehind(3, entries: 5)
        #expect(throws: RaftError.invalidConfigChange("n3 is 5 entries behind the leader's last index i6 (limit 3); promote it once it has caught up")) {
            try cluster[1].proposeConfigChange(.promote(NodeID(3)))
        }
        cluster.heal()
        cluster.tickAll()
        _ = try cluster[1].proposeConfigChange(.promote(NodeID(3)))
    }

    @Test("only one membership change may be uncommitted at a time")
    func oneChangeAtATime() throws {
        var cluster = TestCluster(voters: [1, 2, 3])
        cluster.elect(1)
        cluster.tickAll()
        _ = try cluster[1].proposeConfigChange(.addLearner(NodeID(4)))
        #expect(throws: RaftError.configChangeInProgress) { try cluster[1].proposeConfigChange(.addLearner(NodeID(5))) }
        #expect(cluster[1].status.membership.learners == [NodeID(4)], "in force as soon as appended")
        cluster.addNode(NodeID(4), bootstrap: cluster.bootstrap)
        cluster.tickAll()
        _ = try cluster[1].proposeConfigChange(.addLearner(NodeID(5)))
    }

    @Test("given a removed follower, then the leader stops replicating to it and commits with the smaller quorum")
    func removeFollower() throws {
        var cluster = TestCluster(voters: [1, 2, 3])
        cluster.elect(1)
        cluster.tickAll()
        _ = try cluster[1].proposeConfigChange(.remove(NodeID(3)))
        cluster.tickAll()
        #expect(cluster[1].status.membership.voters == [NodeID(1), NodeID(2)])
        #expect(cluster[1].status.progress[NodeID(3)] == nil)
        cluster.down = [NodeID(3)]
        try cluster.propose(1, "after")
        cluster.tickAll()
        #expect(cluster.appliedTexts(2) == ["after"])
    }

    @Test("given a leader that removes itself, then it steps down once the removal commits")
    func removedLeaderStepsDown() throws {
        var cluster = TestCluster(voters: [1, 2, 3])
        cluster.elect(1)
        cluster.tickAll()
        cluster.slowDisks = [NodeID(2), NodeID(3)]
        let index = try cluster[1].proposeConfigChange(.remove(NodeID(1)))
        cluster.stabilize()
        #expect(cluster[1].status.role == .leader, "still leading until the removal commits")
        cluster.slowDisks = []
        cluster.flushDisk(NodeID(2))
        cluster.flushDisk(NodeID(3))
        cluster.stabilize()
        #expect(cluster[1].status.commit >= index)
        #expect(cluster[1].status.role == .follower)
        for _ in 0..<40 where cluster[2].status.role != .leader && cluster[3].status.role != .leader { cluster.tickAll() }
        #expect(cluster[2].status.role == .leader || cluster[3].status.role == .leader)
        #expect(cluster[1].status.role != .leader && cluster[1].status.role != .candidate)
    }
}
