extension RaftNode {
    /// The current term; cheaper than `status` on hot paths (no progress copy).
    public var currentTerm: Term { term }
    /// The current role; cheaper than `status`.
    public var currentRole: RaftRole { role }
    /// The leader this member currently follows (itself when leading), if known.
    public var currentLeader: NodeID? { leader }
}
