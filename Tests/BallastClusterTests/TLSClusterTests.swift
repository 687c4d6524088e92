import BallastProto
import BallastServer
import BallastWire
import Foundation
import NIOConcurrencyHelpers
import Testing

/// Certificates for one TLS cluster test, made with scripts/tls-certs (openssl).
struct TLSClusterCertificates {
    let directory: String

    static let repoRoot: URL = {
        var url = URL(fileURLWithPath: #filePath).resolvingSymlinksInPath().deletingLastPathComponent()
        while url.path != "/" && !FileManager.default.fileExists(atPath: url.appendingPathComponent("scripts/tls-certs").path) {
            url.deleteLastPathComponent()
        }
        return url
    }()

    init(in parent: String) throws {
        directory = parent + "/tls"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try run(["ca", directory, "ca"])
        try run(["ca", directory, "other-ca"])
        for who in ["operator", "reader"] { try run(["issue", directory, "ca", who, who]) }
        try run(["issue", directory, "other-ca", "stranger", "mallory"])
        try run(["issue", directory, "ca", "expired", "old-operator", "--start", "20200101000000Z", "--end", "20200102000000Z"])
    }

    func run(_ arguments: [String]) throws {
        let (status, output) = try Self.shell("/bin/bash", [Self.repoRoot.appendingPathComponent("scripts/tls-certs").path] + arguments)
        guard status == 0 else { throw ClusterTestFailure("tls-certs \(arguments): \(output)") }
    }

    /// Issues `name` for `identity` and installs it as the live `node-<id>` files (atomic renames).
    func installNode(_ id: Int, from name: String) throws {
        try run(["issue", directory, "ca", name, "node/\(id)"])
        for suffix in ["crt", "key"] {
            let temporary = "\(directory)/node-\(id).\(suffix).new"
            try? FileManager.default.removeItem(atPath: temporary)
            try FileManager.default.copyItem(atPath: "\(directory)/\(name).\(suffix)", toPath: temporary)
            guard rename(temporary, "\(directory)/node-\(id).\(suffix)") == 0 else { throw ClusterTestFailure("rename failed") }
        }
    }

    func path(_ name: String) -> String { "\(directory)/\(name)" }

    func serverFlags(_ id: Int) -> [String] {
        ["--tls-cert", path("node-\(id).crt"), "--tls-key", path("node-\(id).key"), "--tls-ca", path("ca.crt")]
    }

    func client(_ name: String?, ca: String = "ca") -> TLSClientOptions {
        TLSClientOptions(trustRoots: path("\(ca).crt"), certificate: name.map { path("\($0).crt") },
                         privateKey: name.map { path("\($0).key") })
    }

    /// The serial number of the certificate a TLS port serves now (as `openssl s_client` sees it).
    func servedSerial(port: Int) throws -> String {
        let command = "openssl s_client -connect 127.0.0.1:\(port) -CAfile \(path("ca.crt")) -cert \(path("operator.crt")) "
            + "-key \(path("operator.key")) </dev/null 2>/dev/null | openssl x509 -noout -serial"
        return try Self.shell("/bin/sh", ["-c", command]).1.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    func fileSerial(_ name: String) throws -> String {
        try Self.shell("/usr/bin/openssl", ["x509", "-in", path("\(name).crt"), "-noout", "-serial"]).1
            .trimmingCharacters(in: .whitespacesAndNewlines)
    }

    static func shell(_ executable: String, _ arguments: [String]) throws -> (Int32, String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }
}

/// A stream of workflow starts against the cluster, each call on its connection or on a fresh
/// one; counts successes and records every failure.
final class TLSLoad: Sendable {
    let succeeded = NIOLockedValueBox(0)
    let failures = NIOLockedValueBox<[String]>([])
    private let stopped = NIOLockedValueBox(false)
    private let task = NIOLockedValueBox<Task<Void, Never>?>(nil)

    /// Starts calling the API port `port` as `tls`; every `newConnectionEvery` calls opens a new connection.
    func start(port: Int, tls: TLSClientOptions, prefix: String, newConnectionEvery: Int = 5) {
        let work = Task { [self] in
            var configuration = GRPCClientConfiguration()
            configuration.tls = tls
            var client: GRPCClient?
            var index = 0
            while !stopped.withLockedValue({ $0 }) {
                index += 1
                do {
                    if client == nil || index % newConnectionEvery == 0 {
                        if let old = client { await old.close() }
                        client = try await GRPCClient.connect(host: "127.0.0.1", port: port, configuration: configuration)
                    }
                    var request = Ballast_V1_StartWorkflowRequest()
                    request.workflowID = "\(prefix)-\(index)"
                    request.workflowType.name = "Transfer"
                    request.taskQueue = "payments"
                    request.requestID = "\(prefix)-request-\(index)"
                    let _: Ballast_V1_StartWorkflowResponse = try await client!.unary(
                        BallastMethod.Workflow.start, request: request, timeout: .seconds(10))
                    succeeded.withLockedValue { $0 += 1 }
                } catch {
                    failures.withLockedValue { $0.append("call \(index): \(error)") }
                    client = nil
                }
            }
            if let client { await client.close() }
        }
        task.withLockedValue { $0 = work }
    }

    /// Waits until `count` more calls succeeded (or fails after `timeout`).
    func waitForProgress(_ count: Int, timeout: Duration = .seconds(30)) async throws {
        let target = succeeded.withLockedValue { $0 } + count
        let deadline = ContinuousClock.now + timeout
        while succeeded.withLockedValue({ $0 }) < target {
            guard ContinuousClock.now < deadline else {
                throw ClusterTestFailure("the load made no progress: \(failures.withLockedValue { $0.suffix(3) })")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    func stop() async {
        stopped.withLockedValue { $0 = true }
        await task.withLockedValue { $0 }?.value
    }
}

/// Polls until `condition` holds or `timeout` passes.
func eventually(_ timeout: Duration = .seconds(15), _ condition: () throws -> Bool) async throws -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try condition() { return true }
        try await Task.sleep(for: .milliseconds(50))
    }
    return try condition()
}

@Suite("TLS on server processes", .serialized)
struct TLSClusterTests {
    static func makeCluster() throws -> (ProcessCluster, TLSClusterCertificates) {
        let parent = NSTemporaryDirectory() + "ballast-tls-cluster-\(UUID().uuidString.prefix(8))"
        let certificates = try TLSClusterCertificates(in: parent)
        for id in 1 ... 3 { try certificates.installNode(id, from: "node-\(id)-v1") }
        // TLS turns authorization on: the operator may do everything.
        try "operator admin *\n".write(toFile: certificates.path("roles"), atomically: true, encoding: .utf8)
        let cluster = try ProcessCluster(size: 3, extraArguments: ["--tls-reload-interval-ms", "200", "--roles", certificates.path("roles")],
                                         nodeArguments: { certificates.serverFlags($0) },
                                         adminTLS: certificates.client("operator"))
        return (cluster, certificates)
    }

    /// Waits until the operator may start workflows (the first leader bootstraps the roles file).
    static func waitForRoles(_ cluster: ProcessCluster, leader: Int, _ certificates: TLSClusterCertificates) async throws {
        var configuration = GRPCClientConfiguration()
        configuration.tls = certificates.client("operator")
        let client = try await GRPCClient.connect(host: "127.0.0.1", port: cluster.nodes[leader]!.apiPort, configuration: configuration)
        defer { Task { await client.close() } }
        let deadline = ContinuousClock.now + .seconds(15)
        while true {
            var request = Ballast_V1_StartWorkflowRequest()
            request.workflowID = "roles-probe"
            request.workflowType.name = "Transfer"
            request.taskQueue = "payments"
            request.requestID = "roles-probe"
            do {
                let _: Ballast_V1_StartWorkflowResponse = try await client.unary(BallastMethod.Workflow.start, request: request,
                                                                                 timeout: .seconds(5))
                return
            } catch let status as GRPCStatus where status.code == .permissionDenied && ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(20))
            }
        }
    }

    func log(_ cluster: ProcessCluster, _ id: Int) -> String {
        (try? String(contentsOfFile: cluster.directory + "/node-\(id).log", encoding: .utf8)) ?? ""
    }

    @Test("bad clients and non-member nodes are refused with log lines while an authenticated client's calls all succeed")
    func refusals() async throws {
        let (cluster, certificates) = try Self.makeCluster()
        defer {
            cluster.shutdown()
            try? FileManager.default.removeItem(atPath: (certificates.directory as NSString).deletingLastPathComponent)
        }
        let leader = try await cluster.waitForLeader()
        try await Self.waitForRoles(cluster, leader: leader, certificates)
        let termBefore = try #require(await cluster.view(from: leader)?.members.first { $0.id == "\(leader)" }?.term)
        let load = TLSLoad()
        load.start(port: cluster.nodes[leader]!.apiPort, tls: certificates.client("operator"), prefix: "good")
        try await load.waitForProgress(20)

        var configuration = GRPCClientConfiguration()
        for (name, ca, expected) in [(nil, "ca", "requires a client certificate"), ("stranger", "ca", "not issued by a CA"),
                                     ("expired", "ca", "expired"), ("operator", "other-ca", "failed verification")] {
            configuration.tls = certificates.client(name, ca: ca)
            do {
                let client = try await GRPCClient.connect(host: "127.0.0.1", port: cluster.nodes[leader]!.apiPort,
                                                          configuration: configuration)
                let _: Ballast_V1_DescribeClusterResponse = try await client.unary(
                    BallastMethod.Cluster.describeCluster, request: Ballast_V1_DescribeClusterRequest(), timeout: .seconds(5))
                Issue.record("\(name ?? "no certificate") was served")
            } catch {
                #expect("\(error)".contains(expected), "\(name ?? "no certificate"): \(error)")
            }
        }
        configuration.tls = nil
        await #expect(throws: (any Error).self) {
            let client = try await GRPCClient.connect(host: "127.0.0.1", port: cluster.nodes[leader]!.apiPort, configuration: configuration)
            let _: Ballast_V1_DescribeClusterResponse = try await client.unary(
                BallastMethod.Cluster.describeCluster, request: Ballast_V1_DescribeClusterRequest(), timeout: .seconds(5))
        }

        // A node the cluster never added (a valid certificate of the same CA), and one that says
        // hello as node 8 with node 1's certificate: both dial every member's Raft port.
        try certificates.run(["issue", certificates.directory, "ca", "node-9", "node/9"])
        var rogues: [Process] = []
        defer { for rogue in rogues { rogue.terminate(); rogue.waitUntilExit() } }
        let members = cluster.nodes.keys.sorted().map { "\($0)=127.0.0.1:\(cluster.nodes[$0]!.raftPort)" }.joined(separator: ",")
        for (id, certificate) in [(9, "node-9"), (8, "node-1")] {
            let rogue = Process()
            rogue.executableURL = URL(fileURLWithPath: try ProcessCluster.locateBinary())
            let port = try ProcessCluster.freePort()
            rogue.arguments = ["server", "--id", "\(id)", "--data-dir", cluster.directory + "/rogue-\(id)",
                               "--raft", "127.0.0.1:\(port)", "--peers", "\(members),\(id)=127.0.0.1:\(port)",
                               "--tls-cert", certificates.path("\(certificate).crt"), "--tls-key", certificates.path("\(certificate).key"),
                               "--tls-ca", certificates.path("ca.crt")]
            rogue.standardOutput = FileHandle.nullDevice
            rogue.standardError = FileHandle.nullDevice
            try rogue.run()
            rogues.append(rogue)
        }
        #expect(try await eventually { (1 ... 3).contains { log(cluster, $0).contains("node/9 is not a member of this cluster") } },
                "no node logged the refusal of node/9")
        #expect(try await eventually { (1 ... 3).contains { log(cluster, $0).contains("a hello from node 8 on a connection certified as node/1") } },
                "no node logged the impostor")
        try await load.waitForProgress(20)
        await load.stop()

        #expect(load.failures.withLockedValue { $0 }.isEmpty, "\(load.failures.withLockedValue { $0 })")
        let after = try #require(await cluster.view(from: leader))
        #expect(after.leader == "\(leader)")
        #expect(after.members.first { $0.id == "\(leader)" }?.term == termBefore, "the rogue nodes disturbed the elections")
        #expect(log(cluster, leader).contains("refused a TLS connection"))
        #expect(log(cluster, leader).contains("refused a cleartext connection"))
    }

    @Test("certificates rotated under load (SIGHUP and file change) take effect for new connections without a failed call")
    func rotationUnderLoad() async throws {
        let (cluster, certificates) = try Self.makeCluster()
        defer {
            cluster.shutdown()
            try? FileManager.default.removeItem(atPath: (certificates.directory as NSString).deletingLastPathComponent)
        }
        let leader = try await cluster.waitForLeader()
        try await Self.waitForRoles(cluster, leader: leader, certificates)
        let steady = TLSLoad()
        steady.start(port: cluster.nodes[leader]!.apiPort, tls: certificates.client("operator"), prefix: "steady",
                     newConnectionEvery: Int.max)
        let churning = TLSLoad()
        churning.start(port: cluster.nodes[leader]!.apiPort, tls: certificates.client("operator"), prefix: "churn",
                       newConnectionEvery: 2)
        try await steady.waitForProgress(20)
        try await churning.waitForProgress(20)

        for id in 1 ... 3 {
            let old = try certificates.fileSerial("node-\(id)-v1")
            #expect(try certificates.servedSerial(port: cluster.nodes[id]!.apiPort) == old)
            try certificates.installNode(id, from: "node-\(id)-v2")
            // Nodes 1 and 2 are told with SIGHUP; node 3 notices the file change by itself.
            if id != 3, let process = cluster.nodes[id]?.process { kill(process.processIdentifier, SIGHUP) }
        }
        for id in 1 ... 3 {
            let new = try certificates.fileSerial("node-\(id)-v2")
            for port in [cluster.nodes[id]!.apiPort, cluster.nodes[id]!.adminPort, cluster.nodes[id]!.raftPort] {
                #expect(try await eventually { try certificates.servedSerial(port: port) == new },
                        "node \(id) port \(port) still serves the old certificate")
            }
        }
        try await steady.waitForProgress(20)
        try await churning.waitForProgress(20)

        // A broken key is refused; the node keeps serving the certificate it had.
        try Data("not a key\n".utf8).write(to: URL(fileURLWithPath: certificates.path("node-1.key")))
        if let process = cluster.nodes[1]?.process { kill(process.processIdentifier, SIGHUP) }
        #expect(try await eventually { log(cluster, 1).contains("TLS certificate reload refused") })
        #expect(try certificates.servedSerial(port: cluster.nodes[1]!.apiPort) == certificates.fileSerial("node-1-v2"))
        try await churning.waitForProgress(10)

        await steady.stop()
        await churning.stop()
        #expect(steady.failures.withLockedValue { $0 }.isEmpty, "\(steady.failures.withLockedValue { $0 })")
        #expect(churning.failures.withLockedValue { $0 }.isEmpty, "\(churning.failures.withLockedValue { $0 })")
        #expect(log(cluster, 1).contains("TLS certificates reloaded"))
        #expect(await cluster.view(from: leader)?.leader == "\(leader)")
    }
}
