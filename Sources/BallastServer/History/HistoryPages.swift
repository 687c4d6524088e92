import Foundation
import BallastEngine
import BallastProto
import BallastWire

/// Page tokens and page shapes of the history and visibility reads; pure functions.
enum HistoryPages {
    /// Events per GetWorkflowExecutionHistory page when the request does not say.
    static let defaultPageEvents = 1_000
    /// The most events one page may hold (larger requests are cut to this).
    static let maxPageEvents = 10_000
    /// Uncompressed event bytes per page at most (one larger event still travels alone).
    static let maxPageBytes = 8 << 20
    /// Runs per List page when the request does not say, and at most.
    static let defaultListPage = 100, maxListPage = 1_000

    /// The first event id a history request asks for (1 without a token).
    static func firstEventId(_ token: [UInt8]) throws(GRPCStatusError) -> Int64 {
        guard !token.isEmpty else { return 1 }
        guard let decoded = try? Ballast_V1_HistoryPageToken(serializedBytes: token), decoded.nextEventID >= 1 else {
            throw .invalid("next_page_token does not decode; pass back the token the server returned")
        }
        return decoded.nextEventID
    }

    /// Events per page for a request's `maximum_page_size`.
    static func pageEvents(_ requested: Int32) throws(GRPCStatusError) -> Int {
        guard requested >= 0 else { throw .invalid("maximum_page_size must not be negative") }
        return requested == 0 ? defaultPageEvents : min(Int(requested), maxPageEvents)
    }

    /// The token that continues after `lastEventId`, or empty when `length` is reached.
    static func historyToken(after lastEventId: Int64, length: Int64) -> [UInt8] {
        guard lastEventId < length else { return [] }
        var token = Ballast_V1_HistoryPageToken()
        token.nextEventID = lastEventId + 1
        return (try? token.serializedBytes()) ?? []
    }

    /// LZ4 event batches (at most 1 MiB uncompressed each) of events from `firstEventId`.
    static func batches(_ events: [[UInt8]], firstEventId: Int64) throws(GRPCStatusError) -> [Ballast_V1_HistoryEventBatch] {
        do {
            return try LZ4EventBatchCodec.makeBatches(serializedEvents: events, firstEventID: UInt64(firstEventId)).map(\.message)
        } catch {
            throw GRPCStatusError(message: "cannot compress the history: \(error)")
        }
    }

    /// A List token: the sort key (start time, run id) of the last run returned.
    static func listToken(after info: Ballast_V1_WorkflowExecutionInfo) -> [UInt8] {
        var bytes: [UInt8] = [1]
        let start = UInt64(bitPattern: info.startTimeUnixNanos)
        for shift in stride(from: 56, through: 0, by: -8) { bytes.append(UInt8(truncatingIfNeeded: start >> UInt64(shift))) }
        bytes.append(contentsOf: info.execution.runID.utf8)
        return bytes
    }

    /// The sort key in a List token.
    static func listPosition(_ token: [UInt8]) throws(GRPCStatusError) -> (start: Int64, runId: String)? {
        guard !token.isEmpty else { return nil }
        guard token.count >= 9, token[0] == 1, token.count <= 9 + 1_024 else {
            throw .invalid("next_page_token does not decode; pass back the token the server returned")
        }
        let start = token[1..<9].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        return (Int64(bitPattern: start), String(decoding: token[9...], as: UTF8.self))
    }

    /// One List page out of the engine's runs (newest start first, then by run id).
    static func listPage(engine: WorkflowEngine, namespace: String, filter: VisibilityFilter, pageSize: Int,
                         after position: (start: Int64, runId: String)?) -> Ballast_V1_ListWorkflowExecutionsResponse {
        var engineFilter = filter.listFilter(namespace: namespace)
        if let position {
            let upper = min(engineFilter.startTimeRange?.upperBound ?? Int64.max, position.start)
            let lower = engineFilter.startTimeRange?.lowerBound ?? Int64.min
            guard lower <= upper else { return Ballast_V1_ListWorkflowExecutionsResponse() }
            engineFilter.startTimeRange = lower...upper
        }
        var response = Ballast_V1_ListWorkflowExecutionsResponse()
        for info in engine.list(engineFilter) where filter.matches(info) {
            if let position, info.startTimeUnixNanos == position.start, info.execution.runID <= position.runId { continue }
            if response.executions.count == pageSize {
                response.nextPageToken = Data(listToken(after: response.executions[pageSize - 1]))
                break
            }
            response.executions.append(info)
        }
        return response
    }

    /// How many of the engine's runs match.
    static func count(engine: WorkflowEngine, namespace: String, filter: VisibilityFilter) -> Int64 {
        Int64(engine.list(filter.listFilter(namespace: namespace)).lazy.filter(filter.matches).count)
    }

    /// The run that continues `event`'s run (continue-as-new, or a retry), if any.
    static func nextRunId(after event: Ballast_V1_HistoryEvent) -> String? {
        let next: String
        switch event.attributes {
        case .workflowExecutionContinuedAsNew(let attributes)?: next = attributes.newExecutionRunID
        case .workflowExecutionFailed(let attributes)?: next = attributes.newExecutionRunID
        case .workflowExecutionTimedOut(let attributes)?: next = attributes.newExecutionRunID
        default: next = ""
        }
        return next.isEmpty ? nil : next
    }
}
