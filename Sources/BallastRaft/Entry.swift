/// What a log entry carries.
public enum EntryKind: UInt8, Sendable, Hashable {
    /// Application data (an engine command), opaque to Raft.
    case normal = 0
    /// The empty entry a new leader appends at the start of its term.
    case noop = 1
    /// A membership change; `data` is a `ConfigChange` encoding.
    case configChange = 2
}

/// One entry of the replicated log.
public struct Entry: Sendable, Hashable {
    /// The term of the leader that created the entry.
    public var term: Term
    /// The entry's position in the log.
    public var index: LogIndex
    /// What the entry carries.
    public var kind: EntryKind
    /// The payload, opaque to Raft for `.normal` entries.
    public var data: [UInt8]

    /// Creates an entry.
    public init(term: Term, index: LogIndex, kind: EntryKind = .normal, data: [UInt8] = []) {
        self.term = term
        self.index = index
        self.kind = kind
        self.data = data
    }

    /// Bytes the entry occupies for batching and size accounting (payload plus a fixed header).
    public var sizeBytes: Int { data.count + 24 }
}

/// The state Raft must make durable before it answers a vote or an append.
public struct HardState: Sendable, Hashable {
    /// The latest term this node has seen.
    public var term: Term
    /// The candidate this node voted for in `term`, if any.
    public var votedFor: NodeID?
    /// The highest index known to be committed (may lag; it is a hint on restart).
    public var commit: LogIndex

    /// Creates a hard state.
    public init(term: Term = .zero, votedFor: NodeID? = nil, commit: LogIndex = .zero) {
        self.term = term
        self.votedFor = votedFor
        self.commit = commit
    }
}
