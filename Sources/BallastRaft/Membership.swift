/// The members of a cluster: voters decide elections and commits, learners only receive the log.
public struct Membership: Sendable, Hashable {
    /// Voting members, sorted ascending, no duplicates.
    public private(set) var voters: [NodeID]
    /// Non-voting members catching up, sorted ascending, disjoint from `voters`.
    public private(set) var learners: [NodeID]

    /// Creates a membership; duplicates are removed and a node in both lists stays a voter.
    public init(voters: [NodeID], learners: [NodeID] = []) {
        let voterSet = Set(voters)
        self.voters = voterSet.sorted()
        self.learners = Set(learners).subtracting(voterSet).sorted()
    }

    /// Every member, voters then learners.
    public var allMembers: [NodeID] { voters + learners }
    /// Whether `id` is a voter.
    public func isVoter(_ id: NodeID) -> Bool { voters.contains(id) }
    /// Whether `id` is a learner.
    public func isLearner(_ id: NodeID) -> Bool { learners.contains(id) }
    /// Votes needed for a majority of voters.
    public var quorum: Int { voters.count / 2 + 1 }

    /// The membership after applying `change`, or an error explaining why the change is invalid.
    public func applying(_ change: ConfigChange) -> Result<Membership, RaftError> {
        switch change {
        case .addLearner(let id):
            if isVoter(id) || isLearner(id) { return .failure(.invalidConfigChange("\(id) is already a member")) }
            return .success(Membership(voters: voters, learners: learners + [id]))
        case .promote(let id):
            guard isLearner(id) else { return .failure(.invalidConfigChange("\(id) is not a learner")) }
            return .success(Membership(voters: voters + [id], learners: learners.filter { $0 != id }))
        case .remove(let id):
            guard isVoter(id) || isLearner(id) else { return .failure(.invalidConfigChange("\(id) is not a member")) }
            if isVoter(id) && voters.count == 1 {
                return .failure(.invalidConfigChange("cannot remove the last voter \(id)"))
            }
            return .success(Membership(voters: voters.filter { $0 != id }, learners: learners.filter { $0 != id }))
        }
    }
}

/// A change of membership, one server at a time (Raft thesis §4.1).
public enum ConfigChange: Sendable, Hashable {
    /// Adds a non-voting learner that receives the log.
    case addLearner(NodeID)
    /// Turns a caught-up learner into a voter.
    case promote(NodeID)
    /// Removes a voter or a learner.
    case remove(NodeID)

    /// The 9-byte encoding stored in a `.configChange` entry: a tag byte, then the node id big-endian.
    public var encoded: [UInt8] {
        let (tag, id): (UInt8, NodeID) = switch self {
        case .addLearner(let id): (1, id)
        case .promote(let id): (2, id)
        case .remove(let id): (3, id)
        }
        var bytes: [UInt8] = [tag]
        for shift in stride(from: 56, through: 0, by: -8) { bytes.append(UInt8(truncatingIfNeeded: id.rawValue >> UInt64(shift))) }
        return bytes
    }

    /// Decodes the first 9 bytes of a `.configChange` entry's data; nil for anything malformed.
    /// Bytes after the 9 are the change's context (the server puts the new member's addresses
    /// there); Raft ignores them, and entries written before contexts existed are exactly 9 bytes.
    public init?(encoded bytes: [UInt8]) {
        guard bytes.count >= 9 else { return nil }
        var raw: UInt64 = 0
        for byte in bytes[1 ..< 9] { raw = raw << 8 | UInt64(byte) }
        guard raw != 0 else { return nil }
        switch bytes[0] {
        case 1: self = .addLearner(NodeID(raw))
        case 2: self = .promote(NodeID(raw))
        case 3: self = .remove(NodeID(raw))
        default: return nil
        }
    }

    /// The context after the 9-byte change in a `.configChange` entry's data (empty if none).
    public static func context(of bytes: [UInt8]) -> ArraySlice<UInt8> { bytes.count > 9 ? bytes[9...] : [] }
}
