import BallastProto
import BallastWire
import Foundation
import NIOCore
import Synchronization

/// A steady closed-loop load of StartWorkflow calls through the gRPC API, for the membership
/// tests: each worker follows the `ballast-leader` redirect, retries UNAVAILABLE and broken
/// connections with the same request id, and records anything else — or a start not
/// acknowledged within `retryWindow` of its first failure — as a failure.
final class StartLoad: Sendable {
    struct State {
        /// API ports the workers may call (the test removes a node's port before stopping it).
        var ports: [Int]
        var acknowledged: [String: String] = [:]
        var failures: [String] = []
        var retriedStarts = 0
        /// RESOURCE_EXHAUSTED answers (a node whose disk is full), retried like UNAVAILABLE.
        var resourceExhausted = 0
        var longestRetry: Duration = .zero
        var paused = false
        var stopped = false
        var inFlight = 0
    }

    let state: Mutex<State>
    let group: any EventLoopGroup
    let retryWindow: Duration

    init(ports: [Int], group: any EventLoopGroup, retryWindow: Duration = .seconds(2)) {
        state = Mutex(State(ports: ports))
        self.group = group
        self.retryWindow = retryWindow
    }

    var acknowledgedCount: Int { state.withLock { $0.acknowledged.count } }

    func setPorts(_ ports: [Int]) { state.withLock { $0.ports = ports } }

    /// Holds new starts back and returns once none is in flight.
    func pause() async throws {
        state.withLock { $0.paused = true }
        try await waitFor("the load to drain", timeout: .seconds(15)) { self.state.withLock { $0.inFlight == 0 } }
    }

    func resume() { state.withLock { $0.paused = false } }

    func stop() { state.withLock { $0.stopped = true } }

    /// Runs `workers` closed loops until `stop()`.
    func run(workers: Int) async {
        await withTaskGroup(of: Void.self) { tasks in
            for worker in 0 ..< workers { tasks.addTask { await self.worker(worker) } }
        }
    }

    private func worker(_ worker: Int) async {
        var client: (port: Int, client: GRPCClient)?
        var leaderPort: Int?
        var number = 0
        while true {
            let (stopped, paused) = state.withLock { state -> (Bool, Bool) in
                if !state.stopped && !state.paused { state.inFlight += 1 }
                return (state.stopped, state.paused)
            }
            if stopped { break }
            if paused {
                try? await Task.sleep(for: .milliseconds(5))
                continue
            }
            let workflowID = "load-\(worker)-\(number)"
            number += 1
            await start(workflowID, worker: worker, client: &client, leaderPort: &leaderPort)
            state.withLock { $0.inFlight -= 1 }
        }
        await client?.client.close()
    }

    /// One start, retried until acknowledged (or given up after five retry windows). `leaderPort`
    /// is where the last redirect pointed; it is kept across starts.
    private func start(_ workflowID: String, worker: Int, client: inout (port: Int, client: GRPCClient)?,
                       leaderPort preferred: inout Int?) async {
        var request = Ballast_V1_StartWorkflowRequest()
        request.workflowID = workflowID
        request.workflowType.name = "Transfer"
        request.taskQueue = "payments"
        request.requestID = "request-\(workflowID)"
        var firstFailure: ContinuousClock.Instant?
        var reportedSlow = false
        var attempt = worker
        while true {
            if let firstFailure, ContinuousClock.now - firstFailure > retryWindow, !reportedSlow {
                reportedSlow = true
                state.withLock { $0.failures.append("\(workflowID): not acknowledged within \(retryWindow) of its first failure") }
            }
            if let firstFailure, ContinuousClock.now - firstFailure > retryWindow * 5 {
                state.withLock { $0.failures.append("\(workflowID): given up") }
                return
            }
            do {
                let ports = state.withLock { $0.ports }
                let port = preferred.flatMap { ports.contains($0) ? $0 : nil } ?? ports[attempt % max(ports.count, 1)]
                if client?.port != port {
                    await client?.client.close()
                    client = nil
                    client = (port, try await GRPCClient.connect(host: "127.0.0.1", port: port, group: group))
                }
                let response: Ballast_V1_StartWorkflowResponse = try await client!.client.unary(
                    BallastMethod.Workflow.start, request: request, timeout: .seconds(2))
                state.withLock { state in
                    state.acknowledged[workflowID] = response.runID
                    if let firstFailure {
                        state.retriedStarts += 1
                        state.longestRetry = max(state.longestRetry, ContinuousClock.now - firstFailure)
                    }
                }
                return
            } catch let status as GRPCStatus where status.code == .unavailable {
                firstFailure = firstFailure ?? .now
                if let hint = status.leaderAddress, let port = hint.split(separator: ":").last.flatMap({ Int($0) }) {
                    preferred = port
                    continue
                }
            } catch let status as GRPCStatus where status.code == .resourceExhausted {
                firstFailure = firstFailure ?? .now
                state.withLock { $0.resourceExhausted += 1 }
            } catch let status as GRPCStatus {
                firstFailure = firstFailure ?? .now
                state.withLock { $0.failures.append("\(workflowID): \(status)") }
            } catch {
                // A refused or broken connection (a node stopped): as UNAVAILABLE, try another node.
                firstFailure = firstFailure ?? .now
            }
            await client?.client.close()
            client = nil
            preferred = nil
            attempt += 1
            try? await Task.sleep(for: .milliseconds(20))
        }
    }
}

/// Polls `condition` until it holds or `timeout` passes. Fails only when a look that began
/// after the deadline finds it false: a look begun before it may be answered late on a loaded
/// machine, and its answer is older than the deadline (as `waitUntil` in BallastServerTests).
func waitFor(_ what: String, timeout: Duration = .seconds(20), _ condition: () async throws -> Bool) async throws {
    let deadline = ContinuousClock.now + timeout
    while true {
        let lookBegan = ContinuousClock.now
        if try await condition() { return }
        guard lookBegan < deadline else { throw ClusterTestFailure("timed out waiting for \(what)") }
        try await Task.sleep(for: .milliseconds(20))
    }
}
