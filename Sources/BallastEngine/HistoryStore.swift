import BallastProto

/// Why a history store refused an operation.
public enum HistoryStoreError: Error, Equatable, Sendable, CustomStringConvertible {
    /// An event id would leave a gap in the run's history.
    case gap(runId: String, expected: Int64, got: Int64)
    /// An event with an existing id differs from the stored one (replicas diverged).
    case conflict(runId: String, eventId: Int64)

    /// What happened and what to do.
    public var description: String {
        switch self {
        case let .gap(runId, expected, got):
            return "history of run \(runId): expected event \(expected), got \(got); events must be appended in order"
        case let .conflict(runId, eventId):
            return "history of run \(runId): event \(eventId) differs from the stored one; this replica diverged"
        }
    }
}

/// Where histories live (on disk in a node, in memory in tests). Appends are idempotent by event id.
public protocol HistoryStore {
    /// Appends events (contiguous ids); events already stored with the same id are skipped.
    mutating func append(run: RunKey, events: [Ballast_V1_HistoryEvent]) throws(HistoryStoreError)
    /// Reads up to `maxEvents` events with ids from `fromEventId` on.
    func read(runId: String, fromEventId: Int64, maxEvents: Int) -> [Ballast_V1_HistoryEvent]
    /// Deletes a run's history (retention ended).
    mutating func delete(runId: String)
}

extension HistoryStore {
    /// Appends every event of an apply result and deletes the runs whose retention ended.
    public mutating func record(_ result: ApplyResult) throws(HistoryStoreError) {
        for batch in result.events { try append(run: batch.run, events: batch.events) }
        for run in result.deletedRuns { delete(runId: run.runId) }
    }
}

/// A history store in memory, for tests and benchmarks.
public struct InMemoryHistoryStore: HistoryStore, Sendable {
    private var histories: [String: [Ballast_V1_HistoryEvent]] = [:]

    /// Creates an empty store.
    public init() {}

    /// Appends events idempotently by event id.
    public mutating func append(run: RunKey, events: [Ballast_V1_HistoryEvent]) throws(HistoryStoreError) {
        var history = histories.removeValue(forKey: run.runId) ?? []
        defer { histories[run.runId] = history }
        for event in events {
            let expected = Int64(history.count) + 1
            if event.eventID < expected {
                guard history[Int(event.eventID) - 1] == event else {
                    throw .conflict(runId: run.runId, eventId: event.eventID)
                }
                continue
            }
            guard event.eventID == expected else { throw .gap(runId: run.runId, expected: expected, got: event.eventID) }
            history.append(event)
        }
    }

    /// Reads a page of events.
    public func read(runId: String, fromEventId: Int64, maxEvents: Int) -> [Ballast_V1_HistoryEvent] {
        guard let history = histories[runId], fromEventId >= 1, fromEventId <= Int64(history.count) else { return [] }
        let start = Int(fromEventId) - 1
        return Array(history[start..<min(history.count, start + max(1, maxEvents))])
    }

    /// Deletes a run's history.
    public mutating func delete(runId: String) { histories.removeValue(forKey: runId) }

    /// All events of a run (tests).
    public func events(runId: String) -> [Ballast_V1_HistoryEvent] { histories[runId] ?? [] }

    /// Number of runs with a stored history.
    public var runCount: Int { histories.count }
}
