import Testing
@testable import BallastRaft

private func chunks(in messages: [Message], to raw: UInt64) -> [SnapshotChunk] {
    messages.compactMap { message in
        if message.to == NodeID(raw), case .installSnapshot(let chunk) = message.body { chunk } else { nil }
    }
}

@Suite("Snapshots, compaction and catching up new members")
struct SnapshotTests {
    @Test("given applied entries, when the app takes a snapshot, then the log before it minus the slack is dropped")
    func compactionKeepsSlack() throws {
        var cluster = TestCluster(voters: [1, 2, 3]) { $0.compactionSlackEntries = 5 }
        cluster.elect(1)
        for number in 0..<20 { try cluster.propose(1, "\(number)") }
        cluster.tickAll()
        #expect(cluster[1].status.applied == LogIndex(21))
        cluster.takeSnapshot(1, data: [1, 2, 3])
        #expect(cluster[1].log.baseIndex == LogIndex(16))
        #expect(cluster[1].log.firstIndex == LogIndex(17))
        #expect(cluster[1].status.lastIndex == LogIndex(21))
    }

    @Test("when applied bytes since the last snapshot pass the threshold, then Ready suggests a snapshot once")
    func snapshotSuggested() throws {
        var cluster = TestCluster(voters: [1]) { $0.snapshotThresholdBytes = 500 }
        cluster.elect(1)
        for _ in 0..<4 { try cluster.propose(1, String(repeating: "s", count: 76)) }
        cluster.tickAll()
        #expect(cluster.snapshotSuggestions[NodeID(1)] == nil, "a 24-byte no-op and 4 × 100 bytes do not exceed 500")
        try cluster.propose(1, String(repeating: "s", count: 76))
        cluster.tickAll(2)
        #expect(cluster.snapshotSuggestions[NodeID(1)] == 1)
        cluster.takeSnapshot(1, data: [])
        for _ in 0..<6 { try cluster.propose(1, String(repeating: "s", count: 76)) }
        cluster.tickAll()
        #expect(cluster.snapshotSuggestions[NodeID(1)] == 2, "suggested again after the next threshold")
    }

    @Test("given a compacted leader, when a learner joins, then it catches up through a chunked snapshot and can be promoted")
    func chunkedSnapshotCatchesUpLearnerThenPromote() throws {
        var cluster = TestCluster(voters: [1, 2, 3]) {
            $0.compactionSlackEntries = 0
            $0.snapshotChunkBytes = 10
        }
        cluster.elect(1)
        for number in 0..<30 { try cluster.propose(1, "\(number)") }
        cluster.tickAll()
        let state = (0..<95).map { UInt8($0) }
        let snapshot = cluster.takeSnapshot(1, data: state)
        #expect(snapshot.metadata.index == LogIndex(31))
        try cluster.propose(1, "after-snapshot")
        cluster.stabilize()
        cluster.addNode(NodeID(4), bootstrap: nil) { $0.snapshotChunkBytes = 10 }
        #expect(throws: RaftError.invalidConfigChange("n4 is not a learner")) { try cluster[1].proposeConfigChange(.promote(NodeID(4))) }
        _ = try cluster[1].proposeConfigChange(.addLearner(NodeID(4)))
        cluster.sent = []
        cluster.tickAll(3)
        let sentChunks = chunks(in: cluster.sent, to: 4)
        #expect(Set(sentChunks.map(\.offset)) == Set(stride(from: 0, to: 95, by: 10).map { UInt64($0) }))
        #expect(sentChunks.filter(\.done).count >= 1)
        #expect(cluster.installedSnapshots[NodeID(4)] == [snapshot])
        #expect(cluster[4].status.role == .learner)
        #expect(cluster[4].status.lastIndex == cluster[1].status.lastIndex)
        #expect(cluster.appliedTexts(4) == ["after-snapshot"], "entries after the snapshot come from the log")
        _ = try cluster[1].proposeConfigChange(.promote(NodeID(4)))
        cluster.tickAll(2)
        #expect(cluster[1].status.membership.voters == [1, 2, 3, 4].map { NodeID($0) })
        #expect(cluster[4].status.role == .follower)
        #expect(cluster[4].status.membership == cluster[1].status.membership)
    }

    /// Three voters; leader 1 has taken a 10-byte snapshot (sent in chunks of 4) past entries that
    /// follower 3, cut off meanwhile, lacks; the cut is healed.
    static func followerNeedingASnapshot() throws -> TestCluster {
        var cluster = TestCluster(voters: [1, 2, 3]) {
            $0.compactionSlackEntries = 0
            $0.snapshotChunkBytes = 4
        }
        try cluster.electLeavingBehind(3, entries: 5)
        cluster.takeSnapshot(1, data: Array(0..<10))
        cluster.heal()
        return cluster
    }

    @Test("given a lost chunk, when two heartbeat intervals pass without an ack, then the leader re-sends it")
    func lostChunkIsResent() throws {
        var cluster = try Self.followerNeedingASnapshot()
        var dropped = false
        cluster.accepts = { message in
            if case .installSnapshot(let chunk) = message.body, chunk.offset == 4, !dropped {
                dropped = true
                return false
            }
            return true
        }
        cluster.sent = []
        cluster.tickAll(1)
        #expect(dropped)
        #expect(cluster.installedSnapshots[NodeID(3)] == nil)
        cluster.tickAll(3)
        let offsets = cluster.sent.compactMap { message -> UInt64? in
            if case .installSnapshot(let chunk) = message.body { chunk.offset } else { nil }
        }
        #expect(offsets.filter { $0 == 4 }.count == 2, "sent, lost, re-sent once: \(offsets)")
        #expect(cluster.installedSnapshots[NodeID(3)]?.count == 1)
        #expect(cluster[3].status.lastIndex == cluster[1].status.lastIndex)
    }

    /// Every ReadIndex round is a heartbeat, and a follower answers each: counting answers re-sent
    /// a chunk (up to `snapshotChunkBytes`, 1 MiB in a node) on every second one, hundreds of
    /// times a second under reads (a round per loop turn with reads until bug 34; still one per round trip or tick).
    @Test("given a lost chunk, when many ReadIndex rounds are answered within one tick, then the chunk is not re-sent until two heartbeat intervals pass")
    func readRoundsDoNotResendChunks() throws {
        var cluster = try Self.followerNeedingASnapshot()
        // The chunk at offset 4 never arrives.
        cluster.accepts = { message in
            if case .installSnapshot(let chunk) = message.body, chunk.offset == 4 { return false }
            return true
        }
        func chunksAtFour() -> Int {
            cluster.sent.filter { if case .installSnapshot(let chunk) = $0.body { chunk.offset == 4 } else { false } }.count
        }
        cluster.sent = []
        cluster.tickAll(1)
        #expect(chunksAtFour() == 1, "the chunk was sent (and lost)")
        cluster.readStates = [:]
        for context in 1...40 {
            try cluster[1].readIndex(context: UInt64(context))
            cluster.stabilize()
        }
        #expect(cluster.readStates[NodeID(1)]?.count == 40, "every read round was answered")
        #expect(chunksAtFour() == 1, "40 read rounds re-sent nothing")
        cluster.tickAll(2)
        #expect(chunksAtFour() == 2, "two heartbeat intervals later it is re-sent once")
        #expect(cluster.installedSnapshots[NodeID(3)] == nil)
    }

    @Test("given a follower receiving chunks, when a chunk skips ahead, then it rejects it with the offset it expects")
    func wrongOffsetIsRejected() {
        var cluster = TestCluster(voters: [1, 2])
        let metadata = SnapshotMetadata(index: LogIndex(50), term: Term(3), membership: cluster.bootstrap)
        func chunk(_ offset: UInt64, _ size: Int, done: Bool) -> Message {
            Message(from: NodeID(1), to: NodeID(2), term: Term(3), body: .installSnapshot(SnapshotChunk(
                metadata: metadata, offset: offset, totalBytes: 30, data: Array(repeating: 7, count: size), done: done)))
        }
        cluster[2].step(chunk(10, 10, done: false))
        var answers = cluster[2].takeReady().messages.map(\.body)
        #expect(answers == [.installSnapshotResponse(snapshotIndex: LogIndex(50), nextOffset: 0, done: false, rejected: true)])
        cluster[2].step(chunk(0, 10, done: false))
        cluster[2].step(chunk(20, 10, done: true))
        answers = cluster[2].takeReady().messages.map(\.body)
        #expect(answers == [
            .installSnapshotResponse(snapshotIndex: LogIndex(50), nextOffset: 10, done: false, rejected: false),
            .installSnapshotResponse(snapshotIndex: LogIndex(50), nextOffset: 10, done: false, rejected: true),
        ])
        cluster[2].step(chunk(10, 10, done: false))
        cluster[2].step(chunk(20, 10, done: true))
        let ready = cluster[2].takeReady()
        #expect(ready.snapshot?.data.count == 30)
        #expect(ready.messagesAfterPersist.map(\.body) == [.installSnapshotResponse(snapshotIndex: LogIndex(50), nextOffset: 30, done: true, rejected: false)])
        #expect(cluster[2].status.commit == LogIndex(50))
        #expect(cluster[2].status.lastIndex == LogIndex(50))
        #expect(cluster[2].log.firstIndex == LogIndex(51), "the log continues after the snapshot")
    }

    @Test("given a restarted member, then it recovers its log and hard state from storage and rejoins")
    func restartFromStorage() throws {
        var cluster = TestCluster(voters: [1, 2, 3])
        cluster.elect(1)
        try cluster.propose(1, "a")
        cluster.tickAll()
        cluster.takeSnapshot(2, data: [9])
        try cluster.propose(1, "b")
        cluster.tickAll()
        cluster.restart(2)
        #expect(cluster[2].status.term == Term(1))
        #expect(cluster[2].status.lastIndex == LogIndex(3))
        #expect(cluster[2].status.applied == LogIndex(2), "applied restarts at the snapshot")
        cluster.tickAll(2)
        #expect(cluster.appliedTexts(2) == ["b"], "entries after the snapshot are applied again")
    }
}
