import BallastChaos
import BallastSDK
import Foundation
import Logging
import Testing
import TransfersKit

/// The chaos checker (docs/reliability.md, "Invariants") on a real cluster: a load of
/// transfers with ack logs, a leader and a worker SIGKILLed on the way; the healed cluster must
/// show zero violations with every ack line checked, and a planted lost acknowledgement must be
/// reported.
@Suite("Chaos checker on server processes", .serialized)
struct ChaosCheckProcessTests {
    func launchWorker(_ number: Int, _ transfers: TransfersProcesses) throws -> Process {
        try transfers.launch(["worker", "--address", transfers.addresses, "--ledger", transfers.ledger, "--identity", "worker-\(number)",
                              "--ack-log", transfers.cluster.directory + "/worker-\(number).acks.jsonl", "--log-level", "info"],
                             log: "worker-\(number).log")
    }

    func configuration(_ cluster: ProcessCluster, _ transfers: TransfersProcesses, ackLogs: [String]) -> ChaosCheckConfiguration {
        let ids = cluster.nodes.keys.sorted()
        return ChaosCheckConfiguration(apiEndpoints: ids.map { "127.0.0.1:\(cluster.nodes[$0]!.apiPort)" },
                                       adminEndpoints: ids.map { "127.0.0.1:\(cluster.nodes[$0]!.adminPort)" },
                                       namespace: "default", ledgerPath: transfers.ledger, ackLogPaths: ackLogs,
                                       quiescenceDeadline: .seconds(60))
    }

    @Test("a healed cluster after a leader and a worker SIGKILL shows zero violations; a lost acknowledgement is caught")
    func healedClusterPasses() async throws {
        let cluster = try ProcessCluster(size: 3)
        let transfers = try TransfersProcesses(cluster: cluster)
        var workers: [Int: Process] = [:]
        var others: [Process] = []
        defer {
            for process in Array(workers.values) + others where process.isRunning {
                kill(process.processIdentifier, SIGKILL)
                process.waitUntilExit()
            }
            transfers.shutdown()
            cluster.shutdown()
        }
        let directory = cluster.directory
        let leader = try await cluster.waitForLeader()
        workers[1] = try launchWorker(1, transfers)
        workers[2] = try launchWorker(2, transfers)
        var logger = Logger(label: "chaos-check-test")
        logger.logLevel = .info

        // Not quiescent: a large transfer waits for an approval nobody has sent yet.
        let waiting = try transfers.launch(["start", "--address", transfers.addresses, "--ledger", transfers.ledger, "--count", "1",
                                            "--large-fraction", "1", "--no-approve", "--approval-timeout", "10m", "--seed", "33",
                                            "--timeout", "15m", "--ack-log", directory + "/waiting.acks.jsonl"],
                                           log: "waiting.log")
        others.append(waiting)
        try await waitForLines(directory + "/waiting.acks.jsonl", atLeast: 1, timeout: .seconds(30))
        var impatient = configuration(cluster, transfers, ackLogs: [directory + "/waiting.acks.jsonl"])
        impatient.quiescenceDeadline = .seconds(1)
        let early = try await ChaosChecker.check(impatient, logger: logger)
        #expect(early.violations.contains { $0.invariant == ChaosInvariant.quiescence && $0.workflowID == "transfer-33-0" },
                "\(early.violations)")
        let client = BallastClient(endpoints: cluster.apiEndpoints(), group: cluster.group)
        try await client.signal(workflowID: "transfer-33-0", name: "approve", input: true, requestID: "test-approval")
        await client.close()
        #expect(try await transfers.wait(for: waiting, timeout: .seconds(60)) == 0, "\(transfers.log("waiting.log"))")

        // Starts for 10 s (approvals by signal for a third of them), and two large transfers no one
        // approves, refunded by their 2 s approval timer.
        let load = try transfers.start(["--for", "10s", "--concurrency", "8", "--large-fraction", "0.3", "--fail-rate", "0.1",
                                        "--transient-rate", "0.2", "--seed", "31", "--approval-timeout", "20s", "--timeout", "120s",
                                        "--ack-log", directory + "/start.acks.jsonl"])
        let unapproved = try transfers.launch(["start", "--address", transfers.addresses, "--ledger", transfers.ledger, "--count", "2",
                                               "--large-fraction", "1", "--no-approve", "--approval-timeout", "2s", "--seed", "32",
                                               "--timeout", "120s", "--ack-log", directory + "/unapproved.acks.jsonl"],
                                              log: "unapproved.log")
        others.append(unapproved)
        // Once --for has started more than its first window of 8 (and workers have answered),
        // SIGKILL the leader, then a worker.
        try await waitForLines(directory + "/start.acks.jsonl", atLeast: 12, timeout: .seconds(60))
        try await waitForLines(directory + "/worker-1.acks.jsonl", atLeast: 10, timeout: .seconds(60))
        cluster.kill(leader)
        _ = try await cluster.waitForLeader(excluding: leader)
        if let victim = workers.removeValue(forKey: 1) {
            kill(victim.processIdentifier, SIGKILL)
            victim.waitUntilExit()
        }
        workers[1] = try launchWorker(1, transfers)  // appends to the same ack log
        try cluster.start(leader)

        #expect(try await transfers.wait(for: load, timeout: .seconds(150)) == 0, "\(transfers.log("start.log"))")
        #expect(try await transfers.wait(for: unapproved, timeout: .seconds(30)) == 0, "\(transfers.log("unapproved.log"))")
        let started = transfers.log("start.log")
        let summaries = started.split(separator: "\n").filter { $0.hasPrefix("summary: ") }
        let summary = String(summaries.first ?? "")
        let closedText = summary.dropFirst("summary: ".count).prefix(while: { $0 != "/" })
        // Every transfer --for started closed.
        let closed = try #require(Int(closedText), "\(started)")
        #expect(closed > 8 && summary.contains("\(closed)/\(closed) closed"), "\(summary)")

        let ackLogs = ["waiting", "start", "unapproved", "worker-1", "worker-2"].map { directory + "/\($0).acks.jsonl" }
        let contents = try AckLogReader.read(ackLogs)
        let kinds = Set(contents.records.map(\.kind))
        #expect(kinds.isSuperset(of: [.start, .signal, .activityCompleted, .workflowTaskCompleted]), "\(kinds)")
        #expect(contents.records.filter { $0.kind == .start }.count == closed + 3)

        let report = try await ChaosChecker.check(configuration(cluster, transfers, ackLogs: ackLogs), logger: logger)
        #expect(report.violations.isEmpty, "\(report.violations.prefix(20))")
        #expect(report.completed + report.compensated == closed + 3)
        #expect(report.compensated >= 2)  // at least the two refunded by their timer
        #expect(report.workflows == closed + 3 && report.events > 20 * report.workflows)
        let uncheckable = contents.records.filter { $0.kind == .workflowTaskFailed && ($0.attempt ?? 1) > 1 }.count
        #expect(report.acknowledgedChecked == contents.records.count - uncheckable)
        #expect(report.digestIndex != nil && report.stateDigest?.isEmpty == false)

        // A completion the cluster acknowledged but the history lacks must be reported.
        let completion = try #require(contents.records.first { $0.kind == .activityCompleted })
        var lost = completion
        lost.scheduledEventID = 9_999
        let planted = directory + "/planted.acks.jsonl"
        let writer = try AckLogWriter(path: planted)
        writer.append(lost)
        writer.close()
        let second = try await ChaosChecker.check(configuration(cluster, transfers, ackLogs: ackLogs + [planted]), logger: logger)
        #expect(second.violations.count == 1, "\(second.violations)")
        #expect(second.violations.first?.invariant == ChaosInvariant.acknowledgedPresent)
        #expect(second.violations.first?.workflowID == completion.workflowID)
    }

    /// Waits until `path` has at least `count` lines.
    func waitForLines(_ path: String, atLeast count: Int, timeout: Duration) async throws {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
            if text.split(separator: "\n").count >= count { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw ClusterTestFailure("\(path) did not reach \(count) lines within \(timeout)")
    }
}
