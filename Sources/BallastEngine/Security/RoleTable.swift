import BallastProto

/// What an identity may do in a namespace. `admin` implies `writer`, which implies `reader`;
/// `worker` stands alone (a worker can read the history of its tasks, nothing else).
public enum AccessRole: String, Sendable, CaseIterable, Comparable, CustomStringConvertible {
    case reader, writer, worker, admin

    /// The role's protobuf value.
    public var proto: Ballast_V1_Role {
        switch self {
        case .reader: .reader
        case .writer: .writer
        case .worker: .worker
        case .admin: .admin
        }
    }

    /// The role a protobuf value names; nil for unspecified or unknown values.
    public init?(_ proto: Ballast_V1_Role) {
        switch proto {
        case .reader: self = .reader
        case .writer: self = .writer
        case .worker: self = .worker
        case .admin: self = .admin
        default: return nil
        }
    }

    /// Whether holding `self` grants `needed` (same namespace and queue).
    public func grants(_ needed: AccessRole) -> Bool {
        switch (self, needed) {
        case (.admin, .admin), (.admin, .writer), (.admin, .reader): true
        case (.writer, .writer), (.writer, .reader): true
        case (.reader, .reader), (.worker, .worker): true
        default: false
        }
    }

    public static func < (lhs: AccessRole, rhs: AccessRole) -> Bool { lhs.rawValue < rhs.rawValue }
    public var description: String { rawValue }
}

/// One grant: `identity` holds `role` in `namespace` (`*`: every namespace); a worker grant
/// may be limited to one task queue (`""`: every queue of the namespace).
public struct RoleGrant: Hashable, Comparable, Sendable, CustomStringConvertible {
    /// The namespace value that matches every namespace.
    public static let anyNamespace = "*"
    /// The verified identity (certificate name) the grant is for.
    public var identity: String
    /// The role granted.
    public var role: AccessRole
    /// The namespace, or `*`.
    public var namespace: String
    /// For `worker` only: the task queue, or `""` for every queue.
    public var taskQueue: String

    /// Creates a grant (not validated: see `RoleGrant.validated`).
    public init(identity: String, role: AccessRole, namespace: String, taskQueue: String = "") {
        self.identity = identity
        self.role = role
        self.namespace = namespace
        self.taskQueue = taskQueue
    }

    /// Orders by identity, namespace, role, task queue (the snapshot and listing order).
    public static func < (lhs: RoleGrant, rhs: RoleGrant) -> Bool {
        (lhs.identity, lhs.namespace, lhs.role.rawValue, lhs.taskQueue)
            < (rhs.identity, rhs.namespace, rhs.role.rawValue, rhs.taskQueue)
    }

    /// "alice: writer in payments", "w1: worker in default on queue transfers".
    public var description: String {
        let scope = namespace == Self.anyNamespace ? "every namespace" : namespace
        return "\(identity): \(role) in \(scope)" + (taskQueue.isEmpty ? "" : " on queue \(taskQueue)")
    }

    /// The protobuf form.
    public var proto: Ballast_V1_RoleBinding {
        var binding = Ballast_V1_RoleBinding()
        binding.identity = identity
        binding.role = role.proto
        binding.namespace = namespace
        binding.taskQueue = taskQueue
        return binding
    }

    /// Checks and normalizes a binding from a request or a file (`*` queue becomes `""`).
    public static func validated(_ binding: Ballast_V1_RoleBinding) throws(EngineRejection) -> RoleGrant {
        guard let role = AccessRole(binding.role) else { throw .invalidArgument("role must be reader, writer, worker or admin") }
        try checkName(binding.identity, what: "identity", maxBytes: 256)
        try checkName(binding.namespace, what: "namespace (\"*\" for every namespace)", maxBytes: 255)
        let queue = binding.taskQueue == "*" ? "" : binding.taskQueue
        if !queue.isEmpty {
            guard role == .worker else { throw .invalidArgument("a task queue can only be given for the worker role") }
            try checkName(queue, what: "task queue", maxBytes: 1_000)
        }
        return RoleGrant(identity: binding.identity, role: role, namespace: binding.namespace, taskQueue: queue)
    }

    /// A name must be non-empty, bounded and free of control characters (they would forge log lines).
    static func checkName(_ name: String, what: String, maxBytes: Int) throws(EngineRejection) {
        guard !name.isEmpty else { throw .invalidArgument("\(what) is required") }
        guard name.utf8.count <= maxBytes else { throw .invalidArgument("\(what) is over \(maxBytes) bytes") }
        guard !name.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7f }) else {
            throw .invalidArgument("\(what) contains control characters")
        }
    }
}

/// The role bindings in force, indexed by identity for the per-call check. A pure value: every
/// node builds the same table from the same applied entries.
public struct RoleTable: Sendable, Equatable {
    private var byIdentity: [String: [RoleGrant]] = [:]
    /// Number of bindings.
    public private(set) var count = 0

    /// An empty table (nobody may do anything while authorization is enforced).
    public init() {}

    /// A table holding `grants`.
    public init<Grants: Sequence>(_ grants: Grants) where Grants.Element == RoleGrant {
        for grant in grants { insert(grant) }
    }

    /// Adds a grant; false when it was there already.
    @discardableResult
    public mutating func insert(_ grant: RoleGrant) -> Bool {
        if byIdentity[grant.identity, default: []].contains(grant) { return false }
        byIdentity[grant.identity, default: []].append(grant)
        count += 1
        return true
    }

    /// Removes a grant; false when it was not there.
    @discardableResult
    public mutating func remove(_ grant: RoleGrant) -> Bool {
        guard var grants = byIdentity[grant.identity], let slot = grants.firstIndex(of: grant) else { return false }
        grants.remove(at: slot)
        byIdentity[grant.identity] = grants.isEmpty ? nil : grants
        count -= 1
        return true
    }

    /// Every grant, sorted.
    public var all: [RoleGrant] { byIdentity.values.flatMap { $0 }.sorted() }

    /// The grants of one identity.
    public func grants(of identity: String) -> [RoleGrant] { (byIdentity[identity] ?? []).sorted() }

    /// Whether `identity` holds `role` in `namespace` (nil: in any namespace; `*`: only an
    /// every-namespace grant counts). For the worker role the grant must cover `taskQueue`
    /// (`""`: the call names no queue, so only an every-queue grant counts), unless `anyQueue`.
    public func allows(_ identity: String, _ role: AccessRole, namespace: String?, taskQueue: String = "",
                       anyQueue: Bool = false) -> Bool {
        guard let grants = byIdentity[identity] else { return false }
        return grants.contains { grant in
            guard grant.role.grants(role) else { return false }
            if let namespace, grant.namespace != RoleGrant.anyNamespace, grant.namespace != namespace { return false }
            guard role == .worker, namespace != nil, !anyQueue, !grant.taskQueue.isEmpty else { return true }
            return grant.taskQueue == taskQueue
        }
    }
}

/// How identities are written into history and the audit log (docs/security.md).
public enum CallerIdentity {
    /// Appended to an identity that a caller only claimed (cleartext connection, authorization off).
    public static let unverifiedSuffix = " (unverified)"

    /// The identity to record for a claim made on a cleartext connection: the claim, marked.
    /// Idempotent, so a retried request is not marked twice.
    public static func unverified(_ claimed: String) -> String {
        if claimed.hasSuffix(unverifiedSuffix) { return claimed }
        return (claimed.isEmpty ? "unknown" : claimed) + unverifiedSuffix
    }

    /// Whether a recorded identity came from a verified certificate (it carries no mark).
    public static func isVerified(_ recorded: String) -> Bool { !recorded.hasSuffix(unverifiedSuffix) }
}
