import BallastProto
import BallastWire
import Foundation

extension BallastClient {
    /// Starts a run of `workflowType` with `input` (JSON by default); returns its handle.
    /// `ALREADY_EXISTS` (as `.rejected`) when the id is taken under the reuse policy.
    public func start<Input: Encodable & Sendable>(
        _ workflowType: String, id workflowID: String, taskQueue: String, input: Input,
        options startOptions: WorkflowStartOptions = WorkflowStartOptions()
    ) async throws(BallastClientError) -> WorkflowHandle {
        var payloads = Ballast_V1_Payloads()
        payloads.payloads = [try options.dataConverter.clientPayload(input)]
        return try await start(workflowType, id: workflowID, taskQueue: taskQueue, payloads: payloads, options: startOptions)
    }

    /// Starts a run with already-encoded input (nil: no input).
    public func start(
        _ workflowType: String, id workflowID: String, taskQueue: String, payloads: Ballast_V1_Payloads?,
        options startOptions: WorkflowStartOptions = WorkflowStartOptions()
    ) async throws(BallastClientError) -> WorkflowHandle {
        let request = try makeStartRequest(workflowType, workflowID, taskQueue, payloads, startOptions)
        let response = try await call(BallastMethod.Workflow.start, request, as: Ballast_V1_StartWorkflowResponse.self)
        return WorkflowHandle(client: self, workflowID: workflowID, runID: response.runID, startedNow: response.started)
    }

    func makeStartRequest(_ workflowType: String, _ workflowID: String, _ taskQueue: String,
                          _ payloads: Ballast_V1_Payloads?, _ startOptions: WorkflowStartOptions) throws(BallastClientError) -> Ballast_V1_StartWorkflowRequest {
        try Self.validateID(workflowID, "the workflow id")
        try Self.validateID(workflowType, "the workflow type")
        try Self.validateID(taskQueue, "the task queue")
        var request = Ballast_V1_StartWorkflowRequest()
        request.namespace = options.namespace
        request.workflowID = workflowID
        request.workflowType.name = workflowType
        request.taskQueue = taskQueue
        if let payloads { request.input = payloads }
        request.identity = options.identity
        startOptions.apply(to: &request)
        return request
    }

    /// Sends signal `name` with `input` to a run (empty run id: the current run).
    public func signal<Input: Encodable & Sendable>(workflowID: String, runID: String = "", name: String, input: Input,
                                                    requestID: String? = nil) async throws(BallastClientError) {
        var payloads = Ballast_V1_Payloads()
        payloads.payloads = [try options.dataConverter.clientPayload(input)]
        try await signal(workflowID: workflowID, runID: runID, name: name, payloads: payloads, requestID: requestID)
    }

    /// Sends a signal with already-encoded input (nil: none). Idempotent by `requestID`; an operator's
    /// `reason` is recorded in the signaled event next to this client's identity.
    public func signal(workflowID: String, runID: String = "", name: String, payloads: Ballast_V1_Payloads?,
                       requestID: String? = nil, reason: String = "") async throws(BallastClientError) {
        try Self.validateID(workflowID, "the workflow id")
        try Self.validateID(name, "the signal name")
        var request = Ballast_V1_SignalWorkflowRequest()
        request.namespace = options.namespace
        request.workflowExecution = Self.execution(workflowID, runID)
        request.signalName = name
        if let payloads { request.input = payloads }
        request.identity = options.identity
        request.reason = reason
        request.requestID = requestID ?? UUID().uuidString
        _ = try await call(BallastMethod.Workflow.signal, request, as: Ballast_V1_SignalWorkflowResponse.self)
    }

    /// Signals the workflow, starting it first if no run is open (one atomic call).
    public func signalWithStart<Input: Encodable & Sendable, SignalInput: Encodable & Sendable>(
        _ workflowType: String, id workflowID: String, taskQueue: String, input: Input,
        signal name: String, signalInput: SignalInput, options startOptions: WorkflowStartOptions = WorkflowStartOptions()
    ) async throws(BallastClientError) -> WorkflowHandle {
        var startPayloads = Ballast_V1_Payloads()
        startPayloads.payloads = [try options.dataConverter.clientPayload(input)]
        var signalPayloads = Ballast_V1_Payloads()
        signalPayloads.payloads = [try options.dataConverter.clientPayload(signalInput)]
        try Self.validateID(name, "the signal name")
        var request = Ballast_V1_SignalWithStartWorkflowRequest()
        request.start = try makeStartRequest(workflowType, workflowID, taskQueue, startPayloads, startOptions)
        request.signalName = name
        request.signalInput = signalPayloads
        let response = try await call(BallastMethod.Workflow.signalWithStart, request,
                                      as: Ballast_V1_SignalWithStartWorkflowResponse.self)
        return WorkflowHandle(client: self, workflowID: workflowID, runID: response.runID, startedNow: response.started)
    }

    /// Asks a run to cancel; the workflow code decides how (compensation, cleanup).
    public func cancel(workflowID: String, runID: String = "", reason: String = "") async throws(BallastClientError) {
        try Self.validateID(workflowID, "the workflow id")
        var request = Ballast_V1_RequestCancelWorkflowRequest()
        request.namespace = options.namespace
        request.workflowExecution = Self.execution(workflowID, runID)
        request.identity = options.identity
        request.requestID = UUID().uuidString
        request.reason = reason
        _ = try await call(BallastMethod.Workflow.requestCancel, request, as: Ballast_V1_RequestCancelWorkflowResponse.self)
    }

    /// Registers typed search attribute names in the client's namespace (what workflows may
    /// then upsert); registering a name again with the same type changes nothing.
    public func addSearchAttributes(_ attributes: [String: Ballast_V1_IndexedValueType]) async throws(BallastClientError) {
        guard !attributes.isEmpty else { return }
        for (name, type) in attributes {
            try Self.validateID(name, "the search attribute name")
            guard type != .unspecified else { throw .invalidArgument("search attribute \(name) needs a type") }
        }
        var request = Ballast_V1_AddSearchAttributesRequest()
        request.namespace = options.namespace
        request.searchAttributes = attributes
        _ = try await call(BallastMethod.Workflow.addSearchAttributes, request, as: Ballast_V1_AddSearchAttributesResponse.self)
    }

    /// Ends a run at once, without running workflow code.
    public func terminate(workflowID: String, runID: String = "", reason: String = "") async throws(BallastClientError) {
        try Self.validateID(workflowID, "the workflow id")
        var request = Ballast_V1_TerminateWorkflowRequest()
        request.namespace = options.namespace
        request.workflowExecution = Self.execution(workflowID, runID)
        request.reason = reason
        request.identity = options.identity
        _ = try await call(BallastMethod.Workflow.terminate, request, as: Ballast_V1_TerminateWorkflowResponse.self)
    }
}
