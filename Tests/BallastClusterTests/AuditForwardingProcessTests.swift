import BallastProto
import BallastServer
import BallastWire
import Foundation
import SwiftProtobuf
import Testing

/// A follower's audit records reach the replicated audit log through the leader
/// (docs/security.md, "What a follower sees"): every node runs the same authorization check
/// before any handler, so a follower refuses a call itself — a write it would otherwise send to
/// the leader, or a stale read it would answer from its own state — and hands the aggregated
/// denial to the leader, which proposes it. Read back with `ballast admin audit` from the leader.
@Suite("Follower audit forwarding on server processes", .serialized)
struct AuditForwardingProcessTests {
    /// Runs `ballast ARGUMENTS` presenting `certificate` (the CLI reads BALLAST_TLS_*).
    func runCLI(_ arguments: [String], _ certificates: TLSClusterCertificates, as certificate: String) throws -> (Int32, String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try ProcessCluster.locateBinary())
        process.arguments = arguments
        var environment = ProcessInfo.processInfo.environment
        environment["BALLAST_TLS_CA"] = certificates.path("ca.crt")
        environment["BALLAST_TLS_CERT"] = certificates.path("\(certificate).crt")
        environment["BALLAST_TLS_KEY"] = certificates.path("\(certificate).key")
        process.environment = environment
        let pipe = Pipe()
        (process.standardOutput, process.standardError) = (pipe, pipe)
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    /// Calls `path` on `port` presenting `certificate`; the status it ends with.
    func refusal<Request: SwiftProtobuf.Message, Response: SwiftProtobuf.Message>(
        port: Int, _ path: String, _ request: Request, as response: Response.Type, _ certificates: TLSClusterCertificates,
        certificate: String, metadata: GRPCMetadata = GRPCMetadata()
    ) async throws -> GRPCStatus? {
        var configuration = GRPCClientConfiguration()
        configuration.tls = certificates.client(certificate)
        let client = try await GRPCClient.connect(host: "127.0.0.1", port: port, configuration: configuration)
        defer { Task { await client.close() } }
        do {
            let _: Response = try await client.unary(path, request: request, metadata: metadata, timeout: .seconds(5))
            return nil
        } catch let status as GRPCStatus {
            return status
        }
    }

    @Test("calls a follower refuses itself (a write, a stale read) appear in `ballast admin audit` read from the leader, with the follower's node id")
    func followerDenialsReachTheLeader() async throws {
        let (cluster, certificates) = try TLSClusterTests.makeCluster()
        defer {
            cluster.shutdown()
            try? FileManager.default.removeItem(atPath: (certificates.directory as NSString).deletingLastPathComponent)
        }
        let leader = try await cluster.waitForLeader()
        try await TLSClusterTests.waitForRoles(cluster, leader: leader, certificates)
        let follower = try #require(cluster.nodes.keys.sorted().first { $0 != leader })
        let followerPort = try #require(cluster.nodes[follower]?.apiPort)

        // A write: the follower would redirect it to the leader, but the check comes first.
        var terminate = Ballast_V1_TerminateWorkflowRequest()
        terminate.workflowExecution.workflowID = "roles-probe"
        terminate.reason = "not mine to end"
        let write = try await refusal(port: followerPort, BallastMethod.Workflow.terminate, terminate,
                                      as: Ballast_V1_TerminateWorkflowResponse.self, certificates, certificate: "reader")
        #expect(write?.code == .permissionDenied, "\(String(describing: write))")
        #expect(write?.message.contains("identity reader lacks role writer in namespace default") == true, "\(write?.message ?? "")")
        // A stale read, which the follower would answer from its own state.
        var describe = Ballast_V1_DescribeWorkflowExecutionRequest()
        describe.execution.workflowID = "roles-probe"
        var stale = GRPCMetadata()
        stale.add(GRPCHeaderName.ballastReadConsistency, "stale")
        let read = try await refusal(port: followerPort, BallastMethod.Workflow.describe, describe,
                                     as: Ballast_V1_DescribeWorkflowExecutionResponse.self, certificates, certificate: "reader",
                                     metadata: stale)
        #expect(read?.code == .permissionDenied && read?.message.contains("lacks role reader") == true, "\(String(describing: read))")

        // Within a few flushes (one a second) the follower hands them to the leader, which proposes them.
        let leaderAddress = "127.0.0.1:\(cluster.nodes[leader]!.apiPort)"
        let deadline = ContinuousClock.now + .seconds(20)
        var records: [[String: Any]] = []
        var output = ""
        while ContinuousClock.now < deadline {
            let (status, text) = try runCLI(["admin", "audit", "--json", "--address", leaderAddress], certificates, as: "operator")
            output = text
            if status == 0 {
                records = text.split(separator: "\n").filter { $0.hasPrefix("{") }.compactMap {
                    try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
                }.filter { $0["kind"] as? String == "AUDIT_KIND_ACCESS_DENIED" && $0["identity"] as? String == "reader" }
                if Set(records.compactMap { $0["method"] as? String }).isSuperset(of: [BallastMethod.Workflow.terminate,
                                                                                      BallastMethod.Workflow.describe]) { break }
            }
            try await Task.sleep(for: .milliseconds(300))
        }
        let terminateRecord = try #require(records.first { $0["method"] as? String == BallastMethod.Workflow.terminate }, "\(output)")
        let describeRecord = try #require(records.first { $0["method"] as? String == BallastMethod.Workflow.describe }, "\(output)")
        for record in [terminateRecord, describeRecord] {
            // Protobuf JSON prints uint64 as a string.
            #expect("\(record["nodeId"] ?? "")" == String(follower), "recorded by the follower that refused it: \(record)")
            #expect(record["identityVerified"] as? Bool == true && record["namespace"] as? String == "default")
        }
        #expect(terminateRecord["role"] as? String == "ROLE_WRITER" && describeRecord["role"] as? String == "ROLE_READER",
                "\(terminateRecord) \(describeRecord)")
        // The text form names the follower too.
        let (_, text) = try runCLI(["admin", "audit", "--address", leaderAddress], certificates, as: "operator")
        #expect(text.contains("ACCESS_DENIED reader node \(follower)"), "\(text)")
    }
}
