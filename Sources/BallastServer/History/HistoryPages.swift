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
