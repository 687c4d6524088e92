/// One Raft member as a value that reacts: feed it ticks, messages and proposals, then drain
/// what it wants done with `takeReady()`. No I/O, clocks, threads or unseeded randomness.
///
/// API CONTRACT (implementation in progress — see docs/raft.md when written).
public struct RaftNode: Sendable {
    /// Starts a member from what its storage recovered. `bootstrap` gives the initial membership
    /// of a brand-new cluster (ignored when `restored` has a snapshot or config entries).
    /// `randomSeed` drives election jitter.
    public init(configuration: RaftConfiguration, restored: RestoredState, bootstrap: Membership?, randomSeed: UInt64) {
        preconditionFailure("RaftNode is being implemented")
    }

    /// Advances logical time by one tick (elections, heartbeats, check-quorum).
    public mutating func tick() { preconditionFailure("RaftNode is being implemented") }

    /// Handles a message from a peer.
    public mutating func step(_ message: Message) { preconditionFailure("RaftNode is being implemented") }

    /// Appends `data` as a new entry if this node is the leader; returns its index.
    /// A follower fails fast with `.notLeader(leaderHint:)`.
    public mutating func propose(_ data: [UInt8]) throws(RaftError) -> LogIndex {
        preconditionFailure("RaftNode is being implemented")
    }

    /// Proposes a one-server membership change; only one may be uncommitted at a time.
    public mutating func proposeConfigChange(_ change: ConfigChange) throws(RaftError) -> LogIndex {
        preconditionFailure("RaftNode is being implemented")
    }

    /// Starts a ReadIndex round; the answer arrives as a `ReadState` (or a dropped read) in a later `Ready`.
    public mutating func readIndex(context: UInt64) throws(RaftError) {
        preconditionFailure("RaftNode is being implemented")
    }

    /// Hands leadership to `target` (TimeoutNow once it is caught up).
    public mutating func transferLeadership(to target: NodeID) throws(RaftError) {
        preconditionFailure("RaftNode is being implemented")
    }

    /// Reports that entries up to `index` (whose entry has `term`) are durable. A stale report
    /// (the entry at `index` now has another term) is ignored.
    public mutating func persisted(through index: LogIndex, term: Term) {
        preconditionFailure("RaftNode is being implemented")
    }

    /// Reports that the application took a snapshot at `metadata.index` (≤ applied), so the log
    /// before it (minus the compaction slack) can be dropped and lagging followers get this snapshot.
    public mutating func snapshotTaken(_ snapshot: Snapshot) {
        preconditionFailure("RaftNode is being implemented")
    }

    /// Drains and returns everything the shell must do now.
    public mutating func takeReady() -> Ready { preconditionFailure("RaftNode is being implemented") }

    /// A read-only picture of this member.
    public var status: RaftStatus { preconditionFailure("RaftNode is being implemented") }
}
