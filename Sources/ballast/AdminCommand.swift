import ArgumentParser
import BallastEngine
import BallastProto
import BallastServer
import BallastWire
import Foundation
import SwiftProtobuf

/// `ballast admin`: role bindings and the audit log (docs/security.md). Every call needs the
/// `admin` role on namespace `*` when the cluster enforces authorization.
struct AdminCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "admin",
        abstract: "Administer roles and read the audit log.",
        subcommands: [AdminRolesCommand.self, AdminAuditCommand.self])
}

/// Options every `ballast admin` command takes.
struct AdminConnectionOptions: ParsableArguments {
    @Option(help: "API addresses HOST:PORT, comma-separated; the leader is found from any of them (default: $BALLAST_ADDRESS, else the cluster/up ports).")
    var address: String?
    @Option(help: "Seconds to keep trying before giving up.") var timeout: Int = 15

    var deadline: ContinuousClock.Instant { .now + .seconds(max(timeout, 1)) }

    func caller() throws -> LeaderCaller {
        try LeaderCaller(addressList: address ?? ProcessInfo.processInfo.environment["BALLAST_ADDRESS"] ?? WorkflowClientOptions.defaultAddresses)
    }
}

/// `ballast admin roles list|grant|revoke`.
struct AdminRolesCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "roles", abstract: "List, grant and revoke roles.",
        subcommands: [AdminRolesListCommand.self, AdminRolesGrantCommand.self, AdminRolesRevokeCommand.self])
}

struct AdminRolesListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List role bindings.")
    @OptionGroup var connection: AdminConnectionOptions
    @Option(help: "Only this identity's bindings.") var identity: String = ""
    @Option(help: "Only bindings on this namespace (\"*\" for cluster-wide ones).") var namespace: String = ""
    @Flag(help: "Print JSON.") var json = false

    func run() async throws {
        var request = Ballast_V1_ListRoleBindingsRequest()
        (request.identity, request.namespace) = (identity, namespace)
        let response: Ballast_V1_ListRoleBindingsResponse = try await connection.caller().call(
            BallastMethod.Admin.listRoleBindings, request, until: connection.deadline)
        if json {
            print(try response.jsonString())
            return
        }
        if !response.authorizationEnforced {
            print("note: this cluster does not enforce roles (no TLS): identities are unverified")
        }
        print(AdminText.table(response.bindings))
    }
}

/// The flags that name one binding.
struct BindingOptions: ParsableArguments {
    @Argument(help: "The identity (a certificate's name, see docs/security.md).") var identity: String
    @Argument(help: "reader, writer, worker or admin.") var role: String
    @Option(help: "The namespace, or \"*\" for every namespace.") var namespace: String = "default"
    @Option(help: "Worker role only: limit the grant to this task queue.") var taskQueue: String = ""
    @Option(help: "Why (recorded in the audit log).") var reason: String = ""

    func binding() throws -> Ballast_V1_RoleBinding {
        guard let parsed = AccessRole(rawValue: role.lowercased()) else {
            throw ValidationError("unknown role '\(role)': reader, writer, worker or admin")
        }
        let grant = RoleGrant(identity: identity, role: parsed, namespace: namespace, taskQueue: taskQueue)
        do { return try RoleGrant.validated(grant.proto).proto } catch { throw ValidationError("\(error)") }
    }
}

struct AdminRolesGrantCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "grant", abstract: "Grant a role.")
    @OptionGroup var connection: AdminConnectionOptions
    @OptionGroup var binding: BindingOptions

    func run() async throws {
        var request = Ballast_V1_GrantRoleRequest()
        request.binding = try binding.binding()
        request.reason = binding.reason
        request.actor = AdminText.cliIdentity
        let response: Ballast_V1_GrantRoleResponse = try await connection.caller().call(
            BallastMethod.Admin.grantRole, request, until: connection.deadline)
        let grant = try RoleGrant.validated(request.binding)
        print(response.changed ? "granted: \(grant)" : "unchanged: \(grant) was already granted")
    }
}

struct AdminRolesRevokeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "revoke", abstract: "Revoke a role.")
    @OptionGroup var connection: AdminConnectionOptions
    @OptionGroup var binding: BindingOptions

    func run() async throws {
        var request = Ballast_V1_RevokeRoleRequest()
        request.binding = try binding.binding()
        request.reason = binding.reason
        request.actor = AdminText.cliIdentity
        let response: Ballast_V1_RevokeRoleResponse = try await connection.caller().call(
            BallastMethod.Admin.revokeRole, request, until: connection.deadline)
        let grant = try RoleGrant.validated(request.binding)
        print(response.changed ? "revoked: \(grant)" : "unchanged: \(grant) was not granted")
    }
}

/// `ballast admin audit [--json] [--limit N]`.
struct AdminAuditCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit", abstract: "Print the newest audit records, oldest first.")
    @OptionGroup var connection: AdminConnectionOptions
    @Option(help: "At most this many records (1...10000).") var limit: Int = 100
    @Option(help: "Only records after this sequence number.") var after: UInt64 = 0
    @Flag(help: "Print one JSON object per record.") var json = false

    func run() async throws {
        guard (1 ... 10_000).contains(limit) else { throw ValidationError("--limit must be 1...10000") }
        var request = Ballast_V1_ReadAuditLogRequest()
        request.limit = Int32(limit)
        request.afterSequence = after
        let response: Ballast_V1_ReadAuditLogResponse = try await connection.caller().call(
            BallastMethod.Admin.readAuditLog, request, until: connection.deadline)
        for record in response.records {
            print(json ? try record.jsonString() : AdminText.line(record))
        }
    }
}

/// Text rendering of roles and audit records.
enum AdminText {
    /// What the CLI claims to be on a cleartext connection (a certificate overrides it).
    static var cliIdentity: String {
        "\(ProcessInfo.processInfo.environment["USER"] ?? "ballast-cli")@\(ProcessInfo.processInfo.hostName)"
    }

    static func table(_ bindings: [Ballast_V1_RoleBinding]) -> String {
        guard !bindings.isEmpty else { return "no role bindings" }
        var rows = [["IDENTITY", "ROLE", "NAMESPACE", "TASK QUEUE"]]
        for binding in bindings {
            rows.append([binding.identity, AccessRole(binding.role)?.rawValue ?? "?", binding.namespace,
                         binding.taskQueue.isEmpty ? "-" : binding.taskQueue])
        }
        let widths = (0 ..< 4).map { column in rows.map { $0[column].count }.max() ?? 0 }
        return rows.map { row in
            zip(row, widths).map { $0.0.padding(toLength: $0.1, withPad: " ", startingAt: 0) }.joined(separator: "  ")
                .trimmingCharacters(in: .whitespaces)
        }.joined(separator: "\n")
    }

    /// "#12 2026-11-26T04:50:00Z ACCESS_DENIED bob (verified) node 1 x3: …".
    static func line(_ record: Ballast_V1_AuditRecord) -> String {
        let seconds = Double(record.timeUnixNanos) / 1_000_000_000
        let time = ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: seconds))
        let kind = String(describing: record.kind).reduce(into: "") { text, character in
            if character.isUppercase { text += "_" }
            text += character.uppercased()
        }
        var parts = ["#\(record.sequence)", time, kind]
        if !record.identity.isEmpty { parts.append(record.identity + (record.identityVerified ? "" : " [unverified]")) }
        if record.nodeID != 0 { parts.append("node \(record.nodeID)") }
        if record.count > 1 { parts.append("x\(record.count)") }
        if !record.method.isEmpty { parts.append(record.method) }
        return parts.joined(separator: " ") + (record.detail.isEmpty ? "" : ": \(record.detail)")
    }
}
