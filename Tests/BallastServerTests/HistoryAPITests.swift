import BallastEngine
import BallastProto
import BallastRaft
import BallastStorage
import BallastWire
import Foundation
import Logging
import NIOPosix
import Testing
@testable import BallastServer

/// One in-process node (a one-member cluster) on loopback with a file history store.
final class SingleNode: Sendable {
    let node: BallastNode
    let machine: EngineStateMachine
    let store: HistoryFileStore
    let directory: String
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)

    /// `configure` adjusts the node's configuration before it starts.
    init(configure: (inout NodeConfiguration) -> Void = { _ in }) async throws {
        directory = try temporaryDirectory()
        store = try HistoryFileStore(directory: directory + "/history")
        machine = EngineStateMachine(logger: Logger(label: "test.api"), history: store) { why in Issue.record("fatal: \(why)") }
        let raftPort = try Self.freePort()
        var configuration = NodeConfiguration(
            id: NodeID(1), dataDirectory: directory, raftAddress: HostPort(host: "127.0.0.1", port: raftPort),
            apiAddress: HostPort(host: "127.0.0.1", port: 0), adminAddress: HostPort(host: "127.0.0.1", port: 0),
            peers: [NodeID(1): HostPort(host: "127.0.0.1", port: raftPort)])
        configuration.raft.electionTimeoutTicks = 5
        configure(&configuration)
        node = try BallastNode(configuration: configuration, stateMachine: machine, logger: Logger(label: "test.api"))
        try await node.start()
        let deadline = ContinuousClock.now + .seconds(10)
        while await node.raftStatus().role != .leader {
            guard ContinuousClock.now < deadline else { throw GRPCStatus(.unavailable, "no leader within 10 s") }
            try await Task.sleep(for: .milliseconds(5))
        }
    }

    static func freePort() throws -> Int {
        let socket = try ServerSocketProbe()
        return socket.port
    }

    var apiPort: Int { Int(node.info.api.split(separator: ":").last.map(String.init) ?? "") ?? 0 }

    func client() async throws -> GRPCClient {
        try await GRPCClient.connect(host: "127.0.0.1", port: apiPort, group: group)
    }

    func stop() async {
        await node.shutdown()
        store.close()
        try? await group.shutdownGracefully()
        try? FileManager.default.removeItem(atPath: directory)
    }
}

/// Binds port 0 to learn a free port, then releases it.
struct ServerSocketProbe {
    let port: Int
    init() throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
        guard bound == 0 else { throw GRPCStatus(.internal, "bind failed") }
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        port = Int(UInt16(bigEndian: address.sin_port))
    }
}

func startRequest(_ workflowId: String, type: String = "Transfer") -> Ballast_V1_StartWorkflowRequest {
    var request = Ballast_V1_StartWorkflowRequest()
    request.workflowID = workflowId
    request.workflowType.name = type
    request.taskQueue = "payments"
    request.requestID = "start-\(workflowId)"
    return request
}

func historyRequest(_ workflowId: String, pageSize: Int32 = 0, token: Data = Data()) -> Ballast_V1_GetWorkflowExecutionHistoryRequest {
    var request = Ballast_V1_GetWorkflowExecutionHistoryRequest()
    request.execution.workflowID = workflowId
    request.maximumPageSize = pageSize
    request.nextPageToken = token
    return request
}

func decode(_ batches: [Ballast_V1_HistoryEventBatch]) throws -> [Ballast_V1_HistoryEvent] {
    try batches.flatMap { try LZ4EventBatchCodec.decode(LZ4EventBatch($0), as: Ballast_V1_HistoryEvent.self) }
}

@Suite("History read API", .serialized)
struct HistoryAPITests {
    @Test func historyPagesAndTheStreamCarryTheStoredEvents() async throws {
        let single = try await SingleNode()
        let client = try await single.client()
        let started: Ballast_V1_StartWorkflowResponse = try await client.unary(BallastMethod.Workflow.start, request: startRequest("w1"))
        for number in 0..<3 {
            var signal = Ballast_V1_SignalWorkflowRequest()
            signal.workflowExecution.workflowID = "w1"
            signal.signalName = "poke"
            signal.requestID = "signal-\(number)"
            let _: Ballast_V1_SignalWorkflowResponse = try await client.unary(BallastMethod.Workflow.signal, request: signal)
        }
        let stored = try single.machine.historyEvents(runId: started.runID, from: 1, max: .max)
        #expect(stored.count >= 5)
        var paged: [Ballast_V1_HistoryEvent] = []
        var token = Data()
        var pages = 0
        repeat {
            let page: Ballast_V1_GetWorkflowExecutionHistoryBatchesResponse = try await client.unary(
                BallastMethod.Workflow.getHistory, request: historyRequest("w1", pageSize: 2, token: token))
            paged += try decode(page.batches)
            token = page.nextPageToken
            pages += 1
        } while !token.isEmpty
        #expect(paged == stored)
        #expect(pages == (stored.count + 1) / 2)
        let whole: Ballast_V1_GetWorkflowExecutionHistoryBatchesResponse = try await client.unary(
            BallastMethod.Workflow.getHistory, request: historyRequest("w1"))
        #expect(try decode(whole.batches) == stored && whole.nextPageToken.isEmpty)

        var streamed: [Ballast_V1_HistoryEventBatch] = []
        for try await batch in try client.serverStreaming(BallastMethod.Workflow.streamHistory, request: historyRequest("w1"),
                                                          responseType: Ballast_V1_HistoryEventBatch.self) {
            streamed.append(batch)
        }
        #expect(try decode(streamed) == stored)

        // Bad input is refused with a clear status and changes nothing.
        await #expect(throws: GRPCStatus.self) {
            let _: Ballast_V1_GetWorkflowExecutionHistoryBatchesResponse = try await client.unary(
                BallastMethod.Workflow.getHistory, request: historyRequest("w1", token: Data([0xFF, 0x01])))
        }
        do {
            let _: Ballast_V1_GetWorkflowExecutionHistoryBatchesResponse = try await client.unary(
                BallastMethod.Workflow.getHistory, request: historyRequest("nobody"))
            Issue.record("an unknown workflow has no history")
        } catch let status as GRPCStatus {
            #expect(status.code == .notFound)
        }
        // The store's gauges reach /metrics.
        let metricsDeadline = ContinuousClock.now + .seconds(10)
        while !single.node.metrics.text().contains("ballast_history_runs 1"), ContinuousClock.now < metricsDeadline {
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(single.node.metrics.text().contains("ballast_history_runs 1"))
        #expect(single.node.metrics.text().contains("ballast_history_live_bytes"))
        await client.close()
        await single.stop()
    }

    @Test func waitClosedAnswersWhenTheRunClosesAndTimesOutOtherwise() async throws {
        let single = try await SingleNode()
        let client = try await single.client()
        let started: Ballast_V1_StartWorkflowResponse = try await client.unary(BallastMethod.Workflow.start, request: startRequest("w2"))
        var wait = Ballast_V1_WaitWorkflowExecutionClosedRequest()
        wait.execution.workflowID = "w2"
        do {
            let _: Ballast_V1_WaitWorkflowExecutionClosedResponse = try await client.unary(
                BallastMethod.Workflow.waitClosed, request: wait, timeout: .milliseconds(300))
            Issue.record("a running workflow does not close by itself")
        } catch let status as GRPCStatus {
            #expect(status.code == .deadlineExceeded)
        }
        let forgetDeadline = ContinuousClock.now + .seconds(5)
        while single.machine.closeSignals.count > 0, ContinuousClock.now < forgetDeadline {
            try await Task.sleep(for: .milliseconds(2))
        }
        #expect(single.machine.closeSignals.count == 0, "a waiter that gave up is forgotten")
        let request = wait
        let waiter = Task {
            try await client.unary(BallastMethod.Workflow.waitClosed, request: request,
                                   responseType: Ballast_V1_WaitWorkflowExecutionClosedResponse.self, timeout: .seconds(20))
        }
        let deadline = ContinuousClock.now + .seconds(10)
        while single.machine.closeSignals.count == 0 {
            guard ContinuousClock.now < deadline else { break }
            try await Task.sleep(for: .milliseconds(2))
        }
        var terminate = Ballast_V1_TerminateWorkflowRequest()
        terminate.workflowExecution.workflowID = "w2"
        terminate.reason = "enough"
        let _: Ballast_V1_TerminateWorkflowResponse = try await client.unary(BallastMethod.Workflow.terminate, request: terminate)
        let closed = try await waiter.value
        #expect(closed.status == .terminated)
        #expect(closed.execution.runID == started.runID)
        #expect(closed.closeEvent == (try single.machine.historyEvents(runId: started.runID, from: 1, max: .max)).last)
        // Already closed: answered at once.
        let again: Ballast_V1_WaitWorkflowExecutionClosedResponse = try await client.unary(BallastMethod.Workflow.waitClosed, request: wait)
        #expect(again.status == .terminated)
        await client.close()
        await single.stop()
    }

    /// A page that needs more rows than the loop may read is built again on a copy off the loop,
    /// whole: the caller gets the same page a loop without the limit would give.
    @Test func aListPageThatReadsManyRowsIsBuiltOffTheLoop() async throws {
        let single = try await SingleNode { $0.listRowsOnLoop = 4 }
        let client = try await single.client()
        for number in 0..<12 {
            let _: Ballast_V1_StartWorkflowResponse = try await client.unary(
                BallastMethod.Workflow.start, request: startRequest("scan-\(number)", type: number % 5 == 1 ? "Rare" : "Bulk"))
        }
        func list(_ query: String) async throws -> Ballast_V1_ListWorkflowExecutionsResponse {
            var request = Ballast_V1_ListWorkflowExecutionsRequest()
            request.query = query
            request.pageSize = 100
            return try await client.unary(BallastMethod.Workflow.list, request: request)
        }
        // WorkflowId STARTS_WITH has no index: the page reads all 12 rows.
        let scanned = try await list("WorkflowId STARTS_WITH 'scan-1'")
        #expect(scanned.executions.map(\.execution.workflowID) == ["scan-11", "scan-10", "scan-1"])
        #expect(scanned.nextPageToken.isEmpty)
        #expect(single.node.metrics.text().contains("ballast_reads_off_loop_total 1"))
        // An index serves this one: three rows for three runs, answered on the loop.
        let rare = try await list("WorkflowType = 'Rare'")
        #expect(rare.executions.map(\.execution.workflowID) == ["scan-11", "scan-6", "scan-1"])
        #expect(rare.nextPageToken.isEmpty)
        #expect(single.node.metrics.text().contains("ballast_reads_off_loop_total 1"))
        await client.close()
        await single.stop()
    }

    @Test func listAndCountFilterPageAndRejectBadQueries() async throws {
        let single = try await SingleNode()
        let client = try await single.client()
        for number in 0..<5 {
            let _: Ballast_V1_StartWorkflowResponse = try await client.unary(
                BallastMethod.Workflow.start, request: startRequest("a-\(number)", type: number % 2 == 0 ? "Transfer" : "Refund"))
        }
        var terminate = Ballast_V1_TerminateWorkflowRequest()
        terminate.workflowExecution.workflowID = "a-0"
        let _: Ballast_V1_TerminateWorkflowResponse = try await client.unary(BallastMethod.Workflow.terminate, request: terminate)

        var list = Ballast_V1_ListWorkflowExecutionsRequest()
        list.query = "WorkflowType = 'Transfer' AND ExecutionStatus = 'Running'"
        list.pageSize = 1
        var ids: [String] = []
        repeat {
            let page: Ballast_V1_ListWorkflowExecutionsResponse = try await client.unary(BallastMethod.Workflow.list, request: list)
            #expect(page.executions.count <= 1)
            ids += page.executions.map(\.execution.workflowID)
            list.nextPageToken = page.nextPageToken
        } while !list.nextPageToken.isEmpty
        #expect(ids == ["a-4", "a-2"], "newest first, closed a-0 excluded")

        var filtered = Ballast_V1_ListWorkflowExecutionsRequest()
        filtered.filter.statuses = [.terminated, .completed]
        let closedOnes: Ballast_V1_ListWorkflowExecutionsResponse = try await client.unary(BallastMethod.Workflow.list, request: filtered)
        #expect(closedOnes.executions.map(\.execution.workflowID) == ["a-0"])

        var count = Ballast_V1_CountWorkflowExecutionsRequest()
        count.filter.workflowType = "Refund"
        let refunds: Ballast_V1_CountWorkflowExecutionsResponse = try await client.unary(BallastMethod.Workflow.count, request: count)
        #expect(refunds.count == 2)
        count.filter = Ballast_V1_WorkflowExecutionFilter()
        count.query = "WorkflowId = 'a-3'"
        let one: Ballast_V1_CountWorkflowExecutionsResponse = try await client.unary(BallastMethod.Workflow.count, request: count)
        #expect(one.count == 1)

        count.query = "(WorkflowType = 'Transfer' OR WorkflowType = 'Refund') AND NOT ExecutionStatus = 'Terminated'"
        let grouped: Ballast_V1_CountWorkflowExecutionsResponse = try await client.unary(BallastMethod.Workflow.count, request: count)
        #expect(grouped.count == 4)
        #expect(grouped.statusCounts.map(\.status) == [.running] && grouped.statusCounts.map(\.count) == [4])
        count.query = ""
        let all: Ballast_V1_CountWorkflowExecutionsResponse = try await client.unary(BallastMethod.Workflow.count, request: count)
        #expect(all.statusCounts.map(\.status) == [.running, .terminated] && all.statusCounts.map(\.count) == [4, 1])

        for (query, column) in [("ExecutionStatus = 'Sleeping'", 19), ("StartTime > 'yesterday'", 13),
                                ("WorkflowType = 'unterminated", 16), ("WorkflowType = 'x' OR", 22), ("NoSuchAttribute = 1", 1)] {
            var bad = Ballast_V1_CountWorkflowExecutionsRequest()
            bad.query = query
            do {
                let _: Ballast_V1_CountWorkflowExecutionsResponse = try await client.unary(BallastMethod.Workflow.count, request: bad)
                Issue.record("query \(query) must be refused")
            } catch let status as GRPCStatus {
                #expect(status.code == .invalidArgument, "\(query)")
                #expect(status.message.contains("column \(column)"), "\(query): \(status.message)")
            }
        }
        var badToken = Ballast_V1_ListWorkflowExecutionsRequest()
        badToken.nextPageToken = Data([1, 2, 3])
        do {
            let _: Ballast_V1_ListWorkflowExecutionsResponse = try await client.unary(BallastMethod.Workflow.list, request: badToken)
            Issue.record("a garbage page token must be refused")
        } catch let status as GRPCStatus {
            #expect(status.code == .invalidArgument)
        }
        await client.close()
        await single.stop()
    }
}
