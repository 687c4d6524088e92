import Testing
@testable import BallastRaft

@Suite("Linearizable reads with ReadIndex")
struct ReadIndexTests {
    @Test("given a leader with a committed no-op, when a read arrives, then a heartbeat round confirms it at the commit index")
    func readConfirmedByHeartbeatRound() throws {
        var cluster = TestCluster(voters: [1, 2, 3])
        cluster.elect(1)
        try cluster.propose(1, "a")
        cluster.stabilize()
        cluster.sent = []
        try cluster[1].readIndex(context: 42)
        cluster.stabilize()
        #expect(cluster.readStates[NodeID(1)] == [ReadState(context: 42, index: cluster[1].status.commit)])
        let rounds = cluster.sent.compactMap { message -> UInt64? in
            if case .heartbeat(_, let context) = message.body, context != 0 { context } else { nil }
        }
        #expect(rounds.count == 2, "one heartbeat per follower carries the read round")
    }

    @Test("given a leader cut off from its followers, then its read is not confirmed")
    func readNeedsAQuorum() throws {
        var cluster = TestCluster(voters: [1, 2, 3])
        cluster.elect(1)
        cluster.tickAll()
        cluster.isolate(1)
        try cluster[1].readIndex(context: 1)
        cluster.stabilize()
        cluster[1].tick()
        cluster.stabilize()
        #expect(cluster.readStates[NodeID(1)]?.isEmpty ?? true)
    }

    @Test("given a new leader whose no-op has not committed, then reads wait for it")
    func newLeaderWaitsForItsNoop() throws {
        var cluster = TestCluster(voters: [1, 2, 3])
        cluster.accepts = { message in
            if case .appendResponse = message.body { false } else { true }
        }
        cluster.elect(1)
        try cluster[1].readIndex(context: 9)
        cluster.tickAll(2)
        #expect(cluster[1].status.commit == .zero)
        #expect(cluster.readStates[NodeID(1)]?.isEmpty ?? true, "heartbeat answers alone do not confirm a read before the no-op commits")
        cluster.accepts = { _ in true }
        cluster.tickAll(2)
        #expect(cluster.readStates[NodeID(1)] == [ReadState(context: 9, index: LogIndex(1))])
    }

    @Test("given a leader with a pending read, when it is deposed, then the read is reported dropped")
    func deposedLeaderDropsReads() throws {
        var cluster = TestCluster(voters: [1, 2, 3])
        cluster.elect(1)
        cluster.tickAll()
        cluster.isolate(1)
        try cluster[1].readIndex(context: 77)
        cluster.stabilize()
        for _ in 0..<40 where cluster[2].status.role != .leader && cluster[3].status.role != .leader {
            cluster[2].tick()
            cluster[3].tick()
            cluster.stabilize()
        }
        cluster.heal()
        cluster.tickAll(2)
        #expect(cluster[1].status.role == .follower)
        #expect(cluster.droppedReads[NodeID(1)] == [77])
        #expect(cluster.readStates[NodeID(1)]?.isEmpty ?? true)
    }

    @Test("given a single-voter cluster, then a read is confirmed without any message")
    func singleVoterRead() throws {
        var cluster = TestCluster(voters: [1])
        cluster.elect(1)
        cluster.tickAll()
        try cluster[1].readIndex(context: 5)
        cluster.stabilize()
        #expect(cluster.readStates[NodeID(1)] == [ReadState(context: 5, index: LogIndex(1))])
    }

    @Test("given maxPendingReads reads waiting, then a further read is reported dropped at once")
    func pendingReadsAreBounded() throws {
        var cluster = TestCluster(voters: [1, 2, 3]) { $0.maxPendingReads = 2 }
        cluster.elect(1)
        cluster.tickAll()
        cluster.isolate(1)
        for context: UInt64 in 1...3 { try cluster[1].readIndex(context: context) }
        cluster.stabilize()
        #expect(cluster.droppedReads[NodeID(1)] == [3])
        cluster.heal()
        cluster.tickAll()
        #expect(cluster.readStates[NodeID(1)]?.map(\.context) == [1, 2])
    }
}
