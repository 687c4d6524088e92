import Foundation
import Testing

@Suite("the cluster/ scripts: add-node, remove-node, demo --tls", .serialized)
struct MembershipScriptTests {
    private static var root: URL {
        var root = URL(fileURLWithPath: #filePath)
        while root.path != "/" && !FileManager.default.fileExists(atPath: root.appendingPathComponent("Package.swift").path) {
            root.deleteLastPathComponent()
        }
        return root
    }

    /// Runs `cluster/NAME arguments…` of this checkout with the test's cluster folder and ports.
    /// Spawned with posix_spawn and reaped with waitpid: Foundation's Process notices a child's
    /// exit through a descriptor that the nodes a script starts in the background inherit, so it
    /// would wait for them too. Output goes to a file for the same reason, and every descriptor
    /// above 2 is closed in the child.
    private func script(_ name: String, _ arguments: [String] = [], environment: [String: String]) async throws -> (Int32, String) {
        let output = NSTemporaryDirectory() + "ballast-script-\(UUID().uuidString).out"
        defer { try? FileManager.default.removeItem(atPath: output) }
        let argv = [Self.root.appendingPathComponent("cluster/\(name)").path] + arguments
        let env = ProcessInfo.processInfo.environment.merging(environment) { $1 }.map { "\($0.key)=\($0.value)" }
        let status: Int32 = await withCheckedContinuation { continuation in
            Thread { continuation.resume(returning: Self.spawnAndWait(argv, env, output: output)) }.start()
        }
        return (status, (try? String(contentsOfFile: output, encoding: .utf8)) ?? "")
    }

    /// posix_spawn `argv` with `env`, stdout and stderr to `output`; waits and returns the exit code.
    private static func spawnAndWait(_ argv: [String], _ env: [String], output: String) -> Int32 {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        posix_spawn_file_actions_addopen(&actions, 1, output, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
    // Nothing else of the test process may leak into the scripts and the nodes they leave
    // running: an inherited listening socket would hold another test's port.
    // (glibc ignores a close action on a descriptor closed meanwhile.)
    let open = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
    for fd in open.compactMap({ Int32($0) }) where fd > 2 { posix_spawn_file_actions_addclose(&actions, fd) }
        var cArgs = argv.map { strdup($0) } + [nil]
        var cEnv = env.map { strdup($0) } + [nil]
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, argv[0], &actions, nil, &cArgs, &cEnv)
        var status: Int32 = 0
        if spawned == 0 { waitpid(pid, &status, 0) }
        for pointer in cArgs + cEnv { free(pointer) }
        posix_spawn_file_actions_destroy(&actions)
        // WEXITSTATUS: the exit code sits in bits 8…15 of a normal exit.
        return spawned == 0 ? (status >> 8) & 0xFF : 127
    }

    @Test("cluster/demo --tls: transfers over mutual TLS on every port survive the leader's SIGKILL and pass verify")
    func demoOverTLS() async throws {
        let directory = NSTemporaryDirectory() + "ballast-demo-\(UUID().uuidString)"
        let base = try ProcessCluster.freePortBlock()
        let ballast = try ProcessCluster.locateBinary()
        let transfers = URL(fileURLWithPath: ballast).deletingLastPathComponent().appendingPathComponent("transfers").path
        let environment = ["BALLAST_BIN": ballast, "TRANSFERS_BIN": transfers, "BALLAST_CLUSTER_DIR": directory,
                           "BALLAST_BASE_PORT": String(base)]
        defer {
            let env = ProcessInfo.processInfo.environment.merging(environment) { $1 }.map { "\($0.key)=\($0.value)" }
            _ = Self.spawnAndWait([Self.root.appendingPathComponent("cluster/down").path, "--wipe"], env, output: "/dev/null")
            try? FileManager.default.removeItem(atPath: directory)
        }
        let (code, output) = try await script("demo", ["--tls", "--count", "40", "--seed", "11", "--concurrency", "8"],
                                              environment: environment)
        #expect(code == 0, "\(output)")
        #expect(output.contains("mutual TLS"), "the cluster came up over TLS: \(output)")
        #expect(output.contains("SIGKILL of the leader") && output.contains("demo passed"), "\(output)")
        // Mid-way: the starter held after half the transfers and started the rest only after the kill.
        let kill = output.range(of: "SIGKILL of the leader")?.lowerBound
        let lifted = output.range(of: "hold lifted")?.lowerBound
        #expect(kill != nil && lifted != nil && kill! < lifted!, "the rest started after the kill: \(output)")
        #expect(FileManager.default.fileExists(atPath: directory + "/tls/ca.crt"))
    }

    @Test("scale out and in with the scripts, and a node with a wiped disk is refused under its old id")
    func scaleWithScripts() async throws {
        let directory = NSTemporaryDirectory() + "ballast-scripts-\(UUID().uuidString)"
        // Ports BASE+11 … BASE+53 (nodes 1–5), outside the ephemeral range like the other tests' ports.
        let base = try ProcessCluster.freePortBlock()
        let environment = ["BALLAST_BIN": try ProcessCluster.locateBinary(), "BALLAST_CLUSTER_DIR": directory,
                           "BALLAST_BASE_PORT": String(base)]
        defer {
            // Stops and wipes the cluster even when an expectation failed (blocking: a defer cannot await).
            let env = ProcessInfo.processInfo.environment.merging(environment) { $1 }.map { "\($0.key)=\($0.value)" }
            _ = Self.spawnAndWait([Self.root.appendingPathComponent("cluster/down").path, "--wipe"], env, output: "/dev/null")
        }
        let (upCode, upOutput) = try await script("up", ["3"], environment: environment)
        try #require(upCode == 0, "\(upOutput)")
        let (addCode, addOutput) = try await script("add-node", environment: environment)
        #expect(addCode == 0 && addOutput.contains("node 4 is a voter"), "\(addOutput)")
        let (removeCode, removeOutput) = try await script("remove-node", ["1"], environment: environment)
        #expect(removeCode == 0 && removeOutput.contains("node 1 removed and stopped"), "\(removeOutput)")

        var members: [String] = []
        try await waitFor("the cluster to show members 2, 3 and 4") {
            let (_, json) = try await script("status", ["--json"], environment: environment)
            let view = try? JSONDecoder().decode(StatusView.self, from: Data(json.utf8))
            members = view?.members.map(\.id) ?? []
            return members == ["2", "3", "4"] && view?.leader != nil
        }
        #expect(try String(contentsOfFile: directory + "/nodes", encoding: .utf8) == "2\n3\n4\n")
        #expect(try String(contentsOfFile: directory + "/retired", encoding: .utf8) == "1\n")

        _ = try await script("kill", ["2"], environment: environment)
        try FileManager.default.removeItem(atPath: directory + "/node-2/data")
        let (restartCode, restartOutput) = try await script("restart", ["2"], environment: environment)
        #expect(restartCode != 0 && restartOutput.contains("must not rejoin under its old id"), "\(restartOutput)")
        let (reuseCode, reuseOutput) = try await script("add-node", ["1"], environment: environment)
        #expect(reuseCode != 0 && reuseOutput.contains("was removed"), "\(reuseOutput)")
    }

    private struct StatusView: Decodable {
        struct Member: Decodable { var id: String }
        var leader: String?
        var members: [Member]
    }
}
