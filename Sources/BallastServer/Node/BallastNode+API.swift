import BallastEngine
import BallastProto
import BallastWire

extension BallastNode {
    /// The methods the API port answers.
    func makeRegistry() -> GRPCMethodRegistry {
        var registry = GRPCMethodRegistry()
        registry.unary(BallastMethod.Cluster.describeCluster) { [self] (_: Ballast_V1_DescribeClusterRequest, _) in
            await describeCluster()
        }
        registerMembershipService(&registry)
        registerWorkflowService(&registry)
        registerHistoryService(&registry)
        registerWorkerService(&registry)
        registerAdminService(&registry)
        return authorize(registry)
    }

    /// The cluster in the protobuf form of `ClusterService.DescribeCluster`; any node answers.
    public func describeCluster() async -> Ballast_V1_DescribeClusterResponse {
        let view = await clusterView()
        var response = Ballast_V1_DescribeClusterResponse()
        response.leaderID = view.leader ?? ""
        response.answeredBy = String(configuration.id.rawValue)
        response.initialVoters = transport.book.initialVoters.map { String($0) }
        response.members = view.members.map { member in
            var proto = Ballast_V1_ClusterMember()
            proto.id = member.id
            proto.role = Self.protoRole(member.role)
            proto.term = member.term
            proto.commit = member.commit
            proto.applied = member.applied
            proto.apiAddress = member.api
            proto.raftAddress = member.raft
            proto.adminAddress = member.admin
            proto.reachable = member.reachable
            // What the member itself reports; a reachable build from before the field applies version 1.
            proto.engineFormatVersion = member.reachable ? member.engineFormatVersion ?? engineFormatVersion : 0
            if member.id == view.leader { response.leaderApiAddress = member.api }
            return proto
        }
        return response
    }

    static func protoRole(_ role: String) -> Ballast_V1_MemberRole {
        switch role {
        case "leader": .leader
        case "candidate": .candidate
        case "learner": .learner
        default: .follower
        }
    }
}
