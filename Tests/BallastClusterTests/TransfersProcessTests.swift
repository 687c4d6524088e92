import BallastProto
import BallastSDK
import Foundation
import Testing

/// `transfers` processes (workers, start, verify) next to a `ProcessCluster`, logging into its
/// directory; every process still running is killed at the end.
final class TransfersProcesses: @unchecked Sendable {
    let binary: String
    let cluster: ProcessCluster
    let ledger: String
    private(set) var workers: [Int: Process] = [:]
    private var others: [Process] = []

    init(cluster: ProcessCluster) throws {
        binary = try Self.locateBinary()
        self.cluster = cluster
        ledger = cluster.directory + "/ledger.sqlite"
    }

    /// The `transfers` binary: `$TRANSFERS_BIN`, else the debug build next to `ballast`'s.
    static func locateBinary() throws -> String {
        if let path = ProcessInfo.processInfo.environment["TRANSFERS_BIN"] { return path }
        let candidate = URL(fileURLWithPath: try ProcessCluster.locateBinary()).deletingLastPathComponent().appendingPathComponent("transfers").path
        guard FileManager.default.isExecutableFile(atPath: candidate) else {
            throw ClusterTestFailure("no transfers binary at \(candidate): run swift build first, or set TRANSFERS_BIN")
        }
        return candidate
    }

    var addresses: String {
        cluster.nodes.keys.sorted().map { "127.0.0.1:\(cluster.nodes[$0]!.apiPort)" }.joined(separator: ",")
    }

    /// Starts `transfers ARGUMENTS` with output to `log` in the cluster directory.
    func launch(_ arguments: [String], log: String) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = arguments
        let path = cluster.directory + "/" + log
        _ = FileManager.default.createFile(atPath: path, contents: nil)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        handle.seekToEndOfFile()
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        return process
    }

    func startWorker(_ number: Int) throws {
        workers[number] = try launch(["worker", "--address", addresses, "--ledger", ledger, "--identity", "worker-\(number)",
                                      "--log-level", "info"], log: "worker-\(number).log")
    }

    /// SIGKILL, as a crash.
    func killWorker(_ number: Int) {
        guard let process = workers.removeValue(forKey: number) else { return }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    func start(_ arguments: [String]) throws -> Process {
        let process = try launch(["start", "--address", addresses, "--ledger", ledger] + arguments, log: "start.log")
        others.append(process)
        return process
    }

    /// Runs `transfers verify`; its exit status and stdout.
    func verify() throws -> (Int32, String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = ["verify", "--address", addresses, "--ledger", ledger]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.standardError
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    /// Waits for `process` to exit within `timeout`; its status, or nil if it still runs.
    func wait(for process: Process, timeout: Duration) async throws -> Int32? {
        let deadline = ContinuousClock.now + timeout
        while process.isRunning && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(50)) }
        return process.isRunning ? nil : process.terminationStatus
    }

    func log(_ name: String) -> String {
        (try? String(contentsOfFile: cluster.directory + "/" + name, encoding: .utf8)) ?? "(no \(name))"
    }

    func shutdown() {
        for process in Array(workers.values) + others where process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        workers.removeAll()
    }
}

@Suite("Money transfers on server processes", .serialized)
struct TransfersProcessTests {
    func closedCount(_ client: BallastClient) async -> Int64 {
        var filter = Ballast_V1_WorkflowExecutionFilter()
        filter.workflowType = "Transfer"
        filter.statuses = [.completed]
        return (try? await client.count(filter: filter)) ?? 0
    }

    func waitUntilClosed(_ client: BallastClient, atLeast count: Int64, start: Process, timeout: Duration) async throws {
        let deadline = ContinuousClock.now + timeout
        while await closedCount(client) < count {
            guard start.isRunning else { return }
            guard ContinuousClock.now < deadline else { throw ClusterTestFailure("fewer than \(count) transfers closed within \(timeout)") }
            try await Task.sleep(for: .milliseconds(50))
        }
    }

    @Test("200 transfers on 3 nodes and two workers survive the leader's and a worker's SIGKILL; verify passes")
    func transfersSurviveKills() async throws {
        let cluster = try ProcessCluster(size: 3)
        let transfers = try TransfersProcesses(cluster: cluster)
        defer {
            transfers.shutdown()
            cluster.shutdown()
        }
        let leader = try await cluster.waitForLeader()
        try transfers.startWorker(1)
        try transfers.startWorker(2)
        // The starter holds after 100 starts until the leader is dead, so the kill falls mid-way
        // however fast the first hundred run.
        let hold = cluster.directory + "/hold-starts"
        #expect(FileManager.default.createFile(atPath: hold, contents: nil))
        let start = try transfers.start(["--count", "200", "--concurrency", "32", "--fail-rate", "0.1", "--transient-rate", "0.2",
                                         "--seed", "11", "--approval-timeout", "20s", "--timeout", "150s",
                                         "--hold-after", "100", "--hold-file", hold])
        var options = BallastClientOptions()
        options.callTimeout = .seconds(20)
        let endpoints = cluster.apiEndpoints()
        let client = BallastClient(endpoints: endpoints, options: options, group: cluster.group)

        // A third of the way: SIGKILL the leader; the cluster elects another and goes on.
        try await waitUntilClosed(client, atLeast: 60, start: start, timeout: .seconds(90))
        #expect(start.isRunning, "the starter holds with 100 transfers still to start")
        cluster.kill(leader)
        try FileManager.default.removeItem(atPath: hold)
        let newLeader = try await cluster.waitForLeader(excluding: leader)
        #expect(newLeader != leader)
        // Half-way: SIGKILL worker 1 with tasks in hand and start it again; its activities and
        // workflow tasks time out and run elsewhere.
        try await waitUntilClosed(client, atLeast: 100, start: start, timeout: .seconds(90))
        transfers.killWorker(1)
        try transfers.startWorker(1)
        try cluster.start(leader)

        let status = try await transfers.wait(for: start, timeout: .seconds(170))
        #expect(status == 0, "transfers start: \(transfers.log("start.log"))")
        let (verifyStatus, output) = try transfers.verify()
        #expect(verifyStatus == 0, "\(output)")
        let summary = try #require(try JSONSerialization.jsonObject(with: Data(output.utf8)) as? [String: Any], "\(output)")
        #expect(summary["transfers"] as? Int == 200)
        #expect(summary["stuck"] as? Int == 0 && summary["running"] as? Int == 0, "\(output)")
        #expect(summary["conserved"] as? Bool == true)
        let completed = summary["completed"] as? Int ?? 0, compensated = summary["compensated"] as? Int ?? 0
        #expect(completed + compensated == 200)
        // Fail rate 0.1: some were rejected by the bank and refunded, most completed.
        #expect(compensated >= 5 && completed >= 150, "\(output)")
        #expect(summary["ledger_before"] as? Int == summary["ledger_after"] as? Int)
        // Operators can filter on the outcome.
        #expect(try await client.count(query: "TransferOutcome = 'compensated'") == Int64(compensated))

        // Large transfers nobody approves: the status query shows them waiting, then the durable
        // approval timer refunds them (fired by whichever node leads by then).
        let unapproved = try transfers.start(["--count", "4", "--large-fraction", "1", "--no-approve", "--approval-timeout", "3s",
                                              "--seed", "12", "--timeout", "60s", "--json"])
        let deadline = ContinuousClock.now + .seconds(30)
        var step = ""
        while step != "awaiting-approval" && ContinuousClock.now < deadline {
            let answer = try? await client.query(workflowID: "transfer-12-0", queryType: "status", as: [String: AnyCodableValue].self)
            if case .string(let value)? = answer?["step"] { step = value }
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(step == "awaiting-approval")
        #expect(try await transfers.wait(for: unapproved, timeout: .seconds(70)) == 0, "\(transfers.log("start.log"))")
        let (finalStatus, finalOutput) = try transfers.verify()
        let final = try #require(try JSONSerialization.jsonObject(with: Data(finalOutput.utf8)) as? [String: Any])
        #expect(finalStatus == 0 && final["transfers"] as? Int == 204 && final["compensated"] as? Int == compensated + 4, "\(finalOutput)")
        await client.close()
    }
}

/// A JSON value of a query answer the test only partly reads.
enum AnyCodableValue: Decodable {
    case string(String)
    case other

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let text = try? container.decode(String.self) { self = .string(text) } else { self = .other }
    }
}
