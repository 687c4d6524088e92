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

    @Test func aTLSRunSaysSoInItsSummaryAndItsJSON() throws {
        var tls = report(check: check())
        tls.tls = true
        var checked = check()
        checked.identities = ["chaos-load": 30, "chaos-worker": 400]
        tls.check = checked
        let table = tls.table.joined(separator: "\n")
        #expect(table.contains("mutual TLS") && table.contains("--duration 40s --tls"))
        #expect(table.contains("caller identities           chaos-worker 400, chaos-load 30"), "\(table)")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(tls.json.utf8)) as? [String: Any])
        #expect(json["tls"] as? Bool == true)
        #expect(json["identities"] as? [String: Int] == ["chaos-load": 30, "chaos-worker": 400])
    }

    @Test func theTLSRunMakesACertificatePerNodeAndClientAndGrantsEachOnlyItsRoles() throws {
        let directory = NSTemporaryDirectory() + "chaos-tls-\(getpid())-\(UInt32.random(in: 0 ... .max))"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let tls = try ChaosTLS(directory: directory, nodes: [1, 2, 3])
        for name in ["ca", "node-1", "node-2", "node-3", ChaosTLS.workerIdentity, ChaosTLS.loadIdentity, ChaosTLS.checkerIdentity] {
            #expect(FileManager.default.fileExists(atPath: directory + "/\(name).crt"), "\(name).crt")
            let mode = try FileManager.default.attributesOfItem(atPath: directory + "/\(name).key")[.posixPermissions] as? NSNumber
            #expect(mode?.intValue == 0o600, "\(name).key is private")
        }
        #expect(tls.serverFlags(2) == ["--tls-cert", directory + "/node-2.crt", "--tls-key", directory + "/node-2.key",
                                       "--tls-ca", directory + "/ca.crt", "--roles", directory + "/roles"])
        #expect(tls.workerFlags.contains(directory + "/chaos-worker.crt") && tls.loadFlags.contains(directory + "/chaos-load.key"))
        let roles = try String(contentsOfFile: tls.rolesPath, encoding: .utf8)
        #expect(roles.contains("chaos-load     admin   default") && roles.contains("chaos-checker  reader  default"))
        #expect(!roles.contains(" * ") && !roles.contains("admin   *"), "no identity of the run holds a cluster-wide role")
        // The leaf names its identity the way nodes read it (docs/security.md, "Certificates").
        let openssl = Process()
        openssl.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        openssl.arguments = ["openssl", "x509", "-in", directory + "/node-3.crt", "-noout", "-ext", "subjectAltName,extendedKeyUsage"]
        let pipe = Pipe()
        openssl.standardOutput = pipe
        try openssl.run()
        let text = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        openssl.waitUntilExit()
        #expect(text.contains("URI:ballast://node/3") && text.contains("IP Address:127.0.0.1"), "\(text)")
        #expect(text.contains("TLS Web Server Authentication") && text.contains("TLS Web Client Authentication"), "\(text)")
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
