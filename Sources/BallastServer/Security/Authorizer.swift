import BallastEngine
import BallastProto
import BallastWire
import Foundation
import Logging
import Synchronization

/// The role table as last applied, published by the state machine (on its loop thread) for the
/// per-call check on any thread.
public final class RoleTablePublisher: Sendable {
    private struct Published: Sendable {
        var revision: UInt64 = 0
        var roles = RoleTable()
        var initialized = false
    }
    private let state = Mutex(Published())

    /// Creates an empty publisher (no bindings: nobody may call while authorization is enforced).
    public init() {}

    /// Republishes when the engine's role table changed (or always, after a snapshot restore).
    func publish(_ engine: WorkflowEngine, force: Bool = false) {
        let changed = state.withLock { $0.revision != engine.roleRevision || $0.initialized != engine.rolesInitialized }
        guard force || changed else { return }
        let published = Published(revision: engine.roleRevision, roles: engine.roleTable, initialized: engine.rolesInitialized)
        state.withLock { $0 = published }
    }

    /// The bindings in force.
    public var roles: RoleTable { state.withLock { $0.roles } }
    /// Whether the cluster's roles were ever set (a roles file is then no longer bootstrapped).
    public var rolesInitialized: Bool { state.withLock { $0.initialized } }
}

/// Applies the access policy before every handler of the API port (docs/security.md):
///
/// * A call on a connection with a verified client certificate (or on a node that enforces
///   authorization) is checked against `AccessPolicy.table` and the role table; the identity is
///   the certificate's, and it overwrites the `identity` field of the request before the handler
///   sees it. Refused: PERMISSION_DENIED naming the missing role, namespace and queue.
/// * Otherwise (cleartext, authorization off) every call proceeds and a claimed identity is
///   recorded marked `(unverified)`.
public final class Authorizer: Sendable {
    let enforce: Bool
    let publisher: RoleTablePublisher
    let nodeID: UInt64
    let logger: Logger
    /// Whether an id is a current member of the cluster (for node-to-node calls).
    let isMemberNode: @Sendable (UInt64) -> Bool
    private let denials = Mutex(DenialAggregator())

    /// Creates the authorizer; `enforce` refuses calls that carry no verified identity.
    public init(enforce: Bool, publisher: RoleTablePublisher, nodeID: UInt64, logger: Logger,
                isMemberNode: @escaping @Sendable (UInt64) -> Bool = { _ in false }) {
        self.isMemberNode = isMemberNode
        self.enforce = enforce
        self.publisher = publisher
        self.nodeID = nodeID
        self.logger = logger
    }

    /// The registry with every handler behind the policy check.
    public func wrap(_ registry: GRPCMethodRegistry) -> GRPCMethodRegistry {
        var wrapped = GRPCMethodRegistry()
        for (path, handler) in registry.methods {
            let access = AccessPolicy.table[path]
            wrapped.register(path, GRPCMethodHandler(kind: handler.kind) { [self] bytes, context, responder in
                switch decide(path: path, access: access, request: bytes, context: context) {
                case .proceed(let request):
                    return handler.start(request, context, responder)
                case .refuse(let status):
                    responder.finish(status)
                    return nil
                }
            })
        }
        return wrapped
    }

    /// What to do with one call.
    public enum Decision: Sendable, Equatable {
        /// Run the handler with these request bytes (the identity overwritten if it has one).
        case proceed([UInt8])
        /// Answer this status; the handler does not run.
        case refuse(GRPCStatus)
    }

    /// The policy check for one call (the whole of the authorization layer's logic).
    public func decide(path: String, access: MethodAccess?, request: [UInt8], context: GRPCServerContext) -> Decision {
        let verified = context.peer?.name
        guard enforce || verified != nil else { return markUnverified(access: access, request: request) }
        guard let identity = verified, !identity.isEmpty else {
            deny(identity: "", verified: false, path: path, role: nil, scope: nil, why: "no verified client certificate")
            return .refuse(GRPCStatus(.unauthenticated, "this node requires a verified client certificate (mutual TLS)"))
        }
        // A member node forwards what it was asked (a UI action, its audit events): it is as
        // trusted as the leader itself, and the identity it carries was recorded by it.
        if let id = Self.memberNodeID(identity), isMemberNode(id), access != nil { return .proceed(request) }
        guard let access else {
            deny(identity: identity, verified: true, path: path, role: nil, scope: nil, why: "method not in the access policy")
            return .refuse(GRPCStatus(.permissionDenied, "\(path) is not in the access policy: nobody may call it"))
        }
        let scope: AccessScope
        let rewritten: [UInt8]?
        let overwrite: (@Sendable (String) -> String)? = access.carriesIdentity ? { @Sendable _ in identity } : nil
        do {
            (scope, rewritten) = try access.inspect(request, overwrite)
        } catch {
            return .refuse(error as? GRPCStatus ?? GRPCStatus(.invalidArgument, "\(error)"))
        }
        if AccessPolicy.allows(publisher.roles, identity: identity, access.requirement, in: scope) {
            return .proceed(rewritten ?? request)
        }
        let message = Self.deniedMessage(identity: identity, access.requirement, scope, path: path)
        if case .role(let role, _) = access.requirement {
            deny(identity: identity, verified: true, path: path, role: role, scope: scope, why: message)
        }
        return .refuse(GRPCStatus(.permissionDenied, message))
    }

    /// The policy check for a call the node makes itself on behalf of `identity`, which it
    /// authenticated another way (a web UI action: a client certificate on the admin port, or an
    /// admin token bound to the identity). Nil when allowed; else PERMISSION_DENIED naming the
    /// missing role, counted and audited like a refused API call.
    func check(identity: String, path: String, scope: AccessScope) -> GRPCStatus? {
        guard let access = AccessPolicy.table[path] else {
            deny(identity: identity, verified: true, path: path, role: nil, scope: nil, why: "method not in the access policy")
            return GRPCStatus(.permissionDenied, "\(path) is not in the access policy: nobody may call it")
        }
        if AccessPolicy.allows(publisher.roles, identity: identity, access.requirement, in: scope) { return nil }
        let message = Self.deniedMessage(identity: identity, access.requirement, scope, path: path)
        if case .role(let role, _) = access.requirement {
            deny(identity: identity, verified: true, path: path, role: role, scope: scope, why: message)
        }
        return GRPCStatus(.permissionDenied, message)
    }

    /// The node id a verified identity names (`node/<id>`, the rule of docs/security.md,
    /// "Certificates"), if any.
    static func memberNodeID(_ identity: String) -> UInt64? {
        guard identity.hasPrefix("node/"), let id = UInt64(identity.dropFirst(5)), id > 0 else { return nil }
        return id
    }

    /// The longest identity a caller may claim (Temporal's limit for ids): the engine keeps it
    /// with every started task and pending activity, and in history.
    static let maxClaimedIdentityBytes = 1_000

    /// Cleartext: the call proceeds; a claimed identity is recorded marked as unverified. A claim
    /// longer than `maxClaimedIdentityBytes` is refused with INVALID_ARGUMENT.
    private func markUnverified(access: MethodAccess?, request: [UInt8]) -> Decision {
        guard let access, let field = access.identityField else { return .proceed(request) }
        let claimedBytes = Mutex(0)
        let mark: @Sendable (String) -> String = { claimed in
            claimedBytes.withLock { $0 = claimed.utf8.count }
            return CallerIdentity.unverified(claimed)
        }
        // Usually without decoding the request (see `IdentityField`); else by decoding it. A
        // request that does not decode goes to its handler unchanged, which reports the error.
        guard let rewritten = field.rewrite(request, mark) ?? (try? access.inspect(request, mark))?.1 else {
            return .proceed(request)
        }
        let claimed = claimedBytes.withLock { $0 }
        guard claimed <= Self.maxClaimedIdentityBytes else {
            return .refuse(GRPCStatus(.invalidArgument,
                                      "identity is \(claimed) bytes; at most \(Self.maxClaimedIdentityBytes) are accepted"))
        }
        return .proceed(rewritten)
    }

    /// "identity bob lacks role writer in namespace default (TerminateWorkflowExecution)".
    static func deniedMessage(identity: String, _ requirement: AccessRequirement, _ scope: AccessScope, path: String) -> String {
        guard case .role(let role, let alsoWorker) = requirement else {
            return "identity \(identity) may not call \(path): only a member node of this cluster may"
        }
        let method = path.split(separator: "/").last.map(String.init) ?? path
        let place: String
        switch scope.namespace {
        case nil: place = "in any namespace"
        case RoleGrant.anyNamespace?: place = "for the whole cluster (namespace \"*\")"
        case let namespace?: place = "in namespace \(namespace)"
        }
        let queue = role == .worker && scope.namespace != nil
            ? (scope.taskQueue.isEmpty ? " for every task queue" : " on task queue \(scope.taskQueue)") : ""
        let alternative = alsoWorker ? " (or worker)" : ""
        return "identity \(identity) lacks role \(role)\(alternative) \(place)\(queue), needed by \(method)"
    }

    private func deny(identity: String, verified: Bool, path: String, role: AccessRole?, scope: AccessScope?, why: String) {
        let key = DenialAggregator.Key(identity: identity, verified: verified, method: path, namespace: scope?.namespace ?? "",
                                       role: role, taskQueue: scope?.taskQueue ?? "")
        let now = Int64(Date().timeIntervalSince1970 * 1_000_000_000)
        let first = denials.withLock { $0.record(key, detail: why, nowNanos: now) }
        if first {
            logger.notice("call refused", metadata: ["identity": "\(identity)", "method": "\(path)", "why": "\(why)"])
        }
    }

    /// The denied calls since the last drain, as audit records (bounded: see `DenialAggregator`).
    func drainDenials() -> [Ballast_V1_AuditRecord] {
        let now = Int64(Date().timeIntervalSince1970 * 1_000_000_000)
        return denials.withLock { $0.isEmpty ? [] : $0.drain(nodeID: nodeID, nowNanos: now) }
    }

    /// The identity to record for a call: the certificate's, else the claim (metadata
    /// `ballast-identity`, or `fallback`) marked unverified.
    public static func callerIdentity(_ context: GRPCServerContext, claimed fallback: String = "") -> String {
        if let peer = context.peer { return peer.name }
        return CallerIdentity.unverified(context.metadata.first(GRPCHeaderName.ballastIdentity) ?? fallback)
    }
}
