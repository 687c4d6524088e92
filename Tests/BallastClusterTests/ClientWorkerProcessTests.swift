import BallastProto
import BallastSDK
import BallastWire
import Foundation
import Synchronization
import Testing

/// A one-activity workflow written directly against the task-handling boundary: schedule
/// "Echo" with the workflow's input, then complete with the activity's result.
struct EchoWorkflowHandler: WorkflowTaskHandling {
    func handleWorkflowTask(_ task: Ballast_V1_WorkflowTaskInfo, history: [Ballast_V1_HistoryEvent]) async -> WorkflowTaskResult {
        var input = Ballast_V1_Payloads()
        var scheduled = false
        for event in history {
            switch event.attributes {
            case .workflowExecutionStarted(let started)?: input = started.input
            case .activityTaskScheduled?: scheduled = true
            case .activityTaskCompleted(let completed)?:
                var command = Ballast_V1_Command()
                command.completeWorkflowExecution.result = completed.result
                return .completed([command])
            default: break
            }
        }
        if scheduled { return .completed([]) }
        var command = Ballast_V1_Command()
        command.scheduleActivityTask.activityID = "echo"
        command.scheduleActivityTask.activityType.name = "Echo"
        command.scheduleActivityTask.input = input
        command.scheduleActivityTask.startToCloseTimeoutNanos = 5_000_000_000
        return .completed([command])
    }

    func handleQuery(_ query: Ballast_V1_QueryTask, history: [Ballast_V1_HistoryEvent]) async -> QueryTaskResult {
        var payloads = Ballast_V1_Payloads()
        payloads.payloads = [JSONClientPayloadConverter.payload(jsonData: Data("\(history.count)".utf8))]
        return .answered(payloads)
    }
}

/// Returns its input; counts attempts.
final class EchoActivityHandler: ActivityTaskHandling {
    let attempts = Mutex(0)

    func handleActivityTask(_ task: Ballast_V1_ActivityTaskInfo, heartbeat: any ActivityHeartbeating) async -> ActivityTaskResult {
        attempts.withLock { $0 += 1 }
        return .completed(task.input)
    }
}

/// Debits with the idempotency key the cluster gives; fails transiently on its first attempt.
struct FlakyDebit: ActivityDefinition {
    static let name = "FlakyDebit"
    let keys: KeyLog

    func run(_ input: Int, context: ActivityContext) async throws -> String {
        keys.keys.withLock { $0.append(context.idempotencyKey) }
        if context.attempt == 1 { throw ApplicationError("the bank is busy", type: "Transient") }
        return "debited \(input) on attempt \(context.attempt)"
    }
}

/// The idempotency keys activity attempts saw.
final class KeyLog: Sendable {
    let keys = Mutex<[String]>([])
}

/// Waits for an "approve" signal, answers a "state" query, then runs the flaky debit.
struct ApprovedDebitWorkflow: Workflow {
    static let name = "ApprovedDebit"
    func run(context: WorkflowContext, input: Int) async throws -> String {
        var state = "waiting"
        context.setQueryHandler("state") { state }
        let approvals = context.signalChannel("approve", of: Bool.self)
        guard try await approvals.receive() else { return "rejected" }
        state = "debiting"
        var retry = RetryPolicy()
        retry.initialInterval = .milliseconds(50)
        return try await context.executeActivity(named: FlakyDebit.name, input: input, returning: String.self,
                                                 options: ActivityOptions(startToCloseTimeout: .seconds(5), retryPolicy: retry))
    }
}

/// The SDK worker loop against real server processes: dispatch, responses, reconnection.
@Suite("SDK worker on server processes", .serialized)
struct ClientWorkerProcessTests {
    func client(_ cluster: ProcessCluster) -> BallastClient {
        let endpoints = cluster.apiEndpoints()
        var options = BallastClientOptions()
        options.callTimeout = .seconds(20)
        return BallastClient(endpoints: endpoints, options: options, group: cluster.group)
    }

    @Test("workflows started before and after the leader's SIGKILL complete through one worker that follows the new leader")
    func workerCompletesAcrossFailover() async throws {
        let cluster = try ProcessCluster(size: 3)
        defer { cluster.shutdown() }
        let leader = try await cluster.waitForLeader()
        let client = client(cluster)
        var options = WorkerOptions(taskQueue: "echo")
        options.reconnect.maximumBackoff = .milliseconds(200)
        let activities = EchoActivityHandler()
        let worker = try Worker(client: client, options: options, workflows: EchoWorkflowHandler(), activities: activities)
        let running = Task { try await worker.run() }

        let first = try await client.start("Echo", id: "echo-1", taskQueue: "echo", input: ["n": 1])
        #expect(try await first.result(as: [String: Int].self, timeout: .seconds(30)) == ["n": 1])

        cluster.kill(leader)
        _ = try await cluster.waitForLeader(excluding: leader)
        var handles: [WorkflowHandle] = []
        for number in 2 ... 6 {
            handles.append(try await client.start("Echo", id: "echo-\(number)", taskQueue: "echo", input: ["n": number]))
        }
        for (offset, handle) in handles.enumerated() {
            #expect(try await handle.result(as: [String: Int].self, timeout: .seconds(60)) == ["n": offset + 2])
        }
        let history = try await client.history(workflowID: "echo-2")
        #expect(history.first.map { if case .workflowExecutionStarted? = $0.attributes { true } else { false } } == true)
        #expect(history.last.map { if case .workflowExecutionCompleted? = $0.attributes { true } else { false } } == true)
        await worker.shutdown()
        try await running.value
        await client.close()
    }

    @Test("the SDK runtime behind the worker: a signal, a query, an activity retried with the same idempotency key")
    func runtimeEndToEnd() async throws {
        let cluster = try ProcessCluster(size: 3)
        defer { cluster.shutdown() }
        _ = try await cluster.waitForLeader()
        let client = client(cluster)
        let keys = KeyLog()
        var activities = ActivityRegistry()
        activities.register(FlakyDebit(keys: keys))
        let worker = try Worker(client: client, options: WorkerOptions(taskQueue: "sdk"), workflows: [ApprovedDebitWorkflow.self],
                                activities: activities)
        let running = Task { try await worker.run() }
        let handle = try await client.start(ApprovedDebitWorkflow.name, id: "approved-1", taskQueue: "sdk", input: 25)
        // The query is answered by the worker from the run's state (retried until the first task ran).
        var state = ""
        let deadline = ContinuousClock.now + .seconds(20)
        while state != "waiting", ContinuousClock.now < deadline {
            state = (try? await handle.query("state", as: String.self)) ?? ""
        }
        #expect(state == "waiting")
        try await handle.signal("approve", true)
        #expect(try await handle.result(as: String.self, timeout: .seconds(30)) == "debited 25 on attempt 2")
        let seen = keys.keys.withLock { $0 }
        #expect(seen.count == 2 && Set(seen).count == 1, "every attempt carries the same idempotency key: \(seen)")
        await worker.shutdown()
        try await running.value
        await client.close()
    }
}
