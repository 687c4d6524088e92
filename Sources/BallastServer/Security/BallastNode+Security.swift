import BallastEngine
import BallastProto
import BallastWire
import Logging

extension BallastNode {
    /// Reports a security event (certificate reload, membership change) to the replicated audit
    /// log. Queued (bounded) and proposed within about a second by the leader; a follower hands
    /// them to the leader over the API port (docs/security.md, "Audit").
    public func recordSecurityEvent(_ kind: SecurityEventKind, identity: String = "", detail: String) {
        security.record(kind, identity: identity, detail: detail)
    }

    /// The authorization layer in front of every API handler.
    func authorize(_ registry: GRPCMethodRegistry) -> GRPCMethodRegistry { security.authorizer.wrap(registry) }

    /// Starts the loop that bootstraps the roles file and proposes audit records.
    func startSecurityLoop() {
        security.start { [weak self] flushAudit in
            guard let self else { return }
            await securityStep(flushAudit: flushAudit)
        }
    }

    private func securityStep(flushAudit: Bool) async {
        // Once a second: the admin tokens file, if it changed (SIGHUP reloads it at once).
        if flushAudit { reloadAdminTokens(reason: "file changed", onlyIfChanged: true) }
        guard dispatcher.isLeading else {
            if flushAudit { await forwardToLeader(security.takeRecords()) }
            return
        }
        if security.needsBootstrap { await proposeBootstrap() }
        guard flushAudit else { return }
        let records = security.takeRecords()
        guard !records.isEmpty else { return }
        var request = Ballast_V1_RecordAuditEventsRequest()
        request.records = records
        do {
            _ = try await submit(.recordAuditEvents(request), requestID: "")
        } catch {
            logger.warning("cannot propose audit records; retrying", metadata: ["error": "\(error)", "records": "\(records.count)"])
            security.putBack(records)
        }
    }

    /// A follower hands its records to the leader (AdminService.RecordAuditEvents), which
    /// proposes them; on failure they are kept (events) or logged (denials).
    private func forwardToLeader(_ records: [Ballast_V1_AuditRecord]) async {
        guard !records.isEmpty else { return }
        let status = await raftStatus()
        guard let leader = status.leader, leader != configuration.id, let info = transport.knownNodes[leader.rawValue],
              let api = try? HostPort(parsing: info.api) else {
            security.putBack(records)
            return
        }
        var request = Ballast_V1_RecordAuditEventsRequest()
        request.records = records
        do {
            var clientConfiguration = GRPCClientConfiguration()
            clientConfiguration.tls = clientTLS
            let client = try await GRPCClient.connect(host: api.host, port: api.port, configuration: clientConfiguration,
                                                      group: group, logger: logger)
            defer { Task { await client.close() } }
            let _: Ballast_V1_RecordAuditEventsResponse = try await client.unary(
                BallastMethod.Admin.recordAuditEvents, request: request, timeout: .seconds(5))
        } catch {
            logger.info("cannot hand audit records to the leader; keeping them", metadata: ["error": "\(error)"])
            security.putBack(records)
        }
    }

    private func proposeBootstrap() async {
        var request = Ballast_V1_BootstrapRolesRequest()
        request.bindings = security.settings.bootstrapRoles.map(\.proto)
        request.source = "\(security.settings.rolesSource) (proposed by node \(configuration.id.rawValue))"
        do {
            let response = try await submit(.bootstrapRoles(request), requestID: "")
            security.bootstrapSucceeded()
            let applied = response == .roleChanged(true)
            logger.notice(applied ? "roles bootstrapped from the roles file" : "roles were already set; the roles file is ignored",
                          metadata: ["bindings": "\(request.bindings.count)", "file": "\(security.settings.rolesSource)"])
        } catch let status as GRPCStatus where status.code != .unavailable {
            security.bootstrapSucceeded()
            logger.error("the roles file was refused; roles stay as they are", metadata: ["error": "\(status.message)"])
        } catch {
            logger.info("roles bootstrap not proposed yet; retrying", metadata: ["error": "\(error)"])
        }
    }

    /// AdminService: role bindings and the audit log.
    func registerAdminService(_ registry: inout GRPCMethodRegistry) {
        let admin = BallastMethod.Admin.self
        registry.unary(admin.listRoleBindings) { [self] (request: Ballast_V1_ListRoleBindingsRequest, context) in
            let grants = try await read(stale: Self.wantsStaleRead(context)) { engine throws(EngineRejection) in engine.roleTable.all }
            var response = Ballast_V1_ListRoleBindingsResponse()
            response.bindings = grants.filter { grant in
                (request.identity.isEmpty || grant.identity == request.identity)
                    && (request.namespace.isEmpty || grant.namespace == request.namespace)
            }.map(\.proto)
            response.authorizationEnforced = security.authorizer.enforce || context.peer != nil
            return response
        }
        registry.unary(admin.grantRole) { [self] (request: Ballast_V1_GrantRoleRequest, _) in
            var response = Ballast_V1_GrantRoleResponse()
            response.changed = try await submit(.grantRole(request), requestID: "") == .roleChanged(true)
            return response
        }
        registry.unary(admin.revokeRole) { [self] (request: Ballast_V1_RevokeRoleRequest, _) in
            var response = Ballast_V1_RevokeRoleResponse()
            response.changed = try await submit(.revokeRole(request), requestID: "") == .roleChanged(true)
            return response
        }
        registry.unary(admin.recordAuditEvents) { [self] (request: Ballast_V1_RecordAuditEventsRequest, _) in
            guard dispatcher.isLeading else { throw await notLeaderStatus(waitForLeader: .zero) }
            _ = try await submit(.recordAuditEvents(request), requestID: "")
            return Ballast_V1_RecordAuditEventsResponse()
        }
        registry.unary(admin.readAuditLog) { [self] (request: Ballast_V1_ReadAuditLogRequest, context) in
            guard (0 ... 10_000).contains(request.limit) else { throw GRPCStatus(.invalidArgument, "limit must be 0...10000 (0: 100)") }
            let limit = request.limit == 0 ? 100 : Int(request.limit)
            let after = request.afterSequence
            return try await read(stale: Self.wantsStaleRead(context)) { engine throws(EngineRejection) in
                var response = Ballast_V1_ReadAuditLogResponse()
                response.records = engine.auditRecords(after: after, limit: limit)
                response.nextSequence = engine.nextAuditSequence
                return response
            }
        }
    }

    /// Records a membership change made through the API, attributed to the caller.
    func auditMembership(_ context: GRPCServerContext, _ detail: String) {
        security.record(.membershipChanged, identity: Authorizer.callerIdentity(context), detail: detail)
    }
}
