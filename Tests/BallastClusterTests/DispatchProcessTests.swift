import BallastEngine
import BallastProto
import BallastServer
import BallastWire
import Foundation
import Synchronization
import Testing

@Suite("task dispatch, timers and queries on server processes", .serialized)
struct DispatchProcessTests {
    private func connect(_ cluster: ProcessCluster, _ id: Int) async throws -> GRPCClient {
        try await GRPCClient.connect(host: "127.0.0.1", port: cluster.nodes[id]!.apiPort, group: cluster.group)
    }

    @Test("a worker's stream gets the workflow task, then the activity it scheduled, and the run completes; a query is answered by the worker")
    func workflowRunsThroughTheStream() async throws {
        let cluster = try ProcessCluster(size: 3)
        defer { cluster.shutdown() }
        let leader = try await cluster.waitForEagerDispatch()
        let client = try await connect(cluster, leader)
        let started: Ballast_V1_StartWorkflowResponse = try await client.unary(
            BallastMethod.Workflow.start, request: DispatchFixtures.start("transfer-1"), timeout: .seconds(10))

        var query = Ballast_V1_QueryWorkflowRequest()
        query.execution.workflowID = "transfer-1"
        query.queryType = "balance"
        do {
            let _: Ballast_V1_QueryWorkflowResponse = try await client.unary(BallastMethod.Workflow.query, request: query, timeout: .seconds(5))
            Issue.record("a query without any worker must fail")
        } catch let status as GRPCStatus {
            #expect(status.code == .failedPrecondition && status.message.contains("payments"), "\(status)")
        }

        let worker = try await DispatchTestWorker.connectToLeader(port: cluster.nodes[leader]!.apiPort, group: cluster.group)
        let first = try await worker.nextWorkflowTask()
        #expect(first.info.workflowExecution.runID == started.runID)
        let events = try DispatchTestWorker.history(first)
        #expect(events.first.map { DispatchTestWorker.isStarted($0) } == true, "the first history page travels with the task")
        #expect(Int64(events.count) == first.info.nextEventID - 1 && first.nextPageToken.isEmpty)
        try await worker.complete(first, [DispatchFixtures.scheduleActivity("debit")])

        let activity = try await worker.nextActivityTask()
        #expect(activity.activityID == "debit" && activity.attempt == 1)

        // While the activity runs, a query reaches the worker (which holds a free workflow slot again).
        let answer = Task {
            let response: Ballast_V1_QueryWorkflowResponse = try await client.unary(BallastMethod.Workflow.query, request: query,
                                                                                    timeout: .seconds(10))
            return response
        }
        guard case .queryTask(let queryTask)? = try await worker.next().event.event else {
            Issue.record("expected a query task")
            return
        }
        #expect(queryTask.queryType == "balance" && queryTask.execution.runID == started.runID)
        #expect(!queryTask.history.isEmpty)
        var forged = Ballast_V1_RespondQueryTaskCompletedRequest()
        forged.queryID = queryTask.queryID
        forged.queryID[forged.queryID.startIndex + 12] ^= 0xFF
        do {
            let _: Ballast_V1_RespondQueryTaskCompletedResponse = try await worker.client.unary(
                BallastMethod.Worker.respondQueryTaskCompleted, request: forged, timeout: .seconds(5))
            Issue.record("an answer with a forged query id must be refused")
        } catch let status as GRPCStatus {
            #expect(status.code == .notFound)
        }
        var reply = Ballast_V1_RespondQueryTaskCompletedRequest()
        reply.queryID = queryTask.queryID
        var payload = Ballast_V1_Payload()
        payload.data = Data("42".utf8)
        reply.result.payloads = [payload]
        let _: Ballast_V1_RespondQueryTaskCompletedResponse = try await worker.client.unary(
            BallastMethod.Worker.respondQueryTaskCompleted, request: reply, timeout: .seconds(5))
        try await worker.grant(workflow: 1, activity: 0)
        #expect(try await answer.value.queryResult.payloads.first?.data == Data("42".utf8))

        try await worker.complete(activity, result: "debited")
        let second = try await worker.nextWorkflowTask()
        let secondHistory = try DispatchTestWorker.history(second)
        #expect(secondHistory.contains { if case .activityTaskCompleted? = $0.attributes { true } else { false } })
        try await worker.complete(second, [DispatchFixtures.completeWorkflow()])
        #expect(try await DispatchFixtures.status(client, "transfer-1") == .completed)

        let (code, body) = try await AdminHTTPClient.get(host: "127.0.0.1", port: cluster.nodes[leader]!.adminPort,
                                                         path: "/metrics", timeout: .seconds(5), group: cluster.group)
        let samples = WorkflowAPIProcessTests.samples(String(decoding: body, as: UTF8.self))
        #expect(code == 200 && samples["ballast_dispatch_tasks_pushed_total"] == 3)
        #expect(samples["ballast_dispatch_latency_seconds_count"] == 3)
        // The activity went out with the workflow-task completion that scheduled it, and the
        // second workflow task with the activity's result (eager dispatch): no started entries.
        #expect(samples["ballast_dispatch_eager_starts_total"] == 2)
        #expect(samples["ballast_timers_fired_total"] != nil)
        var connected: Double?
        let deadline = ContinuousClock.now + .seconds(5)
        while connected != 1, ContinuousClock.now < deadline {
            let (_, body) = try await AdminHTTPClient.get(host: "127.0.0.1", port: cluster.nodes[leader]!.adminPort,
                                                          path: "/metrics", timeout: .seconds(5), group: cluster.group)
            connected = WorkflowAPIProcessTests.samples(String(decoding: body, as: UTF8.self))["ballast_dispatch_connected_workers"]
            if connected != 1 { try await Task.sleep(for: .milliseconds(50)) }
        }
        #expect(connected == 1, "the leader counts the connected worker")
        await worker.close()
        await client.close()
    }

    @Test("a stream that asked for partial history gets a run's next workflow task with only the events after its previous one; another stream gets it whole")
    func partialHistoryOnTheStickyStream() async throws {
        let cluster = try ProcessCluster(size: 3)
        defer { cluster.shutdown() }
        let leader = try await cluster.waitForLeader()
        let client = try await connect(cluster, leader)
        let port = cluster.nodes[leader]!.apiPort
        let sticky = try await DispatchTestWorker.connectToLeader(port: port, group: cluster.group, partialHistory: true)
        let _: Ballast_V1_StartWorkflowResponse = try await client.unary(
            BallastMethod.Workflow.start, request: DispatchFixtures.start("partial-1"), timeout: .seconds(10))

        let first = try await sticky.nextWorkflowTask()
        #expect(first.firstEventID <= 1, "the stream never had this run: whole history")
        #expect(try DispatchTestWorker.history(first).map(\.eventID) == Array(1 ..< first.info.nextEventID))
        try await sticky.complete(first, [DispatchFixtures.scheduleActivity("debit")])
        try await sticky.complete(try await sticky.nextActivityTask(), result: "debited")

        let second = try await sticky.nextWorkflowTask()
        #expect(second.info.previousStartedEventID == first.info.startedEventID)
        #expect(second.firstEventID == first.info.startedEventID + 1, "only what came after the stream's previous task")
        let secondEvents = try DispatchTestWorker.history(second)
        #expect(secondEvents.map(\.eventID) == Array(second.firstEventID ..< second.info.nextEventID))
        #expect(secondEvents.contains { if case .activityTaskCompleted? = $0.attributes { true } else { false } })
        try await sticky.complete(second, [DispatchFixtures.scheduleActivity("credit")])
        let credit = try await sticky.nextActivityTask()

        // The run's next workflow task goes to a stream that never had it: whole history.
        await sticky.close()
        let other = try await DispatchTestWorker.connectToLeader(port: port, group: cluster.group, partialHistory: true)
        try await DispatchTestWorker.completeActivity(credit, result: "credited", client: other.client)
        let third = try await other.nextWorkflowTask()
        #expect(third.firstEventID <= 1)
        #expect(try DispatchTestWorker.history(third).map(\.eventID) == Array(1 ..< third.info.nextEventID))
        try await other.complete(third, [DispatchFixtures.completeWorkflow()])
        #expect(try await DispatchFixtures.status(client, "partial-1") == .completed)

        #expect(try await cluster.metrics(of: leader)["ballast_dispatch_partial_histories_total"] == 1)
        await other.close()
        await client.close()
    }

    @Test("a member acting as an older build (--max-engine-format 1) keeps eager dispatch off and entries in format 1, and keeps applying; restarted as the new build, eager dispatch turns on and entries are written in the newest format")
    func eagerDispatchWaitsForEveryMember() async throws {
        let olderBuild = Mutex(true)
        let cluster = try ProcessCluster(size: 3, nodeArguments: { id in
            id == 3 && olderBuild.withLock { $0 } ? ["--max-engine-format", "1"] : []
        })
        defer { cluster.shutdown() }
        if try await cluster.waitForLeader() == 3 {
            // The older member must be a follower for what follows to test the leader's restraint.
            _ = cluster.stop(3)
            try cluster.start(3)
            _ = try await cluster.waitForLeader(excluding: 3)
        }
        try await cluster.waitForEagerDispatch(false)
        try await waitFor("node 3 to report engine format 1") { await cluster.status(of: 3)?.engineFormatVersion == 1 }
        #expect(await cluster.status(of: try await cluster.waitForLeader())?.entryFormat == 1)

        func runOne(_ id: String) async throws -> Int {
            let leader = try await cluster.waitForLeader()
            let client = try await connect(cluster, leader)
            let worker = try await DispatchTestWorker.connectToLeader(port: cluster.nodes[leader]!.apiPort, group: cluster.group)
            let _: Ballast_V1_StartWorkflowResponse = try await client.unary(
                BallastMethod.Workflow.start, request: DispatchFixtures.start(id), timeout: .seconds(10))
            try await worker.complete(try await worker.nextWorkflowTask(), [DispatchFixtures.scheduleActivity("debit")])
            try await worker.complete(try await worker.nextActivityTask(), result: "debited")
            try await worker.complete(try await worker.nextWorkflowTask(), [DispatchFixtures.completeWorkflow()])
            #expect(try await DispatchFixtures.status(client, id) == .completed)
            await worker.close()
            await client.close()
            return leader
        }

        var leader = try await runOne("mixed-1")
        #expect((try await cluster.metrics(of: leader)["ballast_dispatch_eager_starts_total"] ?? 0) == 0)
        // The older member applied everything (a format-2 entry would have stopped it).
        let commit = try #require(await cluster.status(of: leader)?.commit)
        try await waitFor("node 3 to apply up to the leader's commit \(commit)") {
            (await cluster.status(of: 3)?.applied ?? 0) >= commit
        }
        #expect(cluster.nodes[3]?.process?.isRunning == true)

        olderBuild.withLock { $0 = false }
        try cluster.restart(3)
        leader = try await cluster.waitForEagerDispatch(true)
        #expect(await cluster.status(of: leader)?.entryFormat == newestEngineFormatVersion)
        leader = try await runOne("mixed-2")
        #expect((try await cluster.metrics(of: leader)["ballast_dispatch_eager_starts_total"] ?? 0) > 0)
    }

    @Test("a cluster restarted with a member still down writes the newest format it agreed before, from its first entry")
    func formatFloorSurvivesRestart() async throws {
        let cluster = try ProcessCluster(size: 3)
        defer { cluster.shutdown() }
        _ = try await cluster.waitForLeader()
        // Every member learns the agreement (followers within a round of a second) and keeps it.
        for id in 1 ... 3 {
            try await waitFor("node \(id) to know the newest format is agreed") {
                await cluster.status(of: id)?.entryFormat == newestEngineFormatVersion
            }
        }
        for id in 1 ... 3 { _ = cluster.stop(id) }
        // Node 3 stays down: it can never answer, and a member never heard from counts as format 1.
        try cluster.start(1)
        try cluster.start(2)
        let leader = try await cluster.waitForLeader()
        #expect(await cluster.status(of: leader)?.entryFormat == newestEngineFormatVersion,
                "without the saved floor the leader writes format 1 until node 3 answers")
        let client = try await connect(cluster, leader)
        let _: Ballast_V1_StartWorkflowResponse = try await client.unary(
            BallastMethod.Workflow.start, request: DispatchFixtures.start("after-restart"), timeout: .seconds(10))
        #expect(await cluster.status(of: leader)?.entryFormat == newestEngineFormatVersion)
        await client.close()
    }

    /// Format 2 is the build before bounded retries, format 3 the one before history sizes.
    @Test("a member acting as an older build (--max-engine-format 2 or 3): entries are written in its format, eagerly, and it applies them all, a failed activity's retry included",
          arguments: [UInt32(2), 3])
    func olderMemberGetsEntriesItApplies(format: UInt32) async throws {
        let cluster = try ProcessCluster(size: 3, nodeArguments: { id in id == 3 ? ["--max-engine-format", "\(format)"] : [] })
        defer { cluster.shutdown() }
        if try await cluster.waitForLeader() == 3 {
            _ = cluster.stop(3)
            try cluster.start(3)
            _ = try await cluster.waitForLeader(excluding: 3)
        }
        let leader = try await cluster.waitForEagerDispatch(true)
        #expect(await cluster.status(of: leader)?.entryFormat == format)
        #expect(await cluster.status(of: 3)?.engineFormatVersion == format)
        let client = try await connect(cluster, leader)
        let worker = try await DispatchTestWorker.connectToLeader(port: cluster.nodes[leader]!.apiPort, group: cluster.group)
        let _: Ballast_V1_StartWorkflowResponse = try await client.unary(
            BallastMethod.Workflow.start, request: DispatchFixtures.start("format-\(format)"), timeout: .seconds(10))
        try await worker.complete(try await worker.nextWorkflowTask(), [DispatchFixtures.scheduleActivity("debit")])
        var failed = Ballast_V1_RespondActivityTaskFailedRequest()
        failed.taskToken = try await worker.nextActivityTask().taskToken
        failed.failure.message = "try again"
        failed.failure.type = "Flaky"
        let _: Ballast_V1_RespondActivityTaskFailedResponse = try await client.unary(
            BallastMethod.Worker.respondActivityTaskFailed, request: failed, timeout: .seconds(10))
        try await worker.grant(workflow: 0, activity: 1)
        try await worker.complete(try await worker.nextActivityTask(), result: "debited")
        try await worker.complete(try await worker.nextWorkflowTask(), [DispatchFixtures.completeWorkflow()])
        #expect(try await DispatchFixtures.status(client, "format-\(format)") == .completed)
        let commit = try #require(await cluster.status(of: leader)?.commit)
        try await waitFor("node 3 to apply up to the leader's commit \(commit)") {
            (await cluster.status(of: 3)?.applied ?? 0) >= commit
        }
        #expect(cluster.nodes[3]?.process?.isRunning == true, "an entry of format \(format + 1) would have stopped it")
        await worker.close()
        await client.close()
    }

    @Test("after the leader's SIGKILL the new leader writes eager entries at once: as a follower it had heard the old leader report format 2")
    func eagerDispatchSurvivesTheLeadersDeath() async throws {
        let cluster = try ProcessCluster(size: 3)
        defer { cluster.shutdown() }
        let old = try await cluster.waitForEagerDispatch()
        // Every follower has heard every member report format 2.
        for id in cluster.nodes.keys where id != old {
            try await waitFor("node \(id) to know every member's format") { await cluster.status(of: id)?.eagerDispatch == true }
        }
        cluster.kill(old)
        let leader = try await cluster.waitForLeader(excluding: old)
        #expect(try await cluster.waitForEagerDispatch(true, timeout: .seconds(5)) == leader)
        #expect(cluster.nodes[old]?.process == nil, "the old leader is still down")
    }

    @Test("with --eager-dispatch false every task goes out by its own started entry, and entries are still written in the newest format")
    func eagerDispatchOff() async throws {
        let cluster = try ProcessCluster(size: 3, extraArguments: ["--eager-dispatch", "false"])
        defer { cluster.shutdown() }
        let leader = try await cluster.waitForLeader()
        // The newest format carries the limits (history size, name lengths, …): turning an
        // optimization off must not turn them off.
        try await waitFor("the leader to write entries in the newest format") {
            await cluster.status(of: leader)?.entryFormat == newestEngineFormatVersion
        }
        #expect(await cluster.status(of: leader)?.eagerDispatch == false)
        let client = try await connect(cluster, leader)
        let worker = try await DispatchTestWorker.connectToLeader(port: cluster.nodes[leader]!.apiPort, group: cluster.group)
        let before = await cluster.status(of: leader)?.commit
        let _: Ballast_V1_StartWorkflowResponse = try await client.unary(
            BallastMethod.Workflow.start, request: DispatchFixtures.start("plain"), timeout: .seconds(10))
        let first = try await worker.nextWorkflowTask()
        try await worker.complete(first, [DispatchFixtures.scheduleActivity("debit")])
        let activity = try await worker.nextActivityTask()
        try await worker.complete(activity, result: "debited")
        let second = try await worker.nextWorkflowTask()
        try await worker.complete(second, [DispatchFixtures.completeWorkflow()])
        #expect(try await DispatchFixtures.status(client, "plain") == .completed)
        let (_, body) = try await AdminHTTPClient.get(host: "127.0.0.1", port: cluster.nodes[leader]!.adminPort,
                                                      path: "/metrics", timeout: .seconds(5), group: cluster.group)
        let samples = WorkflowAPIProcessTests.samples(String(decoding: body, as: UTF8.self))
        #expect(samples["ballast_dispatch_tasks_pushed_total"] == 3)
        #expect((samples["ballast_dispatch_eager_starts_total"] ?? 0) == 0)
        // Start, three started entries, two workflow-task completions, the activity's result
        // (with eager dispatch the three started entries ride on the others: 4).
        let after = await cluster.status(of: leader)?.commit
        #expect(before != nil && after.map { $0 - before! } == 7)
        await worker.close()
        await client.close()
    }

    @Test("a worker that connects to a follower is told where the leader is, reconnects there and gets its task")
    func followerRedirectsWorkers() async throws {
        let cluster = try ProcessCluster(size: 3)
        defer { cluster.shutdown() }
        let leader = try await cluster.waitForLeader()
        let follower = try #require((1 ... 3).first { $0 != leader })
        let client = try await connect(cluster, leader)
        let _: Ballast_V1_StartWorkflowResponse = try await client.unary(
            BallastMethod.Workflow.start, request: DispatchFixtures.start("redirected"), timeout: .seconds(10))
        var leaderAddress: String?
        do {
            _ = try await DispatchTestWorker.connect(port: cluster.nodes[follower]!.apiPort, group: cluster.group)
            Issue.record("a follower must refuse a task stream")
        } catch let status as GRPCStatus {
            #expect(status.code == .unavailable)
            leaderAddress = status.leaderAddress
        }
        #expect(leaderAddress == "127.0.0.1:\(cluster.nodes[leader]!.apiPort)")
        let port = try #require(leaderAddress.flatMap { $0.split(separator: ":").last }.flatMap { Int($0) })
        let worker = try await DispatchTestWorker.connectToLeader(port: port, group: cluster.group)
        #expect(try await worker.nextWorkflowTask().info.workflowExecution.workflowID == "redirected")
        await worker.close()
        await client.close()
    }

    @Test("when the leader hands over (SIGTERM), its task streams end with UNAVAILABLE naming the new leader")
    func steppingDownClosesStreams() async throws {
        let cluster = try ProcessCluster(size: 3)
        defer { cluster.shutdown() }
        let leader = try await cluster.waitForLeader()
        let worker = try await DispatchTestWorker.connectToLeader(port: cluster.nodes[leader]!.apiPort, group: cluster.group)
        let stopper = Task.detached { cluster.stop(leader) }
        let ending = try await worker.end(within: .seconds(15))
        let status = try #require(ending as? GRPCStatus)
        #expect(status.code == .unavailable)
        #expect(await stopper.value == 0, "the old leader exits cleanly")
        let newLeader = try await cluster.waitForLeader(excluding: leader)
        #expect(status.leaderAddress == "127.0.0.1:\(cluster.nodes[newLeader]!.apiPort)", "\(status)")
        await worker.close()
    }

    @Test("the leader dies while a worker holds a workflow task: the worker reconnects to the new leader and the run completes")
    func leaderDiesWhileTaskHeld() async throws {
        let cluster = try ProcessCluster(size: 3)
        defer { cluster.shutdown() }
        let leader = try await cluster.waitForLeader()
        let client = try await connect(cluster, leader)
        let _: Ballast_V1_StartWorkflowResponse = try await client.unary(
            BallastMethod.Workflow.start, request: DispatchFixtures.start("survivor"), timeout: .seconds(10))
        await client.close()
        let worker = try await DispatchTestWorker.connectToLeader(port: cluster.nodes[leader]!.apiPort, group: cluster.group)
        let held = try await worker.nextWorkflowTask()
        cluster.kill(leader)
        _ = try await worker.end(within: .seconds(10))
        await worker.close()

        let newLeader = try await cluster.waitForLeader(excluding: leader)
        let reconnected = try await DispatchTestWorker.connectToLeader(port: cluster.nodes[newLeader]!.apiPort, group: cluster.group)
        try await reconnected.complete(held, [DispatchFixtures.scheduleActivity("credit")])
        let activity = try await reconnected.nextActivityTask()
        try await reconnected.complete(activity, result: "credited")
        let last = try await reconnected.nextWorkflowTask()
        try await reconnected.complete(last, [DispatchFixtures.completeWorkflow()])
        #expect(try await DispatchFixtures.status(reconnected.client, "survivor") == .completed)
        await reconnected.close()
    }

    @Test("a 200 ms timer fires; an activity whose worker vanished is dispatched again (long poll) after its start-to-close timeout")
    func timersAndRedispatch() async throws {
        let cluster = try ProcessCluster(size: 3)
        defer { cluster.shutdown() }
        let leader = try await cluster.waitForLeader()
        let client = try await connect(cluster, leader)
        let _: Ballast_V1_StartWorkflowResponse = try await client.unary(
            BallastMethod.Workflow.start, request: DispatchFixtures.start("timed"), timeout: .seconds(10))
        let worker = try await DispatchTestWorker.connectToLeader(port: cluster.nodes[leader]!.apiPort, group: cluster.group,
                                                          activitySlots: 0)
        let first = try await worker.nextWorkflowTask()
        let timerStarted = ContinuousClock.now
        try await worker.complete(first, [DispatchFixtures.startTimer("wait", after: .milliseconds(200))])
        let afterTimer = try await worker.next(within: .seconds(5))
        #expect(afterTimer.at - timerStarted >= .milliseconds(200), "a timer never fires early")
        guard case .workflowTask(let second)? = afterTimer.event.event else {
            Issue.record("expected the workflow task after the timer")
            return
        }
        #expect(try DispatchTestWorker.history(second).contains { if case .timerFired? = $0.attributes { true } else { false } })
        try await worker.complete(second, [DispatchFixtures.scheduleActivity("debit", startToClose: .seconds(1))])

        // A worker takes the activity by long poll, then vanishes without answering.
        var poll = Ballast_V1_PollActivityTaskRequest()
        poll.taskQueue = "payments"
        poll.identity = "vanishing-worker"
        let firstAttempt: Ballast_V1_PollActivityTaskResponse = try await client.unary(
            BallastMethod.Worker.pollActivityTask, request: poll, timeout: .seconds(10))
        #expect(firstAttempt.task.activityID == "debit" && firstAttempt.task.attempt == 1)
        let vanished = ContinuousClock.now
        let secondAttempt: Ballast_V1_PollActivityTaskResponse = try await client.unary(
            BallastMethod.Worker.pollActivityTask, request: poll, timeout: .seconds(10))
        #expect(secondAttempt.task.activityID == "debit" && secondAttempt.task.attempt == 2)
        #expect(ContinuousClock.now - vanished >= .seconds(1), "dispatched again only after the start-to-close timeout")
        try await DispatchTestWorker.completeActivity(secondAttempt.task, result: "debited", client: client)
        let third = try await worker.nextWorkflowTask()
        try await worker.complete(third, [DispatchFixtures.completeWorkflow()])
        #expect(try await DispatchFixtures.status(client, "timed") == .completed)

        // An empty long poll answers before the caller's deadline instead of failing it.
        let empty: Ballast_V1_PollActivityTaskResponse = try await client.unary(
            BallastMethod.Worker.pollActivityTask, request: poll, timeout: .seconds(1))
        #expect(!empty.hasTask)

        // The second attempt's 1 s start-to-close deadline comes due after the run closed: the
        // leader drops it instead of committing an entry the engine would reject as stale.
        let closedAt = await cluster.status(of: leader)?.commit
        var dropped: Double?
        let deadline = ContinuousClock.now + .seconds(10)
        while (dropped ?? 0) < 1, ContinuousClock.now < deadline {
            let (_, body) = try await AdminHTTPClient.get(host: "127.0.0.1", port: cluster.nodes[leader]!.adminPort,
                                                          path: "/metrics", timeout: .seconds(5), group: cluster.group)
            dropped = WorkflowAPIProcessTests.samples(String(decoding: body, as: UTF8.self))["ballast_deadlines_dropped_total"]
            if (dropped ?? 0) < 1 { try await Task.sleep(for: .milliseconds(50)) }
        }
        #expect((dropped ?? 0) >= 1, "the stale deadline was dropped")
        let commitAfter = await cluster.status(of: leader)?.commit
        #expect(closedAt != nil && commitAfter == closedAt, "nothing was committed for it")
        await worker.close()
        await client.close()
    }

    /// With eager dispatch the workflow task leaves the leader when the start entry applies, the
    /// moment the start is also answered, so the task usually reaches the worker before the client
    /// has its answer. What this prints from the client's side is start sent → task received,
    /// which includes the commit; the leader's `ballast_dispatch_latency_seconds` histogram is
    /// the ready → written-to-stream part on its own.
    @Test("measure: start → received latency of a workflow task on loopback with an idle worker")
    func measureDispatchLatency() async throws {
        let cluster = try ProcessCluster(size: 3)
        defer { cluster.shutdown() }
        let leader = try await cluster.waitForLeader()
        let client = try await connect(cluster, leader)
        let worker = try await DispatchTestWorker.connectToLeader(port: cluster.nodes[leader]!.apiPort, group: cluster.group,
                                                          workflowSlots: 1, activitySlots: 0)
        var toTask: [Duration] = []
        var toAnswer: [Duration] = []
        for number in 0 ..< 60 {
            let sent = ContinuousClock.now
            let _: Ballast_V1_StartWorkflowResponse = try await client.unary(
                BallastMethod.Workflow.start, request: DispatchFixtures.start("latency-\(number)"), timeout: .seconds(10))
            let answered = ContinuousClock.now
            let received = try await worker.next()
            guard case .workflowTask(let task)? = received.event.event else { continue }
            if number >= 10 {
                toTask.append(received.at - sent)
                toAnswer.append(answered - sent)
            }
            try await worker.complete(task, [DispatchFixtures.completeWorkflow()])
        }
        toTask.sort()
        toAnswer.sort()
        print("start sent → workflow task received, median of \(toTask.count): \(toTask[toTask.count / 2]);"
              + " start sent → start answered: \(toAnswer[toAnswer.count / 2])")
        let (_, body) = try await AdminHTTPClient.get(host: "127.0.0.1", port: cluster.nodes[leader]!.adminPort,
                                                      path: "/metrics", timeout: .seconds(5), group: cluster.group)
        let text = String(decoding: body, as: UTF8.self)
        for line in text.split(separator: "\n") where line.hasPrefix("ballast_dispatch_latency_seconds") {
            print(line)
        }
        #expect(toTask.count == 50)
        await worker.close()
        await client.close()
    }
}
