import BallastEngine
import BallastRaft

/// One member's view of itself, served as JSON at the admin port's `/status`.
public struct NodeStatus: Codable, Sendable, Equatable {
    /// A follower's replication as the leader sees it.
    public struct PeerProgress: Codable, Sendable, Equatable {
        public var id: String
        public var match: UInt64
        public var next: UInt64
        public var state: String
        public var recentlyActive: Bool
    }

    public var id: String
    public var role: String
    public var term: UInt64
    public var commit: UInt64
    public var applied: UInt64
    public var lastIndex: UInt64
    public var persistedIndex: UInt64
    public var leader: String?
    public var raft: String
    public var api: String
    public var admin: String
    public var voters: [String]
    public var learners: [String]
    /// Replication progress per follower; empty unless this node leads.
    public var peers: [PeerProgress]
    /// The engine's state digest (hex), when asked for with `/status?digest=1`.
    public var stateDigest: String?
    /// The last engine entry the digest covers.
    public var digestIndex: UInt64?
    /// The newest engine entry format this node's build applies (3: bounded retry arithmetic;
    /// 2: eager dispatch); absent from builds before the field, which apply version 1 only.
    public var engineFormatVersion: UInt32?
    /// Whether this node writes eager entries when it leads (configured, and every member has
    /// reported format 2): on the leader, whether it does now; on a follower, whether it would at
    /// once if elected.
    public var eagerDispatch: Bool?
    /// The engine format of the entries this node writes when it leads: the newest every member
    /// has reported (1 with `--eager-dispatch false`); on a follower, what it would write at once
    /// if elected. Absent from builds before format 3.
    public var entryFormat: UInt32?

    /// Builds the status from the core's picture and this node's addresses.
    public init(raft status: RaftStatus, info: NodeInfo) {
        id = String(status.id.rawValue)
        role = status.role.contractName
        term = status.term.rawValue
        commit = status.commit.rawValue
        applied = status.applied.rawValue
        lastIndex = status.lastIndex.rawValue
        persistedIndex = status.persistedIndex.rawValue
        leader = status.leader.map { String($0.rawValue) }
        engineFormatVersion = newestEngineFormatVersion
        raft = info.raft
        api = info.api
        admin = info.admin
        voters = status.membership.voters.map { String($0.rawValue) }
        learners = status.membership.learners.map { String($0.rawValue) }
        peers = status.progress.sorted { $0.key < $1.key }.map { id, progress in
            PeerProgress(id: String(id.rawValue), match: progress.match.rawValue, next: progress.next.rawValue,
                         state: progress.state.rawValue, recentlyActive: progress.recentlyActive)
        }
    }
}

extension RaftRole {
    /// The role names DESIGN.md fixes for status output (a pre-candidate shows as a candidate).
    public var contractName: String {
        switch self {
        case .leader: "leader"
        case .follower: "follower"
        case .candidate, .preCandidate: "candidate"
        case .learner: "learner"
        }
    }
}

/// The whole cluster as one member describes it (`ballast cluster status --json`).
public struct ClusterView: Codable, Sendable, Equatable {
    /// One member as seen from the describing node.
    public struct Member: Codable, Sendable, Equatable {
        public var id: String
        public var role: String
        public var term: UInt64
        public var commit: UInt64
        public var applied: UInt64
        public var api: String
        public var raft: String
        public var admin: String
        public var reachable: Bool
        public var leader: String?
        /// The newest engine format the member's build applies, from its `/status` (nil: unknown,
        /// or a build from before the field, which applies version 1 only).
        public var engineFormatVersion: UInt32?

        /// Creates a member entry.
        public init(id: String, role: String, term: UInt64, commit: UInt64, applied: UInt64, api: String, raft: String,
                    admin: String, reachable: Bool, leader: String?, engineFormatVersion: UInt32? = nil) {
            (self.id, self.role, self.term, self.commit, self.applied) = (id, role, term, commit, applied)
            (self.api, self.raft, self.admin, self.reachable, self.leader) = (api, raft, admin, reachable, leader)
            self.engineFormatVersion = engineFormatVersion
        }
    }

    public var leader: String?
    public var members: [Member]

    /// Creates a cluster view.
    public init(leader: String?, members: [Member]) {
        self.leader = leader
        self.members = members
    }

    /// Encodes `leader` as JSON null when unknown, as DESIGN.md fixes, rather than omitting it.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(leader, forKey: .leader)
        try container.encode(members, forKey: .members)
    }
}
