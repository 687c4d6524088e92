import BallastProto
import BallastSDK
import BallastWire
import Foundation
import Testing

/// The SDK client and the `ballast workflow` CLI against real `ballast server` processes.
@Suite("SDK client and workflow CLI on server processes", .serialized)
struct ClientProcessTests {
    func client(_ cluster: ProcessCluster, only ids: [Int]? = nil) -> BallastClient {
        let endpoints = cluster.apiEndpoints(ids)
        var options = BallastClientOptions()
        options.callTimeout = .seconds(20)
        return BallastClient(endpoints: endpoints, options: options, group: cluster.group)
    }

    func addresses(_ cluster: ProcessCluster) -> String {
        cluster.nodes.keys.sorted().map { "127.0.0.1:\(cluster.nodes[$0]!.apiPort)" }.joined(separator: ",")
    }

    @Test("a client given only a follower follows the leader; starts keep working across the leader's SIGKILL, once per request id")
    func followsLeaderAcrossFailover() async throws {
        let cluster = try ProcessCluster(size: 3)
        defer { cluster.shutdown() }
        let leader = try await cluster.waitForLeader()
        let follower = try #require((1 ... 3).first { $0 != leader })
        let viaFollower = client(cluster, only: [follower])
        let first = try await viaFollower.start("Transfer", id: "t-1", taskQueue: "payments", input: ["amount": 5])
        #expect(first.startedNow && !first.runID.isEmpty)
        #expect(await viaFollower.connection.currentTarget.port == cluster.nodes[leader]!.apiPort)
        await viaFollower.close()

        let all = client(cluster)
        var options = WorkflowStartOptions()
        options.requestID = "fixed-request"
        let started = try await all.start("Transfer", id: "t-2", taskQueue: "payments", input: 1, options: options)
        cluster.kill(leader)
        // The same request id after the failover returns the same run: applied once.
        let retried = try await all.start("Transfer", id: "t-2", taskQueue: "payments", input: 1, options: options)
        #expect(retried.runID == started.runID && !retried.startedNow)
        let third = try await all.start("Transfer", id: "t-3", taskQueue: "payments", input: 1)
        #expect(third.startedNow)
        let description = try await all.describe(workflowID: "t-1")
        #expect(description.info.execution.runID == first.runID && description.info.status == .running)
        #expect(description.info.type.name == "Transfer")
        // A final status is reported as such.
        var other = WorkflowStartOptions()
        other.reusePolicy = .rejectDuplicate
        do {
            _ = try await all.start("Transfer", id: "t-3", taskQueue: "payments", input: 1, options: other)
            Issue.record("a second start of a running workflow must fail")
        } catch {
            #expect(error.code == .alreadyExists)
        }
        try await all.signal(workflowID: "t-3", name: "approve", input: true)
        try await all.terminate(workflowID: "t-3", reason: "test over")
        #expect(try await all.describe(workflowID: "t-3").info.status == .terminated)
        await all.close()
    }

    @Test("ballast workflow start, describe, signal, cancel and terminate from the command line")
    func commandLine() async throws {
        let cluster = try ProcessCluster(size: 3)
        defer { cluster.shutdown() }
        _ = try await cluster.waitForLeader()
        let address = addresses(cluster)
        let (startStatus, startOutput) = try cluster.runCLI([
            "workflow", "start", "--address", address, "--type", "Transfer", "--task-queue", "payments",
            "--workflow-id", "cli-1", "--input", "{\"amount\": 7}", "--search-attribute", "CustomKeywordField=c-1", "--json",
        ])
        #expect(startStatus == 0, "\(startOutput)")
        let started = try JSONSerialization.jsonObject(with: Data(startOutput.utf8)) as? [String: Any]
        #expect(started?["workflow_id"] as? String == "cli-1" && started?["started"] as? Bool == true)

        let (describeStatus, describeOutput) = try cluster.runCLI(["workflow", "describe", "--address", address, "-w", "cli-1"])
        #expect(describeStatus == 0 && describeOutput.contains("status:       running") && describeOutput.contains("Transfer"), "\(describeOutput)")
        let (jsonStatus, jsonOutput) = try cluster.runCLI(["workflow", "describe", "--address", address, "-w", "cli-1", "--json"])
        let described = try Ballast_V1_DescribeWorkflowExecutionResponse(jsonString: jsonOutput.trimmingCharacters(in: .whitespacesAndNewlines))
        #expect(jsonStatus == 0 && described.info.status == .running)

        let (signalStatus, _) = try cluster.runCLI(["workflow", "signal", "--address", address, "-w", "cli-1", "--name", "approve", "--input", "true"])
        #expect(signalStatus == 0)
        let (cancelStatus, _) = try cluster.runCLI(["workflow", "cancel", "--address", address, "-w", "cli-1", "--reason", "changed my mind"])
        #expect(cancelStatus == 0)
        let (terminateStatus, _) = try cluster.runCLI(["workflow", "terminate", "--address", address, "-w", "cli-1", "--reason", "done"])
        #expect(terminateStatus == 0)
        let (_, afterOutput) = try cluster.runCLI(["workflow", "describe", "--address", address, "-w", "cli-1"])
        #expect(afterOutput.contains("terminated"), "\(afterOutput)")

        // result: waits for the close; a terminated run prints why and exits 1.
        let (resultStatus, resultOutput) = try cluster.runCLI(["workflow", "result", "--address", address, "-w", "cli-1", "--timeout", "20"])
        #expect(resultStatus == 1 && resultOutput.contains("terminated: done"), "\(resultOutput)")
        // show: the timeline in event order, and the protobuf JSON of ballast.v1.History.
        let (showStatus, showOutput) = try cluster.runCLI(["workflow", "show", "--address", address, "-w", "cli-1"])
        #expect(showStatus == 0, "\(showOutput)")
        let lines = showOutput.split(separator: "\n")
        #expect(lines.first?.contains("WorkflowExecutionStarted") == true && lines.first?.contains("{\"amount\": 7}") == true, "\(showOutput)")
        #expect(lines.contains { $0.contains("WorkflowExecutionSignaled") && $0.contains("name=approve") }, "\(showOutput)")
        #expect(lines.last?.contains("WorkflowExecutionTerminated") == true, "\(showOutput)")
        let (_, showJSON) = try cluster.runCLI(["workflow", "show", "--address", address, "-w", "cli-1", "--json"])
        let history = try Ballast_V1_History(jsonString: showJSON.trimmingCharacters(in: .whitespacesAndNewlines))
        #expect(history.events.count == lines.count && history.events.first?.eventID == 1)
        // list and count with a visibility query.
        let (listStatus, listOutput) = try cluster.runCLI(["workflow", "list", "--address", address, "--query", "WorkflowType = 'Transfer'"])
        #expect(listStatus == 0 && listOutput.contains("cli-1") && listOutput.contains("terminated"), "\(listOutput)")
        let (_, countOutput) = try cluster.runCLI(["workflow", "count", "--address", address, "--query", "WorkflowType = 'Transfer'", "--json"])
        #expect(countOutput.trimmingCharacters(in: .whitespacesAndNewlines) == "{\"count\":1,\"statuses\":{\"terminated\":1}}", "\(countOutput)")
        let (_, noneOutput) = try cluster.runCLI(["workflow", "count", "--address", address, "--query", "WorkflowType = 'Other'"])
        #expect(noneOutput.trimmingCharacters(in: .whitespacesAndNewlines) == "0", "\(noneOutput)")

        // Bad input: a clear error and exit status 1, nothing started.
        let (badStatus, badOutput) = try cluster.runCLI([
            "workflow", "start", "--address", address, "--type", "T", "--task-queue", "q", "--input", "{oops",
        ])
        #expect(badStatus != 0 && badOutput.contains("not valid JSON"), "\(badOutput)")
        let (missingStatus, missingOutput) = try cluster.runCLI(["workflow", "describe", "--address", address, "-w", "nope"])
        #expect(missingStatus == 1 && missingOutput.contains("NOT_FOUND"), "\(missingOutput)")
    }
}
