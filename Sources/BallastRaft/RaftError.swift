/// Why the Raft core refused a request. Every case says what to do next.
public enum RaftError: Error, Sendable, Hashable, CustomStringConvertible {
    /// This node is not the leader; retry on `leaderHint` when it is known.
    case notLeader(leaderHint: NodeID?)
    /// A leadership transfer is under way; proposals are refused until it ends.
    case leadershipTransferInProgress
    /// A membership change is still uncommitted; only one may be in flight.
    case configChangeInProgress
    /// The membership change does not apply to the current membership.
    case invalidConfigChange(String)
    /// Too many proposed bytes are not yet committed; back off and retry.
    case proposalBacklogFull(uncommittedBytes: Int, limitBytes: Int)
    /// The target of a leadership transfer is not a voter.
    case unknownTransferTarget(NodeID)

    public var description: String {
        switch self {
        case .notLeader(let hint): "not the leader" + (hint.map { "; the leader is \($0)" } ?? "; no leader known")
        case .leadershipTransferInProgress: "a leadership transfer is in progress; retry shortly"
        case .configChangeInProgress: "a membership change is already in progress; retry once it commits"
        case .invalidConfigChange(let why): "invalid membership change: \(why)"
        case .proposalBacklogFull(let bytes, let limit): "\(bytes) uncommitted bytes exceed the limit of \(limit); retry later"
        case .unknownTransferTarget(let id): "\(id) is not a voter and cannot take leadership"
        }
    }
}
