import BallastProto
import BallastSDK
import Foundation
import Testing

/// Adds two numbers in an activity.
private struct Add: ActivityDefinition {
    func run(_ input: [Int], context: ActivityContext) async throws -> Int { input.reduce(0, +) }
}

/// Multiplies two numbers in an activity.
private struct Multiply: ActivityDefinition {
    func run(_ input: [Int], context: ActivityContext) async throws -> Int { input.reduce(1, *) }
}

/// Adds, then sleeps, then multiplies.
private struct ArithmeticWorkflow: Workflow {
    static let name = "Arithmetic"
    func run(context: WorkflowContext, input: [Int]) async throws -> Int {
        let sum = try await context.executeActivity(Add.self, input: input, options: ActivityOptions(startToCloseTimeout: .seconds(10)))
        try await context.sleep(for: .milliseconds(50))
        return try await context.executeActivity(Multiply.self, input: [sum, 2], options: ActivityOptions(startToCloseTimeout: .seconds(10)))
    }
}

/// The same workflow type with the activities swapped: incompatible with recorded runs.
private struct SwappedArithmeticWorkflow: Workflow {
    static let name = "Arithmetic"
    func run(context: WorkflowContext, input: [Int]) async throws -> Int {
        let product = try await context.executeActivity(Multiply.self, input: input, options: ActivityOptions(startToCloseTimeout: .seconds(10)))
        return try await context.executeActivity(Add.self, input: [product, 2], options: ActivityOptions(startToCloseTimeout: .seconds(10)))
    }
}

@Suite("WorkflowReplayer against histories from server processes", .serialized)
struct ReplayerProcessTests {
    @Test("a run's history fetched from the cluster replays with the same code and is refused by changed code")
    func replayFromCluster() async throws {
        let cluster = try ProcessCluster(size: 3)
        defer { cluster.shutdown() }
        _ = try await cluster.waitForLeader()
        let endpoints = cluster.apiEndpoints()
        let client = BallastClient(endpoints: endpoints)
        var activities = ActivityRegistry()
        activities.register(Add())
        activities.register(Multiply())
        var options = WorkerOptions(taskQueue: "arithmetic")
        options.shutdownGracePeriod = .seconds(2)
        let worker = try Worker(client: client, options: options, workflows: WorkflowRuntime(workflows: [ArithmeticWorkflow.self]),
                                activities: ActivityExecutor(activities: activities))
        let running = Task { try await worker.run() }

        let handle = try await client.start(ArithmeticWorkflow.name, id: "arithmetic-1", taskQueue: "arithmetic", input: [3, 4])
        let result: Int = try await handle.result(timeout: .seconds(20))
        #expect(result == 14)

        try await WorkflowReplayer(workflows: [ArithmeticWorkflow.self]).replay(from: client, workflowId: "arithmetic-1")
        await #expect(throws: NonDeterminismError.self) {
            try await WorkflowReplayer(workflows: [SwappedArithmeticWorkflow.self]).replay(from: client, workflowId: "arithmetic-1")
        }
        await worker.shutdown()
        try await running.value
        await client.close()
    }
}
