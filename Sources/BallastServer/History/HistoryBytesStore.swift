import BallastStorage
import Synchronization

/// Where a node keeps its runs' serialized history events: `HistoryFileStore` on disk, or
/// `MemoryHistoryBytesStore` in tests. Thread-safe; appends are idempotent by event id.
public protocol HistoryBytesStore: Sendable {
    /// Appends events with contiguous ids from `firstEventId`; returns how many were new. They
    /// may be staged in memory (readable at once) until `flush()`.
    func append(runId: String, firstEventId: Int64, events: [[UInt8]]) throws(HistoryError) -> Int
    /// Writes what appends and deletions staged (once per apply turn); a lack of space keeps it staged.
    func flush() throws(HistoryError)
    /// Up to `maxEvents` events from `fromEventId`, stopping before `maxBytes` (at least one event).
    func read(runId: String, fromEventId: Int64, maxEvents: Int, maxBytes: Int) throws(HistoryError) -> [[UInt8]]
    /// Deletes a run's history.
    func delete(runId: String) throws(HistoryError)
    /// The stored event count and content hash of a run.
    func summary(runId: String) -> HistoryRunSummary?
    /// Every run with a stored history, sorted.
    func runIds() -> [String]
    /// Makes everything appended so far durable.
    func sync() throws(HistoryError)
    /// The stored histories as they are now, to read later from any thread (for snapshots):
    /// what is appended or deleted after this call does not change what the view reads.
    func snapshotView() throws(HistoryError) -> any HistoryExportView
    /// Counters describing the store (for metrics).
    var statistics: HistoryStoreStatistics { get }
}

/// A history store frozen at one moment (`HistoryBytesStore.snapshotView()`).
public protocol HistoryExportView: Sendable {
    /// The whole histories of `runIds` stored when the view was taken (runs not stored then are absent).
    func export(runIds: [String]) throws(HistoryError) -> [String: [[UInt8]]]
}

extension HistoryFileStore: HistoryBytesStore {
    public func snapshotView() throws(HistoryError) -> any HistoryExportView { try exportView() }
}

extension HistoryFileStore.ExportView: HistoryExportView {}

/// A copy of an in-memory store's histories (copy-on-write, so taking it copies nothing).
struct MemoryHistoryExportView: HistoryExportView {
    let histories: [String: [[UInt8]]]

    func export(runIds: [String]) throws(HistoryError) -> [String: [[UInt8]]] {
        var exported: [String: [[UInt8]]] = [:]
        for runId in runIds { exported[runId] = histories[runId] }
        return exported
    }
}

/// A history store in memory with the same semantics as the file store (tests, `ballast dev`
/// without a data directory).
public final class MemoryHistoryBytesStore: HistoryBytesStore {
    private let histories = Mutex<[String: [[UInt8]]]>([:])

    /// Creates an empty store.
    public init() {}

    public func append(runId: String, firstEventId: Int64, events: [[UInt8]]) throws(HistoryError) -> Int {
        guard !runId.isEmpty else { throw .invalidRunId(runId) }
        guard firstEventId >= 1 else { throw .invalidEventId(runId: runId, eventId: firstEventId) }
        return try histories.withLock { (histories: inout [String: [[UInt8]]]) throws(HistoryError) -> Int in
            var history = histories[runId] ?? []
            let next = Int64(history.count) + 1
            guard firstEventId <= next else { throw .gap(runId: runId, expected: next, got: firstEventId) }
            var added = 0
            for (position, event) in events.enumerated() {
                let id = firstEventId + Int64(position)
                if id < next {
                    guard history[Int(id) - 1] == event else { throw .conflict(runId: runId, eventId: id) }
                } else {
                    history.append(event)
                    added += 1
                }
            }
            histories[runId] = history
            return added
        }
    }

    public func read(runId: String, fromEventId: Int64, maxEvents: Int, maxBytes: Int) throws(HistoryError) -> [[UInt8]] {
        histories.withLock { histories in
            guard let history = histories[runId], fromEventId >= 1, fromEventId <= Int64(history.count), maxEvents > 0 else { return [] }
            var page: [[UInt8]] = []
            var bytes = 0
            for event in history[(Int(fromEventId) - 1)...] {
                if page.count == maxEvents || (!page.isEmpty && bytes + event.count > maxBytes) { break }
                page.append(event)
                bytes += event.count
            }
            return page
        }
    }

    public func delete(runId: String) throws(HistoryError) {
        _ = histories.withLock { $0.removeValue(forKey: runId) }
    }

    public func summary(runId: String) -> HistoryRunSummary? {
        histories.withLock { histories in
            histories[runId].map {
                HistoryRunSummary(eventCount: Int64($0.count), contentHash: HistoryContentHash.of($0, firstEventId: 1))
            }
        }
    }

    public func runIds() -> [String] { histories.withLock { $0.keys.sorted() } }

    public func flush() throws(HistoryError) {}

    public func sync() throws(HistoryError) {}

    public func snapshotView() throws(HistoryError) -> any HistoryExportView {
        MemoryHistoryExportView(histories: histories.withLock { $0 })
    }

    public var statistics: HistoryStoreStatistics {
        histories.withLock { histories in
            var statistics = HistoryStoreStatistics()
            statistics.runCount = histories.count
            statistics.liveBytes = histories.values.reduce(0) { $0 + $1.reduce(0) { $0 + $1.count } }
            statistics.totalBytes = statistics.liveBytes
            return statistics
        }
    }
}
