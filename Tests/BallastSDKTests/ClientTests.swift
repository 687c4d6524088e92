import BallastProto
@testable import BallastSDK
import BallastWire
import Foundation
import Synchronization
import Testing

/// Starts deduplicated by request id, as the engine does.
final class FakeStarts: Sendable {
    let state = Mutex<(runs: [String: String], applied: Int, requestIDs: [String])>(([:], 0, []))
    /// Answer UNAVAILABLE after applying this many starts (the answer "lost" in a failover).
    let dropAnswers = Mutex(0)

    func start(_ request: Ballast_V1_StartWorkflowRequest) throws -> Ballast_V1_StartWorkflowResponse {
        var response = Ballast_V1_StartWorkflowResponse()
        state.withLock { state in
            state.requestIDs.append(request.requestID)
            if let run = state.runs[request.requestID] {
                response.runID = run
            } else {
                state.applied += 1
                response.runID = "run-\(state.applied)"
                response.started = true
                state.runs[request.requestID] = response.runID
            }
        }
        let drop = dropAnswers.withLock { count -> Bool in
            guard count > 0 else { return false }
            count -= 1
            return true
        }
        if drop { throw GRPCStatus(.unavailable, "leadership changed before the answer; retry with the same request id") }
        return response
    }
}

@Suite("client: cluster connection, retries and the workflow API")
struct ClientTests {
    func options(timeout: Duration = .seconds(10)) -> BallastClientOptions {
        var options = BallastClientOptions()
        options.callTimeout = timeout
        options.retry.initialBackoff = .milliseconds(5)
        options.retry.maximumBackoff = .milliseconds(50)
        return options
    }

    @Test("addresses are parsed and bad ones refused with the reason")
    func addressParsing() throws {
        #expect(try BallastEndpoint.parseList("127.0.0.1:7233, node2:7234,127.0.0.1:7233") ==
                [BallastEndpoint(host: "127.0.0.1", port: 7233), BallastEndpoint(host: "node2", port: 7234)])
        #expect(try BallastEndpoint(parsing: "[::1]:80") == BallastEndpoint(host: "::1", port: 80))
        for bad in ["", "host", "host:", ":80", "host:0", "host:70000", "host:x", ","] {
            #expect(throws: BallastClientError.self, "\(bad)") { _ = try BallastEndpoint.parseList(bad) }
        }
    }

    @Test("backoff grows to its maximum with jitter in [ceiling/2, ceiling]")
    func backoff() {
        var policy = CallRetryPolicy()
        policy.initialBackoff = .milliseconds(10)
        policy.maximumBackoff = .milliseconds(80)
        var backoff = Backoff(policy: policy)
        var generator = SystemRandomNumberGenerator()
        let ceilings: [Duration] = [10, 20, 40, 80, 80, 80].map { .milliseconds($0) }
        for ceiling in ceilings {
            let delay = backoff.next(using: &generator)
            #expect(delay >= ceiling / 2 && delay <= ceiling)
        }
        backoff.reset()
        #expect(backoff.next(using: &generator) <= .milliseconds(10))
    }

    @Test("durations of a thousand years saturate instead of trapping the caller")
    func hugeDurationsSaturate() {
        // A maximum of Int64.max nanoseconds is 2^63 as a Double: converting the grown ceiling
        // trapped once it got there.
        var policy = CallRetryPolicy()
        policy.initialBackoff = .seconds(4_000_000_000)
        policy.maximumBackoff = .seconds(Int64.max)
        var backoff = Backoff(policy: policy)
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<4 { _ = backoff.next(using: &generator) }
        #expect(backoff.ceiling == .nanoseconds(Int64.max))
        policy.multiplier = .nan
        backoff = Backoff(policy: policy)
        _ = backoff.next(using: &generator)
        #expect(backoff.ceiling == .nanoseconds(Int64.max))
        // Start options: a timeout too long for 64-bit nanoseconds is sent as Int64.max (the
        // server takes it as a deadline at the end of time); it trapped before.
        var options = WorkflowStartOptions()
        options.executionTimeout = .seconds(Int64.max)
        options.runTimeout = .seconds(1_000 * 365 * 86_400)
        options.taskTimeout = .seconds(10)
        var request = Ballast_V1_StartWorkflowRequest()
        options.apply(to: &request)
        #expect(request.workflowExecutionTimeoutNanos == .max && request.workflowRunTimeoutNanos == .max)
        #expect(request.workflowTaskTimeoutNanos == 10_000_000_000)
    }

    @Test("retry decisions: UNAVAILABLE follows the leader trailer, other codes are final")
    func classifier() {
        #expect(RetryClassifier.decide(GRPCStatus.notLeader(leaderAddress: "10.0.0.2:7233")) ==
                .retry(leader: BallastEndpoint(host: "10.0.0.2", port: 7233)))
        #expect(RetryClassifier.decide(GRPCStatus.notLeader(leaderAddress: nil)) == .retry(leader: nil))
        #expect(RetryClassifier.decide(GRPCStatus(.unavailable, "closed")) == .retry(leader: nil))
        #expect(RetryClassifier.decide(GRPCStatus(.aborted)) == .retrySameNode)
        for code in [GRPCStatusCode.invalidArgument, .notFound, .alreadyExists, .failedPrecondition, .internal, .unimplemented] {
            #expect(RetryClassifier.decide(GRPCStatus(code)) == .fail)
        }
    }

    @Test("a start sent to a follower follows ballast-leader to the leader and is applied there once")
    func followsLeader() async throws {
        let starts = FakeStarts()
        let leader = try await FakeNode.start { $0.unary(BallastMethod.Workflow.start) { try starts.start($0) } }
        defer { Task { await leader.stop() } }
        let follower = try await FakeNode.start { $0.unary(BallastMethod.Workflow.start) { try starts.start($0) } }
        defer { Task { await follower.stop() } }
        follower.redirect(to: leader.address)
        let client = BallastClient(endpoints: [follower.endpoint], options: options())
        defer { Task { await client.close() } }
        let handle = try await client.start("Transfer", id: "t-1", taskQueue: "payments", input: ["amount": 5])
        #expect(handle.runID == "run-1" && handle.startedNow)
        #expect(follower.calls(to: BallastMethod.Workflow.start) == 1)
        #expect(leader.calls(to: BallastMethod.Workflow.start) == 1)
        #expect(await client.connection.currentTarget == leader.endpoint)
        // The next call goes straight to the leader.
        _ = try await client.start("Transfer", id: "t-2", taskQueue: "payments", input: ["amount": 6])
        #expect(follower.calls(to: BallastMethod.Workflow.start) == 1)
    }

    @Test("a start whose answer is lost is retried with the same request id and applied once")
    func sameRequestID() async throws {
        let starts = FakeStarts()
        starts.dropAnswers.withLock { $0 = 2 }
        let node = try await FakeNode.start { $0.unary(BallastMethod.Workflow.start) { try starts.start($0) } }
        defer { Task { await node.stop() } }
        let client = BallastClient(endpoints: [node.endpoint], options: options())
        defer { Task { await client.close() } }
        var startOptions = WorkflowStartOptions()
        startOptions.searchAttributes["TransferOutcome"] = .keyword("pending")
        let handle = try await client.start("Transfer", id: "t-1", taskQueue: "payments", input: "x", options: startOptions)
        let seen = starts.state.withLock { $0 }
        #expect(seen.applied == 1, "applied once")
        #expect(seen.requestIDs.count == 3 && Set(seen.requestIDs).count == 1, "every attempt carried the same request id")
        #expect(handle.runID == "run-1" && !handle.startedNow)
    }

    @Test("a dead address is skipped for the next one")
    func skipsDeadAddress() async throws {
        let starts = FakeStarts()
        let node = try await FakeNode.start { $0.unary(BallastMethod.Workflow.start) { try starts.start($0) } }
        defer { Task { await node.stop() } }
        // Port 1 on loopback: nothing listens (connection refused).
        let client = BallastClient(endpoints: [BallastEndpoint(host: "127.0.0.1", port: 1), node.endpoint], options: options())
        defer { Task { await client.close() } }
        _ = try await client.start("Transfer", id: "t-1", taskQueue: "q", input: 1)
        #expect(starts.state.withLock { $0.applied } == 1)
    }

    @Test("with no node up, a call gives up at its deadline with a clear error")
    func givesUp() async throws {
        let client = BallastClient(endpoints: [BallastEndpoint(host: "127.0.0.1", port: 1)], options: options(timeout: .milliseconds(300)))
        defer { Task { await client.close() } }
        let started = ContinuousClock.now
        do {
            _ = try await client.start("Transfer", id: "t-1", taskQueue: "q", input: 1)
            Issue.record("expected a failure")
        } catch {
            #expect(error.code == .unavailable || error.code == .deadlineExceeded)
            #expect("\(error)".contains("StartWorkflowExecution"))
        }
        // The call's deadline is 300 ms; the bound is loose because CI's two cores are shared
        // with the whole suite, but far below the 30 s a call waits without its own deadline.
        #expect(ContinuousClock.now - started < .seconds(10))
    }

    @Test("a final status (ALREADY_EXISTS) is reported at once, not retried")
    func finalStatus() async throws {
        let node = try await FakeNode.start {
            $0.unary(BallastMethod.Workflow.start) { (_: Ballast_V1_StartWorkflowRequest) -> Ballast_V1_StartWorkflowResponse in
                throw GRPCStatus(.alreadyExists, "workflow t-1 is running")
            }
        }
        defer { Task { await node.stop() } }
        let client = BallastClient(endpoints: [node.endpoint], options: options())
        defer { Task { await client.close() } }
        await #expect(throws: BallastClientError.self) {
            _ = try await client.start("Transfer", id: "t-1", taskQueue: "q", input: 1)
        }
        #expect(node.calls(to: BallastMethod.Workflow.start) == 1)
        do { _ = try await client.start("Transfer", id: "t-1", taskQueue: "q", input: 1) } catch {
            #expect(error.code == .alreadyExists)
        }
    }

    @Test("bad arguments are refused locally before any call")
    func localValidation() async throws {
        let client = BallastClient(endpoints: [BallastEndpoint(host: "127.0.0.1", port: 1)], options: options())
        defer { Task { await client.close() } }
        await #expect(throws: BallastClientError.self) { _ = try await client.start("", id: "x", taskQueue: "q", input: 1) }
        await #expect(throws: BallastClientError.self) { _ = try await client.start("T", id: "", taskQueue: "q", input: 1) }
        await #expect(throws: BallastClientError.self) { try await client.signal(workflowID: "x", name: "", input: 1) }
        #expect(throws: BallastClientError.self) { _ = try JSONClientPayloadConverter.payload(jsonText: "{not json") }
    }

    @Test("history reads every page and decodes the LZ4 batches in order")
    func historyPages() async throws {
        let node = try await FakeNode.start { registerHistory(&$0, count: 25, pageSize: 7) }
        defer { Task { await node.stop() } }
        let client = BallastClient(endpoints: [node.endpoint], options: options())
        defer { Task { await client.close() } }
        let events = try await client.history(workflowID: "t-1")
        #expect(events.map(\.eventID) == Array(1 ... 25))
        #expect(node.calls(to: BallastMethod.Workflow.getHistory) == 4)
    }

    @Test("result() decodes a completed run's result and throws a failed run's failure")
    func result() async throws {
        let node = try await FakeNode.start {
            $0.unary(BallastMethod.Workflow.waitClosed) { (request: Ballast_V1_WaitWorkflowExecutionClosedRequest) in
                var response = Ballast_V1_WaitWorkflowExecutionClosedResponse()
                response.execution = request.execution
                #expect(request.followRuns)
                if request.execution.workflowID == "ok" {
                    response.status = .completed
                    var completed = Ballast_V1_WorkflowExecutionCompletedEventAttributes()
                    completed.result.payloads = [try DataConverter.default.toPayload(["outcome": "completed"])]
                    response.closeEvent.attributes = .workflowExecutionCompleted(completed)
                } else {
                    response.status = .failed
                    var failed = Ballast_V1_WorkflowExecutionFailedEventAttributes()
                    failed.failure.type = "InsufficientFunds"
                    failed.failure.message = "alice has 3"
                    response.closeEvent.attributes = .workflowExecutionFailed(failed)
                }
                return response
            }
        }
        defer { Task { await node.stop() } }
        let client = BallastClient(endpoints: [node.endpoint], options: options())
        defer { Task { await client.close() } }
        let value = try await client.handle(workflowID: "ok").result(as: [String: String].self)
        #expect(value == ["outcome": "completed"])
        do {
            _ = try await client.handle(workflowID: "bad", runID: "r").result(as: [String: String].self)
            Issue.record("expected the workflow's failure")
        } catch {
            guard case .workflowFailed(let failure) = error else { Issue.record("wrong error \(error)"); return }
            #expect(failure.status == .failed && failure.failure.type == "InsufficientFunds")
            #expect("\(error)" == "workflow bad (run r) failed: InsufficientFunds: alice has 3")
        }
    }

    @Test("without WaitWorkflowExecutionClosed, result() polls describe and reads the close event from history")
    func resultFallback() async throws {
        let describes = Mutex(0)
        let node = try await FakeNode.start {
            $0.unary(BallastMethod.Workflow.describe) { (request: Ballast_V1_DescribeWorkflowExecutionRequest) in
                let count = describes.withLock { $0 += 1; return $0 }
                var response = Ballast_V1_DescribeWorkflowExecutionResponse()
                response.info.execution.workflowID = request.execution.workflowID
                response.info.execution.runID = "r-1"
                response.info.status = count < 3 ? .running : .completed
                return response
            }
            $0.unary(BallastMethod.Workflow.getHistory) { (_: Ballast_V1_GetWorkflowExecutionHistoryRequest) in
                var started = fillerEvent(1)
                started.eventID = 1
                var closed = Ballast_V1_HistoryEvent()
                closed.eventID = 2
                var completed = Ballast_V1_WorkflowExecutionCompletedEventAttributes()
                completed.result.payloads = [try DataConverter.default.toPayload(42)]
                closed.attributes = .workflowExecutionCompleted(completed)
                var response = Ballast_V1_GetWorkflowExecutionHistoryBatchesResponse()
                response.batches = try LZ4EventBatchCodec.makeBatches(events: [started, closed], firstEventID: 1).map(\.message)
                return response
            }
        }
        defer { Task { await node.stop() } }
        let client = BallastClient(endpoints: [node.endpoint], options: options())
        defer { Task { await client.close() } }
        #expect(try await client.handle(workflowID: "w").result(as: Int.self, timeout: .seconds(10)) == 42)
        #expect(describes.withLock { $0 } == 3)
    }

    @Test("a corrupt history batch is a malformed-response error, not a crash")
    func corruptHistory() async throws {
        let node = try await FakeNode.start {
            $0.unary(BallastMethod.Workflow.getHistory) { (_: Ballast_V1_GetWorkflowExecutionHistoryRequest) in
                var response = Ballast_V1_GetWorkflowExecutionHistoryBatchesResponse()
                var batch = try batches(1 ... 3)[0]
                batch.lz4Frame = Data(batch.lz4Frame.prefix(batch.lz4Frame.count - 3))
                response.batches = [batch]
                return response
            }
        }
        defer { Task { await node.stop() } }
        let client = BallastClient(endpoints: [node.endpoint], options: options())
        defer { Task { await client.close() } }
        do {
            _ = try await client.history(workflowID: "w")
            Issue.record("expected an error")
        } catch {
            guard case .malformedResponse = error else { Issue.record("wrong error \(error)"); return }
        }
    }
}

/// Reverses the bytes and marks the payload: enough to see that a codec ran.
struct ReversingCodec: PayloadCodec {
    func encode(_ payloads: [Ballast_V1_Payload]) throws -> [Ballast_V1_Payload] {
        payloads.map { payload in
            var encoded = payload
            encoded.data = Data(payload.data.reversed())
            encoded.metadata["codec"] = Data("reverse".utf8)
            return encoded
        }
    }

    func decode(_ payloads: [Ballast_V1_Payload]) throws -> [Ballast_V1_Payload] {
        payloads.map { payload in
            var decoded = payload
            decoded.data = Data(payload.data.reversed())
            decoded.metadata["codec"] = nil
            return decoded
        }
    }
}

@Suite("client: payloads through the SDK's data converter")
struct ClientPayloadTests {
    @Test("a codec on the client encodes the start input the cluster sees and decodes the result")
    func codecOnClient() async throws {
        let seen = Mutex<[Ballast_V1_Payload]>([])
        let codecConverter = DataConverter(codecs: [ReversingCodec()])
        let node = try await FakeNode.start {
            $0.unary(BallastMethod.Workflow.start) { (request: Ballast_V1_StartWorkflowRequest) in
                seen.withLock { $0 += request.input.payloads }
                var response = Ballast_V1_StartWorkflowResponse()
                response.runID = "r"
                response.started = true
                return response
            }
            $0.unary(BallastMethod.Workflow.waitClosed) { (request: Ballast_V1_WaitWorkflowExecutionClosedRequest) in
                var response = Ballast_V1_WaitWorkflowExecutionClosedResponse()
                response.execution = request.execution
                response.status = .completed
                var completed = Ballast_V1_WorkflowExecutionCompletedEventAttributes()
                completed.result = try codecConverter.toPayloads(["outcome": "completed"])
                response.closeEvent.attributes = .workflowExecutionCompleted(completed)
                return response
            }
        }
        defer { Task { await node.stop() } }
        var options = BallastClientOptions()
        options.dataConverter = codecConverter
        let client = BallastClient(endpoints: [node.endpoint], options: options)
        defer { Task { await client.close() } }
        let handle = try await client.start("Transfer", id: "t", taskQueue: "q", input: ["secret": "alice"])
        let payload = try #require(seen.withLock { $0 }.first)
        #expect(payload.metadata["codec"] == Data("reverse".utf8))
        #expect(String(decoding: payload.data, as: UTF8.self) == String("{\"secret\":\"alice\"}".reversed()))
        #expect(try await handle.result(as: [String: String].self) == ["outcome": "completed"])
        // A workflow without a result decodes as Empty whatever it returned.
        _ = try await handle.result(as: Empty.self)
    }
}
