import BallastProto
import BallastSDK
import Foundation
import Synchronization
import Testing

/// An activity that greets, recording each attempt.
private struct Greet: ActivityDefinition {
    typealias Input = String
    typealias Output = String
    func run(_ input: String, context: ActivityContext) async throws -> String { "hello \(input)" }
}

/// Sleeps on a durable timer, calls an activity, answers a query about where it is.
private struct GreetingWorkflow: Workflow {
    final class Progress: @unchecked Sendable { var step = "started" }

    func run(context: WorkflowContext, input: String) async throws -> String {
        let progress = Progress()
        context.setQueryHandler("step") { progress.step }
        try await context.sleep(for: .milliseconds(100))
        progress.step = "greeting"
        let greeting = try await context.executeActivity(Greet.self, input: input,
                                                         options: ActivityOptions(startToCloseTimeout: .seconds(10)))
        progress.step = "done"
        return greeting
    }
}

@Suite("dispatch with the Swift SDK's worker on server processes", .serialized)
struct DispatchSDKProcessTests {
    /// Runs `count` greetings through an SDK worker with `runtime` on `cluster`, checks each
    /// result and that no workflow task failed, then runs `check` with the handles while the
    /// worker is still up.
    private func greet(_ cluster: ProcessCluster, runtime: WorkflowRuntime, idPrefix: String, count: Int,
                       check: ([WorkflowHandle]) async throws -> Void = { _ in }) async throws {
        let client = BallastClient(endpoints: cluster.apiEndpoints())
        var activities = ActivityRegistry()
        activities.register(Greet())
        var options = WorkerOptions(taskQueue: "greetings")
        options.shutdownGracePeriod = .seconds(2)
        let failedTasks = Atomic<Int>(0)
        options.onAcknowledged = { if $0.kind == .workflowTaskFailed { failedTasks.add(1, ordering: .relaxed) } }
        let worker = try Worker(client: client, options: options, workflows: runtime, activities: ActivityExecutor(activities: activities))
        let running = Task { try await worker.run() }
        var handles: [WorkflowHandle] = []
        for number in 0 ..< count {
            handles.append(try await client.start(GreetingWorkflow.name, id: "\(idPrefix)-\(number)", taskQueue: "greetings",
                                                  input: "\(idPrefix)\(number)"))
        }
        for (number, handle) in handles.enumerated() {
            let result: String = try await handle.result(timeout: .seconds(20))
            #expect(result == "hello \(idPrefix)\(number)")
        }
        #expect(failedTasks.load(ordering: .relaxed) == 0, "every task ran on the first attempt")
        try await check(handles)
        await worker.shutdown()
        try await running.value
        await client.close()
    }

    @Test("runs of a workflow with a timer and an activity complete through the SDK worker; a query is answered from its state")
    func sdkWorkerRunsWorkflows() async throws {
        let cluster = try ProcessCluster(size: 3)
        defer { cluster.shutdown() }
        let leader = try await cluster.waitForLeader()
        let runtime = WorkflowRuntime(workflows: [GreetingWorkflow.self])
        try await greet(cluster, runtime: runtime, idPrefix: "greeting", count: 5) { handles in
            let step: String = try await handles[0].query("step")
            #expect(step == "done", "the query replays the finished run on the worker")
        }
        // Each run's later workflow tasks came to the worker that had it cached, with only the
        // events after its previous task.
        #expect(runtime.statistics.partialHistoryMisses == 0 && runtime.statistics.cacheHits == 10, "\(runtime.statistics)")
        #expect(try await cluster.metrics(of: leader)["ballast_dispatch_partial_histories_total"] == 10)
    }

    @Test("a worker whose cache is too small for its runs reads the whole history itself when a partial one comes; every run completes")
    func partialHistoryCacheMisses() async throws {
        let cluster = try ProcessCluster(size: 3)
        defer { cluster.shutdown() }
        _ = try await cluster.waitForLeader()
        let runtime = WorkflowRuntime(workflows: [GreetingWorkflow.self], maxCachedRuns: 1)
        try await greet(cluster, runtime: runtime, idPrefix: "small-cache", count: 6)
        // Six runs share one cache slot: a run evicted while its timer ran gets a partial history
        // for a run the worker no longer has, and reads the whole history to replay it.
        #expect(runtime.statistics.partialHistoryMisses > 0, "\(runtime.statistics)")
    }
}
