import Foundation
import Testing

/// `ballast server --roles` and `ballast admin roles|audit` against real server processes
/// (cleartext: authorization is off, so the CLI's claimed identity is recorded as unverified).
@Suite("ballast admin CLI", .serialized)
struct AuthzAdminCLITests {
    static let roles = """
        # identity   role    namespace  queue
        ops          admin   *
        reader-1     reader  default
        worker-1     worker  default    payments
        """

    private func jsonLines(_ output: String) throws -> [[String: Any]] {
        try output.split(separator: "\n").filter { $0.hasPrefix("{") }.map { line in
            try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        }
    }

    /// Runs the CLI until `condition` holds for its output (the bootstrap is proposed shortly after election).
    private func poll(_ cluster: ProcessCluster, _ arguments: [String], until condition: (String) -> Bool) async throws -> String {
        let deadline = ContinuousClock.now + .seconds(20)
        while true {
            let (status, output) = try cluster.runCLI(arguments)
            if status == 0, condition(output) { return output }
            guard ContinuousClock.now < deadline else { throw ClusterTestFailure("`ballast \(arguments.joined(separator: " "))` never matched: \(output)") }
            try await Task.sleep(for: .milliseconds(200))
        }
    }

    @Test("a bad roles file stops the server with the line named")
    func badRolesFile() throws {
        let directory = NSTemporaryDirectory() + "ballast-roles-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/roles.txt"
        try "ops admin *\nbob wrtier default\n".write(toFile: path, atomically: true, encoding: .utf8)
        let port = try ProcessCluster.freePort()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try ProcessCluster.locateBinary())
        process.arguments = ["server", "--id", "1", "--data-dir", directory + "/data", "--raft", "127.0.0.1:\(port)",
                             "--peers", "1=127.0.0.1:\(port)", "--roles", path]
        let pipe = Pipe()
        (process.standardOutput, process.standardError) = (pipe, pipe)
        try process.run()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus != 0)
        #expect(output.contains("roles.txt:2: unknown role 'wrtier'"), "\(output)")
    }

    @Test("the roles file is bootstrapped once by a 3-node cluster; grants, revokes and the audit log are replicated")
    func rolesAndAudit() async throws {
        let rolesDirectory = NSTemporaryDirectory() + "ballast-roles-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: rolesDirectory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: rolesDirectory) }
        let rolesPath = rolesDirectory + "/roles.txt"
        try Self.roles.write(toFile: rolesPath, atomically: true, encoding: .utf8)
        let cluster = try ProcessCluster(size: 3, extraArguments: ["--roles", rolesPath])
        defer { cluster.shutdown() }
        let leader = try await cluster.waitForLeader()
        let address = cluster.nodes.keys.sorted().map { "127.0.0.1:\(cluster.nodes[$0]!.apiPort)" }.joined(separator: ",")

        let listed = try await poll(cluster, ["admin", "roles", "list", "--address", address]) { $0.contains("worker-1") }
        #expect(listed.contains("does not enforce roles"), "cleartext cluster says so: \(listed)")
        #expect(listed.contains("payments") && listed.contains("reader-1") && listed.contains("ops"))

        let (grantStatus, granted) = try cluster.runCLI(["admin", "roles", "grant", "carol", "writer", "--namespace", "payments",
                                                         "--reason", "joins the payments desk", "--address", address])
        #expect(grantStatus == 0 && granted.contains("granted: carol: writer in payments"), "\(granted)")
        let (againStatus, again) = try cluster.runCLI(["admin", "roles", "grant", "carol", "writer", "--namespace", "payments",
                                                       "--address", address])
        #expect(againStatus == 0 && again.contains("unchanged"), "\(again)")
        let (badStatus, bad) = try cluster.runCLI(["admin", "roles", "grant", "carol", "writer", "--task-queue", "q", "--address", address])
        #expect(badStatus != 0 && bad.contains("only be given for the worker role"), "\(bad)")
        let (revokeStatus, revoked) = try cluster.runCLI(["admin", "roles", "revoke", "reader-1", "reader", "--address", address])
        #expect(revokeStatus == 0 && revoked.contains("revoked: reader-1: reader in default"), "\(revoked)")

        let (jsonStatus, jsonOutput) = try cluster.runCLI(["admin", "roles", "list", "--json", "--address", address])
        #expect(jsonStatus == 0)
        let bindings = try #require(try jsonLines(jsonOutput).first?["bindings"] as? [[String: Any]])
        #expect(Set(bindings.compactMap { $0["identity"] as? String }) == ["ops", "worker-1", "carol"])

        let (auditStatus, auditJSON) = try cluster.runCLI(["admin", "audit", "--json", "--address", address])
        #expect(auditStatus == 0)
        let records = try jsonLines(auditJSON)
        let kinds = records.compactMap { $0["kind"] as? String }
        #expect(kinds.filter { $0 == "AUDIT_KIND_ROLES_BOOTSTRAPPED" }.count == 1, "bootstrapped once though every node has the file: \(kinds)")
        #expect(kinds.suffix(3) == ["AUDIT_KIND_ROLE_GRANTED", "AUDIT_KIND_ROLE_GRANTED", "AUDIT_KIND_ROLE_REVOKED"], "\(kinds)")
        let grant = try #require(records.first { $0["kind"] as? String == "AUDIT_KIND_ROLE_GRANTED" })
        #expect((grant["detail"] as? String)?.contains("reason: joins the payments desk") == true)
        #expect((grant["identity"] as? String)?.hasSuffix(" (unverified)") == true, "\(grant)")
        #expect(grant["identityVerified"] == nil, "false is the proto3 default, left out")

        let (textStatus, text) = try cluster.runCLI(["admin", "audit", "--limit", "1", "--address", address])
        #expect(textStatus == 0 && text.contains("ROLE_REVOKED") && text.split(separator: "\n").count == 1, "\(text)")
        let (limitStatus, _) = try cluster.runCLI(["admin", "audit", "--limit", "0", "--address", address])
        #expect(limitStatus != 0)

        // The roles and the log are replicated: after the leader dies the new leader answers the same.
        cluster.kill(leader)
        _ = try await cluster.waitForLeader(excluding: leader)
        let survivors = cluster.nodes.keys.sorted().filter { $0 != leader }.map { "127.0.0.1:\(cluster.nodes[$0]!.apiPort)" }
            .joined(separator: ",")
        let after = try await poll(cluster, ["admin", "audit", "--json", "--address", survivors]) { output in
            output.split(separator: "\n").count >= records.count
        }
        #expect(try jsonLines(after).compactMap { $0["kind"] as? String }.prefix(kinds.count) == kinds[...])
        let (_, listedAfter) = try cluster.runCLI(["admin", "roles", "list", "--address", survivors])
        #expect(listedAfter.contains("carol") && !listedAfter.contains("reader-1"), "\(listedAfter)")

        // A membership change is audited with the caller.
        let (removeStatus, removed) = try cluster.runCLI(["cluster", "remove-node", "--id", String(leader), "--address", survivors])
        #expect(removeStatus == 0, "\(removed)")
        let membership = try await poll(cluster, ["admin", "audit", "--address", survivors]) { $0.contains("MEMBERSHIP_CHANGED") }
        #expect(membership.contains("removed node \(leader)") && membership.contains("(unverified)"), "\(membership)")
    }
}
