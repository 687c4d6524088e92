import BallastProto
@testable import BallastSDK
import Foundation
import Synchronization
import Testing

/// Heartbeats recorded by a test; reports a cancel request once `cancelAfter` heartbeats arrived.
final class RecordingHeartbeats: ActivityHeartbeating, Sendable {
    let details = Mutex<[Ballast_V1_Payloads]>([])
    let cancelAfter: Int
    init(cancelAfter: Int = .max) { self.cancelAfter = cancelAfter }
    func heartbeat(_ details: Ballast_V1_Payloads) async -> Bool {
        let count = self.details.withLock { $0.append(details); return $0.count }
        return count >= cancelAfter
    }
}

@Suite("Activity executor")
struct ActivityTests {
    func task(type: String, input: Ballast_V1_Payloads, attempt: Int32 = 1) -> Ballast_V1_ActivityTaskInfo {
        var task = Ballast_V1_ActivityTaskInfo()
        task.namespace = "payments"
        task.workflowExecution.workflowID = "transfer-7"
        task.workflowExecution.runID = "run-7"
        task.activityID = "3"
        task.activityType.name = type
        task.input = input
        task.attempt = attempt
        return task
    }

    @Test("every attempt sees the same idempotency key and its own attempt number")
    func idempotencyKey() async throws {
        let seen = Mutex<[String]>([])
        var registry = ActivityRegistry()
        registry.register(name: "Debit") { (amount: Int, context: ActivityContext) in
            seen.withLock { $0.append("\(context.idempotencyKey)#\(context.attempt)") }
            if context.attempt < 3 { throw ApplicationError("bank busy", type: "Transient") }
            return amount
        }
        let executor = ActivityExecutor(activities: registry)
        var results: [ActivityTaskResult] = []
        for attempt in Int32(1)...3 {
            results.append(await executor.handleActivityTask(task(type: "Debit", input: payloads(250), attempt: attempt), heartbeat: RecordingHeartbeats()))
        }
        #expect(seen.withLock { $0 } == ["payments/transfer-7/run-7/3#1", "payments/transfer-7/run-7/3#2", "payments/transfer-7/run-7/3#3"])
        guard case .failed(let failure, _) = results[0], case .completed(let result) = results[2] else {
            Issue.record("unexpected results \(results)")
            return
        }
        #expect(failure.type == "Transient" && !failure.nonRetryable && failure.message == "bank busy")
        #expect(try decode(result, as: Int.self) == 250)
    }

    @Test("a non-retryable application error keeps its type, flag and details")
    func nonRetryable() async throws {
        var registry = ActivityRegistry()
        registry.register(name: "Credit") { (_: Int, _: ActivityContext) -> Int in
            throw try ApplicationError("account closed", type: "AccountClosed", nonRetryable: true, detail: ["account": "bob"])
        }
        let result = await ActivityExecutor(activities: registry).handleActivityTask(task(type: "Credit", input: payloads(1)), heartbeat: RecordingHeartbeats())
        guard case .failed(let failure, _) = result else {
            Issue.record("expected failure, got \(result)")
            return
        }
        #expect(failure.nonRetryable && failure.type == "AccountClosed" && failure.source == "SwiftSDK")
        #expect(try decode(failure.details, as: [String: String].self) == ["account": "bob"])
    }

    @Test("other Swift errors are retryable failures named after their type")
    func plainError() async {
        struct DiskFull: Error {}
        var registry = ActivityRegistry()
        registry.register(name: "Write") { (_: Int, _: ActivityContext) -> Int in throw DiskFull() }
        let result = await ActivityExecutor(activities: registry).handleActivityTask(task(type: "Write", input: payloads(1)), heartbeat: RecordingHeartbeats())
        guard case .failed(let failure, _) = result else {
            Issue.record("expected failure")
            return
        }
        #expect(failure.type == "DiskFull" && !failure.nonRetryable)
    }

    @Test("heartbeats carry details; a cancel request learned from a heartbeat reports the activity canceled")
    func heartbeatAndCancel() async throws {
        var registry = ActivityRegistry()
        registry.register(name: "Poll") { (_: Int, context: ActivityContext) -> Int in
            for step in 1...10 {
                try await context.heartbeat(step)
                try context.checkCancellation()
            }
            return 10
        }
        let heartbeats = RecordingHeartbeats(cancelAfter: 3)
        let result = await ActivityExecutor(activities: registry).handleActivityTask(task(type: "Poll", input: payloads(0)), heartbeat: heartbeats)
        guard case .canceled = result else {
            Issue.record("expected canceled, got \(result)")
            return
        }
        #expect(try heartbeats.details.withLock { $0 }.map { try decode($0, as: Int.self) } == [1, 2, 3])
    }

    @Test("a retry reads the previous attempt's last heartbeat details")
    func resumeFromHeartbeat() async throws {
        var registry = ActivityRegistry()
        registry.register(name: "Resume") { (_: Int, context: ActivityContext) -> Int in
            try context.lastHeartbeatDetails(as: Int.self) ?? 0
        }
        var attempt = task(type: "Resume", input: payloads(0), attempt: 2)
        attempt.heartbeatDetails = payloads(41)
        let result = await ActivityExecutor(activities: registry).handleActivityTask(attempt, heartbeat: RecordingHeartbeats())
        guard case .completed(let output) = result else {
            Issue.record("expected completion")
            return
        }
        #expect(try decode(output, as: Int.self) == 41)
    }

    @Test("an unknown activity type and an undecodable input fail clearly")
    func badTasks() async {
        var registry = ActivityRegistry()
        registry.register(Debit())
        let executor = ActivityExecutor(activities: registry)
        guard case .failed(let unknown, _) = await executor.handleActivityTask(task(type: "Nope", input: payloads(1)), heartbeat: RecordingHeartbeats()),
              case .failed(let badInput, _) = await executor.handleActivityTask(task(type: "Debit", input: payloads("x")), heartbeat: RecordingHeartbeats())
        else {
            Issue.record("expected failures")
            return
        }
        #expect(unknown.message == "activity type 'Nope' is not registered on this worker; registered: Debit")
        #expect(badInput.nonRetryable && badInput.type == "PayloadConversionError")
    }
}
