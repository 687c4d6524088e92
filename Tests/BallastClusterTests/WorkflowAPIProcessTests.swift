import BallastProto
import BallastServer
import BallastWire
import Foundation
import Testing

@Suite("workflow API on server processes", .serialized)
struct WorkflowAPIProcessTests {
    private func startRequest(_ workflowID: String) -> Ballast_V1_StartWorkflowRequest {
        var request = Ballast_V1_StartWorkflowRequest()
        request.workflowID = workflowID
        request.workflowType.name = "Transfer"
        request.taskQueue = "payments"
        request.requestID = "request-\(workflowID)"
        return request
    }

    private func describe(_ client: GRPCClient, _ workflowID: String) async throws -> Ballast_V1_DescribeWorkflowExecutionResponse {
        var request = Ballast_V1_DescribeWorkflowExecutionRequest()
        request.execution.workflowID = workflowID
        return try await client.unary(BallastMethod.Workflow.describe, request: request, timeout: .seconds(5))
    }

    @Test("a start is answered once applied, a retry is idempotent, a follower redirects, and the run survives the leader's SIGKILL")
    func startRedirectAndSurvive() async throws {
        let cluster = try ProcessCluster(size: 3)
        defer { cluster.shutdown() }
        let leader = try await cluster.waitForLeader()
        let leaderClient = try await GRPCClient.connect(host: "127.0.0.1", port: cluster.nodes[leader]!.apiPort, group: cluster.group)
        let started: Ballast_V1_StartWorkflowResponse = try await leaderClient.unary(
            BallastMethod.Workflow.start, request: startRequest("transfer-1"), timeout: .seconds(10))
        #expect(started.started && !started.runID.isEmpty)
        let retried: Ballast_V1_StartWorkflowResponse = try await leaderClient.unary(
            BallastMethod.Workflow.start, request: startRequest("transfer-1"), timeout: .seconds(10))
        #expect(retried.runID == started.runID && !retried.started, "a retried start with the same request id returns the same run")
        var duplicate = startRequest("transfer-1")
        duplicate.requestID = "another-request"
        await #expect(throws: GRPCStatus.self) {
            let _: Ballast_V1_StartWorkflowResponse = try await leaderClient.unary(BallastMethod.Workflow.start, request: duplicate)
        }
        #expect(try await describe(leaderClient, "transfer-1").info.execution.runID == started.runID)

        let follower = try #require((1 ... 3).first { $0 != leader })
        let followerClient = try await GRPCClient.connect(host: "127.0.0.1", port: cluster.nodes[follower]!.apiPort, group: cluster.group)
        do {
            let _: Ballast_V1_StartWorkflowResponse = try await followerClient.unary(BallastMethod.Workflow.start, request: startRequest("transfer-2"))
            Issue.record("a follower must not accept a start")
        } catch let status as GRPCStatus {
            #expect(status.code == .unavailable)
            #expect(status.leaderAddress == "127.0.0.1:\(cluster.nodes[leader]!.apiPort)")
        }
        await leaderClient.close()
        await followerClient.close()

        cluster.kill(leader)
        let newLeader = try await cluster.waitForLeader(excluding: leader)
        let newClient = try await GRPCClient.connect(host: "127.0.0.1", port: cluster.nodes[newLeader]!.apiPort, group: cluster.group)
        #expect(try await describe(newClient, "transfer-1").info.execution.runID == started.runID,
                "a start the client was told is recorded survives the leader's death")
        await newClient.close()
    }

    @Test("a follower killed while the cluster keeps writing restarts, catches up, and reaches the leader's state digest")
    func followerCatchesUp() async throws {
        let cluster = try ProcessCluster(size: 3)
        defer { cluster.shutdown() }
        let leader = try await cluster.waitForLeader()
        let follower = try #require((1 ... 3).first { $0 != leader })
        let client = try await GRPCClient.connect(host: "127.0.0.1", port: cluster.nodes[leader]!.apiPort, group: cluster.group)
        for number in 0 ..< 10 {
            let _: Ballast_V1_StartWorkflowResponse = try await client.unary(
                BallastMethod.Workflow.start, request: startRequest("before-\(number)"), timeout: .seconds(10))
        }
        cluster.kill(follower)
        for number in 0 ..< 40 {
            let _: Ballast_V1_StartWorkflowResponse = try await client.unary(
                BallastMethod.Workflow.start, request: startRequest("during-\(number)"), timeout: .seconds(10))
        }
        await client.close()
        try cluster.start(follower)

        var leaderStatus: NodeStatus?
        var followerStatus: NodeStatus?
        let deadline = ContinuousClock.now + .seconds(20)
        repeat {
            leaderStatus = await cluster.status(of: leader)
            followerStatus = await cluster.status(of: follower)
            if let leaderStatus, let followerStatus, followerStatus.applied == leaderStatus.applied,
               followerStatus.stateDigest == leaderStatus.stateDigest { break }
            try await Task.sleep(for: .milliseconds(50))
        } while ContinuousClock.now < deadline
        let caughtUp = try #require(followerStatus)
        let reference = try #require(leaderStatus)
        #expect(caughtUp.applied == reference.applied, "the restarted follower applies everything the leader applied")
        #expect(caughtUp.stateDigest != nil && caughtUp.stateDigest == reference.stateDigest,
                "same log, same engine state: the digests must match")
        #expect(caughtUp.digestIndex == reference.digestIndex)
        #expect((reference.digestIndex ?? 0) >= 50, "all 50 starts were applied")
    }

    @Test("after all three nodes stop and start again, every run a client was told is started is still there")
    func fullRestartKeepsEverything() async throws {
        let cluster = try ProcessCluster(size: 3)
        defer { cluster.shutdown() }
        let leader = try await cluster.waitForLeader()
        let client = try await GRPCClient.connect(host: "127.0.0.1", port: cluster.nodes[leader]!.apiPort, group: cluster.group)
        var runs: [String: String] = [:]
        for number in 0 ..< 20 {
            let started: Ballast_V1_StartWorkflowResponse = try await client.unary(
                BallastMethod.Workflow.start, request: startRequest("kept-\(number)"), timeout: .seconds(10))
            runs["kept-\(number)"] = started.runID
        }
        await client.close()
        for id in 1 ... 3 { cluster.kill(id) }
        for id in 1 ... 3 { try cluster.start(id) }
        let newLeader = try await cluster.waitForLeader()
        let reader = try await GRPCClient.connect(host: "127.0.0.1", port: cluster.nodes[newLeader]!.apiPort, group: cluster.group)
        for (workflowID, runID) in runs.sorted(by: { $0.key < $1.key }) {
            #expect(try await describe(reader, workflowID).info.execution.runID == runID, "\(workflowID) must survive")
        }
        await reader.close()
    }

    @Test("a follower redirects a describe, unless the caller accepts a stale read, which it answers itself")
    func staleReadsOnFollowers() async throws {
        let cluster = try ProcessCluster(size: 3)
        defer { cluster.shutdown() }
        let leader = try await cluster.waitForLeader()
        let leaderClient = try await GRPCClient.connect(host: "127.0.0.1", port: cluster.nodes[leader]!.apiPort, group: cluster.group)
        let started: Ballast_V1_StartWorkflowResponse = try await leaderClient.unary(
            BallastMethod.Workflow.start, request: startRequest("read-me"), timeout: .seconds(10))
        await leaderClient.close()

        let follower = try #require((1 ... 3).first { $0 != leader })
        let client = try await GRPCClient.connect(host: "127.0.0.1", port: cluster.nodes[follower]!.apiPort, group: cluster.group)
        var request = Ballast_V1_DescribeWorkflowExecutionRequest()
        request.execution.workflowID = "read-me"
        do {
            let _: Ballast_V1_DescribeWorkflowExecutionResponse = try await client.unary(BallastMethod.Workflow.describe, request: request)
            Issue.record("a follower must redirect a linearizable read")
        } catch let status as GRPCStatus {
            #expect(status.code == .unavailable && status.leaderAddress == "127.0.0.1:\(cluster.nodes[leader]!.apiPort)")
        }
        let stale: GRPCMetadata = [GRPCHeaderName.ballastReadConsistency: "stale"]
        var answer: Ballast_V1_DescribeWorkflowExecutionResponse?
        let deadline = ContinuousClock.now + .seconds(10)
        while answer == nil, ContinuousClock.now < deadline {
            // The follower may not have applied the start yet: a stale read says NOT_FOUND until it has.
            answer = try? await client.unary(BallastMethod.Workflow.describe, request: request, metadata: stale)
            if answer == nil { try await Task.sleep(for: .milliseconds(20)) }
        }
        #expect(answer?.info.execution.runID == started.runID)
        await client.close()
    }

    @Test("the leader's /metrics counts the proposals, their latency, the fsyncs and its leadership")
    func metricsReflectTheWork() async throws {
        let cluster = try ProcessCluster(size: 3)
        defer { cluster.shutdown() }
        let leader = try await cluster.waitForLeader()
        let client = try await GRPCClient.connect(host: "127.0.0.1", port: cluster.nodes[leader]!.apiPort, group: cluster.group)
        for number in 0 ..< 12 {
            let _: Ballast_V1_StartWorkflowResponse = try await client.unary(
                BallastMethod.Workflow.start, request: startRequest("metered-\(number)"), timeout: .seconds(10))
        }
        var duplicate = startRequest("metered-0")
        duplicate.requestID = "a-different-request"
        let _: Ballast_V1_StartWorkflowResponse? = try? await client.unary(BallastMethod.Workflow.start, request: duplicate)
        await client.close()
        let (code, body) = try await AdminHTTPClient.get(host: "127.0.0.1", port: cluster.nodes[leader]!.adminPort,
                                                         path: "/metrics", timeout: .seconds(5), group: cluster.group)
        #expect(code == 200)
        let samples = Self.samples(String(decoding: body, as: UTF8.self))
        #expect(samples["ballast_raft_is_leader"] == 1)
        #expect(samples["ballast_proposals_total"] == 13)
        #expect(samples["ballast_proposals_rejected_total"] == 1, "the duplicate start was rejected by the engine")
        #expect(samples["ballast_commit_latency_seconds_count"] == 13)
        #expect((samples["ballast_fsync_latency_seconds_count"] ?? 0) >= 1)
        #expect((samples["ballast_raft_applied_index"] ?? 0) >= 13)
    }

    /// `name value` lines of a Prometheus text exposition (labels and comments ignored).
    static func samples(_ text: String) -> [String: Double] {
        var result: [String: Double] = [:]
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            let parts = line.split(separator: " ")
            guard parts.count >= 2, !parts[0].contains("{"), let value = Double(parts[1]) else { continue }
            result[String(parts[0])] = value
        }
        return result
    }
}
