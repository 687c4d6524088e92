import BallastEngine
import BallastProto
import BallastWire
import NIOCore

extension BallastNode {
    /// How long a query waits for a worker's answer when the caller sets no deadline.
    static let defaultQueryTimeout: Duration = .seconds(10)

    /// WorkflowService.QueryWorkflow: answered by a worker from the run's replayed state, on the
    /// leader; nothing is written to history.
    func registerQueryService(_ registry: inout GRPCMethodRegistry) {
        registry.unary(BallastMethod.Workflow.query) { [self] (request: Ballast_V1_QueryWorkflowRequest, context) in
            guard !request.queryType.isEmpty else { throw GRPCStatus(.invalidArgument, "query_type is required") }
            guard request.execution.workflowID.utf8.count <= 1_000, request.queryType.utf8.count <= 1_000 else {
                throw GRPCStatus(.invalidArgument, "workflow_id and query_type are at most 1000 bytes")
            }
            guard dispatcher.isLeading else { throw await notLeaderStatus(waitForLeader: .zero) }
            let described = try await linearizableRead { engine throws(EngineRejection) in
                try engine.describe(namespace: request.namespace, execution: request.execution)
            }
            let info = described.info
            var task = Ballast_V1_QueryTask()
            task.namespace = info.namespace
            task.execution = info.execution
            task.workflowType = info.type
            task.queryType = request.queryType
            if request.hasQueryArgs { task.queryArgs = request.queryArgs }
            if request.hasHeader { task.header = request.header }
            var timeout = Self.defaultQueryTimeout
            if let deadline = context.deadline {
                timeout = max(.zero, .nanoseconds((deadline - NIODeadline.now()).nanoseconds) - .milliseconds(50))
            }
            return try await dispatcher.query(task, queue: TaskQueueKey(namespace: info.namespace, taskQueue: info.taskQueue),
                                              historyLength: info.historyLength, timeout: timeout)
        }
    }
}
