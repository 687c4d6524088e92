import BallastProto
import BallastServer
import BallastWire
import Foundation
import Testing

@Suite("cluster membership on server processes", .serialized)
struct MembershipProcessTests {
    private func apiList(_ cluster: ProcessCluster) -> String {
        cluster.nodes.keys.sorted().compactMap { id in
            cluster.nodes[id]?.process == nil ? nil : "127.0.0.1:\(cluster.nodes[id]!.apiPort)"
        }.joined(separator: ",")
    }

    private func livePorts(_ cluster: ProcessCluster, excluding: Int? = nil) -> [Int] {
        cluster.nodes.keys.sorted().filter { $0 != excluding && cluster.nodes[$0]?.process != nil }.map { cluster.nodes[$0]!.apiPort }
    }

    /// Runs the CLI on a thread of its own, so the test's cooperative threads keep driving the load.
    private func cli(_ cluster: ProcessCluster, _ arguments: [String]) async throws -> (Int32, String) {
        try await withCheckedThrowingContinuation { continuation in
            Thread { continuation.resume(with: Result { try cluster.runCLI(arguments) }) }.start()
        }
    }

    /// Starts node `id` with `--join` and runs `ballast cluster add-node` for it.
    private func join(_ cluster: ProcessCluster, _ id: Int, extraArguments: [String] = []) async throws {
        let addresses = apiList(cluster)
        try cluster.addNode(id, extraArguments: extraArguments + ["--join", addresses])
        let node = try #require(cluster.nodes[id])
        try await waitFor("node \(id) to serve its admin port") { await cluster.status(of: id) != nil }
        let (code, output) = try await cli(cluster, [
            "cluster", "add-node", "--address", addresses, "--id", String(id), "--raft", "127.0.0.1:\(node.raftPort)",
            "--api", "127.0.0.1:\(node.apiPort)", "--admin", "127.0.0.1:\(node.adminPort)", "--timeout", "60",
        ])
        #expect(code == 0, "add-node failed: \(output)")
        #expect(output.contains("added as a learner") && output.contains("promoted to voter"), "\(output)")
    }

    /// Runs `ballast cluster remove-node` for `id`, then stops and forgets the process.
    private func remove(_ cluster: ProcessCluster, _ id: Int) async throws {
        let (code, output) = try await cli(cluster, ["cluster", "remove-node", "--address", apiList(cluster), "--id", String(id)])
        #expect(code == 0, "remove-node \(id) failed: \(output)")
        cluster.forget(id)
    }

    /// Waits until `member` has applied exactly what `leader` has and their engine digests match.
    private func expectSameState(_ cluster: ProcessCluster, member: Int, leader: Int) async throws {
        var pair: (NodeStatus?, NodeStatus?) = (nil, nil)
        try await waitFor("node \(member) to reach the leader's state digest") {
            pair = (await cluster.status(of: member), await cluster.status(of: leader))
            guard let mine = pair.0, let theirs = pair.1 else { return false }
            return mine.digestIndex == theirs.digestIndex && mine.stateDigest == theirs.stateDigest && mine.applied == theirs.applied
        }
        #expect(pair.0?.stateDigest != nil && pair.0?.stateDigest == pair.1?.stateDigest)
    }

    /// Checks with linearizable describes that every acknowledged start is there, following the
    /// leader if it moves; a describe that keeps failing for another reason is reported as such.
    private func expectAllPresent(_ runs: [String: String], cluster: ProcessCluster, leader: Int) async throws {
        var port = cluster.nodes[leader]!.apiPort
        var client = try await GRPCClient.connect(host: "127.0.0.1", port: port, group: cluster.group)
        var missing: [String] = []
        var unanswered: [String] = []
        for (workflowID, runID) in runs.sorted(by: { $0.key < $1.key }) {
            var request = Ballast_V1_DescribeWorkflowExecutionRequest()
            request.execution.workflowID = workflowID
            var outcome: Result<String, GRPCStatus>?
            let deadline = ContinuousClock.now + .seconds(10)
            while outcome == nil, ContinuousClock.now < deadline {
                do {
                    let found: Ballast_V1_DescribeWorkflowExecutionResponse = try await client.unary(
                        BallastMethod.Workflow.describe, request: request, timeout: .seconds(5))
                    outcome = .success(found.info.execution.runID)
                } catch let status as GRPCStatus where status.code == .notFound {
                    outcome = .failure(status)
                } catch let status as GRPCStatus where status.code == .unavailable {
                    if let hint = status.leaderAddress, let next = hint.split(separator: ":").last.flatMap({ Int($0) }), next != port {
                        port = next
                        await client.close()
                        client = try await GRPCClient.connect(host: "127.0.0.1", port: port, group: cluster.group)
                    } else {
                        try await Task.sleep(for: .milliseconds(50))
                    }
                } catch {
                    try await Task.sleep(for: .milliseconds(50))
                }
            }
            switch outcome {
            case .success(let found) where found == runID: break
            case .success, .failure: missing.append(workflowID)
            case nil: unanswered.append(workflowID)
            }
        }
        await client.close()
        #expect(missing.isEmpty, "\(missing.count) acknowledged starts are missing, e.g. \(missing.prefix(5))")
        #expect(unanswered.isEmpty, "\(unanswered.count) describes got no answer, e.g. \(unanswered.prefix(5))")
    }

    @Test("under a steady load a fourth node joins and catches up, then a follower and the leader are removed; no start is lost")
    func addThenRemoveUnderLoad() async throws {
        let cluster = try ProcessCluster(size: 3)
        defer { cluster.shutdown() }
        _ = try await cluster.waitForLeader()
        let load = StartLoad(ports: livePorts(cluster), group: cluster.group)
        let loadTask = Task { await load.run(workers: 4) }
        try await waitFor("the load to get going") { load.acknowledgedCount >= 200 }

        try await join(cluster, 4)
        load.setPorts(livePorts(cluster))
        try await load.pause()
        try await expectSameState(cluster, member: 4, leader: try await cluster.waitForLeader())
        load.resume()
        #expect(await cluster.status(of: 4)?.voters == ["1", "2", "3", "4"])

        let leader = try await cluster.waitForLeader()
        let follower = try #require((1 ... 3).first { $0 != leader })
        load.setPorts(livePorts(cluster, excluding: follower))
        var before = load.acknowledgedCount
        try await remove(cluster, follower)
        try await waitFor("the load to continue after removing follower \(follower)") { load.acknowledgedCount >= before + 50 }

        let current = try await cluster.waitForLeader()
        load.setPorts(livePorts(cluster, excluding: current))
        before = load.acknowledgedCount
        try await remove(cluster, current)
        let successor = try await cluster.waitForLeader(excluding: current)
        try await waitFor("the load to continue after removing leader \(current)") { load.acknowledgedCount >= before + 50 }
        load.stop()
        await loadTask.value

        let outcome = load.state.withLock { $0 }
        #expect(outcome.failures.isEmpty, "the load saw failures: \(outcome.failures.prefix(10))")
        #expect(outcome.longestRetry <= .seconds(2))
        let survivors = (1 ... 4).filter { $0 != follower && $0 != current }.map(String.init)
        #expect(await cluster.status(of: successor)?.voters == survivors)
        try await expectAllPresent(outcome.acknowledged, cluster: cluster, leader: successor)
        print("membership under load: \(outcome.acknowledged.count) starts acknowledged, \(outcome.retriedStarts) retried, longest retry \(outcome.longestRetry)")
    }

    @Test("a node whose disk was lost rejoins under a new id by remove-node, --join and add-node, catching up by snapshot")
    func lostDiskRejoinsBySnapshot() async throws {
        let snapshotFlags = ["--snapshot-threshold-bytes", "4096", "--compaction-slack-entries", "4"]
        let cluster = try ProcessCluster(size: 3, extraArguments: snapshotFlags)
        defer { cluster.shutdown() }
        let leader = try await cluster.waitForLeader()
        let client = try await GRPCClient.connect(host: "127.0.0.1", port: cluster.nodes[leader]!.apiPort, group: cluster.group)
        var runs: [String: String] = [:]
        func startRuns(_ prefix: String, _ count: Int) async throws {
            for number in 0 ..< count {
                var request = Ballast_V1_StartWorkflowRequest()
                request.workflowID = "\(prefix)-\(number)"
                request.workflowType.name = "Transfer"
                request.taskQueue = "payments"
                request.requestID = "request-\(prefix)-\(number)"
                let started: Ballast_V1_StartWorkflowResponse = try await client.unary(
                    BallastMethod.Workflow.start, request: request, timeout: .seconds(10))
                runs[request.workflowID] = started.runID
            }
        }
        try await startRuns("before", 120)

        let lost = try #require((1 ... 3).first { $0 != leader })
        cluster.kill(lost)
        try FileManager.default.removeItem(atPath: cluster.directory + "/node-\(lost)")
        // The lost node may not come back under its old id, even with --join.
        let (refusedCode, refusal) = try await cli(cluster, [
            "server", "--id", String(lost), "--data-dir", cluster.directory + "/node-\(lost)-again",
            "--raft", "127.0.0.1:\(try ProcessCluster.freePort())", "--join", apiList(cluster),
        ])
        #expect(refusedCode != 0 && refusal.contains("new id"), "\(refusal)")

        try await remove(cluster, lost)
        try await startRuns("after", 60)
        try await join(cluster, 4, extraArguments: snapshotFlags)
        await client.close()
        try await expectSameState(cluster, member: 4, leader: leader)
        let log = try String(contentsOfFile: cluster.directory + "/node-4.log", encoding: .utf8)
        #expect(log.contains("restoring the state machine from a snapshot"), "node 4 should have caught up by snapshot")

        // Every survivor recorded node 4's addresses and the removal in its data directory, so it
        // can dial node 4 after a restart without being told on its command line.
        let survivor = try #require((1 ... 3).first { $0 != leader && $0 != lost })
        let book = try #require(try MemberTableFile(dataDirectory: cluster.directory + "/node-\(survivor)").load())
        #expect(book.members[4]?.raft == "127.0.0.1:\(cluster.nodes[4]!.raftPort)")
        #expect(book.removed.contains(UInt64(lost)) && book.members[UInt64(lost)] == nil)
        #expect(book.initialVoters == [1, 2, 3])

        // Node 4 is a working voter: with the old leader gone, the other two must elect a leader.
        cluster.kill(leader)
        let successor = try await cluster.waitForLeader(excluding: leader)
        try await expectAllPresent(runs, cluster: cluster, leader: successor)
    }

    @Test("membership calls refuse unknown ids, existing voters, the last voter and a second change in flight, and followers redirect")
    func membershipErrors() async throws {
        // Long election timeouts: a leader that loses its followers keeps leading (check-quorum)
        // long enough to show that a second change is refused while the first is uncommitted.
        let cluster = try ProcessCluster(size: 3, extraArguments: ["--election-ticks", "200"])
        defer { cluster.shutdown() }
        let leader = try await cluster.waitForLeader()
        let client = try await GRPCClient.connect(host: "127.0.0.1", port: cluster.nodes[leader]!.apiPort, group: cluster.group)
        /// The status a call ends with (nil for OK); only the status matters here, not the response.
        func code(_ path: String, _ payload: [UInt8], on client: GRPCClient, timeout: Duration = .seconds(5)) async -> GRPCStatus? {
            let (status, _, _) = await client.rawUnary(path, payload: payload, timeout: timeout)
            return status.code == .ok ? nil : status
        }
        var remove = Ballast_V1_RemoveMemberRequest()
        remove.id = 7
        #expect(await code(BallastMethod.Cluster.removeMember, try remove.serializedBytes(), on: client)?.code == .notFound)
        var promote = Ballast_V1_PromoteMemberRequest()
        promote.id = 7
        #expect(await code(BallastMethod.Cluster.promoteMember, try promote.serializedBytes(), on: client)?.code == .notFound)
        var add = Ballast_V1_AddMemberRequest()
        (add.id, add.raftAddress, add.apiAddress, add.adminAddress) = (UInt64(leader), "127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3")
        #expect(await code(BallastMethod.Cluster.addMember, try add.serializedBytes(), on: client)?.code == .alreadyExists)
        add.id = 9
        add.raftAddress = "no port"
        #expect(await code(BallastMethod.Cluster.addMember, try add.serializedBytes(), on: client)?.code == .invalidArgument)

        let follower = try #require((1 ... 3).first { $0 != leader })
        let followerClient = try await GRPCClient.connect(host: "127.0.0.1", port: cluster.nodes[follower]!.apiPort, group: cluster.group)
        let redirect = await code(BallastMethod.Cluster.removeMember, try remove.serializedBytes(), on: followerClient)
        #expect(redirect?.code == .unavailable && redirect?.leaderAddress == "127.0.0.1:\(cluster.nodes[leader]!.apiPort)")
        await followerClient.close()

        let (cliCode, cliOutput) = try await cli(cluster, ["cluster", "remove-node", "--address", apiList(cluster), "--id", "7"])
        #expect(cliCode != 0 && cliOutput.contains("not a member"), "\(cliOutput)")

        // Without a quorum the first change cannot commit; a second one is refused meanwhile.
        for id in 1 ... 3 where id != leader { cluster.kill(id) }
        add.raftAddress = "127.0.0.1:\(try ProcessCluster.freePort())"
        let first = await code(BallastMethod.Cluster.addMember, try add.serializedBytes(), on: client, timeout: .milliseconds(300))
        #expect(first?.code == .deadlineExceeded, "\(String(describing: first))")
        remove.id = UInt64(follower)
        let second = await code(BallastMethod.Cluster.removeMember, try remove.serializedBytes(), on: client)
        #expect(second?.code == .aborted && second?.message.contains("in flight") == true, "\(String(describing: second))")
        await client.close()

        let single = try ProcessCluster(size: 1)
        defer { single.shutdown() }
        _ = try await single.waitForLeader()
        let lone = try await GRPCClient.connect(host: "127.0.0.1", port: single.nodes[1]!.apiPort, group: single.group)
        remove.id = 1
        let last = await code(BallastMethod.Cluster.removeMember, try remove.serializedBytes(), on: lone)
        #expect(last?.code == .failedPrecondition && last?.message.contains("last voter") == true)
        await lone.close()
    }
}
