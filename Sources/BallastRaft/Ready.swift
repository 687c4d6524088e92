/// Everything the shell must do after feeding the core, collected since the last `takeReady()`.
///
/// Order of duties: (1) write `snapshot`, then `entries`, then `hardState` durably (entries replace
/// any stored suffix starting at `entries.first.index`, and must never be written after the hard
/// state that commits them); `messages` may be sent at the same time;
/// (2) once durable, send `messagesAfterPersist` and call `RaftNode.persisted(through:term:)`
/// (and restore the state machine from `snapshot` if present); (3) apply `committed` in order.
/// Readies must be handled in the order `takeReady()` returned them. With no entries but a
/// snapshot, report `persisted(through: snapshot index, term: snapshot term)`. See docs/raft.md.
public struct Ready: Sendable {
    /// New hard state to persist, if it changed.
    public var hardState: HardState?
    /// Entries to append durably; they may overwrite a conflicting suffix.
    public var entries: [Entry] = []
    /// A snapshot received from the leader: persist it, restore the state machine from it,
    /// and drop log entries it covers.
    public var snapshot: Snapshot?
    /// Messages that may be sent before the writes above are durable (leader's appends, heartbeats).
    public var messages: [Message] = []
    /// Messages that must wait until the writes above are durable (votes, append acks).
    public var messagesAfterPersist: [Message] = []
    /// Committed entries to apply to the state machine, in index order.
    public var committed: [Entry] = []
    /// ReadIndex requests that may now be served once `applied >= index`.
    public var readStates: [ReadState] = []
    /// ReadIndex requests that cannot be served (leadership lost before confirmation).
    public var droppedReads: [UInt64] = []
    /// Set when enough log has been applied since the last snapshot that the shell should take one.
    public var snapshotSuggested: Bool = false

    /// Creates an empty ready.
    public init() {}

    /// Whether there is nothing to do.
    public var isEmpty: Bool {
        hardState == nil && entries.isEmpty && snapshot == nil && messages.isEmpty
            && messagesAfterPersist.isEmpty && committed.isEmpty && readStates.isEmpty
            && droppedReads.isEmpty && !snapshotSuggested
    }
}

/// A confirmed linearizable read point: serve the read with `context` once applied reaches `index`.
public struct ReadState: Sendable, Hashable {
    /// The caller's read context, as given to `RaftNode.readIndex(context:)`.
    public var context: UInt64
    /// The commit index the read must wait for.
    public var index: LogIndex

    /// Creates a read state.
    public init(context: UInt64, index: LogIndex) {
        self.context = context
        self.index = index
    }
}
