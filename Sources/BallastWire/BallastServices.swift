import BallastProto

/// Method paths of Ballast's gRPC services (`/ballast.v1.Service/Method`).
public enum BallastMethod {
    /// ClusterService methods.
    public enum Cluster {
        /// Members, roles, indexes and leader; any node answers.
        public static let describeCluster = "/ballast.v1.ClusterService/DescribeCluster"
        /// AddMemberRequest → AddMemberResponse (leader only).
        public static let addMember = "/ballast.v1.ClusterService/AddMember"
        /// PromoteMemberRequest → PromoteMemberResponse (leader only).
        public static let promoteMember = "/ballast.v1.ClusterService/PromoteMember"
        /// RemoveMemberRequest → RemoveMemberResponse (leader only).
        public static let removeMember = "/ballast.v1.ClusterService/RemoveMember"
        /// GetMemberProgressRequest → GetMemberProgressResponse (leader only).
        public static let getMemberProgress = "/ballast.v1.ClusterService/GetMemberProgress"
    }

    /// WorkflowService methods (clients).
    public enum Workflow {
        static let prefix = "/ballast.v1.WorkflowService/"
        /// StartWorkflowRequest → StartWorkflowResponse.
        public static let start = prefix + "StartWorkflowExecution"
        /// SignalWorkflowRequest → SignalWorkflowResponse.
        public static let signal = prefix + "SignalWorkflowExecution"
        /// SignalWithStartWorkflowRequest → SignalWithStartWorkflowResponse.
        public static let signalWithStart = prefix + "SignalWithStartWorkflowExecution"
        /// RequestCancelWorkflowRequest → RequestCancelWorkflowResponse.
        public static let requestCancel = prefix + "RequestCancelWorkflowExecution"
        /// TerminateWorkflowRequest → TerminateWorkflowResponse.
        public static let terminate = prefix + "TerminateWorkflowExecution"
        /// DescribeWorkflowExecutionRequest → DescribeWorkflowExecutionResponse.
        public static let describe = prefix + "DescribeWorkflowExecution"
        /// GetWorkflowExecutionHistoryRequest → GetWorkflowExecutionHistoryBatchesResponse.
        public static let getHistory = prefix + "GetWorkflowExecutionHistory"
        /// GetWorkflowExecutionHistoryRequest → stream HistoryEventBatch.
        public static let streamHistory = prefix + "StreamWorkflowExecutionHistory"
        /// WaitWorkflowExecutionClosedRequest → WaitWorkflowExecutionClosedResponse.
        public static let waitClosed = prefix + "WaitWorkflowExecutionClosed"
        /// ListWorkflowExecutionsRequest → ListWorkflowExecutionsResponse.
        public static let list = prefix + "ListWorkflowExecutions"
        /// CountWorkflowExecutionsRequest → CountWorkflowExecutionsResponse.
        public static let count = prefix + "CountWorkflowExecutions"
        /// QueryWorkflowRequest → QueryWorkflowResponse.
        public static let query = prefix + "QueryWorkflow"
        /// AddSearchAttributesRequest → AddSearchAttributesResponse (administration, leader only).
        public static let addSearchAttributes = prefix + "AddSearchAttributes"
    }

    /// AdminService methods: role bindings and the audit log (admin role on "*").
    public enum Admin {
        static let prefix = "/ballast.v1.AdminService/"
        /// ListRoleBindingsRequest → ListRoleBindingsResponse.
        public static let listRoleBindings = prefix + "ListRoleBindings"
        /// GrantRoleRequest → GrantRoleResponse (leader only).
        public static let grantRole = prefix + "GrantRole"
        /// RevokeRoleRequest → RevokeRoleResponse (leader only).
        public static let revokeRole = prefix + "RevokeRole"
        /// ReadAuditLogRequest → ReadAuditLogResponse.
        public static let readAuditLog = prefix + "ReadAuditLog"
        /// RecordAuditEventsRequest → RecordAuditEventsResponse (node to leader).
        public static let recordAuditEvents = prefix + "RecordAuditEvents"
    }

    /// WorkerService methods (workers).
    public enum Worker {
        static let prefix = "/ballast.v1.WorkerService/"
        /// StreamTasksRequest → stream TaskStreamEvent (push dispatch).
        public static let streamTasks = prefix + "StreamTasks"
        /// GrantTaskSlotsRequest → GrantTaskSlotsResponse.
        public static let grantTaskSlots = prefix + "GrantTaskSlots"
        /// PollWorkflowTaskRequest → PollWorkflowTaskResponse (long poll).
        public static let pollWorkflowTask = prefix + "PollWorkflowTask"
        /// PollActivityTaskRequest → PollActivityTaskResponse (long poll).
        public static let pollActivityTask = prefix + "PollActivityTask"
        /// RespondWorkflowTaskCompletedRequest → RespondWorkflowTaskCompletedResponse.
        public static let respondWorkflowTaskCompleted = prefix + "RespondWorkflowTaskCompleted"
        /// RespondWorkflowTaskFailedRequest → RespondWorkflowTaskFailedResponse.
        public static let respondWorkflowTaskFailed = prefix + "RespondWorkflowTaskFailed"
        /// RespondActivityTaskCompletedRequest → RespondActivityTaskCompletedResponse.
        public static let respondActivityTaskCompleted = prefix + "RespondActivityTaskCompleted"
        /// RespondActivityTaskFailedRequest → RespondActivityTaskFailedResponse.
        public static let respondActivityTaskFailed = prefix + "RespondActivityTaskFailed"
        /// RespondActivityTaskCanceledRequest → RespondActivityTaskCanceledResponse.
        public static let respondActivityTaskCanceled = prefix + "RespondActivityTaskCanceled"
        /// RecordActivityTaskHeartbeatRequest → RecordActivityTaskHeartbeatResponse.
        public static let recordActivityTaskHeartbeat = prefix + "RecordActivityTaskHeartbeat"
        /// RespondQueryTaskCompletedRequest → RespondQueryTaskCompletedResponse.
        public static let respondQueryTaskCompleted = prefix + "RespondQueryTaskCompleted"
    }
}

extension LZ4EventBatch {
    /// Creates a batch from its wire message.
    public init(_ message: Ballast_V1_HistoryEventBatch) {
        self.init(eventCount: message.eventCount, firstEventID: UInt64(max(message.firstEventID, 0)),
                  uncompressedBytes: message.uncompressedSize, lz4Frame: [UInt8](message.lz4Frame))
    }

    /// The wire message of this batch.
    public var message: Ballast_V1_HistoryEventBatch {
        var message = Ballast_V1_HistoryEventBatch()
        message.eventCount = eventCount
        message.firstEventID = Int64(firstEventID)
        message.uncompressedSize = uncompressedBytes
        message.lz4Frame = .init(lz4Frame)
        return message
    }
}
