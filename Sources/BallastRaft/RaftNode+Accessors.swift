extension RaftNode {
    /// The current term; cheaper than `status` on hot paths (no progress copy).
    public var currentTerm: Term { term }
    /// The current role; cheaper than `status`.
    public var currentRole: RaftRole { role }
    /// The leader this member currently follows (itself when leading), if known.
    public var currentLeader: NodeID? { leader }
}

extension RaftNode {
    /// Whether the entry at `applied` belongs to the current term: for a leader, that its own
    /// no-op (and so everything committed before the term) has been applied.
    public func lastAppliedTermIsCurrent(applied: LogIndex) -> Bool {
        log.term(at: applied) == term
    }
}
