@testable import BallastChaos
import BallastServer
import Foundation
import Logging
import NIOCore
import NIOPosix
import Synchronization
import Testing

/// Bug 1 of docs/reliability.md's table: the first soak killed a node while another was still
/// replaying its log after a restart, because the harness counted a running process as up; the
/// "minority" fault took the quorum for 18 minutes. A node fault must now wait for every node no
/// fault disrupts to answer `/readyz` with 200, and be skipped if one does not in time.
///
/// The nodes here are stand-ins: `sleep` processes (so the harness sees them running) whose admin
/// ports are served by this test, which decides what `/readyz` answers.
@Suite struct RecoveringNodeTests {
    @Test func aNodeFaultWaitsForARecoveringNodeAndIsSkippedIfItStaysUnready() async throws {
        let directory = NSTemporaryDirectory() + "chaos-recovering-\(getpid())-\(UInt32.random(in: 0 ... .max))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let standIn = directory + "/node"
        try "#!/bin/sh\nexec sleep 300\n".write(toFile: standIn, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: standIn)

        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let ready = Mutex<Set<Int>>([1, 3])
        var admins: [Int: AdminHTTPServer] = [:]
        var ports: [Int: ChaosCluster.Ports] = [:]
        var used: Set<Int> = []
        for node in 1 ... 3 {
            let admin = try await AdminHTTPServer(host: "127.0.0.1", port: 0, group: group, logger: Logger(label: "test")) { request in
                guard request.path == "/readyz" else { return .text("not found", status: .notFound) }
                return ready.withLock { $0.contains(node) } ? .text("ready") : .text("replaying", status: .serviceUnavailable)
            }
            admins[node] = admin
            ports[node] = ChaosCluster.Ports(raft: try FreePorts.take(excluding: &used), api: try FreePorts.take(excluding: &used),
                                             admin: admin.port)
        }
        let mesh = try await ProxyMesh.start(raftPorts: ports.mapValues(\.raft), loop: group.next(), seed: 1,
                                             logger: Logger(label: "test"))
        let cluster = ChaosCluster(binary: standIn, directory: directory, ports: ports, peerAddresses: [:], logLevel: "info",
                                   group: group)
        var configuration = ChaosRunConfiguration(directory: directory, ballastBinary: standIn, transfersBinary: standIn)
        // Long enough for several rounds of probes: on a loaded CI machine one probe of a ready
        // node can time out (500 ms), and the wait must tell that apart from a node not ready.
        // (CI once saw "nodes 1,2 not ready" with a 1 s wait, in which node 1 was probed twice.)
        configuration.recoveryWait = .seconds(6)
        let lines = Mutex<[String]>([])
        let runner = ChaosRunner(configuration: configuration, logger: Logger(label: "test")) { line in
            lines.withLock { $0.append(line) }
        }
        let setup = ChaosRunner.Setup(mesh: mesh, cluster: cluster,
                                      workload: ChaosWorkload(binary: standIn, directory: directory, apiEndpoints: [],
                                                              logLevel: "warning"))
        for node in 1 ... 3 { try cluster.start(node) }

        // Node 2 runs but is not ready: killing node 3 now would leave node 1 alone.
        await runner.inject(ScheduledFault(id: 1, kind: .killNode, injectAtMilliseconds: 0, healAtMilliseconds: 1000, nodes: [3]),
                            setup)
        #expect(cluster.isRunning(3), "the node fault was injected while node 2 was still recovering")
        #expect(runner.report(check: nil).skippedByKind == [.killNode: 1])
        #expect(runner.report(check: nil).faultsByKind[.killNode] ?? 0 == 0)
        #expect(lines.withLock { $0 }.contains { $0.contains("skip #1 kill-node: node 2 not ready") },
                "\(lines.withLock { $0 })")

        // Once node 2 is ready, the same fault goes ahead.
        ready.withLock { _ = $0.insert(2) }
        await runner.inject(ScheduledFault(id: 2, kind: .killNode, injectAtMilliseconds: 0, healAtMilliseconds: 1000, nodes: [3]),
                            setup)
        #expect(!cluster.isRunning(3))
        #expect(cluster.isRunning(1) && cluster.isRunning(2))
        #expect(runner.report(check: nil).faultsByKind[.killNode] == 1)

        // While latency is on every link, a node fault does not wait out recoveryWait for a node
        // that cannot get ready before that latency heals (its heal is queued behind the fault).
        // (A second run with a long recovery wait, so the short one is told apart.)
        ready.withLock { _ = $0.remove(1) }
        var patient = configuration
        patient.recoveryWait = .seconds(12)
        let second = ChaosRunner(configuration: patient, logger: Logger(label: "test")) { line in lines.withLock { $0.append(line) } }
        await second.inject(ScheduledFault(id: 3, kind: .latency, injectAtMilliseconds: 0, healAtMilliseconds: 1000,
                                           latencyMilliseconds: 150), setup)
        let waitStart = ContinuousClock.now
        await second.inject(ScheduledFault(id: 4, kind: .killNode, injectAtMilliseconds: 0, healAtMilliseconds: 1000, nodes: [2]),
                            setup)
        let waited = ContinuousClock.now - waitStart
        #expect(cluster.isRunning(2), "node 1 is not ready: the kill must be skipped")
        #expect(waited < patient.recoveryWait / 2, "waited \(waited) of a \(patient.recoveryWait) recovery wait")
        #expect(second.report(check: nil).skippedByKind == [.killNode: 1])

        for node in 1 ... 2 { await cluster.kill(node) }
        await mesh.stop()
        for admin in admins.values { await admin.close() }
        try await group.shutdownGracefully()
    }
}
