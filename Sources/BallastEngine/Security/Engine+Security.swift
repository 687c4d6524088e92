import BallastProto

extension WorkflowEngine {
    /// The role bindings in force (every node holds the same table at the same index).
    public var roleTable: RoleTable { security.roles }

    /// Changes whenever the role table changes (local to this process; not replicated), so a
    /// shell can republish the table only when needed.
    public var roleRevision: UInt64 { securityRevision }

    /// Whether the cluster has had its roles set (bootstrap, grant or revoke).
    public var rolesInitialized: Bool { security.rolesInitialized }

    /// Up to `limit` newest audit records after sequence `after`, oldest first.
    public func auditRecords(after: UInt64 = 0, limit: Int) -> [Ballast_V1_AuditRecord] {
        security.records(after: after, limit: limit)
    }

    /// The sequence number the next audit record will get.
    public var nextAuditSequence: UInt64 { security.nextAuditSequence }

    /// GrantRole: adds a binding and records who did it.
    mutating func grantRole(_ request: Ballast_V1_GrantRoleRequest, _ context: inout ApplyContext) throws(EngineRejection) {
        let grant = try RoleGrant.validated(request.binding)
        try checkActor(request.actor, reason: request.reason)
        guard security.roles.count < SecurityState.maxBindings || security.roles.grants(of: grant.identity).contains(grant) else {
            throw .limitExceeded("the cluster holds \(SecurityState.maxBindings) role bindings; revoke some first")
        }
        let changed = security.roles.insert(grant)
        security.rolesInitialized = true
        if changed { securityRevision &+= 1 }
        security.append(roleRecord(.roleGranted, grant, request.actor, request.reason, changed: changed), now: context.now)
        context.result.response = .roleChanged(changed)
    }

    /// RevokeRole: removes a binding and records who did it.
    mutating func revokeRole(_ request: Ballast_V1_RevokeRoleRequest, _ context: inout ApplyContext) throws(EngineRejection) {
        let grant = try RoleGrant.validated(request.binding)
        try checkActor(request.actor, reason: request.reason)
        let changed = security.roles.remove(grant)
        security.rolesInitialized = true
        if changed { securityRevision &+= 1 }
        security.append(roleRecord(.roleRevoked, grant, request.actor, request.reason, changed: changed), now: context.now)
        context.result.response = .roleChanged(changed)
    }

    /// BootstrapRoles: the roles file of a new cluster; a no-op once roles were ever set, so
    /// every node's first leadership may propose it and only the first one counts.
    mutating func bootstrapRoles(_ request: Ballast_V1_BootstrapRolesRequest, _ context: inout ApplyContext) throws(EngineRejection) {
        guard request.bindings.count <= SecurityState.maxBindings else {
            throw .limitExceeded("a roles file holds at most \(SecurityState.maxBindings) bindings")
        }
        var grants: [RoleGrant] = []
        for binding in request.bindings { grants.append(try RoleGrant.validated(binding)) }
        guard request.source.utf8.count <= SecurityState.maxDetailBytes else { throw .invalidArgument("source is too long") }
        guard !security.rolesInitialized else {
            context.result.response = .roleChanged(false)
            return
        }
        for grant in grants { security.roles.insert(grant) }
        security.rolesInitialized = true
        securityRevision &+= 1
        var record = Ballast_V1_AuditRecord()
        record.kind = .rolesBootstrapped
        record.identityVerified = true
        record.detail = "\(security.roles.count) role bindings from \(request.source)"
        security.append(record, now: context.now)
        context.result.response = .roleChanged(true)
    }

    /// RecordAuditEvents: keeps what a node observed (denied calls, reloads, membership changes).
    mutating func recordAuditEvents(_ request: Ballast_V1_RecordAuditEventsRequest, _ context: inout ApplyContext) throws(EngineRejection) {
        guard !request.records.isEmpty, request.records.count <= SecurityState.maxRecordsPerEntry else {
            throw .invalidArgument("an audit entry carries 1...\(SecurityState.maxRecordsPerEntry) records")
        }
        for record in request.records {
            switch record.kind {
            case .accessDenied, .denialsSuppressed, .membershipChanged, .certificateReloaded, .other: break
            default: throw .invalidArgument("audit kind \(record.kind) is recorded by the engine itself, not by a node")
            }
            let texts = [record.identity, record.method, record.namespace, record.taskQueue]
            guard texts.allSatisfy({ $0.utf8.count <= 1_000 }), record.detail.utf8.count <= SecurityState.maxDetailBytes else {
                throw .invalidArgument("an audit record's texts are at most 1000 bytes (detail \(SecurityState.maxDetailBytes))")
            }
        }
        for record in request.records { security.append(record, now: context.now) }
    }

    private func checkActor(_ actor: String, reason: String) throws(EngineRejection) {
        guard actor.utf8.count <= 256, reason.utf8.count <= SecurityState.maxDetailBytes else {
            throw .invalidArgument("actor is at most 256 bytes and reason at most \(SecurityState.maxDetailBytes)")
        }
    }

    private func roleRecord(_ kind: Ballast_V1_AuditKind, _ grant: RoleGrant, _ actor: String, _ reason: String,
                            changed: Bool) -> Ballast_V1_AuditRecord {
        var record = Ballast_V1_AuditRecord()
        record.kind = kind
        record.identity = actor
        record.identityVerified = CallerIdentity.isVerified(actor)
        record.namespace = grant.namespace
        record.role = grant.role.proto
        record.taskQueue = grant.taskQueue
        let verb = kind == .roleGranted ? "granted" : "revoked"
        record.detail = "\(verb) \(grant)" + (changed ? "" : " (no change)") + (reason.isEmpty ? "" : "; reason: \(reason)")
        return record
    }
}
