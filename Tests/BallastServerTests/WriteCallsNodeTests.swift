import BallastEngine
import BallastProto
import BallastWire
import Foundation
import Testing
@testable import BallastServer

/// The write calls answered from the Raft loop's completion (`unaryCompleting`) that the other
/// node tests do not reach: signal-with-start and activity heartbeats.
@Suite("Write calls on a node")
struct WriteCallsNodeTests {
    @Test func signalWithStartStartsOnceThenSignalsTheRunningRun() async throws {
        let single = try await SingleNode()
        let client = try await single.client()
        var request = Ballast_V1_SignalWithStartWorkflowRequest()
        request.start = startRequest("sws")
        request.signalName = "approve"
        let first: Ballast_V1_SignalWithStartWorkflowResponse = try await client.unary(BallastMethod.Workflow.signalWithStart, request: request)
        #expect(first.started && !first.runID.isEmpty)
        request.start.requestID = "another"
        let second: Ballast_V1_SignalWithStartWorkflowResponse = try await client.unary(BallastMethod.Workflow.signalWithStart, request: request)
        #expect(!second.started && second.runID == first.runID)
        let history = try single.machine.historyEvents(runId: first.runID, from: 1, max: .max)
        #expect(history.filter { if case .workflowExecutionSignaled = $0.attributes { true } else { false } }.count == 2)
        // A request the engine refuses carries the engine's status.
        var invalid = request
        invalid.start.workflowID = ""
        await #expect(throws: GRPCStatus.self) {
            let _: Ballast_V1_SignalWithStartWorkflowResponse = try await client.unary(BallastMethod.Workflow.signalWithStart, request: invalid)
        }
        await client.close()
        await single.stop()
    }

    /// Timeouts as long as a request can ask for. The engine's deadline arithmetic trapped on
    /// such an entry once it was committed, stopping every node that applied it, and again on
    /// every restart; the deadlines are now at the end of time and the node keeps serving.
    @Test func theLongestTimeoutsAreServedAndTheNodeKeepsServing() async throws {
        let single = try await SingleNode()
        let client = try await single.client()
        var request = startRequest("forever")
        request.workflowExecutionTimeoutNanos = .max
        request.workflowRunTimeoutNanos = .max
        request.workflowTaskTimeoutNanos = .max
        let started: Ballast_V1_StartWorkflowResponse = try await client.unary(BallastMethod.Workflow.start, request: request)
        #expect(started.started)
        let next: Ballast_V1_StartWorkflowResponse = try await client.unary(BallastMethod.Workflow.start, request: startRequest("after"))
        #expect(next.started)
        await client.close()
        await single.stop()
    }

    @Test func anActivityHeartbeatIsAnsweredAndABadTokenRefused() async throws {
        let single = try await SingleNode()
        let client = try await single.client()
        let _: Ballast_V1_StartWorkflowResponse = try await client.unary(BallastMethod.Workflow.start, request: startRequest("hb"))
        var poll = Ballast_V1_PollWorkflowTaskRequest()
        poll.taskQueue = "payments"
        let polled: Ballast_V1_PollWorkflowTaskResponse = try await client.unary(BallastMethod.Worker.pollWorkflowTask, request: poll,
                                                                                 timeout: .seconds(10))
        var schedule = Ballast_V1_Command()
        schedule.scheduleActivityTask.activityID = "debit"
        schedule.scheduleActivityTask.activityType.name = "Debit"
        schedule.scheduleActivityTask.startToCloseTimeoutNanos = 60_000_000_000
        schedule.scheduleActivityTask.heartbeatTimeoutNanos = 30_000_000_000
        var completed = Ballast_V1_RespondWorkflowTaskCompletedRequest()
        completed.taskToken = polled.task.info.taskToken
        completed.commands = [schedule]
        let _: Ballast_V1_RespondWorkflowTaskCompletedResponse = try await client.unary(BallastMethod.Worker.respondWorkflowTaskCompleted,
                                                                                        request: completed)
        var activityPoll = Ballast_V1_PollActivityTaskRequest()
        activityPoll.taskQueue = "payments"
        let activity: Ballast_V1_PollActivityTaskResponse = try await client.unary(BallastMethod.Worker.pollActivityTask, request: activityPoll,
                                                                                   timeout: .seconds(10))
        #expect(!activity.task.taskToken.isEmpty)
        var heartbeat = Ballast_V1_RecordActivityTaskHeartbeatRequest()
        heartbeat.taskToken = activity.task.taskToken
        heartbeat.details.payloads = [Ballast_V1_Payload()]
        let answer: Ballast_V1_RecordActivityTaskHeartbeatResponse = try await client.unary(BallastMethod.Worker.recordActivityTaskHeartbeat,
                                                                                             request: heartbeat)
        #expect(!answer.cancelRequested)
        heartbeat.taskToken = Data([0xFF, 0x01])
        let status = await #expect(throws: GRPCStatus.self) {
            let _: Ballast_V1_RecordActivityTaskHeartbeatResponse = try await client.unary(BallastMethod.Worker.recordActivityTaskHeartbeat,
                                                                                           request: heartbeat)
        }
        #expect(status?.code == .invalidArgument)
        await client.close()
        await single.stop()
    }
}
