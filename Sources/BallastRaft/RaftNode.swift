/// One Raft member as a value that reacts: feed it ticks, messages and proposals, then drain
/// what it wants done with `takeReady()`. No I/O, clocks, threads or unseeded randomness.
/// The behaviour is split by concern: `RaftNode+Election.swift`, `+Replication`, `+ReadIndex`,
/// `+Snapshot`, `+Membership`, `+Step`; docs/raft.md describes the whole.
public struct RaftNode: Sendable {
    var configuration: RaftConfiguration
    var random: DeterministicRandom
    var log: RaftLog

    // Hard state.
    var term: Term
    var votedFor: NodeID?
    var commit: LogIndex
    var lastReportedHardState: HardState

    /// The last index handed out in `Ready.committed`.
    var applied: LogIndex
    /// The last index the shell reported durable through `persisted(through:term:)`.
    var persistedIndex: LogIndex

    var role: RaftRole = .follower
    var leader: NodeID?
    /// Membership at `log.baseIndex`; `membership` is it plus every config entry in the log.
    var baseMembership: Membership
    var membership: Membership

    var electionElapsed = 0
    var heartbeatElapsed = 0
    var randomizedElectionTimeout = 0
    /// Votes (or pre-votes) received in the current campaign: true granted, false rejected.
    var votes: [NodeID: Bool] = [:]

    // Leader state.
    var progress: [NodeID: Progress] = [:]
    var leadTransferee: NodeID?
    /// Index of the latest config change appended; another may be proposed once it commits.
    var pendingConfigIndex: LogIndex = .zero
    var uncommittedBytes = 0
    var needsBroadcast = false
    var commitAdvancedSinceBroadcast = false
    var reads = ReadIndexQueue()

    // Snapshots.
    /// The latest snapshot taken locally or installed from the leader (sent to lagging followers).
    var snapshot: Snapshot?
    /// A snapshot being received in chunks.
    var incomingSnapshot: IncomingSnapshot?
    var appliedBytesSinceSnapshot = 0
    var snapshotSuggestionReported = false

    /// Output collected since the last `takeReady()`.
    var ready = Ready()

    /// This member's id.
    var id: NodeID { configuration.id }

    /// Starts a member from what its storage recovered. `bootstrap` gives the initial membership
    /// of a brand-new cluster (ignored when `restored` has a snapshot). It is the membership at
    /// index 0: pass the same value on every node, including nodes that join later, or leave it
    /// nil on a joining node that will receive a snapshot (see docs/raft.md).
    /// `randomSeed` drives election jitter.
    public init(configuration: RaftConfiguration, restored: RestoredState, bootstrap: Membership?, randomSeed: UInt64) {
        precondition(configuration.id.rawValue != 0, "node id 0 is reserved")
        precondition(configuration.electionTimeoutTicks > configuration.heartbeatIntervalTicks, "election timeout must exceed the heartbeat interval")
        self.configuration = configuration
        random = DeterministicRandom(seed: randomSeed)
        let base = restored.snapshot?.metadata
        log = RaftLog(baseIndex: base?.index ?? .zero, baseTerm: base?.term ?? .zero)
        let baseIndex = base?.index ?? .zero
        log.append(restored.entries.filter { $0.index > baseIndex })
        baseMembership = base?.membership ?? bootstrap ?? Membership(voters: [])
        membership = baseMembership
        term = restored.hardState.term
        votedFor = restored.hardState.votedFor
        commit = min(max(restored.hardState.commit, log.baseIndex), log.lastIndex)
        // The clamped commit is what we stand by; it is a hint and need not be rewritten.
        lastReportedHardState = HardState(term: restored.hardState.term, votedFor: restored.hardState.votedFor, commit: commit)
        applied = log.baseIndex
        persistedIndex = log.lastIndex
        snapshot = restored.snapshot
        membership = membershipFolding(log.entries[...], over: baseMembership)
        role = membership.isLearner(configuration.id) ? .learner : .follower
        resetElectionTimer()
    }

    /// Advances logical time by one tick (elections, heartbeats, check-quorum).
    public mutating func tick() {
        if role == .leader { tickLeader() } else { tickElection() }
    }

    /// Appends `data` as a new entry if this node is the leader; returns its index.
    /// A follower fails fast with `.notLeader(leaderHint:)`.
    public mutating func propose(_ data: [UInt8]) throws(RaftError) -> LogIndex {
        guard role == .leader else { throw .notLeader(leaderHint: leader) }
        guard leadTransferee == nil else { throw .leadershipTransferInProgress }
        let size = data.count + 24
        // One oversized entry is accepted when nothing is pending, so a big entry cannot livelock.
        if uncommittedBytes > 0 && uncommittedBytes + size > configuration.maxUncommittedBytes {
            throw .proposalBacklogFull(uncommittedBytes: uncommittedBytes, limitBytes: configuration.maxUncommittedBytes)
        }
        return appendAsLeader(kind: .normal, data: data)
    }

    /// Reports that entries up to `index` (whose entry has `term`) are durable. A stale report
    /// (the entry at `index` now has another term) is ignored.
    public mutating func persisted(through index: LogIndex, term entryTerm: Term) {
        guard index > persistedIndex, log.term(at: index) == entryTerm else { return }
        persistedIndex = index
        if role == .leader { maybeCommit() }
    }

    /// Drains and returns everything the shell must do now. With `handOutCommitted` false, no
    /// committed entries are handed out this time (a shell still applying earlier ones asks for
    /// more only when it has caught up); `hasCommittedToApply` then says some are waiting.
    public mutating func takeReady(handOutCommitted: Bool = true) -> Ready {
        if role == .leader {
            if needsBroadcast || commitAdvancedSinceBroadcast { broadcastAppend(sendIfEmpty: commitAdvancedSinceBroadcast) }
            flushReads()
        }
        var output = ready
        ready = Ready()
        let hardState = currentHardState
        precondition(hardState.term >= lastReportedHardState.term, "term moved back from \(lastReportedHardState.term) to \(hardState.term)")
        precondition(hardState.commit >= lastReportedHardState.commit || !enforcesPeerInvariants,
                     "commit moved back from \(lastReportedHardState.commit) to \(hardState.commit)")
        if hardState != lastReportedHardState {
            output.hardState = hardState
            lastReportedHardState = hardState
        }
        if handOutCommitted, commit > applied {
            precondition(applied >= log.baseIndex, "applied \(applied) behind the compaction point \(log.baseIndex)")
            let waiting = commit.rawValue - applied.rawValue
            output.committed = log.entries(from: applied.next, maxCount: Int(clamping: waiting),
                                           maxBytes: configuration.maxCommittedBytesPerReady)
            applied = output.committed.last?.index ?? applied
            appliedBytesSinceSnapshot += output.committed.reduce(0) { $0 + $1.sizeBytes }
        }
        if appliedBytesSinceSnapshot > configuration.snapshotThresholdBytes && !snapshotSuggestionReported {
            output.snapshotSuggested = true
            snapshotSuggestionReported = true
        }
        return output
    }

    /// Whether committed entries are waiting to be handed out by `takeReady` (more than
    /// `maxCommittedBytesPerReady` were committed at once).
    public var hasCommittedToApply: Bool { commit > applied }

    /// A read-only picture of this member.
    public var status: RaftStatus {
        RaftStatus(
            id: id, role: role, term: term, leader: leader, commit: commit, applied: applied,
            lastIndex: log.lastIndex, persistedIndex: persistedIndex, membership: membership,
            progress: progress.mapValues(\.publicView), snapshotIndex: snapshot?.metadata.index ?? .zero)
    }

    /// The metadata a snapshot at `index` must carry (term and membership there), nil if `index`
    /// is no longer (or not yet) in the log. Use it to build the snapshot passed to `snapshotTaken`.
    public func snapshotMetadata(at index: LogIndex) -> SnapshotMetadata? {
        guard let entryTerm = log.term(at: index) else { return nil }
        let upTo = log.entries(from: log.firstIndex, through: index)
        return SnapshotMetadata(index: index, term: entryTerm, membership: membershipFolding(upTo, over: baseMembership))
    }

    var currentHardState: HardState { HardState(term: term, votedFor: votedFor, commit: commit) }

    /// Whether invariants that a faulty peer could trip are enforced (relaxed under mutation testing).
    var enforcesPeerInvariants: Bool { !configuration.mutations.anyEnabled }

    /// Queues a message; `afterPersist` ones wait until this turn's writes are durable.
    mutating func send(to peer: NodeID, _ body: MessageBody, term messageTerm: Term? = nil, afterPersist: Bool = false) {
        let message = Message(from: id, to: peer, term: messageTerm ?? term, body: body)
        if afterPersist { ready.messagesAfterPersist.append(message) } else { ready.messages.append(message) }
    }

    /// Moves the commit index forward (never back) and does what follows from it.
    mutating func advanceCommit(to index: LogIndex) {
        guard index > commit else { return }
        precondition(index <= log.lastIndex, "commit \(index) beyond the last index \(log.lastIndex)")
        if role == .leader {
            let newlyCommitted = log.entries(from: commit.next, through: index)
            uncommittedBytes = max(0, uncommittedBytes - newlyCommitted.reduce(0) { $0 + $1.sizeBytes })
        }
        commit = index
        guard role == .leader else { return }
        commitAdvancedSinceBroadcast = true
        releaseReadsAwaitingTermCommit()
        stepDownIfRemovalCommitted()
    }
}
