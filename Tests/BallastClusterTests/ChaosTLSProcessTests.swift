import BallastChaos
import Foundation
import Testing

/// `ballast chaos --tls` (issue 10 §4, docs/reliability.md "TLS"): a short chaos round with mutual
/// TLS on every port and roles enforced. The fault proxies forward the TLS bytes of the Raft links
/// unchanged (a dropped chunk resets the connection, which then handshakes again); the workers,
/// the load and the checker present their own certificates. The round must pass with zero
/// violations, and the histories must name only the certificates' identities, verified.
@Suite("Chaos round with TLS", .serialized)
struct ChaosTLSProcessTests {
    /// The first seed whose schedule of `durationMilliseconds` has every kind in `wanted` (the
    /// schedule is a pure function of its parameters, so `ballast chaos --seed` plays the same).
    static func seed(durationMilliseconds: Int64, faults: [FaultKind], wanted: Set<FaultKind>) throws -> UInt64 {
        for seed in UInt64(1) ... 500 {
            let schedule = ChaosSchedule(ChaosSchedule.Parameters(seed: seed, durationMilliseconds: durationMilliseconds,
                                                                  nodeCount: 3, workerCount: 1, faults: faults))
            if wanted.isSubset(of: Set(schedule.faults.map(\.kind))) { return seed }
        }
        throw ClusterTestFailure("no seed up to 500 draws \(wanted) in \(durationMilliseconds) ms")
    }

    @Test("a chaos round with mutual TLS (leader kill, leader isolation, packet drop) passes; histories name verified identities")
    func tlsRoundPasses() async throws {
        let ballast = try ProcessCluster.locateBinary()
        let transfers = try TransfersProcesses.locateBinary()
        let faults: [FaultKind] = [.killLeader, .isolateLeader, .packetDrop]
        let seed = try Self.seed(durationMilliseconds: 12_000, faults: faults, wanted: Set(faults))
        let directory = NSTemporaryDirectory() + "ballast-chaos-tls-test-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let output = directory + ".out"
        defer { try? FileManager.default.removeItem(atPath: output) }
        _ = FileManager.default.createFile(atPath: output, contents: nil)
        let progress = directory + ".progress"
        defer { try? FileManager.default.removeItem(atPath: progress) }
        _ = FileManager.default.createFile(atPath: progress, contents: nil)

        let process = Process()
        process.executableURL = URL(fileURLWithPath: ballast)
        process.arguments = ["chaos", "--tls", "--json", "--duration", "12s", "--seed", String(seed), "--nodes", "3", "--workers", "1",
                             "--faults", faults.map(\.rawValue).joined(separator: ","), "--quiescence", "60s",
                             "--transfers", transfers, "--dir", directory, "--keep", "--concurrency", "4"]
        process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: output))
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: progress))
        try process.run()
        let deadline = ContinuousClock.now + .seconds(300)
        while process.isRunning && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(200)) }
        if process.isRunning {
            process.interrupt()  // ballast chaos kills its children on SIGINT
            process.waitUntilExit()
        }
        let log = (try? String(contentsOfFile: progress, encoding: .utf8)) ?? ""
        let text = try String(contentsOfFile: output, encoding: .utf8)
        #expect(process.terminationStatus == 0, "\(log.suffix(6000))")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any], "\(text)\n\(log.suffix(4000))")
        #expect(object["passed"] as? Bool == true, "\(text)")
        #expect(object["tls"] as? Bool == true)
        #expect((object["violations"] as? [Any])?.isEmpty == true, "\(text)")
        let injected = (object["faults"] as? [String: Int]) ?? [:]
        for kind in faults { #expect(injected[kind.rawValue, default: 0] >= 1, "\(kind.rawValue) not injected: \(text)") }
        #expect((object["workflows"] as? Int ?? 0) > 4, "\(text)")
        // Raft reached every node only through the proxies, as TLS records: six links at start,
        // and new connections (new handshakes) after the leader's restart and the resets.
        #expect((object["proxy_connections"] as? Int ?? 0) > 6, "\(text)")
        #expect((object["proxy_forwarded_bytes"] as? Int ?? 0) > 10_000, "\(text)")

        // Verified identities only: the load started and signaled, the worker took the tasks.
        // Without TLS these would be the claimed names, marked "(unverified)".
        let identities = (object["identities"] as? [String: Int]) ?? [:]
        #expect(Set(identities.keys) == [ChaosTLS.loadIdentity, ChaosTLS.workerIdentity], "\(identities)")

        // Every node started with TLS required.
        for node in 1 ... 3 {
            let nodeLog = (try? String(contentsOfFile: directory + "/node-\(node)/log", encoding: .utf8)) ?? ""
            #expect(nodeLog.contains("tls=required"), "node \(node): \(nodeLog.prefix(2000))")
        }
        #expect(FileManager.default.fileExists(atPath: directory + "/tls/ca.crt"))
    }
}
