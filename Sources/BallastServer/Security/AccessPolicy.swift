import BallastEngine
import BallastProto
import BallastWire
import Foundation
import SwiftProtobuf

/// Where a call acts: its namespace (nil: any namespace will do; `*`: the whole cluster) and,
/// for worker calls, its task queue.
public struct AccessScope: Sendable, Equatable {
    /// The namespace the call names ("" resolved to `default`), `*` for cluster-wide calls, nil for "any".
    public var namespace: String?
    /// The task queue a worker call names ("" when it names none).
    public var taskQueue: String

    /// Creates a scope.
    public init(namespace: String?, taskQueue: String = "") {
        self.namespace = namespace
        self.taskQueue = taskQueue
    }

    /// The whole cluster (membership, roles, the audit log).
    public static let cluster = AccessScope(namespace: RoleGrant.anyNamespace)

    /// A namespace as a request names it ("" means `default`).
    static func namespace(_ name: String, taskQueue: String = "") -> AccessScope {
        AccessScope(namespace: name.isEmpty ? WorkflowEngine.defaultNamespace : name, taskQueue: taskQueue)
    }
}

/// What one method needs.
public enum AccessRequirement: Sendable, Equatable {
    /// Any caller with a verified identity (leader discovery).
    case anyVerifiedCaller
    /// Only a member node of this cluster (its certificate names `node/<id>`).
    case clusterNode
    /// `role` in the call's scope; `alsoWorker` also admits a worker of any queue of the
    /// namespace (workers page through the history of their tasks).
    case role(AccessRole, alsoWorker: Bool = false)
}

/// One row of the policy table: the requirement, and how to read the call's scope from its
/// request bytes (and write the caller's identity into them).
public struct MethodAccess: Sendable {
    /// What the caller needs.
    public let requirement: AccessRequirement
    /// Whether the request carries an identity field that the server overwrites.
    public var carriesIdentity: Bool { identityField != nil }
    /// Where the identity field is in the request's wire format, when it carries one.
    let identityField: IdentityField?
    /// Decodes the request: its scope and, when `identity` is given and the request carries an
    /// identity, the request re-encoded with `identity(claimed)` in place of the claimed one.
    public let inspect: @Sendable (_ request: [UInt8], _ identity: (@Sendable (String) -> String)?) throws -> (AccessScope, [UInt8]?)

    /// A row for requests of type `Request`; `identity` names the identity field both as a key
    /// path and by its field numbers (`IdentityFieldTests` checks that the two agree).
    static func rule<Request: SwiftProtobuf.Message>(
        _ type: Request.Type, _ requirement: AccessRequirement,
        identity: (path: WritableKeyPath<Request, String>, field: IdentityField)? = nil,
        scope: @escaping @Sendable (Request) throws -> AccessScope
    ) -> MethodAccess {
        nonisolated(unsafe) let identityPath = identity?.path
        return MethodAccess(requirement: requirement, identityField: identity?.field) { bytes, newIdentity in
            var request: Request
            do { request = try Request(serializedBytes: bytes) } catch {
                throw GRPCStatus(.invalidArgument, "cannot decode \(Request.protoMessageName): \(error)")
            }
            let scope = try scope(request)
            guard let identityPath, let newIdentity else { return (scope, nil) }
            request[keyPath: identityPath] = newIdentity(request[keyPath: identityPath])
            return (scope, try request.serializedBytes())
        }
    }
}

/// The one table mapping every API method to the role it needs (docs/security.md). A method
/// missing from it is refused to everyone while authorization is on.
public enum AccessPolicy {
    /// Every method of the API port.
    public static let table: [String: MethodAccess] = {
        var table: [String: MethodAccess] = [:]
        addClusterMethods(&table)
        addWorkflowMethods(&table)
        addWorkerMethods(&table)
        addAdminMethods(&table)
        return table
    }()

    private static func addClusterMethods(_ table: inout [String: MethodAccess]) {
        let cluster = BallastMethod.Cluster.self
        table[cluster.describeCluster] = .rule(Ballast_V1_DescribeClusterRequest.self, .anyVerifiedCaller) { _ in .cluster }
        table[cluster.addMember] = .rule(Ballast_V1_AddMemberRequest.self, .role(.admin)) { _ in .cluster }
        table[cluster.promoteMember] = .rule(Ballast_V1_PromoteMemberRequest.self, .role(.admin)) { _ in .cluster }
        table[cluster.removeMember] = .rule(Ballast_V1_RemoveMemberRequest.self, .role(.admin)) { _ in .cluster }
        table[cluster.getMemberProgress] = .rule(Ballast_V1_GetMemberProgressRequest.self, .role(.admin)) { _ in .cluster }
    }

    private static func addWorkflowMethods(_ table: inout [String: MethodAccess]) {
        let workflow = BallastMethod.Workflow.self
        table[workflow.start] = .rule(Ballast_V1_StartWorkflowRequest.self, .role(.writer), identity: (\.identity, IdentityField(9))) {
            .namespace($0.namespace)
        }
        table[workflow.signal] = .rule(Ballast_V1_SignalWorkflowRequest.self, .role(.writer), identity: (\.identity, IdentityField(5))) {
            .namespace($0.namespace)
        }
        table[workflow.signalWithStart] = .rule(Ballast_V1_SignalWithStartWorkflowRequest.self, .role(.writer),
                                                identity: (\.start.identity, IdentityField(1, 9))) { .namespace($0.start.namespace) }
        table[workflow.requestCancel] = .rule(Ballast_V1_RequestCancelWorkflowRequest.self, .role(.writer), identity: (\.identity, IdentityField(3))) {
            .namespace($0.namespace)
        }
        table[workflow.terminate] = .rule(Ballast_V1_TerminateWorkflowRequest.self, .role(.writer), identity: (\.identity, IdentityField(5))) {
            .namespace($0.namespace)
        }
        table[workflow.addSearchAttributes] = .rule(Ballast_V1_AddSearchAttributesRequest.self, .role(.admin)) {
            .namespace($0.namespace)
        }
        table[workflow.describe] = .rule(Ballast_V1_DescribeWorkflowExecutionRequest.self, .role(.reader)) { .namespace($0.namespace) }
        table[workflow.getHistory] = .rule(Ballast_V1_GetWorkflowExecutionHistoryRequest.self, .role(.reader, alsoWorker: true)) {
            .namespace($0.namespace)
        }
        table[workflow.streamHistory] = .rule(Ballast_V1_GetWorkflowExecutionHistoryRequest.self, .role(.reader, alsoWorker: true)) {
            .namespace($0.namespace)
        }
        table[workflow.waitClosed] = .rule(Ballast_V1_WaitWorkflowExecutionClosedRequest.self, .role(.reader)) { .namespace($0.namespace) }
        table[workflow.list] = .rule(Ballast_V1_ListWorkflowExecutionsRequest.self, .role(.reader)) { .namespace($0.namespace) }
        table[workflow.count] = .rule(Ballast_V1_CountWorkflowExecutionsRequest.self, .role(.reader)) { .namespace($0.namespace) }
        table[workflow.query] = .rule(Ballast_V1_QueryWorkflowRequest.self, .role(.reader)) { .namespace($0.namespace) }
    }

    private static func addWorkerMethods(_ table: inout [String: MethodAccess]) {
        let worker = BallastMethod.Worker.self
        let role = AccessRequirement.role(.worker)
        table[worker.streamTasks] = .rule(Ballast_V1_StreamTasksRequest.self, role, identity: (\.identity, IdentityField(3))) {
            .namespace($0.namespace, taskQueue: $0.taskQueue)
        }
        table[worker.pollWorkflowTask] = .rule(Ballast_V1_PollWorkflowTaskRequest.self, role, identity: (\.identity, IdentityField(3))) {
            .namespace($0.namespace, taskQueue: $0.taskQueue)
        }
        table[worker.pollActivityTask] = .rule(Ballast_V1_PollActivityTaskRequest.self, role, identity: (\.identity, IdentityField(3))) {
            .namespace($0.namespace, taskQueue: $0.taskQueue)
        }
        table[worker.respondWorkflowTaskCompleted] = .rule(Ballast_V1_RespondWorkflowTaskCompletedRequest.self, role,
                                                           identity: (\.identity, IdentityField(3))) { try tokenScope($0.taskToken) }
        table[worker.respondWorkflowTaskFailed] = .rule(Ballast_V1_RespondWorkflowTaskFailedRequest.self, role,
                                                        identity: (\.identity, IdentityField(4))) { try tokenScope($0.taskToken) }
        table[worker.respondActivityTaskCompleted] = .rule(Ballast_V1_RespondActivityTaskCompletedRequest.self, role,
                                                           identity: (\.identity, IdentityField(3))) { try tokenScope($0.taskToken) }
        table[worker.respondActivityTaskFailed] = .rule(Ballast_V1_RespondActivityTaskFailedRequest.self, role,
                                                        identity: (\.identity, IdentityField(3))) { try tokenScope($0.taskToken) }
        table[worker.respondActivityTaskCanceled] = .rule(Ballast_V1_RespondActivityTaskCanceledRequest.self, role,
                                                          identity: (\.identity, IdentityField(3))) { try tokenScope($0.taskToken) }
        table[worker.recordActivityTaskHeartbeat] = .rule(Ballast_V1_RecordActivityTaskHeartbeatRequest.self, role,
                                                          identity: (\.identity, IdentityField(3))) { try tokenScope($0.taskToken) }
        // These name a stream or a query the server handed out, not a queue: a worker role anywhere.
        table[worker.grantTaskSlots] = .rule(Ballast_V1_GrantTaskSlotsRequest.self, role) { _ in AccessScope(namespace: nil) }
        table[worker.respondQueryTaskCompleted] = .rule(Ballast_V1_RespondQueryTaskCompletedRequest.self, role,
                                                        identity: (\.identity, IdentityField(4))) { _ in AccessScope(namespace: nil) }
    }

    private static func addAdminMethods(_ table: inout [String: MethodAccess]) {
        let admin = BallastMethod.Admin.self
        table[admin.listRoleBindings] = .rule(Ballast_V1_ListRoleBindingsRequest.self, .role(.admin)) { _ in .cluster }
        table[admin.grantRole] = .rule(Ballast_V1_GrantRoleRequest.self, .role(.admin), identity: (\.actor, IdentityField(2))) { _ in .cluster }
        table[admin.revokeRole] = .rule(Ballast_V1_RevokeRoleRequest.self, .role(.admin), identity: (\.actor, IdentityField(2))) { _ in .cluster }
        table[admin.readAuditLog] = .rule(Ballast_V1_ReadAuditLogRequest.self, .role(.admin)) { _ in .cluster }
        table[admin.recordAuditEvents] = .rule(Ballast_V1_RecordAuditEventsRequest.self, .clusterNode) { _ in .cluster }
    }

    /// A task token's namespace and queue (the engine refuses a token whose queue is not the task's).
    static func tokenScope(_ token: Data) throws -> AccessScope {
        let decoded: Ballast_V1_TaskToken
        do { decoded = try Ballast_V1_TaskToken(serializedBytes: token) } catch {
            throw GRPCStatus(.invalidArgument, "the task token does not decode; pass the token the server issued")
        }
        return .namespace(decoded.namespace, taskQueue: decoded.taskQueue)
    }

    /// Whether `identity` may make a call with `requirement` in `scope`, under `roles`.
    public static func allows(_ roles: RoleTable, identity: String, _ requirement: AccessRequirement, in scope: AccessScope) -> Bool {
        switch requirement {
        case .anyVerifiedCaller:
            return true
        case .clusterNode:
            return false  // a member node passes before the table is consulted (Authorizer.decide)
        case .role(let role, let alsoWorker):
            if roles.allows(identity, role, namespace: scope.namespace, taskQueue: scope.taskQueue) { return true }
            return alsoWorker && roles.allows(identity, .worker, namespace: scope.namespace, anyQueue: true)
        }
    }
}
