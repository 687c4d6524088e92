/// A message between two Raft members. `term` is the sender's current term.
public struct Message: Sendable, Hashable {
    /// The sender.
    public var from: NodeID
    /// The receiver.
    public var to: NodeID
    /// The sender's term (for a pre-vote request: the term the sender would campaign in).
    public var term: Term
    /// What the message says.
    public var body: MessageBody

    /// Creates a message.
    public init(from: NodeID, to: NodeID, term: Term, body: MessageBody) {
        self.from = from
        self.to = to
        self.term = term
        self.body = body
    }
}

/// The kinds of Raft message and their contents.
public enum MessageBody: Sendable, Hashable {
    /// Pre-vote (thesis §9.6): would you vote for me if I campaigned? Changes no state.
    case preVote(lastLogIndex: LogIndex, lastLogTerm: Term)
    /// Answer to a pre-vote.
    case preVoteResponse(granted: Bool)
    /// RequestVote. `leadershipTransfer` lets it through a follower's leader lease.
    case vote(lastLogIndex: LogIndex, lastLogTerm: Term, leadershipTransfer: Bool)
    /// Answer to a RequestVote.
    case voteResponse(granted: Bool)
    /// AppendEntries: `entries` follow the entry at `previousIndex` of term `previousTerm`.
    case append(previousIndex: LogIndex, previousTerm: Term, entries: [Entry], commit: LogIndex)
    /// Answer to AppendEntries, sent only once the entries are durable.
    case appendResponse(AppendResponse)
    /// Leader heartbeat; `commit` is capped at what the follower is known to hold.
    /// `readContext` is nonzero while a ReadIndex round is in progress.
    case heartbeat(commit: LogIndex, readContext: UInt64)
    /// Answer to a heartbeat, echoing its read context.
    case heartbeatResponse(readContext: UInt64)
    /// One chunk of a snapshot, starting at byte `offset` of `totalBytes`.
    case installSnapshot(SnapshotChunk)
    /// Acknowledges snapshot bytes up to `nextOffset`; `done` once installed and durable.
    case installSnapshotResponse(snapshotIndex: LogIndex, nextOffset: UInt64, done: Bool, rejected: Bool)
    /// Leadership transfer: start an election now, ignoring the election timeout.
    case timeoutNow
}

/// The answer to an AppendEntries.
public struct AppendResponse: Sendable, Hashable {
    /// Whether the entries matched and were appended.
    public var success: Bool
    /// On success, the last index now known to match the leader's log.
    /// On rejection, the `previousIndex` that was rejected.
    public var index: LogIndex
    /// On rejection, the term of the follower's entry at the rejected index (nil if it has none there).
    public var conflictTerm: Term?
    /// On rejection, a hint: the first index of `conflictTerm` in the follower's log, or its last index + 1.
    public var conflictIndex: LogIndex

    /// Creates an append response.
    public init(success: Bool, index: LogIndex, conflictTerm: Term? = nil, conflictIndex: LogIndex = .zero) {
        self.success = success
        self.index = index
        self.conflictTerm = conflictTerm
        self.conflictIndex = conflictIndex
    }
}

/// A piece of a snapshot on its way to a follower.
public struct SnapshotChunk: Sendable, Hashable {
    /// Where the snapshot stands in the log.
    public var metadata: SnapshotMetadata
    /// Byte offset of `data` within the snapshot.
    public var offset: UInt64
    /// Total size of the snapshot's data.
    public var totalBytes: UInt64
    /// The bytes of this chunk.
    public var data: [UInt8]
    /// Whether this is the last chunk.
    public var done: Bool

    /// Creates a chunk.
    public init(metadata: SnapshotMetadata, offset: UInt64, totalBytes: UInt64, data: [UInt8], done: Bool) {
        self.metadata = metadata
        self.offset = offset
        self.totalBytes = totalBytes
        self.data = data
        self.done = done
    }
}
