import Testing
@testable import BallastRaft

@Suite("Linearizable reads with ReadIndex")
struct ReadIndexTests {
    /// Three members, 1 leading with an entry of its term committed; nothing sent recorded yet.
    static func leaderWithACommittedEntry() throws -> TestCluster {
        var cluster = TestCluster(voters: [1, 2, 3])
        cluster.elect(1)
        try cluster.propose(1, "a")
        cluster.stabilize()
        cluster.sent = []
        return cluster
    }

    @Test("given a leader with a committed no-op, when a read arrives, then a heartbeat round confirms it at the commit index")
    func readConfirmedByHeartbeatRound() throws {
        var cluster = try Self.leaderWithACommittedEntry()
        try cluster[1].readIndex(context: 42)
        cluster.stabilize()
        #expect(cluster.readStates[NodeID(1)] == [ReadState(context: 42, index: cluster[1].status.commit)])
        #expect(Self.readRounds(cluster.sent).count == 2, "one heartbeat per follower carries the read round")
    }

    /// The read rounds (heartbeat `readContext`s) among `messages`, one per follower reached.
    static func readRounds(_ messages: [Message]) -> [UInt64] {
        messages.compactMap { message -> UInt64? in
            if case .heartbeat(_, let context) = message.body, context != 0 { context } else { nil }
        }
    }

    @Test("given a read round in flight, when more reads arrive over several loop turns, then they wait and go out together in one round once it is confirmed")
    func oneReadRoundInFlight() throws {
        var cluster = try Self.leaderWithACommittedEntry()
        // Each read in a loop turn of its own (a Ready taken), none of the answers back yet.
        for context: UInt64 in 1...5 {
            try cluster[1].readIndex(context: context)
            cluster.processReadies()
        }
        #expect(Self.readRounds(cluster.sent).count == 2, "one round, to each follower, while it is in flight")
        cluster.stabilize()
        #expect(cluster.readStates[NodeID(1)]?.map(\.context) == [1, 2, 3, 4, 5])
        let rounds = Self.readRounds(cluster.sent)
        #expect(rounds.count == 4 && Set(rounds).count == 2, "reads 2–5 went out in one second round: \(rounds)")
    }

    @Test("given a read round whose answers are lost, then a tick later the reads that came meanwhile go out in a new round")
    func lostRoundDoesNotHoldLaterReads() throws {
        var cluster = try Self.leaderWithACommittedEntry()
        cluster.accepts = { message in
            if case .heartbeatResponse = message.body { false } else { true }
        }
        try cluster[1].readIndex(context: 1)
        cluster.stabilize()
        try cluster[1].readIndex(context: 2)
        cluster.stabilize()
        let first = Self.readRounds(cluster.sent)
        #expect(Set(first).count == 1, "the second read waits for the round in flight: \(first)")
        cluster[1].tick()
        cluster.processReadies()
        let second = Set(Self.readRounds(cluster.sent))
        #expect(second.count == 2, "a tick later the second read has a round of its own: \(second.sorted())")
        cluster.accepts = { _ in true }
        cluster.stabilize()
        #expect(cluster.readStates[NodeID(1)]?.map(\.context) == [1, 2])
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
