/// Where a snapshot stands in the log and the membership in force at that point.
public struct SnapshotMetadata: Sendable, Hashable {
    /// The last log index the snapshot covers.
    public var index: LogIndex
    /// The term of the entry at `index`.
    public var term: Term
    /// The membership as of `index`.
    public var membership: Membership

    /// Creates snapshot metadata.
    public init(index: LogIndex, term: Term, membership: Membership) {
        self.index = index
        self.term = term
        self.membership = membership
    }
}

/// A state-machine snapshot: metadata plus the application's opaque serialized state.
public struct Snapshot: Sendable, Hashable {
    /// Where the snapshot stands.
    public var metadata: SnapshotMetadata
    /// The serialized state machine, opaque to Raft.
    public var data: [UInt8]

    /// Creates a snapshot.
    public init(metadata: SnapshotMetadata, data: [UInt8]) {
        self.metadata = metadata
        self.data = data
    }
}
