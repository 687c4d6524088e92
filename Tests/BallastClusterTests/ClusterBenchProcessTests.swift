import Foundation
import Testing

/// `ballast bench cluster` end to end: it starts real nodes, measures, and always removes them.
@Suite("ballast bench cluster", .serialized)
struct ClusterBenchProcessTests {
    /// Runs `ballast` with `arguments`; returns its exit status, stdout and stderr.
    private func runBench(_ arguments: [String]) throws -> (Int32, String, String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try ProcessCluster.locateBinary())
        process.arguments = arguments
        let errorPath = NSTemporaryDirectory() + "bench-test-stderr-\(UUID().uuidString)"
        _ = FileManager.default.createFile(atPath: errorPath, contents: nil)
        defer { try? FileManager.default.removeItem(atPath: errorPath) }
        let output = Pipe()
        process.standardOutput = output
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: errorPath))
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let errors = (try? String(contentsOfFile: errorPath, encoding: .utf8)) ?? ""
        return (process.terminationStatus, String(decoding: data, as: UTF8.self), errors)
    }

    /// The JSON object on the last line of `output`.
    private func lastJSON(_ output: String) throws -> [String: Any] {
        let line = try #require(output.split(separator: "\n").last, "no output")
        return try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], "not a JSON object: \(line)")
    }

    /// Processes whose command line mentions `text` (the benchmark's nodes name their data directory).
    private func processes(mentioning text: String) -> [Int32] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap { Int32($0) }.filter { pid in
            guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return false }
            return String(decoding: data.map { $0 == 0 ? 32 : $0 }, as: UTF8.self).contains(text)
        }
    }

    private func temporaryDirectory() -> String {
        NSTemporaryDirectory() + "ballast-bench-test-\(UUID().uuidString)"
    }

    @Test("a short run commits starts and signals through the leader, reports the fixed JSON fields, and leaves no node running")
    func shortRunWithSignals() throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let (status, output, errors) = try runBench([
            "bench", "cluster", "--concurrency", "8", "--connections", "2", "--duration", "1.5", "--warm-up", "0.5",
            "--signal-percent", "50", "--data-dir", directory, "--json",
        ])
        #expect(status == 0, "stderr: \(errors)")
        let result = try lastJSON(output)
        #expect(result["bench"] as? String == "cluster")
        #expect(result["concurrency"] as? Int == 8)
        #expect((result["ops_per_s"] as? Double ?? 0) > 0)
        #expect((result["p50_ms"] as? Double ?? 0) > 0)
        #expect((result["p99_ms"] as? Double ?? 0) >= (result["p50_ms"] as? Double ?? 1))
        #expect((result["starts"] as? Double ?? 0) > 0)
        #expect((result["signals"] as? Double ?? 0) > 0, "half the operations signal runs the benchmark started")
        #expect(result["errors"] as? Double == 0)
        for node in 1 ... 3 { #expect((result["node\(node)_cpu_s"] as? Double ?? -1) >= 0) }
        #expect((result["client_cpu_s"] as? Double ?? 0) > 0)
        #expect(processes(mentioning: directory).isEmpty, "every node the benchmark started is gone")
        #expect(FileManager.default.fileExists(atPath: directory + "/node-1/"), "a given data directory is kept")
    }

    @Test("given only a follower's address, the load finds the leader and runs without errors")
    func followsTheLeaderFromAnyAddress() async throws {
        let cluster = try ProcessCluster(size: 3)
        defer { cluster.shutdown() }
        let leader = try await cluster.waitForLeader()
        let follower = try #require((1 ... 3).first { $0 != leader })
        let (status, output, errors) = try runBench([
            "bench", "cluster", "--address", "127.0.0.1:\(cluster.nodes[follower]!.apiPort)", "--concurrency", "4",
            "--duration", "1", "--warm-up", "0.2", "--json",
        ])
        #expect(status == 0, "stderr: \(errors)")
        let result = try lastJSON(output)
        #expect((result["starts"] as? Double ?? 0) > 0)
        #expect(result["errors"] as? Double == 0)
        #expect(result["nodes_cpu_s"] == nil, "a cluster it did not start has no node CPU figures")
    }

    @Test("two leader kills: each is timed to a successful start on a new leader, and the killed node rejoins")
    func failoverTrials() throws {
        let (status, output, errors) = try runBench(["bench", "cluster", "--failover", "2", "--json"])
        #expect(status == 0, "stderr: \(errors)")
        let result = try lastJSON(output)
        #expect(result["bench"] as? String == "cluster-failover")
        #expect(result["trials"] as? Double == 2)
        #expect(result["failed"] as? Double == 0)
        let median = try #require(result["first_success_median_ms"] as? Double)
        let maximum = try #require(result["first_success_max_ms"] as? Double)
        #expect(median > 0 && median <= maximum && maximum < 30_000)
        #expect((result["leader_seen_median_ms"] as? Double ?? -1) > 0)
        #expect(errors.components(separatedBy: "failover trial").count == 3, "one progress line per trial: \(errors)")
    }

    @Test("SIGINT in the middle of a run kills every node before the benchmark exits")
    func interruptTearsDown() async throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try ProcessCluster.locateBinary())
        process.arguments = ["bench", "cluster", "--duration", "600", "--concurrency", "2", "--data-dir", directory]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        defer { if process.isRunning { process.terminate() } }
        let deadline = ContinuousClock.now + .seconds(30)
        while processes(mentioning: directory + "/node-").count < 3, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(processes(mentioning: directory + "/node-").count == 3, "the benchmark started three nodes")
        process.interrupt()
        process.waitUntilExit()
        #expect(process.terminationStatus == 128 + SIGINT)
        #expect(processes(mentioning: directory + "/node-").isEmpty, "no node outlives the interrupted benchmark")
    }
}
