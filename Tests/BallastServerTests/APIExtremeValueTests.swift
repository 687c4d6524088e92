import BallastEngine
import BallastFuzzSupport
import BallastProto
import BallastRaft
import BallastWire
import Foundation
import SwiftProtobuf
import Testing
@testable import BallastServer

/// The API calls a client can make, sent to a running node with an extreme number (`Int64.max`,
/// -1, `Int64.min`, 2^32, infinities, NaN, -1e300) at every field of the request and of every
/// message inside it, page tokens included (`WireFormat`). Whatever status each call gets, the
/// node must answer it and keep serving: a trap in a handler ends this test process, and one in
/// the engine would stop every node (`ExtremeValueTests` covers the engine's entries in depth).
@Suite("API calls with extreme numbers")
struct APIExtremeValueTests {
    @Test func readsWritesAndWorkerCallsAreAnsweredAndTheNodeKeepsServing() async throws {
        let single = try await SingleNode()
        let client = try await single.client()
        // A run with history (several pages), one that closed, and their page tokens.
        var full = startRequest("target")
        full.input = Self.payloads("in")
        full.workflowExecutionTimeoutNanos = 3_600_000_000_000
        full.workflowRunTimeoutNanos = 3_600_000_000_000
        full.workflowTaskTimeoutNanos = 10_000_000_000
        full.retryPolicy.initialIntervalNanos = 1_000_000_000
        full.retryPolicy.backoffCoefficient = 2
        full.retryPolicy.maximumIntervalNanos = 10_000_000_000
        full.retryPolicy.maximumAttempts = 3
        full.memo.fields["note"] = Self.payloads("n").payloads[0]
        full.header.fields["trace"] = Self.payloads("t").payloads[0]
        let target: Ballast_V1_StartWorkflowResponse = try await client.unary(BallastMethod.Workflow.start, request: full)
        for number in 0..<3 {
            var signal = Ballast_V1_SignalWorkflowRequest()
            signal.workflowExecution.workflowID = "target"
            signal.signalName = "s\(number)"
            signal.input = Self.payloads("x")
            let _: Ballast_V1_SignalWorkflowResponse = try await client.unary(BallastMethod.Workflow.signal, request: signal)
        }
        let _: Ballast_V1_StartWorkflowResponse = try await client.unary(BallastMethod.Workflow.start, request: startRequest("closed"))
        var terminate = Ballast_V1_TerminateWorkflowRequest()
        terminate.workflowExecution.workflowID = "closed"
        terminate.reason = "done"
        let _: Ballast_V1_TerminateWorkflowResponse = try await client.unary(BallastMethod.Workflow.terminate, request: terminate)
        let execution = Self.execution("target", runId: target.runID)
        let firstPage: Ballast_V1_GetWorkflowExecutionHistoryResponse = try await client.unary(
            BallastMethod.Workflow.getHistory, request: historyRequest("target", pageSize: 1))
        #expect(!firstPage.nextPageToken.isEmpty)
        var list = Ballast_V1_ListWorkflowExecutionsRequest()
        list.namespace = "default"
        list.query = "WorkflowType = 'Transfer'"
        list.filter.statuses = [.running, .terminated]
        list.filter.workflowType = "Transfer"
        list.filter.startTimeMinUnixNanos = 1
        list.filter.startTimeMaxUnixNanos = Int64.max / 2
        list.filter.closeTimeMinUnixNanos = 1
        list.filter.closeTimeMaxUnixNanos = Int64.max / 2
        list.pageSize = 1
        let listed: Ballast_V1_ListWorkflowExecutionsResponse = try await client.unary(BallastMethod.Workflow.list, request: list)
        list.nextPageToken = listed.nextPageToken

        var describe = Ballast_V1_DescribeWorkflowExecutionRequest()
        describe.namespace = "default"
        describe.execution = execution
        var history = historyRequest("target", pageSize: 2, token: firstPage.nextPageToken)
        history.namespace = "default"
        history.execution = execution
        var count = Ballast_V1_CountWorkflowExecutionsRequest()
        count.namespace = "default"
        count.filter = list.filter
        count.query = list.query
        var wait = Ballast_V1_WaitWorkflowExecutionClosedRequest()
        wait.namespace = "default"
        wait.execution = Self.execution("closed")
        wait.followRuns = true
        var audit = Ballast_V1_ReadAuditLogRequest()
        audit.limit = 10
        audit.afterSequence = 1
        var grant = Ballast_V1_GrantTaskSlotsRequest()
        grant.streamToken = Data(repeating: 1, count: 16)
        grant.workflowTaskSlots = 4
        grant.activityTaskSlots = 4
        var signal = Ballast_V1_SignalWorkflowRequest()
        signal.namespace = "default"
        signal.workflowExecution = execution
        signal.signalName = "extreme"
        signal.input = Self.payloads("x")
        signal.header.fields["trace"] = Self.payloads("t").payloads[0]
        var fresh = full
        fresh.workflowID = "fresh"
        fresh.requestID = "fresh"

        let calls: [(String, any SwiftProtobuf.Message)] = [
            (BallastMethod.Workflow.describe, describe), (BallastMethod.Workflow.getHistory, history),
            (BallastMethod.Workflow.list, list), (BallastMethod.Workflow.count, count),
            (BallastMethod.Workflow.waitClosed, wait), (BallastMethod.Admin.readAuditLog, audit),
            (BallastMethod.Worker.grantTaskSlots, grant), (BallastMethod.Workflow.signal, signal),
            (BallastMethod.Workflow.start, fresh),
        ]
        var sent = 0
        for (path, request) in calls {
            let bytes: [UInt8] = try request.serializedBytes()
            for variant in WireFormat.variants(of: bytes, depth: 3) {
                let (status, _, _) = await client.rawUnary(path, payload: variant, timeout: .seconds(5))
                #expect(status.code != .deadlineExceeded, "\(path) did not answer a variant")
                sent += 1
            }
        }
        #expect(sent > 2_000, "only \(sent) variants sent")
        // Still serving, and still the leader of its one-node cluster.
        let described: Ballast_V1_DescribeWorkflowExecutionResponse = try await client.unary(BallastMethod.Workflow.describe, request: describe)
        #expect(described.info.execution.runID == target.runID)
        let after: Ballast_V1_StartWorkflowResponse = try await client.unary(BallastMethod.Workflow.start, request: startRequest("after"))
        #expect(after.started)
        await client.close()
        await single.stop()
    }

    @Test func membershipCallsWithExtremeNumbersAreAnswered() async throws {
        let single = try await SingleNode()
        let client = try await single.client()
        var add = Ballast_V1_AddMemberRequest()
        add.id = 7
        add.raftAddress = "127.0.0.1:9"
        add.apiAddress = "127.0.0.1:9"
        add.adminAddress = "127.0.0.1:9"
        var progress = Ballast_V1_GetMemberProgressRequest()
        progress.id = 7
        var remove = Ballast_V1_RemoveMemberRequest()
        remove.id = 7
        var sent = 0
        for (path, request) in [(BallastMethod.Cluster.addMember, add as any SwiftProtobuf.Message),
                                (BallastMethod.Cluster.getMemberProgress, progress), (BallastMethod.Cluster.removeMember, remove)] {
            for variant in WireFormat.variants(of: try request.serializedBytes(), depth: 3) {
                let (status, _, _) = await client.rawUnary(path, payload: variant, timeout: .seconds(5))
                #expect(status.code != .deadlineExceeded, "\(path) did not answer a variant")
                sent += 1
            }
        }
        #expect(sent > 300, "only \(sent) variants sent")
        #expect(await single.node.raftStatus().role == .leader)
        let after: Ballast_V1_StartWorkflowResponse = try await client.unary(BallastMethod.Workflow.start, request: startRequest("after"))
        #expect(after.started)
        await client.close()
        await single.stop()
    }

    /// A debug build checks that the leader's own proposal decodes as proposed; it compared the
    /// messages with `==`, and a start whose retry policy's coefficient is NaN is not `==` to
    /// itself: the check stopped the node (found by the test above). The bytes are compared now.
    @Test func aProposalHoldingANaNDecodesAsProposed() throws {
        var start = startRequest("nan")
        start.retryPolicy.backoffCoefficient = .nan
        var message = Ballast_V1_EngineEntry()
        message.formatVersion = 1
        message.payload = .startWorkflow(start)
        let entry = Entry(term: Term(1), index: LogIndex(1), data: try DeterministicBinaryEncoder.encode(message))
        #expect(try Ballast_V1_EngineEntry(serializedBytes: entry.data) != message)
        #expect(EngineStateMachine.decodesAsProposed(entry, message))
        var other = message
        other.leaderTimeUnixNanos = 5
        #expect(!EngineStateMachine.decodesAsProposed(entry, other))
    }

    static func payloads(_ text: String) -> Ballast_V1_Payloads {
        var payload = Ballast_V1_Payload()
        payload.data = Data(text.utf8)
        var payloads = Ballast_V1_Payloads()
        payloads.payloads = [payload]
        return payloads
    }

    static func execution(_ workflowId: String, runId: String = "") -> Ballast_V1_WorkflowExecution {
        var execution = Ballast_V1_WorkflowExecution()
        execution.workflowID = workflowId
        execution.runID = runId
        return execution
    }
}
