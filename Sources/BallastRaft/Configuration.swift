/// Tunables of one Raft member. Times are in ticks; the shell decides how long a tick is.
public struct RaftConfiguration: Sendable {
    /// This member's id.
    public var id: NodeID
    /// Minimum election timeout; the actual one is drawn in [min, 2·min) from the seeded generator.
    public var electionTimeoutTicks: Int = 10
    /// Leader heartbeat interval.
    public var heartbeatIntervalTicks: Int = 1
    /// Whether to run a pre-vote round before a real election (thesis §9.6).
    public var preVote: Bool = true
    /// Whether a leader steps down after an election timeout without hearing from a majority.
    public var checkQuorum: Bool = true
    /// Upper bound on the entries of one AppendEntries message.
    public var maxEntriesPerAppend: Int = 4096
    /// Upper bound on the payload bytes of one AppendEntries message.
    public var maxBytesPerAppend: Int = 1 << 20
    /// AppendEntries messages in flight per follower in the replicate state (pipelining window).
    public var maxInflightAppends: Int = 64
    /// Entry bytes (`Entry.sizeBytes`) of the AppendEntries in flight per follower in the
    /// replicate state: no further append is sent while this many are unacknowledged (one always
    /// goes when none is in flight). Without it a follower far behind is sent
    /// `maxInflightAppends` × `maxBytesPerAppend` in one `Ready`, which the shell must build and
    /// hand to the transport in one turn of its loop.
    public var maxInflightBytes: Int = 8 << 20
    /// Payload bytes of one InstallSnapshot chunk.
    public var snapshotChunkBytes: Int = 1 << 20
    /// Proposed bytes not yet committed above which `propose` fails with `proposalBacklogFull`.
    public var maxUncommittedBytes: Int = 64 << 20
    /// Payload bytes of committed entries one `Ready` hands out to apply (at least one entry):
    /// after a restart the whole log since the last snapshot is committed at once, and a shell
    /// that applies it in one go cannot tick, vote or answer meanwhile. With a bound, the rest
    /// comes in the next `Ready`s (`hasCommittedToApply` says some is waiting).
    public var maxCommittedBytesPerReady: Int = .max
    /// Applied log bytes since the last snapshot after which `Ready.snapshotSuggested` is set.
    public var snapshotThresholdBytes: Int = 64 << 20
    /// Entries kept behind a snapshot so slightly lagging followers still catch up from the log.
    public var compactionSlackEntries: Int = 1024
    /// A learner may be promoted only when its match index is at most this many entries behind the leader's last index.
    public var maxPromotionLagEntries: Int = 256
    /// ReadIndex requests a leader keeps waiting for confirmation; more are reported at once in `Ready.droppedReads`.
    public var maxPendingReads: Int = 65_536
    /// Fault injection for mutation tests (internal: set it through `@testable import BallastRaft`).
    var mutations = RaftMutations()

    /// Creates a configuration with defaults for everything but the id.
    public init(id: NodeID) { self.id = id }
}

/// What a member is doing right now.
public enum RaftRole: String, Sendable, Hashable {
    case follower, preCandidate, candidate, leader, learner
}

/// The leader's view of one follower's replication.
public struct FollowerProgress: Sendable, Hashable {
    /// Flow-control state of the follower.
    public enum State: String, Sendable, Hashable {
        /// Sending one append at a time to find the match point.
        case probe
        /// Streaming appends optimistically, up to the inflight window.
        case replicate
        /// Sending a snapshot.
        case snapshot
    }
    /// The highest index known to be replicated on the follower.
    public var match: LogIndex
    /// The next index to send.
    public var next: LogIndex
    /// Flow-control state.
    public var state: State
    /// Whether the follower has been heard from in the current check-quorum window.
    public var recentlyActive: Bool

    /// Creates a progress record.
    public init(match: LogIndex, next: LogIndex, state: State, recentlyActive: Bool) {
        self.match = match
        self.next = next
        self.state = state
        self.recentlyActive = recentlyActive
    }
}

/// A read-only picture of a member, for status pages and tests.
public struct RaftStatus: Sendable, Hashable {
    /// The member described.
    public var id: NodeID
    /// What it is doing.
    public var role: RaftRole
    /// Its current term.
    public var term: Term
    /// The leader it follows (itself when leading), if known.
    public var leader: NodeID?
    /// Its commit index.
    public var commit: LogIndex
    /// The last index handed out in `Ready.committed` (the shell applies them in order).
    public var applied: LogIndex
    /// The last index of its log (durable or not).
    public var lastIndex: LogIndex
    /// The durable index as reported through `persisted(through:term:)`.
    public var persistedIndex: LogIndex
    /// The membership in force (the latest appended config change).
    public var membership: Membership
    /// Per-follower progress; empty unless leader.
    public var progress: [NodeID: FollowerProgress]
    /// The index of its latest snapshot (taken or installed), zero if it has none.
    public var snapshotIndex: LogIndex

    /// Creates a status.
    public init(
        id: NodeID, role: RaftRole, term: Term, leader: NodeID?, commit: LogIndex, applied: LogIndex,
        lastIndex: LogIndex, persistedIndex: LogIndex, membership: Membership, progress: [NodeID: FollowerProgress],
        snapshotIndex: LogIndex = .zero
    ) {
        self.id = id
        self.role = role
        self.term = term
        self.leader = leader
        self.commit = commit
        self.applied = applied
        self.lastIndex = lastIndex
        self.persistedIndex = persistedIndex
        self.membership = membership
        self.progress = progress
        self.snapshotIndex = snapshotIndex
    }
}

/// What a member recovered from its durable storage at start.
public struct RestoredState: Sendable {
    /// The last durable hard state.
    public var hardState: HardState
    /// The latest durable snapshot, if any.
    public var snapshot: Snapshot?
    /// Durable entries after the snapshot (or from index 1), contiguous.
    public var entries: [Entry]

    /// Creates restored state.
    public init(hardState: HardState = HardState(), snapshot: Snapshot? = nil, entries: [Entry] = []) {
        self.hardState = hardState
        self.snapshot = snapshot
        self.entries = entries
    }
}
