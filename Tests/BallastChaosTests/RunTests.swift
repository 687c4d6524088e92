import BallastChaos
import Foundation
import Testing

@Suite struct RunTests {
    private func report(check: ChaosCheckReport?, problems: [String] = []) -> ChaosRunReport {
        ChaosRunReport(seed: 12, nodes: 3, durationSeconds: 40, workers: 2, directory: "/tmp/x",
                       faultsByKind: [.killLeader: 2, .splitMajority: 1], check: check, problems: problems)
    }

    private func check(violations: [ChaosViolation] = []) -> ChaosCheckReport {
        ChaosCheckReport(workflows: 10, completed: 8, compensated: 2, events: 300, acknowledgedChecked: 120, violations: violations)
    }

    @Test func aRunPassesOnlyWhenCheckedCleanAndWithoutProblems() {
        #expect(report(check: check()).passed)
        #expect(!report(check: nil).passed, "an unchecked run is not a pass")
        #expect(!report(check: check(violations: [ChaosViolation(invariant: "timers", workflowID: "w", detail: "early")])).passed)
        #expect(!report(check: check(), problems: ["node 2 exited on its own"]).passed)
    }

    @Test func theSummaryNamesTheFaultsTheCountsAndTheSeed() throws {
        let failing = report(check: check(violations: [ChaosViolation(invariant: "timers", workflowID: "w-1", detail: "fired 3 ms early")]))
        let table = failing.table.joined(separator: "\n")
        #expect(table.contains("kill-leader               2"))
        #expect(table.contains("total                     3"))
        #expect(table.contains("acknowledged events checked 120"))
        #expect(table.contains("timers [w-1]: fired 3 ms early"))
        #expect(table.contains("FAIL") && table.contains("--seed 12"))
        let json = try #require(try JSONSerialization.jsonObject(with: Data(failing.json.utf8)) as? [String: Any])
        #expect(json["passed"] as? Bool == false)
        #expect(json["seed"] as? Int == 12)
        #expect((json["faults"] as? [String: Int])?["split"] == 1)
        #expect((json["violations"] as? [[String: Any]])?.first?["workflow_id"] as? String == "w-1")
    }

    @Test func killAllLeavesNoChildRunning() async throws {
        let directory = NSTemporaryDirectory() + "chaos-children-\(getpid())-\(UInt32.random(in: 0 ... .max))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let children = ChildProcesses()
        let first = try children.spawn(name: "sleeper", executable: "/bin/sleep", arguments: ["60"], logPath: directory + "/a.log")
        let second = try children.spawn(name: "frozen", executable: "/bin/sleep", arguments: ["60"], logPath: directory + "/b.log")
        second.send(SIGSTOP)
        #expect(first.isRunning && second.isRunning)
        await children.killAll()
        #expect(!first.isRunning && !second.isRunning, "a frozen child is killed too")
        #expect(first.exitStatus == 128 + SIGKILL)
    }

    @Test func aMissingExecutableIsAnError() throws {
        let children = ChildProcesses()
        #expect(throws: (any Error).self) {
            _ = try children.spawn(name: "nothing", executable: "/nonexistent/ballast", arguments: [],
                                   logPath: NSTemporaryDirectory() + "chaos-missing-\(getpid()).log")
        }
    }

    /// The first soak's checker gave up on the ack log of a worker that exited before opening it.
    @Test func onlyAckLogsThatExistAreChecked() async throws {
        let directory = NSTemporaryDirectory() + "chaos-acks-\(getpid())-\(UInt32.random(in: 0 ... .max))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        // `/bin/false` stands in for a worker that fails at start, before it opens its ack log.
        let workload = ChaosWorkload(binary: "/bin/false", directory: directory, apiEndpoints: ["127.0.0.1:1"], logLevel: "warning")
        try workload.startWorker(0)
        #expect(await proxyEventually { workload.unexpectedWorkerExits.count == 1 })
        try Data().write(to: URL(fileURLWithPath: directory + "/worker-1-0.acks.jsonl"))
        try workload.startWorker(1)
        #expect(workload.ackLogPaths.count == 2)
        #expect(workload.existingAckLogPaths == [directory + "/worker-1-0.acks.jsonl"])
        await workload.killWorkers()
    }
}
