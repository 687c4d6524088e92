import BallastProto
import BallastSDK
import BallastWire
import Foundation
import NIOCore
import Synchronization

/// An in-process stand-in for a Ballast node: a real gRPC server on 127.0.0.1 with handlers
/// written by each test. It records what it received and can play a follower (answer every
/// call with UNAVAILABLE + `ballast-leader`).
final class FakeNode: Sendable {
    let server: GRPCServer
    let state: Mutex<FakeNodeState>

    struct FakeNodeState {
        /// Set: every call answers UNAVAILABLE naming this leader ("" = no leader known).
        var redirectTo: String?
        var calls: [String] = []
    }

    var address: String { "127.0.0.1:\(server.port ?? 0)" }
    var endpoint: BallastEndpoint { BallastEndpoint(host: "127.0.0.1", port: server.port ?? 0) }
    var calls: [String] { state.withLock { $0.calls } }
    func calls(to path: String) -> Int { calls.filter { $0 == path }.count }

    func redirect(to leader: String?) { state.withLock { $0.redirectTo = leader } }

    private init(server: GRPCServer) {
        self.server = server
        self.state = Mutex(FakeNodeState())
    }

    /// Starts a node; `configure` registers the test's handlers through a `FakeRegistry`.
    static func start(_ configure: (inout FakeRegistry) -> Void) async throws -> FakeNode {
        let box = FakeNodeBox()
        var registry = FakeRegistry(box: box)
        configure(&registry)
        let server = try await GRPCServer.start(host: "127.0.0.1", port: 0, registry: registry.registry)
        let node = FakeNode(server: server)
        box.node.withLock { $0 = node }
        return node
    }

    func stop() async { await server.close() }

    /// Records the call; throws the redirect status when playing a follower.
    func enter(_ path: String) throws {
        let redirect = state.withLock { state -> String? in
            state.calls.append(path)
            return state.redirectTo
        }
        if let redirect { throw GRPCStatus.notLeader(leaderAddress: redirect.isEmpty ? nil : redirect) }
    }
}

/// Lets handlers reach the node created after the registry.
final class FakeNodeBox: Sendable {
    let node = Mutex<FakeNode?>(nil)
    func enter(_ path: String) throws { try node.withLock { $0 }?.enter(path) }
}

/// Registers handlers that first pass through the node's recording and redirect logic.
struct FakeRegistry {
    let box: FakeNodeBox
    var registry = GRPCMethodRegistry()

    mutating func unary<Request: SwiftProtobuf.Message, Response: SwiftProtobuf.Message>(
        _ path: String, _ body: @escaping @Sendable (Request) async throws -> Response
    ) {
        let box = self.box
        registry.unary(path) { (request: Request, _) in
            try box.enter(path)
            return try await body(request)
        }
    }

    mutating func streaming<Request: SwiftProtobuf.Message, Response: SwiftProtobuf.Message>(
        _ path: String, _ body: @escaping @Sendable (Request, GRPCStreamWriter<Response>) async throws -> Void
    ) {
        let box = self.box
        registry.serverStreaming(path) { (request: Request, _, writer: GRPCStreamWriter<Response>) in
            try box.enter(path)
            try await body(request, writer)
        }
    }
}

/// Polls `condition` until it holds or `timeout` passes.
func eventually(_ timeout: Duration = .seconds(10), _ condition: @Sendable () async throws -> Bool) async rethrows -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await condition() { return true }
        try? await Task.sleep(for: .milliseconds(5))
    }
    return try await condition()
}

/// A history event with `id` and a workflow-started attribute (filler for history tests).
func fillerEvent(_ id: Int64) -> Ballast_V1_HistoryEvent {
    var event = Ballast_V1_HistoryEvent()
    event.eventID = id
    event.eventTimeUnixNanos = 1_000 * id
    var signaled = Ballast_V1_WorkflowExecutionSignaledEventAttributes()
    signaled.signalName = "s\(id)"
    event.attributes = .workflowExecutionSignaled(signaled)
    return event
}

/// Events `range` as LZ4 batches of at most `perBatch` events.
func batches(_ range: ClosedRange<Int64>, perBatch: Int = 3) throws -> [Ballast_V1_HistoryEventBatch] {
    let events = range.map(fillerEvent)
    var result: [Ballast_V1_HistoryEventBatch] = []
    var index = 0
    while index < events.count {
        let chunk = Array(events[index ..< min(index + perBatch, events.count)])
        result += try LZ4EventBatchCodec.makeBatches(events: chunk, firstEventID: UInt64(chunk[0].eventID)).map(\.message)
        index += perBatch
    }
    return result
}

/// A history service over events 1…`count`, served in pages of `pageSize` events.
func registerHistory(_ registry: inout FakeRegistry, count: Int64, pageSize: Int64) {
    registry.unary(BallastMethod.Workflow.getHistory) { (request: Ballast_V1_GetWorkflowExecutionHistoryRequest) in
        let first = request.nextPageToken.isEmpty ? 1 : Int64(String(decoding: request.nextPageToken, as: UTF8.self)) ?? 1
        let last = min(count, first + pageSize - 1)
        var response = Ballast_V1_GetWorkflowExecutionHistoryBatchesResponse()
        response.batches = try batches(first ... last)
        if last < count { response.nextPageToken = Data(String(last + 1).utf8) }
        return response
    }
}

import SwiftProtobuf
