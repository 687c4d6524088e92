import BallastProto
import BallastWire

/// A workflow run (or a workflow id's current run when `runID` is empty): signal it, query
/// it, cancel it, or wait for its result.
public struct WorkflowHandle: Sendable {
    /// The client the handle calls through.
    public let client: BallastClient
    /// The workflow id.
    public let workflowID: String
    /// The run id (empty: the current run).
    public let runID: String
    /// False when a start returned an existing run (same request id retried, or signal-with-start
    /// that found the run open).
    public let startedNow: Bool

    /// Creates a handle.
    public init(client: BallastClient, workflowID: String, runID: String, startedNow: Bool = false) {
        self.client = client
        self.workflowID = workflowID
        self.runID = runID
        self.startedNow = startedNow
    }

    /// Waits for the run (following continue-as-new) to close and decodes its result; throws
    /// `.workflowFailed` when it failed, was canceled, terminated or timed out. `timeout` nil
    /// waits as long as it takes.
    public func result<Output: Decodable>(as type: Output.Type = Output.self, timeout: Duration? = nil) async throws(BallastClientError) -> Output {
        let closed = try await waitClosed(timeout: timeout)
        let payloads = try CloseOutcome.resultPayloads(closed, workflowID: workflowID)
        if let empty = Empty() as? Output { return empty }
        guard let first = payloads.payloads.first else {
            throw .payloadDecoding("workflow \(workflowID) completed without a result")
        }
        return try client.options.dataConverter.clientValue(first, as: Output.self)
    }

    /// Waits for the run to close and returns how it closed (any status, no throw for failures).
    public func waitClosed(timeout: Duration? = nil) async throws(BallastClientError) -> Ballast_V1_WaitWorkflowExecutionClosedResponse {
        let clock = ContinuousClock()
        let deadline = timeout.map { clock.now + $0 }
        var request = Ballast_V1_WaitWorkflowExecutionClosedRequest()
        request.namespace = client.options.namespace
        request.execution = BallastClient.execution(workflowID, runID)
        request.followRuns = true
        while true {
            // Long polls of at most 60 s each (the server's limit), until the caller's deadline.
            let left = deadline.map { $0 - clock.now } ?? .seconds(60)
            guard left > .zero else { throw .deadlineExceeded(method: BallastMethod.Workflow.waitClosed, attempts: 1) }
            let slice = min(left, .seconds(60))
            do {
                return try await client.call(BallastMethod.Workflow.waitClosed, request,
                                             as: Ballast_V1_WaitWorkflowExecutionClosedResponse.self,
                                             timeout: slice, attemptTimeout: slice)
            } catch .deadlineExceeded {
                continue
            } catch .rejected(_, let status) where status.code == .unimplemented {
                return try await pollClosed(deadline: deadline)
            }
        }
    }

    /// The fallback for servers without WaitWorkflowExecutionClosed: describe with backoff until
    /// the run closes, then read its close event from history; follows continue-as-new.
    func pollClosed(deadline: ContinuousClock.Instant?) async throws(BallastClientError) -> Ballast_V1_WaitWorkflowExecutionClosedResponse {
        var currentRun = runID
        var policy = CallRetryPolicy()
        policy.initialBackoff = .milliseconds(20)
        policy.maximumBackoff = .seconds(2)
        var backoff = Backoff(policy: policy)
        var generator = SystemRandomNumberGenerator()
        while true {
            let description = try await client.describe(workflowID: workflowID, runID: currentRun)
            if description.info.status != .running && description.info.status != .unspecified {
                let events = try await client.history(workflowID: workflowID, runID: description.info.execution.runID)
                guard let last = events.last else { throw .malformedResponse("closed run \(workflowID) has no history") }
                if case .workflowExecutionContinuedAsNew(let next)? = last.attributes {
                    currentRun = next.newExecutionRunID
                    backoff.reset()
                    continue
                }
                var response = Ballast_V1_WaitWorkflowExecutionClosedResponse()
                response.execution = description.info.execution
                response.status = description.info.status
                response.closeEvent = last
                return response
            }
            let delay = backoff.next(using: &generator)
            if let deadline, ContinuousClock.now + delay >= deadline {
                throw .deadlineExceeded(method: BallastMethod.Workflow.describe, attempts: 1)
            }
            do { try await Task.sleep(for: delay) } catch {
                throw .rejected(method: BallastMethod.Workflow.waitClosed, status: GRPCStatus(.cancelled, "cancelled"))
            }
        }
    }

    /// Sends a signal to this run.
    public func signal<Input: Encodable & Sendable>(_ name: String, _ input: Input) async throws(BallastClientError) {
        try await client.signal(workflowID: workflowID, runID: runID, name: name, input: input)
    }

    /// Runs a query on this run and decodes the answer.
    public func query<Result: Decodable>(_ queryType: String, as type: Result.Type = Result.self) async throws(BallastClientError) -> Result {
        try await client.query(workflowID: workflowID, runID: runID, queryType: queryType, as: Result.self)
    }

    /// Asks this run to cancel.
    public func cancel(reason: String = "") async throws(BallastClientError) {
        try await client.cancel(workflowID: workflowID, runID: runID, reason: reason)
    }

    /// Terminates this run.
    public func terminate(reason: String = "") async throws(BallastClientError) {
        try await client.terminate(workflowID: workflowID, runID: runID, reason: reason)
    }

    /// Describes this run.
    public func describe() async throws(BallastClientError) -> Ballast_V1_DescribeWorkflowExecutionResponse {
        try await client.describe(workflowID: workflowID, runID: runID)
    }

    /// This run's history.
    public func history() async throws(BallastClientError) -> [Ballast_V1_HistoryEvent] {
        try await client.history(workflowID: workflowID, runID: runID)
    }
}

/// Reads a close event: the result payloads, or the failure to throw. Pure.
public enum CloseOutcome {
    /// The result of a completed run, or `.workflowFailed` describing how it ended otherwise.
    public static func resultPayloads(_ closed: Ballast_V1_WaitWorkflowExecutionClosedResponse,
                                      workflowID: String) throws(BallastClientError) -> Ballast_V1_Payloads {
        let runID = closed.execution.runID
        var failure = Ballast_V1_Failure()
        switch closed.closeEvent.attributes {
        case .workflowExecutionCompleted(let completed)?:
            return completed.result
        case .workflowExecutionFailed(let failed)?:
            failure = failed.failure
        case .workflowExecutionCanceled?:
            failure.type = "Canceled"
            failure.message = "the workflow was canceled"
        case .workflowExecutionTerminated(let terminated)?:
            failure.type = "Terminated"
            failure.message = terminated.reason.isEmpty ? "the workflow was terminated" : terminated.reason
        case .workflowExecutionTimedOut?:
            failure.type = "TimedOut"
            failure.message = "the workflow timed out"
        default:
            if closed.status == .completed { return Ballast_V1_Payloads() }
            failure.message = "the run closed with status \(WorkflowStatusName.text(closed.status)) and no close event"
        }
        throw .workflowFailed(WorkflowExecutionFailure(workflowID: workflowID, runID: runID, status: closed.status, failure: failure))
    }
}
