import BallastEngine
import BallastProto

/// A List or Count request checked before it reaches the engine: the query parsed (syntax
/// errors name their column without touching the Raft loop) and the page size resolved.
/// Typing the query against the namespace's search attributes, planning and paging happen in
/// the engine (`WorkflowEngine.listWorkflows` / `countWorkflows`) at the read point.
struct VisibilityRequest: Sendable {
    var namespace: String
    var query: ParsedVisibilityQuery
    var filter: Ballast_V1_WorkflowExecutionFilter
    var pageSize: Int
    var pageToken: [UInt8]

    /// Parses a List request; INVALID_ARGUMENT on a bad query or page size.
    init(list request: Ballast_V1_ListWorkflowExecutionsRequest) throws(GRPCStatusError) {
        guard request.pageSize >= 0 else { throw .invalid("page_size must not be negative") }
        namespace = request.namespace
        query = try Self.parse(request.query)
        filter = request.filter
        pageSize = request.pageSize == 0 ? HistoryPages.defaultListPage : min(Int(request.pageSize), HistoryPages.maxListPage)
        pageToken = Array(request.nextPageToken)
    }

    /// Parses a Count request.
    init(count request: Ballast_V1_CountWorkflowExecutionsRequest) throws(GRPCStatusError) {
        namespace = request.namespace
        query = try Self.parse(request.query)
        filter = request.filter
        pageSize = 0
        pageToken = []
    }

    static func parse(_ text: String) throws(GRPCStatusError) -> ParsedVisibilityQuery {
        do { return try ParsedVisibilityQuery(parsing: text) } catch { throw .invalid(error.description) }
    }

    /// A List page and whether it stopped at its row limit with rows left to read.
    struct ListPage: Sendable {
        var response: Ballast_V1_ListWorkflowExecutionsResponse
        var stoppedAtRowLimit: Bool
    }

    /// The page at the read point, reading at most `maxExaminedRows` rows of the index.
    func page(_ engine: WorkflowEngine, maxExaminedRows: Int = WorkflowEngine.maxExaminedRowsPerPage) -> Result<ListPage, GRPCStatusError> {
        do {
            let page = try engine.listWorkflows(namespace: namespace, query: query, filter: filter, pageSize: pageSize,
                                                pageToken: pageToken, maxExaminedRows: maxExaminedRows)
            var response = Ballast_V1_ListWorkflowExecutionsResponse()
            response.executions = page.executions
            response.nextPageToken = .init(page.nextPageToken)
            return .success(ListPage(response: response, stoppedAtRowLimit: page.stoppedAtRowLimit))
        } catch {
            return .failure(.invalid(error.description))
        }
    }

    /// The count at the read point, with the per-status counts.
    func count(_ engine: WorkflowEngine) -> Result<Ballast_V1_CountWorkflowExecutionsResponse, GRPCStatusError> {
        do {
            let counted = try engine.countWorkflows(namespace: namespace, query: query, filter: filter)
            var response = Ballast_V1_CountWorkflowExecutionsResponse()
            response.count = counted.count
            response.statusCounts = counted.byStatus.map { entry in
                var group = Ballast_V1_WorkflowStatusCount()
                group.status = entry.status
                group.count = entry.count
                return group
            }
            return .success(response)
        } catch {
            return .failure(.invalid(error.description))
        }
    }
}

/// An INVALID_ARGUMENT raised while reading a request (turned into a `GRPCStatus` by the handler).
struct GRPCStatusError: Error, Equatable {
    var message: String
    static func invalid(_ message: String) -> GRPCStatusError { GRPCStatusError(message: message) }
}
