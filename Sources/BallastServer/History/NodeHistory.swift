import BallastEngine
import BallastProto
import BallastStorage
import SwiftProtobuf

/// History events as the store keeps them: the deterministic protobuf encoding, so every node
/// stores (and compares) the same bytes for the same event.
public enum HistoryEventCoding {
    /// The stored bytes of an event: swift-protobuf's deterministic encoding, written in one
    /// pass (`DeterministicBinaryEncoder`).
    public static func encode(_ event: Ballast_V1_HistoryEvent) throws -> [UInt8] {
        try DeterministicBinaryEncoder.encode(event: event)
    }

    /// An event from its stored bytes.
    public static func decode(_ bytes: [UInt8]) throws -> Ballast_V1_HistoryEvent {
        try Ballast_V1_HistoryEvent(serializedBytes: bytes)
    }
}

/// Writes what the engine produced into the history store and makes a store match a snapshot.
enum HistoryRecorder {
    /// Appends every event batch of `result` (idempotently) and deletes the runs whose retention ended.
    static func record(_ result: ApplyResult, into store: any HistoryBytesStore) throws {
        for batch in result.events {
            guard let first = batch.events.first else { continue }
            let bytes = try batch.events.map(HistoryEventCoding.encode)
            _ = try store.append(runId: batch.run.runId, firstEventId: first.eventID, events: bytes)
        }
        for run in result.deletedRuns { try store.delete(runId: run.runId) }
    }

    /// What `reconcile` changed.
    struct ReconcileReport: Equatable {
        /// Runs already stored exactly as in the snapshot.
        var unchanged = 0
        /// Runs whose stored history was a prefix of the snapshot's and was extended.
        var extended = 0
        /// Runs whose stored history differed (or ran past the snapshot) and was rewritten.
        var replaced = 0
        /// Runs the store lacked, written.
        var added = 0
        /// Stored runs that the snapshot does not hold, deleted.
        var dropped = 0
    }

    /// Makes `store` hold exactly `histories`: runs it lacks are appended, a stored prefix is
    /// extended, a run that differs or is longer is deleted and written again, and stored runs
    /// not in the snapshot are deleted. Counts and content hashes decide; nothing is read back.
    static func reconcile(_ store: any HistoryBytesStore, with histories: [SnapshotRunHistory]) throws(HistoryError) -> ReconcileReport {
        var report = ReconcileReport()
        var wanted = Set<String>()
        for run in histories {
            wanted.insert(run.runId)
            let count = Int64(run.events.count)
            if let stored = store.summary(runId: run.runId) {
                if stored.eventCount <= count,
                   stored.contentHash == HistoryContentHash.of(run.events.prefix(Int(stored.eventCount)), firstEventId: 1) {
                    if stored.eventCount == count {
                        report.unchanged += 1
                        continue
                    }
                    _ = try store.append(runId: run.runId, firstEventId: stored.eventCount + 1,
                                         events: Array(run.events[Int(stored.eventCount)...]))
                    report.extended += 1
                    continue
                }
                try store.delete(runId: run.runId)
                report.replaced += 1
            } else {
                report.added += 1
            }
            if !run.events.isEmpty { _ = try store.append(runId: run.runId, firstEventId: 1, events: run.events) }
        }
        for runId in store.runIds() where !wanted.contains(runId) {
            try store.delete(runId: runId)
            report.dropped += 1
        }
        return report
    }
}
