import BallastEngine
import BallastProto
import BallastRaft
import BallastStorage
import BallastWire
import Foundation
import Logging
import NIOPosix
import SwiftProtobuf
import Testing
@testable import BallastServer

/// Test metadata naming the peer a connection "verified" (stands in for the TLS layer, which
/// sets `GRPCServerContext.peer` from the client certificate; see `PeerInjectingServer`).
private let testPeerHeader = "x-test-peer"

/// A one-node cluster enforcing authorization, bootstrapped with roles, whose API registry is
/// served by a server that sets `context.peer` from `x-test-peer` as the TLS layer would from a
/// verified certificate. Everything behind that — the authorizer, the handlers, Raft, the
/// engine — is the node's own.
final class AuthorizedNode: Sendable {
    let node: BallastNode
    let machine: EngineStateMachine
    let store: HistoryFileStore
    let directory: String
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    let server: GRPCServer

    static let roles = """
        # identity  role    namespace  queue
        ops         admin   *
        alice       writer  default
        reader-1    reader  default
        worker-1    worker  default    payments
        """

    /// `adminTokens`: the text of an `--admin-tokens` file for the node (mode 600).
    init(enforce: Bool = true, roles: String = AuthorizedNode.roles, adminTokens: String? = nil) async throws {
        directory = try temporaryDirectory()
        store = try HistoryFileStore(directory: directory + "/history")
        machine = EngineStateMachine(logger: Logger(label: "test.authz"), history: store) { why in Issue.record("fatal: \(why)") }
        let raftPort = try ServerSocketProbe().port
        var configuration = NodeConfiguration(
            id: NodeID(1), dataDirectory: directory, raftAddress: HostPort(host: "127.0.0.1", port: raftPort),
            apiAddress: HostPort(host: "127.0.0.1", port: 0), adminAddress: HostPort(host: "127.0.0.1", port: 0),
            peers: [NodeID(1): HostPort(host: "127.0.0.1", port: raftPort)])
        configuration.raft.electionTimeoutTicks = 5
        configuration.security.enforceAuthorization = enforce
        configuration.security.bootstrapRoles = try RolesFile.parse(roles, path: "test-roles")
        configuration.security.rolesSource = "test-roles"
        if let adminTokens {
            let path = directory + "/admin-tokens"
            try adminTokens.write(toFile: path, atomically: true, encoding: .utf8)
            try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: path)
            configuration.adminTokensPath = path
        }
        node = try BallastNode(configuration: configuration, stateMachine: machine, logger: Logger(label: "test.authz"))
        try await node.start()
        var injecting = GRPCMethodRegistry()
        for (path, handler) in node.makeRegistry().methods {
            injecting.register(path, GRPCMethodHandler(kind: handler.kind) { bytes, context, responder in
                let peer = context.metadata.first(testPeerHeader).map {
                    PeerIdentity(name: $0, subject: "CN=\($0)", alternativeNames: ["ballast://\($0)"])
                }
                let verified = GRPCServerContext(path: context.path, metadata: context.metadata, deadline: context.deadline, peer: peer)
                return handler.start(bytes, verified, responder)
            })
        }
        server = try await GRPCServer.start(host: "127.0.0.1", port: 0, registry: injecting, group: group)
        let deadline = ContinuousClock.now + .seconds(10)
        while await node.raftStatus().role != .leader || (!roles.isEmpty && !machine.rolePublisher.rolesInitialized) {
            guard ContinuousClock.now < deadline else { throw GRPCStatus(.unavailable, "no leader with roles within 10 s") }
            try await Task.sleep(for: .milliseconds(10))
        }
    }

    /// A client whose calls carry the verified identity `peer` (none: a cleartext connection).
    func call<Request: SwiftProtobuf.Message, Response: SwiftProtobuf.Message>(
        _ path: String, _ request: Request, as peer: String?, metadata extra: [(String, String)] = [],
        timeout: Duration = .seconds(10)
    ) async throws -> Response {
        let client = try await GRPCClient.connect(host: "127.0.0.1", port: server.port ?? 0, group: group)
        defer { Task { await client.close() } }
        var metadata = GRPCMetadata()
        if let peer { metadata.add(testPeerHeader, peer) }
        for (name, value) in extra { metadata.add(name, value) }
        return try await client.unary(path, request: request, metadata: metadata, timeout: timeout)
    }

    /// The run's history as the engine recorded it.
    func history(_ runId: String) throws -> [Ballast_V1_HistoryEvent] {
        try machine.historyEvents(runId: runId, from: 1, max: 1_000)
    }

    /// Polls the audit log (as `ops`) until `condition` holds for it.
    func waitForAudit(_ condition: ([Ballast_V1_AuditRecord]) -> Bool) async throws -> [Ballast_V1_AuditRecord] {
        let deadline = ContinuousClock.now + .seconds(10)
        while true {
            var request = Ballast_V1_ReadAuditLogRequest()
            request.limit = 1_000
            let response: Ballast_V1_ReadAuditLogResponse = try await call(BallastMethod.Admin.readAuditLog, request, as: "ops")
            if condition(response.records) { return response.records }
            guard ContinuousClock.now < deadline else {
                Issue.record("audit log never matched: \(response.records.map(\.detail))")
                return response.records
            }
            try await Task.sleep(for: .milliseconds(50))
        }
    }

    func stop() async {
        await server.close()
        await node.shutdown()
        store.close()
        try? await group.shutdownGracefully()
        try? FileManager.default.removeItem(atPath: directory)
    }
}

private func permissionDenied(_ body: () async throws -> Void) async -> GRPCStatus? {
    do {
        try await body()
        return nil
    } catch let status as GRPCStatus {
        return status
    } catch {
        return GRPCStatus(.unknown, "\(error)")
    }
}

private func terminateRequest(_ workflowId: String) -> Ballast_V1_TerminateWorkflowRequest {
    var request = Ballast_V1_TerminateWorkflowRequest()
    request.workflowExecution.workflowID = workflowId
    request.reason = "test"
    return request
}

@Suite("Authorization on a node", .serialized)
struct AuthorizationNodeTests {
    @Test("a worker identity trying to start a workflow is refused naming the role; the cluster keeps serving")
    func workerCannotStart() async throws {
        let cluster = try await AuthorizedNode()
        defer { Task { await cluster.stop() } }
        let status = await permissionDenied {
            let _: Ballast_V1_StartWorkflowResponse = try await cluster.call(BallastMethod.Workflow.start, startRequest("wf-1"), as: "worker-1")
        }
        #expect(status?.code == .permissionDenied)
        #expect(status?.message.contains("lacks role writer in namespace default") == true, "\(status?.message ?? "")")
        #expect(status?.message.contains("worker-1") == true)
        let started: Ballast_V1_StartWorkflowResponse = try await cluster.call(BallastMethod.Workflow.start, startRequest("wf-1"), as: "alice")
        #expect(!started.runID.isEmpty, "a writer still starts the same workflow")
    }

    @Test("a reader trying to terminate is refused naming the role; the run stays open")
    func readerCannotTerminate() async throws {
        let cluster = try await AuthorizedNode()
        defer { Task { await cluster.stop() } }
        let started: Ballast_V1_StartWorkflowResponse = try await cluster.call(BallastMethod.Workflow.start, startRequest("wf-2"), as: "alice")
        let status = await permissionDenied {
            let _: Ballast_V1_TerminateWorkflowResponse = try await cluster.call(BallastMethod.Workflow.terminate, terminateRequest("wf-2"), as: "reader-1")
        }
        #expect(status?.code == .permissionDenied && status?.message.contains("lacks role writer") == true)
        var describe = Ballast_V1_DescribeWorkflowExecutionRequest()
        describe.execution.workflowID = "wf-2"
        let described: Ballast_V1_DescribeWorkflowExecutionResponse = try await cluster.call(
            BallastMethod.Workflow.describe, describe, as: "reader-1")
        #expect(described.info.status == .running && described.info.execution.runID == started.runID)
        let denied = try await cluster.waitForAudit { records in records.contains { $0.kind == .accessDenied && $0.identity == "reader-1" } }
        let record = try #require(denied.first { $0.kind == .accessDenied && $0.identity == "reader-1" })
        #expect(record.method == BallastMethod.Workflow.terminate && record.role == .writer && record.namespace == "default")
        #expect(record.identityVerified && record.nodeID == 1)
    }

    @Test("a worker may poll its own queue only, and calls without a certificate are refused")
    func workerQueueAndNoCertificate() async throws {
        let cluster = try await AuthorizedNode()
        defer { Task { await cluster.stop() } }
        var poll = Ballast_V1_PollActivityTaskRequest()
        poll.taskQueue = "payroll"
        let other = await permissionDenied {
            let _: Ballast_V1_PollActivityTaskResponse = try await cluster.call(
                BallastMethod.Worker.pollActivityTask, poll, as: "worker-1", timeout: .seconds(1))
        }
        #expect(other?.code == .permissionDenied && other?.message.contains("on task queue payroll") == true, "\(other?.message ?? "")")
        poll.taskQueue = "payments"
        let own: Ballast_V1_PollActivityTaskResponse = try await cluster.call(
            BallastMethod.Worker.pollActivityTask, poll, as: "worker-1", timeout: .seconds(1))
        #expect(!own.hasTask, "allowed; the poll ends empty at its deadline")
        let anonymous = await permissionDenied {
            let _: Ballast_V1_DescribeClusterResponse = try await cluster.call(
                BallastMethod.Cluster.describeCluster, Ballast_V1_DescribeClusterRequest(), as: nil)
        }
        #expect(anonymous?.code == .unauthenticated)
    }

    @Test("the verified identity overwrites the claimed one: a request claiming alice from bob's certificate records bob")
    func identityOverwrite() async throws {
        let cluster = try await AuthorizedNode()
        defer { Task { await cluster.stop() } }
        var grant = Ballast_V1_GrantRoleRequest()
        grant.binding = RoleGrant(identity: "bob", role: .writer, namespace: "default").proto
        grant.actor = "alice"
        grant.reason = "bob runs the payments desk"
        let granted: Ballast_V1_GrantRoleResponse = try await cluster.call(BallastMethod.Admin.grantRole, grant, as: "ops")
        #expect(granted.changed)
        var start = startRequest("wf-bob")
        start.identity = "alice"
        let started: Ballast_V1_StartWorkflowResponse = try await cluster.call(
            BallastMethod.Workflow.start, start, as: "bob", metadata: [("ballast-identity", "alice")])
        var signal = Ballast_V1_SignalWorkflowRequest()
        signal.workflowExecution.workflowID = "wf-bob"
        signal.signalName = "approve"
        signal.identity = "alice"
        let _: Ballast_V1_SignalWorkflowResponse = try await cluster.call(BallastMethod.Workflow.signal, signal, as: "bob")
        var terminate = terminateRequest("wf-bob")
        terminate.identity = "alice"
        terminate.reason = "duplicate payment"
        let _: Ballast_V1_TerminateWorkflowResponse = try await cluster.call(BallastMethod.Workflow.terminate, terminate, as: "bob")
        let events = try cluster.history(started.runID)
        #expect(events.first?.workflowExecutionStarted.identity == "bob")
        let signaled = try #require(events.first { event in
            if case .workflowExecutionSignaled? = event.attributes { return true }
            return false
        })
        #expect(signaled.workflowExecutionSignaled.identity == "bob")
        let terminated = try #require(events.last)
        #expect(terminated.workflowExecutionTerminated.identity == "bob")
        #expect(terminated.workflowExecutionTerminated.reason == "duplicate payment")
        let audit = try await cluster.waitForAudit { $0.contains { $0.kind == .roleGranted } }
        let record = try #require(audit.first { $0.kind == .roleGranted })
        #expect(record.identity == "ops", "the actor is the certificate's identity, not the claimed alice")
        #expect(record.detail.contains("bob runs the payments desk"))
    }

    @Test("roles change through the admin service only for an admin, and take effect on the next call")
    func grantRevokeTakeEffect() async throws {
        let cluster = try await AuthorizedNode()
        defer { Task { await cluster.stop() } }
        var grant = Ballast_V1_GrantRoleRequest()
        grant.binding = RoleGrant(identity: "carol", role: .writer, namespace: "default").proto
        let refused = await permissionDenied {
            let _: Ballast_V1_GrantRoleResponse = try await cluster.call(BallastMethod.Admin.grantRole, grant, as: "alice")
        }
        #expect(refused?.code == .permissionDenied && refused?.message.contains("role admin for the whole cluster") == true)
        let before = await permissionDenied {
            let _: Ballast_V1_StartWorkflowResponse = try await cluster.call(BallastMethod.Workflow.start, startRequest("wf-c"), as: "carol")
        }
        #expect(before?.code == .permissionDenied)
        let _: Ballast_V1_GrantRoleResponse = try await cluster.call(BallastMethod.Admin.grantRole, grant, as: "ops")
        let started: Ballast_V1_StartWorkflowResponse = try await cluster.call(BallastMethod.Workflow.start, startRequest("wf-c"), as: "carol")
        #expect(!started.runID.isEmpty)
        var revoke = Ballast_V1_RevokeRoleRequest()
        revoke.binding = grant.binding
        let revoked: Ballast_V1_RevokeRoleResponse = try await cluster.call(BallastMethod.Admin.revokeRole, revoke, as: "ops")
        #expect(revoked.changed)
        let after = await permissionDenied {
            let _: Ballast_V1_StartWorkflowResponse = try await cluster.call(BallastMethod.Workflow.start, startRequest("wf-c2"), as: "carol")
        }
        #expect(after?.code == .permissionDenied)
        let list: Ballast_V1_ListRoleBindingsResponse = try await cluster.call(
            BallastMethod.Admin.listRoleBindings, Ballast_V1_ListRoleBindingsRequest(), as: "ops")
        #expect(list.authorizationEnforced)
        #expect(Set(list.bindings.map(\.identity)) == ["ops", "alice", "reader-1", "worker-1"])
    }

    @Test("a flood of denied calls becomes a few aggregated audit records")
    func denialFloodAggregated() async throws {
        let cluster = try await AuthorizedNode()
        defer { Task { await cluster.stop() } }
        for _ in 0 ..< 200 {
            _ = await permissionDenied {
                let _: Ballast_V1_TerminateWorkflowResponse = try await cluster.call(
                    BallastMethod.Workflow.terminate, terminateRequest("x"), as: "mallory")
            }
        }
        let records = try await cluster.waitForAudit { records in
            records.filter { $0.identity == "mallory" }.reduce(0) { $0 + $1.count } == 200
        }
        let mallory = records.filter { $0.identity == "mallory" }
        #expect(mallory.count <= 10, "200 calls in at most a few records, got \(mallory.count)")
        #expect(mallory.allSatisfy { $0.kind == .accessDenied })
    }

    @Test("every method the node serves is in the policy table")
    func everyMethodHasAPolicy() async throws {
        let cluster = try await AuthorizedNode()
        defer { Task { await cluster.stop() } }
        let missing = cluster.node.makeRegistry().methods.keys.filter { AccessPolicy.table[$0] == nil }
        #expect(missing.isEmpty, "methods without a policy: \(missing)")
    }
}

@Suite("Identities without TLS", .serialized)
struct UnverifiedIdentityTests {
    @Test("on a cleartext node calls proceed and claimed identities are recorded marked (unverified)")
    func claimedIdentityMarked() async throws {
        let cluster = try await AuthorizedNode(enforce: false, roles: "")
        defer { Task { await cluster.stop() } }
        var start = startRequest("wf-dev")
        start.identity = "alice"
        let started: Ballast_V1_StartWorkflowResponse = try await cluster.call(BallastMethod.Workflow.start, start, as: nil)
        var terminate = terminateRequest("wf-dev")
        terminate.identity = "alice (unverified)"
        let _: Ballast_V1_TerminateWorkflowResponse = try await cluster.call(BallastMethod.Workflow.terminate, terminate, as: nil)
        let events = try cluster.history(started.runID)
        #expect(events.first?.workflowExecutionStarted.identity == "alice (unverified)")
        #expect(events.last?.workflowExecutionTerminated.identity == "alice (unverified)", "not marked twice")
        let list: Ballast_V1_ListRoleBindingsResponse = try await cluster.call(
            BallastMethod.Admin.listRoleBindings, Ballast_V1_ListRoleBindingsRequest(), as: nil)
        #expect(!list.authorizationEnforced && list.bindings.isEmpty)
    }
}
