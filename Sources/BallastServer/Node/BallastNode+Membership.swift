import BallastProto
import BallastRaft
import BallastWire
import Logging
import NIOCore

/// Cluster membership on the node: the persisted address book, joining an existing cluster, and
/// the leader-only ClusterService calls that add, promote and remove members (docs/operations.md).
extension BallastNode {
    /// Opens (or creates) the data directory's members file and decides the bootstrap membership:
    /// the initial voters recorded there, else — on first start — those fetched for `--join`, else
    /// the ids of `--peers`. `--peers` then sets the Raft addresses of the ids it lists.
    static func openAddressBook(_ configuration: NodeConfiguration, logger: Logger) throws -> (AddressBook, Membership) {
        let file = MemberTableFile(dataDirectory: configuration.dataDirectory)
        var book: AddressBook
        if let stored = try file.load() {
            book = stored
        } else if !configuration.joinAddresses.isEmpty {
            guard let initial = configuration.joinInitialVoters, !initial.isEmpty else {
                throw ConfigurationError.invalid("--join: the cluster's initial voters are unknown (BallastNode.prepareJoin was not run)")
            }
            book = AddressBook(initialVoters: initial.map(\.rawValue))
            logger.info("joining an existing cluster; waiting to be added as a learner",
                        metadata: ["initialVoters": "\(book.initialVoters)"])
        } else {
            book = AddressBook(initialVoters: configuration.peers.keys.map(\.rawValue))
        }
        for (id, address) in configuration.peers where id != configuration.id {
            book.learn(NodeInfo(id: id.rawValue, raft: address.description, api: "", admin: ""), from: .commandLine)
        }
        try file.save(book)
        return (book, Membership(voters: book.initialVoters.map { NodeID($0) }))
    }

    /// The Raft transport around `book`, persisting every change of it to the members file.
    static func makeTransport(_ configuration: NodeConfiguration, info: NodeInfo, book: AddressBook,
                              group: any EventLoopGroup, logger: Logger, tls: RaftTLS? = nil) -> TCPRaftTransport {
        var overrides: [NodeID: PeerAddress] = [:]
        for (id, address) in configuration.peerAddressOverrides { overrides[id] = PeerAddress(host: address.host, port: address.port) }
        let file = MemberTableFile(dataDirectory: configuration.dataDirectory)
        return TCPRaftTransport(localInfo: info, book: book, overrides: overrides, group: group, logger: logger, tls: tls) { book in
            do { try file.save(book) } catch {
                logger.error("cannot persist the member table; it is rebuilt from peers after a restart", metadata: ["error": "\(error)"])
            }
        }
    }

    /// For `--join` on a data directory with no members file yet: asks the cluster (any of
    /// `joinAddresses`) for its initial voters, so this node's log folds to the same membership as
    /// everyone else's. Refuses an id that is or was a voter: a node that lost its disk must come
    /// back under a new id (its old votes and log are gone).
    public static func prepareJoin(_ configuration: NodeConfiguration, group: any EventLoopGroup) async throws -> NodeConfiguration {
        guard !configuration.joinAddresses.isEmpty,
              try MemberTableFile(dataDirectory: configuration.dataDirectory).load() == nil else { return configuration }
        var failures: [String] = []
        for address in configuration.joinAddresses {
            let response: Ballast_V1_DescribeClusterResponse
            do {
                var clientConfiguration = GRPCClientConfiguration()
                clientConfiguration.tls = configuration.tls?.clientOptions
                let client = try await GRPCClient.connect(host: address.host, port: address.port,
                                                          configuration: clientConfiguration, group: group)
                defer { Task { await client.close() } }
                response = try await client.unary(BallastMethod.Cluster.describeCluster, request: Ballast_V1_DescribeClusterRequest(),
                                                  timeout: .seconds(5))
            } catch {
                failures.append("\(address): \(error)")
                continue
            }
            let initial = response.initialVoters.compactMap { UInt64($0) }.filter { $0 > 0 }
            guard !initial.isEmpty else { failures.append("\(address): it reported no initial voters"); continue }
            let id = configuration.id.rawValue
            if initial.contains(id) || response.members.contains(where: { $0.id == String(id) && $0.role != .learner }) {
                throw ConfigurationError.invalid(
                    "--join: id \(id) is or was a voter of this cluster; a node that lost its data joins under a new id (docs/operations.md, \"Recover a node whose disk was lost\")")
            }
            var joined = configuration
            joined.joinInitialVoters = initial.map { NodeID($0) }
            return joined
        }
        throw ConfigurationError.invalid("--join: no node of the cluster answered:\n  " + failures.joined(separator: "\n  "))
    }

    /// Registers the leader-only membership calls of ClusterService.
    func registerMembershipService(_ registry: inout GRPCMethodRegistry) {
        registry.unary(BallastMethod.Cluster.addMember) { [self] (request: Ballast_V1_AddMemberRequest, context) in
            let response = try await addMember(request)
            auditMembership(context, "added node \(request.id) as a learner (raft \(request.raftAddress), api \(request.apiAddress))")
            return response
        }
        registry.unary(BallastMethod.Cluster.promoteMember) { [self] (request: Ballast_V1_PromoteMemberRequest, context) in
            let response = try await promoteMember(request)
            auditMembership(context, "promoted node \(request.id) to voter")
            return response
        }
        registry.unary(BallastMethod.Cluster.removeMember) { [self] (request: Ballast_V1_RemoveMemberRequest, context) in
            let response = try await removeMember(request)
            auditMembership(context, "removed node \(request.id)")
            return response
        }
        registry.unary(BallastMethod.Cluster.getMemberProgress) { [self] (request: Ballast_V1_GetMemberProgressRequest, _) in
            try await memberProgress(request)
        }
    }

    /// This node's status if it leads; otherwise UNAVAILABLE naming the leader.
    func leaderStatus() async throws -> RaftStatus {
        let status = await raftStatus()
        guard status.role == .leader else {
            throw GRPCStatus.notLeader(leaderAddress: status.leader.flatMap { transport.knownNodes[$0.rawValue]?.api })
        }
        return status
    }

    func addMember(_ request: Ballast_V1_AddMemberRequest) async throws -> Ballast_V1_AddMemberResponse {
        guard request.id > 0 else { throw GRPCStatus(.invalidArgument, "id must be a positive integer") }
        let addresses = try [("raft", request.raftAddress), ("api", request.apiAddress), ("admin", request.adminAddress)].map { name, text in
            do { return try HostPort(parsing: text).description } catch {
                throw GRPCStatus(.invalidArgument, "\(name) address: \(error)")
            }
        }
        let id = NodeID(request.id)
        let info = NodeInfo(id: request.id, raft: addresses[0], api: addresses[1], admin: addresses[2])
        let status = try await leaderStatus()
        if status.membership.isVoter(id) { throw GRPCStatus(.alreadyExists, "node \(request.id) is already a voter") }
        if transport.book.removed.contains(request.id) {
            throw GRPCStatus(.failedPrecondition,
                             "node \(request.id) was removed from this cluster; a node that comes back joins under a new id")
        }
        var response = Ballast_V1_AddMemberResponse()
        if status.membership.isLearner(id) {
            let known = transport.knownNodes[request.id]?.raft
            guard known == nil || known == info.raft else {
                throw GRPCStatus(.alreadyExists, "node \(request.id) is already a learner at \(known ?? "?"), not \(info.raft)")
            }
            response.alreadyLearner = true
            return response
        }
        // The leader dials the learner as soon as the entry is appended; followers learn the
        // address when they apply it.
        transport.learn(info, from: .configEntry)
        response.index = try await changeMembership(.addLearner(id), context: info.encoded).rawValue
        logger.info("learner added", metadata: ["member": "\(request.id)", "raft": "\(info.raft)", "index": "\(response.index)"])
        return response
    }

    func promoteMember(_ request: Ballast_V1_PromoteMemberRequest) async throws -> Ballast_V1_PromoteMemberResponse {
        let id = NodeID(request.id)
        let status = try await leaderStatus()
        if status.membership.isVoter(id) { throw GRPCStatus(.alreadyExists, "node \(request.id) is already a voter") }
        guard status.membership.isLearner(id) else {
            throw GRPCStatus(.notFound, "node \(request.id) is not a learner of this cluster; add it first (ballast cluster add-node)")
        }
        var response = Ballast_V1_PromoteMemberResponse()
        response.index = try await changeMembership(.promote(id)).rawValue
        logger.info("learner promoted to voter", metadata: ["member": "\(request.id)", "index": "\(response.index)"])
        return response
    }

    func removeMember(_ request: Ballast_V1_RemoveMemberRequest) async throws -> Ballast_V1_RemoveMemberResponse {
        let id = NodeID(request.id)
        let status = try await leaderStatus()
        let membership = status.membership
        guard membership.isVoter(id) || membership.isLearner(id) else {
            let members = membership.allMembers.map { String($0.rawValue) }.joined(separator: ", ")
            throw GRPCStatus(.notFound, "node \(request.id) is not a member of this cluster (members: \(members))")
        }
        if membership.isVoter(id) && membership.voters.count == 1 {
            throw GRPCStatus(.failedPrecondition, "node \(request.id) is the last voter; a cluster cannot remove its last voter")
        }
        if id == configuration.id { try await handOverLeadership(status) }
        var response = Ballast_V1_RemoveMemberResponse()
        response.index = try await changeMembership(.remove(id)).rawValue
        logger.info("member removed", metadata: ["member": "\(request.id)", "index": "\(response.index)"])
        return response
    }

    /// The leader is asked to remove itself: it hands leadership to the most caught-up voter and
    /// answers UNAVAILABLE naming the new leader, where the caller retries (which then removes us).
    private func handOverLeadership(_ status: RaftStatus) async throws {
        let candidates = status.membership.voters.filter { $0 != configuration.id }
        guard let target = candidates.max(by: { (status.progress[$0]?.match ?? .zero) < (status.progress[$1]?.match ?? .zero) }) else {
            throw GRPCStatus(.failedPrecondition, "no other voter to hand leadership to")
        }
        logger.info("removing this leader: transferring leadership first", metadata: ["target": "\(target)"])
        driver.transferLeadership(to: target)
        let deadline = ContinuousClock.now + .seconds(5)
        var now = await raftStatus()
        while now.role == .leader, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(10))
            now = await raftStatus()
        }
        guard now.role != .leader else {
            throw GRPCStatus(.unavailable, "leadership transfer to \(target.rawValue) did not complete in time; retry")
        }
        throw GRPCStatus.notLeader(leaderAddress: now.leader.flatMap { transport.knownNodes[$0.rawValue]?.api })
    }

    func memberProgress(_ request: Ballast_V1_GetMemberProgressRequest) async throws -> Ballast_V1_GetMemberProgressResponse {
        let id = NodeID(request.id)
        let status = try await leaderStatus()
        guard status.membership.isVoter(id) || status.membership.isLearner(id) else {
            throw GRPCStatus(.notFound, "node \(request.id) is not a member of this cluster")
        }
        var response = Ballast_V1_GetMemberProgressResponse()
        response.leaderID = String(configuration.id.rawValue)
        response.role = status.membership.isLearner(id) ? .learner : (id == configuration.id ? .leader : .follower)
        let progress = status.progress[id]
        response.matchIndex = id == configuration.id ? status.persistedIndex.rawValue : (progress?.match.rawValue ?? 0)
        response.state = progress?.state.rawValue ?? ""
        response.leaderLastIndex = status.lastIndex.rawValue
        response.leaderCommit = status.commit.rawValue
        return response
    }

    /// Proposes a membership change and waits until it is committed and applied here.
    func changeMembership(_ change: ConfigChange, context: [UInt8] = []) async throws -> LogIndex {
        let driver = self.driver
        let outcome = await withCheckedContinuation { continuation in
            driver.changeMembership(change, context: context) { continuation.resume(returning: $0) }
        }
        switch outcome {
        case .success(let applied): return applied.index
        case .failure(.refused(.configChangeInProgress)):
            throw GRPCStatus(.aborted, "another membership change is in flight (not yet committed); retry once it commits")
        case .failure(.refused(.invalidConfigChange(let why))):
            throw GRPCStatus(.failedPrecondition, why)
        case .failure(let error):
            throw status(for: error)
        }
    }
}

/// Sits between the Raft driver and the engine: passes everything through and, on the way,
/// applies committed membership changes to the transport's address book (a learner's addresses
/// ride in its `addLearner` entry; a removed member stops being dialled) and keeps the book to
/// the snapshot's membership when one is installed. Runs on the driver's loop thread.
final class MembershipTracker: RaftStateMachine {
    private let inner: any RaftStateMachine
    private let transport: TCPRaftTransport
    private let localID: NodeID
    private let logger: Logger

    init(inner: any RaftStateMachine, transport: TCPRaftTransport, localID: NodeID, logger: Logger) {
        self.inner = inner
        self.transport = transport
        self.localID = localID
        self.logger = logger
    }

    func apply(_ entry: Entry) -> (any Sendable)? {
        if entry.kind == .configChange { applied(entry) }
        return inner.apply(entry)
    }

    func apply(_ entry: Entry, proposed message: any Sendable) -> (any Sendable)? {
        if entry.kind == .configChange { applied(entry) }
        return inner.apply(entry, proposed: message)
    }

    func finishApplying() { inner.finishApplying() }

    private func applied(_ entry: Entry) {
        guard let change = ConfigChange(encoded: entry.data) else { return }
        switch change {
        case .addLearner(let id):
            let context = ConfigChange.context(of: entry.data)
            guard !context.isEmpty else { return }
            guard let info = try? NodeInfo(encoded: Array(context)), info.id == id.rawValue else {
                logger.warning("config entry carries unreadable member addresses; ignoring them", metadata: ["index": "\(entry.index)"])
                return
            }
            transport.learn(info, from: .configEntry)
        case .promote:
            break
        case .remove(let id) where id == localID:
            logger.warning("this node was removed from the cluster; it no longer takes part and can be stopped",
                           metadata: ["index": "\(entry.index)"])
        case .remove(let id):
            transport.removeMember(id)
        }
    }

    func captureSnapshot() -> SnapshotSerializer { inner.captureSnapshot() }

    func restore(from snapshot: Snapshot) { prepareRestore(from: snapshot)()?() }

    func startWithoutSnapshot() { inner.startWithoutSnapshot() }

    func prepareRestore(from snapshot: Snapshot) -> SnapshotRestore {
        logger.info("restoring the state machine from a snapshot",
                    metadata: ["index": "\(snapshot.metadata.index)", "bytes": "\(snapshot.data.count)"])
        let rebuild = inner.prepareRestore(from: snapshot)
        let transport = self.transport
        let members = Set(snapshot.metadata.membership.allMembers)
        return {
            guard let install = rebuild() else { return nil }
            return {
                install()
                transport.restrictMembers(to: members)
            }
        }
    }
}
