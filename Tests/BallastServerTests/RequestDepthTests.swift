import BallastEngine
import Foundation
import BallastProto
import SwiftProtobuf
import Testing
@testable import BallastServer
@testable import BallastWire

private func bytes(_ message: some SwiftProtobuf.Message) throws -> [UInt8] { try message.serializedBytes() }

/// A failure's cause chain is the one field of the API that can nest without end. Whatever the
/// API accepts is stored a few levels deeper — in an engine entry, a history event, a snapshot —
/// and decoded there by followers and workers with swift-protobuf's default limit of 100 levels.
@Suite("Request nesting depth")
struct RequestDepthTests {
    /// A failure whose cause chain is `length` failures long.
    static func chain(_ length: Int) -> Ballast_V1_Failure {
        var failure = Ballast_V1_Failure()
        failure.message = "level \(length)"
        failure.details.payloads = [Ballast_V1_Payload.with { $0.data = Data("d".utf8); $0.metadata = ["encoding": Data("json/plain".utf8)] }]
        if length > 1 { failure.cause = chain(length - 1) }
        return failure
    }

    static func failedRequest(_ length: Int) -> Ballast_V1_RespondActivityTaskFailedRequest {
        var request = Ballast_V1_RespondActivityTaskFailedRequest()
        request.taskToken = Data([1, 2, 3])
        request.failure = chain(length)
        return request
    }

    static func accepted(_ request: some SwiftProtobuf.Message) -> Bool {
        (try? GRPCMethodRegistry.decode(type(of: request), try! bytes(request))) != nil
    }

    /// The longest cause chain the API accepts in a RespondActivityTaskFailed.
    static var longestAcceptedChain: Int {
        var length = 1
        while accepted(failedRequest(length + 1)) { length += 1 }
        return length
    }

    @Test("a cause chain of 30 failures is accepted; one past the limit is refused with INVALID_ARGUMENT")
    func limit() throws {
        let longest = Self.longestAcceptedChain
        #expect(longest >= 30, "legitimate cause chains fit: \(longest)")
        #expect(longest < 60)
        let refused = try bytes(Self.failedRequest(longest + 1))
        #expect {
            _ = try GRPCMethodRegistry.decode(Ballast_V1_RespondActivityTaskFailedRequest.self, refused)
        } throws: { error in
            (error as? GRPCStatus)?.code == .invalidArgument && "\(error)".contains("deep")
        }
    }

    @Test("the deepest failure the API accepts still decodes where the cluster keeps it: entry, events, snapshot, responses")
    func everyContainerDecodes() throws {
        let longest = Self.longestAcceptedChain
        let failure = Self.chain(longest)
        // Wrapped as a workflow's own failure too: request → command → attributes → failure.
        var completion = Ballast_V1_RespondWorkflowTaskCompletedRequest()
        var command = Ballast_V1_Command()
        command.failWorkflowExecution.failure = Self.chain(1)
        completion.commands = [command]
        var longestInCommand = 1
        while true {
            command.failWorkflowExecution.failure = Self.chain(longestInCommand + 1)
            completion.commands = [command]
            guard Self.accepted(completion) else { break }
            longestInCommand += 1
        }
        command.failWorkflowExecution.failure = Self.chain(longestInCommand)
        completion.commands = [command]

        var entries: [Ballast_V1_EngineEntry] = []
        var entry = Ballast_V1_EngineEntry()
        entry.formatVersion = newestEngineFormatVersion
        entry.activityTaskFailed = Self.failedRequest(longest)
        entries.append(entry)
        entry.workflowTaskCompleted = completion
        entries.append(entry)
        for entry in entries {
            // What every follower does with a committed entry.
            #expect(throws: Never.self) { _ = try Ballast_V1_EngineEntry(serializedBytes: try bytes(entry)) }
        }

        // An activity timing out after such a failure: its final event has it as the cause.
        var timeout = Ballast_V1_Failure()
        timeout.message = "activity StartToClose timeout"
        timeout.cause = failure
        var timedOut = Ballast_V1_HistoryEvent()
        timedOut.activityTaskTimedOut.failure = timeout
        var started = Ballast_V1_HistoryEvent()
        started.activityTaskStarted.lastFailure = failure
        var failed = Ballast_V1_HistoryEvent()
        failed.workflowExecutionFailed.failure = command.failWorkflowExecution.failure
        var page = Ballast_V1_GetWorkflowExecutionHistoryResponse()
        page.history.events = [timedOut, started, failed]
        #expect(throws: Never.self) { _ = try Ballast_V1_GetWorkflowExecutionHistoryResponse(serializedBytes: try bytes(page)) }
        for event in page.history.events {
            #expect(throws: Never.self) { _ = try Ballast_V1_HistoryEvent(serializedBytes: try bytes(event)) }
        }

        // Kept for the next attempt: in the snapshot and in describe.
        var snapshot = Ballast_V1_EngineSnapshot()
        var run = Ballast_V1_SnapshotRun()
        var activity = Ballast_V1_SnapshotActivity()
        activity.lastFailure = timeout
        run.activities = [activity]
        snapshot.runs = [run]
        #expect(throws: Never.self) { _ = try Ballast_V1_EngineSnapshot(serializedBytes: try bytes(snapshot)) }
        var describe = Ballast_V1_DescribeWorkflowExecutionResponse()
        var pending = Ballast_V1_PendingActivityInfo()
        pending.lastFailure = timeout
        describe.pendingActivities = [pending]
        #expect(throws: Never.self) { _ = try Ballast_V1_DescribeWorkflowExecutionResponse(serializedBytes: try bytes(describe)) }
    }

    @Test("through a node: a failure nested past the limit is refused; the deepest accepted one is applied, stored and served back")
    func throughANode() async throws {
        let single = try await SingleNode()
        let client = try await single.client()
        let longest = Self.longestAcceptedChain
        var failed = Self.failedRequest(longest + 1)
        failed.taskToken = try await ActivitySupply(queue: "depth").next(client)
        let (refused, _, _) = await client.rawUnary(BallastMethod.Worker.respondActivityTaskFailed, payload: try bytes(failed), timeout: .seconds(5))
        #expect(refused.code == .invalidArgument, "\(refused)")
        // The activity has one attempt: its failure is final and written to history.
        failed.failure = Self.chain(longest)
        let (status, _, _) = await client.rawUnary(BallastMethod.Worker.respondActivityTaskFailed, payload: try bytes(failed), timeout: .seconds(5))
        #expect(status.code == .ok, "\(status)")
        let page: Ballast_V1_GetWorkflowExecutionHistoryBatchesResponse = try await client.unary(
            BallastMethod.Workflow.getHistory, request: historyRequest("depth-1"))
        let event = try #require(try decode(page.batches).last { $0.activityTaskFailed.hasFailure })
        #expect(event.activityTaskFailed.failure == Self.chain(longest))
        try await APIExtremeValueWorkerTests.expectStillServingThenStop(single, client)
    }
}
