import BallastProto
import BallastSDK
import Foundation
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
    @Test("runs of a workflow with a timer and an activity complete through the SDK worker; a query is answered from its state")
    func sdkWorkerRunsWorkflows() async throws {
        let cluster = try ProcessCluster(size: 3)
        defer { cluster.shutdown() }
        _ = try await cluster.waitForLeader()
        let endpoints = cluster.apiEndpoints()
        let client = BallastClient(endpoints: endpoints)
        var activities = ActivityRegistry()
        activities.register(Greet())
        var options = WorkerOptions(taskQueue: "greetings")
        options.shutdownGracePeriod = .seconds(2)
        let worker = try Worker(client: client, options: options, workflows: WorkflowRuntime(workflows: [GreetingWorkflow.self]),
                                activities: ActivityExecutor(activities: activities))
        let running = Task { try await worker.run() }

        var handles: [WorkflowHandle] = []
        for number in 0 ..< 5 {
            handles.append(try await client.start(GreetingWorkflow.name, id: "greeting-\(number)", taskQueue: "greetings",
                                                  input: "n\(number)"))
        }
        for (number, handle) in handles.enumerated() {
            let result: String = try await handle.result(timeout: .seconds(20))
            #expect(result == "hello n\(number)")
        }
        let step: String = try await handles[0].query("step")
        #expect(step == "done", "the query replays the finished run on the worker")
        await worker.shutdown()
        try await running.value
        await client.close()
    }
}
