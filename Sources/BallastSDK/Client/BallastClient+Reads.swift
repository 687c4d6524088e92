import BallastProto
import BallastWire

extension BallastClient {
    /// The run's visibility record and pending activities, timers, children and workflow task.
    public func describe(workflowID: String, runID: String = "") async throws(BallastClientError) -> Ballast_V1_DescribeWorkflowExecutionResponse {
        try Self.validateID(workflowID, "the workflow id")
        var request = Ballast_V1_DescribeWorkflowExecutionRequest()
        request.namespace = options.namespace
        request.execution = Self.execution(workflowID, runID)
        return try await call(BallastMethod.Workflow.describe, request, as: Ballast_V1_DescribeWorkflowExecutionResponse.self)
    }

    /// The run's whole history, every page, decoded from the LZ4 event batches; at most
    /// `maximumEvents` events (a run's history is bounded by the server, this bounds memory here).
    public func history(workflowID: String, runID: String = "", maximumEvents: Int = 1_000_000) async throws(BallastClientError) -> [Ballast_V1_HistoryEvent] {
        try Self.validateID(workflowID, "the workflow id")
        var request = Ballast_V1_GetWorkflowExecutionHistoryRequest()
        request.namespace = options.namespace
        request.execution = Self.execution(workflowID, runID)
        var events: [Ballast_V1_HistoryEvent] = []
        while true {
            let page = try await call(BallastMethod.Workflow.getHistory, request, as: Ballast_V1_GetWorkflowExecutionHistoryBatchesResponse.self)
            try HistoryBatches.append(page.batches, to: &events)
            guard events.count <= maximumEvents else {
                throw .malformedResponse("history of \(workflowID) has more than \(maximumEvents) events")
            }
            if page.nextPageToken.isEmpty { return events }
            guard page.nextPageToken != request.nextPageToken else {
                throw .malformedResponse("the server repeated a history page token")
            }
            request.nextPageToken = page.nextPageToken
        }
    }

    /// Runs of the namespace matching `filter` and `query` (Temporal visibility syntax), newest
    /// first, reading pages until `limit` runs or the end.
    public func list(filter: Ballast_V1_WorkflowExecutionFilter = Ballast_V1_WorkflowExecutionFilter(), query: String = "",
                     pageSize: Int32 = 100, limit: Int = 1000) async throws(BallastClientError) -> [Ballast_V1_WorkflowExecutionInfo] {
        guard (1 ... 1000).contains(pageSize) else { throw .invalidArgument("page size must be 1-1000") }
        var request = Ballast_V1_ListWorkflowExecutionsRequest()
        request.namespace = options.namespace
        request.filter = filter
        request.query = query
        request.pageSize = pageSize
        var runs: [Ballast_V1_WorkflowExecutionInfo] = []
        while runs.count < limit {
            let page = try await call(BallastMethod.Workflow.list, request, as: Ballast_V1_ListWorkflowExecutionsResponse.self)
            runs.append(contentsOf: page.executions.prefix(limit - runs.count))
            // A page may be short or empty and still have a token: the server bounds the rows
            // one call reads, so a query no index serves continues on the next call.
            if page.nextPageToken.isEmpty { break }
            guard page.nextPageToken != request.nextPageToken else {
                throw .malformedResponse("the server repeated a list page token")
            }
            request.nextPageToken = page.nextPageToken
        }
        return runs
    }

    /// How many runs match `filter` and `query`.
    public func count(filter: Ballast_V1_WorkflowExecutionFilter = Ballast_V1_WorkflowExecutionFilter(),
                      query: String = "") async throws(BallastClientError) -> Int64 {
        try await countByStatus(filter: filter, query: query).count
    }

    /// How many runs match, in total and per status (`status_counts`).
    public func countByStatus(filter: Ballast_V1_WorkflowExecutionFilter = Ballast_V1_WorkflowExecutionFilter(),
                              query: String = "") async throws(BallastClientError) -> Ballast_V1_CountWorkflowExecutionsResponse {
        var request = Ballast_V1_CountWorkflowExecutionsRequest()
        request.namespace = options.namespace
        request.filter = filter
        request.query = query
        return try await call(BallastMethod.Workflow.count, request, as: Ballast_V1_CountWorkflowExecutionsResponse.self)
    }

    /// Runs query `queryType` on a worker against the run's state; the encoded answer.
    public func query(workflowID: String, runID: String = "", queryType: String,
                      arguments: Ballast_V1_Payloads? = nil) async throws(BallastClientError) -> Ballast_V1_Payloads {
        try Self.validateID(workflowID, "the workflow id")
        try Self.validateID(queryType, "the query type")
        var request = Ballast_V1_QueryWorkflowRequest()
        request.namespace = options.namespace
        request.execution = Self.execution(workflowID, runID)
        request.queryType = queryType
        if let arguments { request.queryArgs = arguments }
        let response = try await call(BallastMethod.Workflow.query, request, as: Ballast_V1_QueryWorkflowResponse.self)
        if response.hasQueryFailure { throw .queryFailed(response.queryFailure) }
        return response.queryResult
    }

    /// Runs a query and decodes its answer.
    public func query<Result: Decodable>(workflowID: String, runID: String = "", queryType: String,
                                         as type: Result.Type = Result.self) async throws(BallastClientError) -> Result {
        let payloads = try await query(workflowID: workflowID, runID: runID, queryType: queryType)
        guard let first = payloads.payloads.first else { throw .payloadDecoding("the query answered no value") }
        return try options.dataConverter.clientValue(first, as: Result.self)
    }
}

/// Decodes the LZ4 event batches of history pages.
public enum HistoryBatches {
    /// Appends the events of `batches` to `events`, checking that ids stay contiguous.
    public static func append(_ batches: [Ballast_V1_HistoryEventBatch], to events: inout [Ballast_V1_HistoryEvent]) throws(BallastClientError) {
        for batch in batches {
            let decoded: [Ballast_V1_HistoryEvent]
            do {
                decoded = try LZ4EventBatchCodec.decode(LZ4EventBatch(batch), as: Ballast_V1_HistoryEvent.self)
            } catch {
                throw .malformedResponse("history batch from event \(batch.firstEventID): \(error)")
            }
            for event in decoded {
                if let last = events.last, event.eventID != last.eventID + 1 {
                    throw .malformedResponse("history event \(event.eventID) follows event \(last.eventID)")
                }
                events.append(event)
            }
        }
    }
}
