/// Linearizable reads with ReadIndex (thesis §6.4): the leader records its commit index, confirms it
/// still leads with a heartbeat round, then hands out `ReadState(context, index)`.
extension RaftNode {
    /// Starts a ReadIndex round; the answer arrives as a `ReadState` (or a dropped read) in a later `Ready`.
    public mutating func readIndex(context: UInt64) throws(RaftError) {
        guard role == .leader else { throw .notLeader(leaderHint: leader) }
        guard reads.count < configuration.maxPendingReads else {
            ready.droppedReads.append(context)  // Back-pressure: the caller retries later.
            return
        }
        // A new leader does not know the latest commit index until an entry of its term commits.
        guard log.term(at: commit) == term else {
            reads.awaitingTermCommit.append(context)
            return
        }
        reads.unsent.append(PendingRead(context: context, index: commit, round: 0))
    }

    /// Starts one heartbeat round for all reads requested since the last round started — once the
    /// round in flight is confirmed, or a tick after it went out (its answers may be lost), so at
    /// most one round goes out per round trip or per tick, however many loop turns have reads.
    /// Each round is a heartbeat to every follower and an answer back: before, a node started one
    /// in every loop turn with reads, and a stalled follower or leader came back to hundreds of
    /// answers to handle at once (reliability.md, bug 34).
    mutating func flushReads() {
        guard !reads.unsent.isEmpty, reads.pending.isEmpty || reads.ticksSinceRound > 0 else { return }
        reads.ticksSinceRound = 0
        reads.lastRound += 1
        let round = reads.lastRound
        reads.pending += reads.unsent.map { PendingRead(context: $0.context, index: $0.index, round: round) }
        reads.unsent = []
        reads.acks[round] = [id]
        broadcastHeartbeat(readContext: round)
        acknowledgeRead(round: round, from: id)
    }

    /// Counts a heartbeat answer for `round`; a quorum confirms every read up to that round.
    mutating func acknowledgeRead(round: UInt64, from member: NodeID) {
        guard var acks = reads.acks[round] else { return }
        acks.insert(member)
        reads.acks[round] = acks
        guard membership.voters.filter(acks.contains).count >= membership.quorum else { return }
        let confirmed = reads.pending.prefix { $0.round <= round }
        ready.readStates += confirmed.map { ReadState(context: $0.context, index: $0.index) }
        reads.pending.removeFirst(confirmed.count)
        // Rounds open at once are few (one per round trip or tick), so this filter is short.
        reads.acks = reads.acks.filter { $0.key > round }
    }

    /// Once the leader's first entry of its term commits, waiting reads may start.
    mutating func releaseReadsAwaitingTermCommit() {
        guard !reads.awaitingTermCommit.isEmpty, log.term(at: commit) == term else { return }
        reads.unsent += reads.awaitingTermCommit.map { PendingRead(context: $0, index: commit, round: 0) }
        reads.awaitingTermCommit = []
    }

    /// Leadership is lost: every read not yet confirmed is reported in `Ready.droppedReads`.
    mutating func dropPendingReads() {
        ready.droppedReads += reads.awaitingTermCommit + reads.unsent.map(\.context) + reads.pending.map(\.context)
        reads = ReadIndexQueue(lastRound: reads.lastRound)
    }
}

/// A read waiting for leadership confirmation.
struct PendingRead: Sendable {
    var context: UInt64
    var index: LogIndex
    /// The heartbeat round that confirms it (0 until the round is sent).
    var round: UInt64
}

/// The leader's ReadIndex bookkeeping.
struct ReadIndexQueue: Sendable {
    /// Reads waiting for the first commit of the leader's term (their index is not known yet).
    var awaitingTermCommit: [UInt64] = []
    /// Reads with an index, waiting for the next heartbeat round.
    var unsent: [PendingRead] = []
    /// Reads in a heartbeat round, oldest first.
    var pending: [PendingRead] = []
    /// Members that answered each round still open.
    var acks: [UInt64: Set<NodeID>] = [:]
    /// The latest round number (never reused, so late answers cannot confirm a newer read).
    var lastRound: UInt64 = 0
    /// The leader's ticks since the latest round went out (a new round waits for the one in
    /// flight to be confirmed, or for a tick). Held at 2^30.
    var ticksSinceRound = 0

    /// Reads waiting in any stage.
    var count: Int { awaitingTermCommit.count + unsent.count + pending.count }
}
