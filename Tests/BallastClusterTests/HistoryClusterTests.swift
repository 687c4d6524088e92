import BallastProto
import BallastServer
import BallastWire
import Foundation
import Testing

@Suite("histories on server processes", .serialized)
struct HistoryClusterTests {
    /// Connects to node `id`'s API port, retrying while the process is still binding it.
    private func connect(_ cluster: ProcessCluster, _ id: Int) async throws -> GRPCClient {
        let deadline = ContinuousClock.now + .seconds(20)
        while true {
            do {
                return try await GRPCClient.connect(host: "127.0.0.1", port: cluster.nodes[id]!.apiPort, group: cluster.group)
            } catch {
                guard ContinuousClock.now < deadline else { throw error }
                try await Task.sleep(for: .milliseconds(20))
            }
        }
    }

    private func startRequest(_ workflowID: String) -> Ballast_V1_StartWorkflowRequest {
        var request = Ballast_V1_StartWorkflowRequest()
        request.workflowID = workflowID
        request.workflowType.name = "Transfer"
        request.taskQueue = "payments"
        request.requestID = "request-\(workflowID)"
        return request
    }

    private func signal(_ client: GRPCClient, _ workflowID: String, _ number: Int) async throws {
        var request = Ballast_V1_SignalWorkflowRequest()
        request.workflowExecution.workflowID = workflowID
        request.signalName = "poke"
        request.input.payloads = [Ballast_V1_Payload.with { $0.data = Data("poke \(number) of \(workflowID)".utf8) }]
        request.requestID = "signal-\(workflowID)-\(number)"
        let _: Ballast_V1_SignalWorkflowResponse = try await client.unary(BallastMethod.Workflow.signal, request: request, timeout: .seconds(10))
    }

    /// The whole history of `workflowID`, every page, as stored bytes of each event.
    private func history(_ client: GRPCClient, _ workflowID: String, stale: Bool) async throws -> [[UInt8]] {
        var request = Ballast_V1_GetWorkflowExecutionHistoryRequest()
        request.execution.workflowID = workflowID
        request.maximumPageSize = 7
        var metadata = GRPCMetadata()
        if stale { metadata.add(GRPCHeaderName.ballastReadConsistency, "stale") }
        var events: [[UInt8]] = []
        while true {
            let page: Ballast_V1_GetWorkflowExecutionHistoryBatchesResponse = try await client.unary(
                BallastMethod.Workflow.getHistory, request: request, metadata: metadata, timeout: .seconds(10))
            for batch in page.batches { events += try LZ4EventBatchCodec.decode(LZ4EventBatch(batch)) }
            if page.nextPageToken.isEmpty { return events }
            request.nextPageToken = page.nextPageToken
        }
    }

    /// Polls (with a deadline) until every follower's stale history equals the leader's for every workflow.
    private func expectIdentical(_ cluster: ProcessCluster, leader: Int, workflows: [String]) async throws {
        let leaderClient = try await connect(cluster, leader)
        defer { Task { await leaderClient.close() } }
        var expected: [String: [[UInt8]]] = [:]
        for workflow in workflows { expected[workflow] = try await history(leaderClient, workflow, stale: false) }
        #expect(expected.values.allSatisfy { $0.count >= 2 })
        for follower in cluster.nodes.keys.sorted() where follower != leader {
            let client = try await connect(cluster, follower)
            let deadline = ContinuousClock.now + .seconds(30)
            var mismatched: [String] = workflows
            while !mismatched.isEmpty, ContinuousClock.now < deadline {
                var still: [String] = []
                for workflow in mismatched {
                    let got = try? await history(client, workflow, stale: true)
                    if got != expected[workflow] { still.append(workflow) }
                }
                mismatched = still
                if !mismatched.isEmpty { try await Task.sleep(for: .milliseconds(20)) }
            }
            #expect(mismatched.isEmpty, "node \(follower) differs from the leader for \(mismatched)")
            // A linearizable read on a follower is redirected to the leader.
            do {
                _ = try await history(client, workflows[0], stale: false)
                Issue.record("a follower must not answer a linearizable history read")
            } catch let status as GRPCStatus {
                #expect(status.code == .unavailable)
            }
            await client.close()
        }
    }

    @Test("histories read from the leader and (stale) from every follower are identical, also after a follower's SIGKILL and restart with snapshots")
    func historiesAreIdenticalOnEveryNode() async throws {
        let cluster = try ProcessCluster(size: 3, extraArguments: [
            "--snapshot-threshold-bytes", "4096", "--compaction-slack-entries", "8",
        ])
        defer { cluster.shutdown() }
        let leader = try await cluster.waitForLeader()
        let client = try await connect(cluster, leader)
        var workflows: [String] = []
        for number in 0..<6 {
            let id = "transfer-\(number)"
            let _: Ballast_V1_StartWorkflowResponse = try await client.unary(BallastMethod.Workflow.start, request: startRequest(id), timeout: .seconds(10))
            workflows.append(id)
            for poke in 0..<number { try await signal(client, id, poke) }
        }
        var terminate = Ballast_V1_TerminateWorkflowRequest()
        terminate.workflowExecution.workflowID = "transfer-1"
        let _: Ballast_V1_TerminateWorkflowResponse = try await client.unary(BallastMethod.Workflow.terminate, request: terminate, timeout: .seconds(10))
        try await expectIdentical(cluster, leader: leader, workflows: workflows)

        let follower = try #require(cluster.nodes.keys.sorted().first { $0 != leader })
        cluster.kill(follower)
        // Enough writes while it is down that the leader snapshots and compacts past it.
        for number in 0..<40 {
            try await signal(client, "transfer-\(number % 6 == 1 ? 0 : number % 6)", 100 + number)
        }
        for number in 6..<10 {
            let id = "transfer-\(number)"
            let _: Ballast_V1_StartWorkflowResponse = try await client.unary(BallastMethod.Workflow.start, request: startRequest(id), timeout: .seconds(10))
            workflows.append(id)
        }
        await client.close()
        try cluster.start(follower)
        try await expectIdentical(cluster, leader: leader, workflows: workflows)

        // And once more after restarting it again (snapshot restore plus log replay on its own data).
        cluster.kill(follower)
        try cluster.start(follower)
        try await expectIdentical(cluster, leader: leader, workflows: workflows)
        let snapshots = try FileManager.default.contentsOfDirectory(atPath: cluster.directory + "/node-\(follower)/raft")
            .filter { $0.hasSuffix(".snap") }
        #expect(!snapshots.isEmpty, "the follower holds a snapshot (installed or taken)")
        let log = try String(contentsOfFile: cluster.directory + "/node-\(follower).log", encoding: .utf8)
        #expect(log.contains("restored from snapshot"), "the restarted follower restored its histories from a snapshot")
    }
}
