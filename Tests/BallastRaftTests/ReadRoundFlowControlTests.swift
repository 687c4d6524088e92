import Testing
@testable import BallastRaft

/// Every ReadIndex round is a heartbeat (one per round trip or tick under reads; one per loop turn before bug 34), so
/// heartbeat answers can come hundreds of times a second. An answer shows the follower is alive
/// and lifts flow control — a probe may go again, a slot of the pipelining window is freed — but
/// only once per heartbeat interval: before, every answer did, and a follower in probe state was
/// sent its whole probe batch (up to 4,096 entries or 1 MiB) again on every read round.
@Suite("Heartbeat answers to read rounds and flow control")
struct ReadRoundFlowControlTests {
    /// Appends carrying entries sent to `peer` among `messages`.
    static func appendsWithEntries(_ messages: [Message], to peer: UInt64) -> Int {
        messages.filter { message in
            guard message.to == NodeID(peer), case .append(_, _, let entries, _) = message.body else { return false }
            return !entries.isEmpty
        }.count
    }

    @Test("given a follower in probe state whose appends are lost, when 40 read rounds are answered within one tick, then its probe is sent again at most once per tick")
    func readRoundsDoNotResendProbes() throws {
        var cluster = TestCluster(voters: [1, 2, 3])
        try cluster.electLeavingBehind(2, entries: 50)
        cluster.heal()
        // Appends to 2 are lost from now on: it stays behind, in probe state at any leader.
        cluster.accepts = { message in
            if message.to == NodeID(2), case .append = message.body { return false }
            return true
        }
        // A new leader (1 cut off meanwhile): every follower starts in probe state at it.
        cluster.isolate(1)
        for _ in 0..<100 where cluster[3].status.role != .leader { cluster.tickAll() }
        try #require(cluster[3].status.role == .leader, "3 has the longest log of the two")
        cluster.heal()
        cluster.tickAll()
        cluster.sent = []
        cluster.readStates = [:]
        for context in 1...40 {
            try cluster[3].readIndex(context: UInt64(context))
            cluster.stabilize()
        }
        #expect(cluster.readStates[NodeID(3)]?.count == 40, "every read round was answered")
        #expect(Self.appendsWithEntries(cluster.sent, to: 2) <= 1, "40 read rounds re-sent the probe \(Self.appendsWithEntries(cluster.sent, to: 2)) times")
        cluster.sent = []
        cluster.tickAll(3)
        let probes = Self.appendsWithEntries(cluster.sent, to: 2)
        #expect(probes >= 1 && probes <= 3, "a tick lets the probe go again: \(probes) in 3 ticks")
    }
}
