import BallastProto
import Foundation

/// How to start a workflow run (Temporal's StartWorkflowOptions).
public struct WorkflowStartOptions: Sendable {
    /// The start's idempotency key: a retried start with the same id returns the same run.
    /// Generated once per start call when nil; set it to make your own retries idempotent.
    public var requestID: String?
    /// What to do if a run with this workflow id exists.
    public var reusePolicy: Ballast_V1_WorkflowIdReusePolicy = .allowDuplicate
    /// The whole continue-as-new chain (nil: unlimited).
    public var executionTimeout: Duration?
    /// This run (nil: the execution timeout, or unlimited).
    public var runTimeout: Duration?
    /// Each workflow task's start-to-close (nil: the server's 10 s).
    public var taskTimeout: Duration?
    /// Retries of the whole workflow (nil: none).
    public var retryPolicy: Ballast_V1_RetryPolicy?
    /// Indexed attributes, filterable with list/count.
    public var searchAttributes: [String: Ballast_V1_SearchAttributeValue] = [:]
    /// Non-indexed data shown by describe.
    public var memo: [String: Ballast_V1_Payload] = [:]
    /// Context headers propagated to the workflow.
    public var header: [String: Ballast_V1_Payload] = [:]

    /// Default options.
    public init() {}

    /// Sets a memo field to `value` encoded as JSON.
    public mutating func setMemo<Value: Encodable>(_ key: String, _ value: Value) throws(BallastClientError) {
        memo[key] = try DataConverter.default.clientPayload(value)
    }

    /// Fills the engine's start request (everything but input, ids and queue).
    func apply(to request: inout Ballast_V1_StartWorkflowRequest) {
        request.requestID = requestID ?? UUID().uuidString
        request.workflowIDReusePolicy = reusePolicy
        request.workflowExecutionTimeoutNanos = executionTimeout.map(Backoff.nanoseconds) ?? 0
        request.workflowRunTimeoutNanos = runTimeout.map(Backoff.nanoseconds) ?? 0
        request.workflowTaskTimeoutNanos = taskTimeout.map(Backoff.nanoseconds) ?? 0
        if let retryPolicy { request.retryPolicy = retryPolicy }
        if !searchAttributes.isEmpty { request.searchAttributes.indexedFields = searchAttributes }
        if !memo.isEmpty { request.memo.fields = memo }
        if !header.isEmpty { request.header.fields = header }
    }
}

extension Ballast_V1_SearchAttributeValue {
    /// A keyword value (exact match).
    public static func keyword(_ value: String) -> Self { var v = Self(); v.keywordValue = value; return v }
    /// A text value.
    public static func text(_ value: String) -> Self { var v = Self(); v.textValue = value; return v }
    /// An integer value.
    public static func int(_ value: Int64) -> Self { var v = Self(); v.intValue = value; return v }
    /// A floating-point value.
    public static func double(_ value: Double) -> Self { var v = Self(); v.doubleValue = value; return v }
    /// A boolean value.
    public static func bool(_ value: Bool) -> Self { var v = Self(); v.boolValue = value; return v }
}
