import BallastProto
import BallastSDK
import BallastWire
import Foundation
import Synchronization
import Testing

@Suite("worker: task stream, credit, responses, reconnection and shutdown")
struct WorkerTests {
    func client(_ endpoints: [BallastEndpoint]) -> BallastClient {
        var options = BallastClientOptions()
        options.callTimeout = .seconds(10)
        options.retry.initialBackoff = .milliseconds(5)
        options.retry.maximumBackoff = .milliseconds(50)
        return BallastClient(endpoints: endpoints, options: options)
    }

    func workerOptions(workflowSlots: Int = 4, activitySlots: Int = 4) -> WorkerOptions {
        var options = WorkerOptions(taskQueue: "payments")
        options.maxConcurrentWorkflowTasks = workflowSlots
        options.maxConcurrentActivities = activitySlots
        options.reconnect.initialBackoff = .milliseconds(5)
        options.reconnect.maximumBackoff = .milliseconds(50)
        options.shutdownGracePeriod = .seconds(5)
        return options
    }

    @Test("the stream announces free slots; the server never pushes beyond them; slots come back as grants")
    func creditAndGrants() async throws {
        let dispatch = FakeDispatch()
        let node = try await FakeNode.start { registerWorkerService(&$0, dispatch, servedBy: "n1") }
        defer { Task { await node.stop() } }
        let client = client([node.endpoint])
        let activities = GatedActivities()
        let worker = try Worker(client: client, options: workerOptions(activitySlots: 2), workflows: nil, activities: activities)
        let running = Task { try await worker.run() }
        for number in 0 ..< 5 { await dispatch.enqueue(activityEvent("a-\(number)")) }
        try #require(await eventually { activities.state.withLock { $0.running } == 2 })
        let opened = await dispatch.openedStreams
        #expect(opened.count == 1 && opened[0].activityTaskSlots == 2 && opened[0].workflowTaskSlots == 0 && !opened[0].acceptQueries)
        #expect(await dispatch.queue.count == 3, "three tasks wait for credit")
        activities.release()
        try #require(await eventually { await dispatch.completed.count == 5 })
        #expect(activities.state.withLock { $0.peak } == 2, "never more than the limit at once")
        let granted = await dispatch.grants.reduce(0) { $0 + Int($1.activityTaskSlots) }
        try #require(await eventually { await dispatch.grants.reduce(0) { $0 + Int($1.activityTaskSlots) } == 5 }, "granted \(granted)")
        await worker.shutdown()
        try await running.value
        await client.close()
    }

    @Test("a workflow task's further history pages and transient events reach the handler, and its commands are sent")
    func workflowTaskHistory() async throws {
        let dispatch = FakeDispatch()
        let node = try await FakeNode.start {
            registerWorkerService(&$0, dispatch, servedBy: "n1")
            registerHistory(&$0, count: 20, pageSize: 6)
        }
        defer { Task { await node.stop() } }
        let client = client([node.endpoint])
        let workflows = RecordingWorkflows()
        let worker = try Worker(client: client, options: workerOptions(), workflows: workflows, activities: nil)
        let running = Task { try await worker.run() }
        var event = Ballast_V1_TaskStreamEvent()
        event.workflowTask.info.taskToken = Data("wt-1".utf8)
        event.workflowTask.info.attempt = 2
        event.workflowTask.info.transientEvents = [fillerEvent(21), fillerEvent(22)]
        event.workflowTask.history = try batches(1 ... 4)
        event.workflowTask.nextPageToken = Data("5".utf8)
        await dispatch.enqueue(event)
        try #require(await eventually { await dispatch.workflowCompletions.count == 1 })
        #expect(workflows.histories.withLock { $0 } == [Array(1 ... 22)])
        let completion = await dispatch.workflowCompletions[0]
        #expect(completion.commands.count == 1 && completion.identity == worker.options.identity)
        #expect(await dispatch.openedStreams.first?.acceptQueries == true)
        // A query is answered from the history and uses a workflow slot.
        var query = Ballast_V1_TaskStreamEvent()
        query.queryTask.queryID = Data("q-1".utf8)
        query.queryTask.history = try batches(1 ... 3)
        await dispatch.enqueue(query)
        try #require(await eventually { await dispatch.queryAnswers.count == 1 })
        #expect(await dispatch.queryAnswers[0].result.payloads.first?.data == Data("3".utf8))
        await worker.shutdown()
        try await running.value
        await client.close()
    }

    @Test("a corrupt history batch fails the workflow task with a clear failure instead of crashing")
    func corruptHistory() async throws {
        let dispatch = FakeDispatch()
        let node = try await FakeNode.start { registerWorkerService(&$0, dispatch, servedBy: "n1") }
        defer { Task { await node.stop() } }
        let client = client([node.endpoint])
        let worker = try Worker(client: client, options: workerOptions(), workflows: RecordingWorkflows(), activities: nil)
        let running = Task { try await worker.run() }
        var event = Ballast_V1_TaskStreamEvent()
        event.workflowTask.info.taskToken = Data("wt-1".utf8)
        var batch = try batches(1 ... 2)[0]
        batch.eventCount = 7
        event.workflowTask.history = [batch]
        await dispatch.enqueue(event)
        try #require(await eventually { await dispatch.failedWorkflowTasks.count == 1 })
        #expect(await dispatch.failedWorkflowTasks[0].failure.type == "HistoryUnavailable")
        await worker.shutdown()
        try await running.value
        await client.close()
    }

    @Test("when the leader changes the worker reconnects to the node named by ballast-leader and keeps working")
    func reconnectsToNewLeader() async throws {
        let first = FakeDispatch()
        let second = FakeDispatch()
        let nodeA = try await FakeNode.start { registerWorkerService(&$0, first, servedBy: "a") }
        defer { Task { await nodeA.stop() } }
        let nodeB = try await FakeNode.start { registerWorkerService(&$0, second, servedBy: "b") }
        defer { Task { await nodeB.stop() } }
        let client = client([nodeA.endpoint])
        let activities = GatedActivities()
        activities.release()
        let worker = try Worker(client: client, options: workerOptions(), workflows: nil, activities: activities)
        let running = Task { try await worker.run() }
        await first.enqueue(activityEvent("on-a"))
        try #require(await eventually { await first.completed.count == 1 })
        // Node A loses leadership: it closes streams naming B and refuses new ones.
        nodeA.redirect(to: nodeB.address)
        await first.breakStreams(GRPCStatus.notLeader(leaderAddress: nodeB.address))
        await second.enqueue(activityEvent("on-b"))
        try #require(await eventually { await second.completed.count == 1 })
        #expect(await second.openedStreams.first?.activityTaskSlots == 4, "the new stream has the full free capacity")
        #expect(await client.connection.currentTarget == nodeB.endpoint)
        await worker.shutdown()
        try await running.value
        await client.close()
    }

    @Test("a heartbeat answered with cancel_requested cancels the attempt, which is reported canceled")
    func heartbeatCancel() async throws {
        let dispatch = FakeDispatch()
        let node = try await FakeNode.start { registerWorkerService(&$0, dispatch, servedBy: "n1") }
        defer { Task { await node.stop() } }
        let client = client([node.endpoint])
        let activities = GatedActivities(heartbeatsFirst: true)
        var options = workerOptions()
        options.maxHeartbeatThrottleInterval = .milliseconds(20)
        let worker = try Worker(client: client, options: options, workflows: nil, activities: activities)
        let running = Task { try await worker.run() }
        await dispatch.enqueue(activityEvent("a-1", heartbeatTimeout: .seconds(10)))
        try #require(await eventually { await dispatch.heartbeats.count >= 1 })
        // Throttled: hundreds of heartbeat calls per second from the activity, few sent.
        await dispatch.requestCancel(token: Data("a-1".utf8))
        try #require(await eventually { await dispatch.activityCancels.count == 1 })
        let sent = await dispatch.heartbeats.count
        #expect(sent < 200, "heartbeats are throttled (\(sent) sent)")
        await worker.shutdown()
        try await running.value
        await client.close()
    }

    @Test("shutdown lets a running activity finish within the grace period, and reports a retryable failure past it")
    func gracefulShutdown() async throws {
        let dispatch = FakeDispatch()
        let node = try await FakeNode.start { registerWorkerService(&$0, dispatch, servedBy: "n1") }
        defer { Task { await node.stop() } }
        let client = client([node.endpoint])
        let activities = GatedActivities()
        let worker = try Worker(client: client, options: workerOptions(), workflows: nil, activities: activities)
        let running = Task { try await worker.run() }
        await dispatch.enqueue(activityEvent("slow"))
        try #require(await eventually { activities.state.withLock { $0.running } == 1 })
        let shutdown = Task { await worker.shutdown(gracePeriod: .milliseconds(200)) }
        await shutdown.value
        try await running.value
        #expect(await dispatch.completed.isEmpty)
        let failures = await dispatch.activityFailures
        #expect(failures.count == 1 && failures[0].failure.type == "WorkerShutdown" && !failures[0].failure.nonRetryable)
        #expect(await dispatch.activityCancels.isEmpty, "a shutdown is not a cancel the workflow asked for")

        // A second worker whose activity finishes within the grace period reports completion.
        let quick = GatedActivities()
        let second = try Worker(client: client, options: workerOptions(), workflows: nil, activities: quick)
        let secondRun = Task { try await second.run() }
        await dispatch.enqueue(activityEvent("quick"))
        try #require(await eventually { quick.state.withLock { $0.running } == 1 })
        let stopping = Task { await second.shutdown(gracePeriod: .seconds(10)) }
        quick.release()
        await stopping.value
        try await secondRun.value
        #expect(await dispatch.completed == [Data("quick".utf8)])
        await client.close()
    }

    @Test("a worker refuses unusable options")
    func badOptions() throws {
        let client = client([BallastEndpoint(host: "127.0.0.1", port: 1)])
        #expect(throws: WorkerError.self) { _ = try Worker(client: client, options: workerOptions(), workflows: nil, activities: nil) }
        #expect(throws: WorkerError.self) {
            _ = try Worker(client: client, options: WorkerOptions(taskQueue: ""), workflows: RecordingWorkflows(), activities: nil)
        }
    }

    @Test("slot bookkeeping: a stream opens with free slots and slots freed later are granted to the current stream")
    func slotsCore() {
        var slots = WorkerSlots(maximumWorkflowTasks: 2, maximumActivities: 3)
        #expect(slots.openStream() == (2, 3))
        slots.taskArrived(.activity)
        slots.taskArrived(.activity)
        #expect(slots.takeGrant() == nil, "no token yet")
        slots.streamStarted(token: [1])
        slots.taskFinished(.activity)
        #expect(slots.takeGrant() == SlotGrant(streamToken: [1], workflowSlots: 0, activitySlots: 1))
        // The stream breaks with one activity running: the new stream opens with 2 free, and
        // the running activity's slot, when freed, goes to the new stream.
        slots.streamLost()
        #expect(slots.openStream() == (2, 2))
        slots.streamStarted(token: [2])
        slots.taskFinished(.activity)
        let grant = slots.takeGrant()
        #expect(grant == SlotGrant(streamToken: [2], workflowSlots: 0, activitySlots: 1))
        // A grant that failed is owed again only to the same stream.
        slots.grantFailed(grant!)
        #expect(slots.pendingActivityGrant == 1)
        _ = slots.takeGrant()
        _ = slots.openStream()
        slots.grantFailed(grant!)
        #expect(slots.pendingActivityGrant == 0)
        #expect(slots.idle)
    }
}

@Suite("worker: cancelling run()")
struct WorkerCancelTests {
    @Test("cancelling the task that runs the worker still gives running activities the grace period")
    func cancelKeepsGrace() async throws {
        let dispatch = FakeDispatch()
        let node = try await FakeNode.start { registerWorkerService(&$0, dispatch, servedBy: "n1") }
        defer { Task { await node.stop() } }
        var clientOptions = BallastClientOptions()
        clientOptions.retry.initialBackoff = .milliseconds(5)
        let client = BallastClient(endpoints: [node.endpoint], options: clientOptions)
        let activities = GatedActivities()
        var options = WorkerOptions(taskQueue: "payments")
        options.shutdownGracePeriod = .seconds(30)
        let worker = try Worker(client: client, options: options, workflows: nil, activities: activities)
        let running = Task { try await worker.run() }
        await dispatch.enqueue(activityEvent("a-1"))
        try #require(await eventually { activities.state.withLock { $0.running } == 1 })
        running.cancel()
        // The stream closes (no new work) but the activity keeps running and then completes.
        try #require(await eventually { await dispatch.streams.isEmpty })
        #expect(activities.state.withLock { $0.running } == 1)
        activities.release()
        try await running.value
        #expect(await dispatch.completed == [Data("a-1".utf8)])
        await client.close()
    }
}

@Suite("worker: redirect loops")
struct WorkerRedirectLoopTests {
    @Test("two nodes naming each other as leader (stale hints) make the worker back off, not spin")
    func staleHintsBackOff() async throws {
        let dispatch = FakeDispatch()
        let nodeA = try await FakeNode.start { registerWorkerService(&$0, dispatch, servedBy: "a") }
        defer { Task { await nodeA.stop() } }
        let nodeB = try await FakeNode.start { registerWorkerService(&$0, dispatch, servedBy: "b") }
        defer { Task { await nodeB.stop() } }
        nodeA.redirect(to: nodeB.address)
        nodeB.redirect(to: nodeA.address)
        let client = BallastClient(endpoints: [nodeA.endpoint])
        var options = WorkerOptions(taskQueue: "payments")
        options.reconnect.initialBackoff = .milliseconds(20)
        options.reconnect.maximumBackoff = .milliseconds(40)
        let worker = try Worker(client: client, options: options, workflows: nil, activities: GatedActivities())
        let running = Task { try await worker.run() }
        let started = ContinuousClock.now
        try #require(await eventually { nodeA.calls.count + nodeB.calls.count >= 20 })
        let elapsed = ContinuousClock.now - started
        // At most two attempts per backoff (one immediate redirect, then a delay of >= 10 ms):
        // 20 attempts take at least 9 delays. A busy loop would make them in a few milliseconds.
        #expect(elapsed >= .milliseconds(90), "20 stream attempts in \(elapsed)")
        // Once one node really leads, the worker gets there.
        nodeB.redirect(to: nil)
        try #require(await eventually { await dispatch.openedStreams.count == 1 })
        await worker.shutdown()
        try await running.value
        await client.close()
    }
}
