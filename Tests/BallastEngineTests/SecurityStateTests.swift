import BallastEngine
import BallastProto
import Foundation
import Testing

private func binding(_ identity: String, _ role: Ballast_V1_Role, _ namespace: String, queue: String = "") -> Ballast_V1_RoleBinding {
    var binding = Ballast_V1_RoleBinding()
    (binding.identity, binding.role, binding.namespace, binding.taskQueue) = (identity, role, namespace, queue)
    return binding
}

private func grant(_ binding: Ballast_V1_RoleBinding, actor: String = "ops", reason: String = "") -> Payload {
    var request = Ballast_V1_GrantRoleRequest()
    (request.binding, request.actor, request.reason) = (binding, actor, reason)
    return .grantRole(request)
}

private func revoke(_ binding: Ballast_V1_RoleBinding, actor: String = "ops") -> Payload {
    var request = Ballast_V1_RevokeRoleRequest()
    (request.binding, request.actor) = (binding, actor)
    return .revokeRole(request)
}

private func denial(_ identity: String, count: UInt64 = 1) -> Ballast_V1_AuditRecord {
    var record = Ballast_V1_AuditRecord()
    record.kind = .accessDenied
    record.identity = identity
    record.count = count
    return record
}

private func auditEntry(_ records: [Ballast_V1_AuditRecord]) -> Payload {
    var request = Ballast_V1_RecordAuditEventsRequest()
    request.records = records
    return .recordAuditEvents(request)
}

@Suite("Role table and role checks")
struct RoleTableTests {
    @Test("admin implies writer and reader, writer implies reader, worker stands alone")
    func roleImplication() {
        let table = RoleTable([
            RoleGrant(identity: "ann", role: .admin, namespace: "payments"),
            RoleGrant(identity: "wes", role: .writer, namespace: "payments"),
            RoleGrant(identity: "wok", role: .worker, namespace: "payments", taskQueue: "transfers"),
        ])
        #expect(table.allows("ann", .writer, namespace: "payments") && table.allows("ann", .reader, namespace: "payments"))
        #expect(!table.allows("ann", .worker, namespace: "payments", taskQueue: "transfers"))
        #expect(table.allows("wes", .reader, namespace: "payments") && !table.allows("wes", .admin, namespace: "payments"))
        #expect(!table.allows("wok", .writer, namespace: "payments") && !table.allows("wok", .reader, namespace: "payments"))
        #expect(!table.allows("ann", .reader, namespace: "default"), "a grant is for its namespace only")
        #expect(!table.allows("nobody", .reader, namespace: "payments"))
    }

    @Test("a worker grant covers its queue only; a call naming no queue needs an every-queue grant")
    func workerQueues() {
        let table = RoleTable([
            RoleGrant(identity: "q-worker", role: .worker, namespace: "default", taskQueue: "transfers"),
            RoleGrant(identity: "all-worker", role: .worker, namespace: "default"),
        ])
        #expect(table.allows("q-worker", .worker, namespace: "default", taskQueue: "transfers"))
        #expect(!table.allows("q-worker", .worker, namespace: "default", taskQueue: "payroll"))
        #expect(!table.allows("q-worker", .worker, namespace: "default", taskQueue: ""))
        #expect(table.allows("q-worker", .worker, namespace: "default", anyQueue: true))
        #expect(table.allows("q-worker", .worker, namespace: nil), "worker somewhere")
        #expect(table.allows("all-worker", .worker, namespace: "default", taskQueue: "payroll"))
        #expect(table.allows("all-worker", .worker, namespace: "default", taskQueue: ""))
    }

    @Test("a * grant covers every namespace and the cluster scope; a namespaced grant does not cover the cluster")
    func wildcard() {
        let table = RoleTable([
            RoleGrant(identity: "root", role: .admin, namespace: "*"),
            RoleGrant(identity: "local", role: .admin, namespace: "default"),
        ])
        #expect(table.allows("root", .admin, namespace: "*") && table.allows("root", .reader, namespace: "anything"))
        #expect(!table.allows("local", .admin, namespace: "*"))
        #expect(table.allows("local", .admin, namespace: "default"))
    }

    @Test("bindings are validated: role, names, queue only for workers, no control characters")
    func validation() throws {
        #expect(throws: EngineRejection.self) { try RoleGrant.validated(binding("", .reader, "default")) }
        #expect(throws: EngineRejection.self) { try RoleGrant.validated(binding("a", .unspecified, "default")) }
        #expect(throws: EngineRejection.self) { try RoleGrant.validated(binding("a", .reader, "")) }
        #expect(throws: EngineRejection.self) { try RoleGrant.validated(binding("a", .writer, "default", queue: "q")) }
        #expect(throws: EngineRejection.self) { try RoleGrant.validated(binding("a\nforged", .reader, "default")) }
        #expect(throws: EngineRejection.self) { try RoleGrant.validated(binding(String(repeating: "x", count: 300), .reader, "d")) }
        #expect(try RoleGrant.validated(binding("w", .worker, "default", queue: "*")).taskQueue == "")
    }
}

@Suite("Security state in the engine")
struct SecurityStateTests {
    @Test("grant and revoke change the table, say whether they changed it, and are audited with actor and reason")
    func grantRevoke() throws {
        var harness = Harness()
        let bob = binding("bob", .writer, "default")
        #expect(harness.apply(grant(bob, actor: "ops", reason: "on call")).response == .roleChanged(true))
        #expect(harness.engine.roleTable.allows("bob", .writer, namespace: "default"))
        #expect(harness.apply(grant(bob)).response == .roleChanged(false))
        #expect(harness.engine.roleTable.count == 1)
        #expect(harness.apply(revoke(bob)).response == .roleChanged(true))
        #expect(!harness.engine.roleTable.allows("bob", .writer, namespace: "default"))
        #expect(harness.apply(revoke(bob)).response == .roleChanged(false))
        let records = harness.engine.auditRecords(limit: 10)
        #expect(records.map(\.kind) == [.roleGranted, .roleGranted, .roleRevoked, .roleRevoked])
        #expect(records.map(\.sequence) == [1, 2, 3, 4])
        #expect(records[0].identity == "ops" && records[0].detail.contains("reason: on call") && records[0].detail.contains("bob"))
        #expect(records[0].timeUnixNanos == harness.now - 3_000_000)
        #expect(records[1].detail.contains("no change"))
    }

    @Test("an invalid grant is rejected and changes nothing")
    func invalidGrant() {
        var harness = Harness()
        let result = harness.apply(grant(binding("bob", .reader, "default", queue: "q")))
        #expect(result.response.rejection?.code == .invalidArgument)
        #expect(harness.engine.roleTable.count == 0 && harness.engine.auditRecords(limit: 10).isEmpty)
        #expect(!harness.engine.rolesInitialized)
    }

    @Test("bootstrap applies once, and not after any grant or revoke")
    func bootstrapOnce() {
        var harness = Harness()
        var request = Ballast_V1_BootstrapRolesRequest()
        request.bindings = [binding("root", .admin, "*"), binding("w", .worker, "default", queue: "q")]
        request.source = "roles.txt"
        #expect(harness.apply(.bootstrapRoles(request)).response == .roleChanged(true))
        #expect(harness.engine.roleTable.count == 2 && harness.engine.rolesInitialized)
        request.bindings = [binding("intruder", .admin, "*")]
        #expect(harness.apply(.bootstrapRoles(request)).response == .roleChanged(false))
        #expect(!harness.engine.roleTable.allows("intruder", .admin, namespace: "*"))

        var other = Harness()
        other.apply(revoke(binding("nobody", .reader, "default")))
        #expect(other.apply(.bootstrapRoles(request)).response == .roleChanged(false), "roles were set by hand first")
        #expect(other.engine.roleTable.count == 0)
    }

    @Test("a bootstrap with one invalid binding is rejected whole")
    func bootstrapInvalid() {
        var harness = Harness()
        var request = Ballast_V1_BootstrapRolesRequest()
        request.bindings = [binding("root", .admin, "*"), binding("", .reader, "default")]
        #expect(harness.apply(.bootstrapRoles(request)).response.rejection != nil)
        #expect(harness.engine.roleTable.count == 0 && !harness.engine.rolesInitialized)
    }

    @Test("audit records from nodes: engine-only kinds and oversized records are refused")
    func auditValidation() {
        var harness = Harness()
        var forged = denial("x")
        forged.kind = .roleGranted
        #expect(harness.apply(auditEntry([forged])).response.rejection != nil)
        var long = denial("x")
        long.detail = String(repeating: "d", count: 5_000)
        #expect(harness.apply(auditEntry([long])).response.rejection != nil)
        #expect(harness.apply(auditEntry([])).response.rejection != nil)
        #expect(harness.engine.auditRecords(limit: 10).isEmpty)
    }

    @Test("a flood of denials fills only its own ring: role changes stay in the log")
    func denialFloodBounded() {
        var harness = Harness()
        harness.apply(grant(binding("bob", .reader, "default")))
        for batch in 0 ..< 12 {
            harness.apply(auditEntry((0 ..< 500).map { denial("attacker-\(batch)-\($0)") }))
        }
        let all = harness.engine.auditRecords(limit: 10_000)
        #expect(all.count == 5_001, "5000 newest denials and the grant")
        #expect(all.first?.kind == .roleGranted)
        #expect(all.last?.identity == "attacker-11-499")
        #expect(harness.engine.nextAuditSequence == 6_002)
        let newest = harness.engine.auditRecords(limit: 3)
        #expect(newest.map(\.sequence) == [5_999, 6_000, 6_001])
        #expect(harness.engine.auditRecords(after: 6_000, limit: 100).count == 1)
    }

    @Test("roles and the audit log survive snapshot and restore, and are part of the state digest")
    func snapshotAndDigest() throws {
        var harness = Harness()
        harness.apply(grant(binding("bob", .writer, "payments")))
        harness.apply(grant(binding("w", .worker, "default", queue: "q")))
        harness.apply(auditEntry([denial("eve", count: 7)]))
        let restored = try WorkflowEngine.restore(harness.engine.snapshot())
        #expect(restored.roleTable == harness.engine.roleTable)
        #expect(restored.auditRecords(limit: 100) == harness.engine.auditRecords(limit: 100))
        #expect(restored.nextAuditSequence == harness.engine.nextAuditSequence)
        #expect(restored.rolesInitialized)
        #expect(restored.stateDigest() == harness.engine.stateDigest())

        let before = harness.engine.stateDigest()
        harness.apply(revoke(binding("bob", .writer, "payments")))
        #expect(harness.engine.stateDigest() != before, "a role change changes the digest")
        let afterRevoke = harness.engine.stateDigest()
        harness.apply(auditEntry([denial("eve")]))
        #expect(harness.engine.stateDigest() != afterRevoke, "an audit record changes the digest")
    }

    @Test("two engines fed the same entries hold the same roles, log and digest")
    func deterministic() {
        var first = Harness(), second = Harness()
        let entries: [Payload] = [
            grant(binding("a", .admin, "*")), auditEntry([denial("x"), denial("y", count: 3)]),
            revoke(binding("a", .admin, "*")), grant(binding("b", .worker, "default", queue: "q")),
        ]
        for entry in entries {
            first.apply(entry)
            second.apply(entry)
        }
        #expect(first.engine.stateDigest() == second.engine.stateDigest())
        #expect(first.engine.snapshot() == second.engine.snapshot())
    }
}

@Suite("Task tokens name their queue")
struct TaskTokenQueueTests {
    @Test("a token whose queue is not the task's is refused as stale and changes nothing")
    func forgedQueue() throws {
        var harness = Harness()
        let run = harness.start("wf")
        let task = try #require(harness.readyWorkflowTask(run))
        #expect(task.taskToken.taskQueue == "q")
        var forged = task.taskToken
        forged.taskQueue = "other"
        var started = Ballast_V1_RecordWorkflowTaskStartedRequest()
        started.taskToken = try forged.serializedData()
        started.requestID = "poll-1"
        let result = harness.apply(.workflowTaskStarted(started))
        #expect(result.response.rejection?.code == .notFound)
        #expect(harness.readyWorkflowTask(run) != nil)
        started.taskToken = Data(task.taskTokenBytes)
        #expect(harness.apply(.workflowTaskStarted(started)).response.rejection == nil)
    }
}
