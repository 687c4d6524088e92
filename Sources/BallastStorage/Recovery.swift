import BallastRaft

/// What recovery found and repaired when a log was opened.
public struct RecoveryReport: Sendable {
    /// The torn tail cut off the last segment: file, byte offset, and why the record there was invalid.
    public var tornTail: (file: String, offset: Int, reason: String)?
    /// Snapshot files newer than the one used that failed verification (and were skipped).
    public var skippedSnapshots: [StorageError] = []
    /// Whether entries after an installed snapshot were discarded because they contradicted it.
    public var discardedStaleEntries = false
}

/// The closed part of the log: a segment that is no longer appended to.
struct SegmentInfo {
    var sequence: UInt64
    var name: String
    var maxEntryIndex: LogIndex
}

/// Everything read from a data directory, before any repair.
struct Recovery {
    var state: RestoredState
    var closedSegments: [SegmentInfo]
    var last: SegmentScan?
    /// Whether the raw log would not continue at the restored state's next index (a reset record must be written).
    var needsReset: Bool
    var report: RecoveryReport

    /// Reads the newest valid snapshot and every segment in order; throws on corruption before the tail.
    static func read(directory: String) throws -> Recovery {
        let names = try Posix.listDirectory(directory)
        let (snapshot, skipped) = try SnapshotFile.loadNewest(directory: directory, names: names)
        let sequences = names.compactMap(SegmentName.parse).sorted()
        var replay = LogReplay()
        var scans: [SegmentScan] = []
        for (position, sequence) in sequences.enumerated() {
            let name = SegmentName.make(sequence)
            if position > 0, sequence != sequences[position - 1] + 1 {
                throw StorageError.missingSegment(expected: SegmentName.make(sequences[position - 1] + 1), found: name)
            }
            let scan = try SegmentScanner.scan(directory: directory, name: name, sequence: sequence,
                                               isLast: position == sequences.count - 1) { record, offset in
                try replay.apply(record, file: name, offset: offset)
            }
            scans.append(scan)
        }
        var recovery = Recovery(state: RestoredState(), closedSegments: [], last: scans.last, needsReset: false,
                                report: RecoveryReport(skippedSnapshots: skipped))
        if let last = scans.last, let reason = last.tornReason {
            recovery.report.tornTail = (last.name, last.endOffset, reason)
        }
        recovery.closedSegments = scans.dropLast().map { SegmentInfo(sequence: $0.sequence, name: $0.name, maxEntryIndex: $0.maxEntryIndex) }
        try recovery.assemble(replay: replay, snapshot: snapshot)
        return recovery
    }

    /// Joins the replayed log to the snapshot and checks that nothing between them is missing.
    private mutating func assemble(replay: LogReplay, snapshot: Snapshot?) throws {
        var entries = replay.entries
        let snapshotIndex = snapshot?.metadata.index ?? .zero
        if let snapshot, let first = entries.first, first.index <= snapshotIndex, let last = entries.last, last.index >= snapshotIndex {
            // Entries that contradict the snapshot predate an install interrupted by a crash: the snapshot wins.
            let atSnapshot = entries[Int(snapshotIndex.rawValue - first.index.rawValue)]
            if atSnapshot.term != snapshot.metadata.term {
                entries.removeAll()
                report.discardedStaleEntries = true
            }
        }
        if let first = entries.first, first.index <= snapshotIndex {
            entries.removeFirst(min(entries.count, Int(snapshotIndex.rawValue - first.index.rawValue) + 1))
        }
        let rawNext = report.discardedStaleEntries ? snapshotIndex.next : replay.expectedNext ?? snapshotIndex.next
        let logStart = entries.first?.index ?? rawNext
        if logStart > snapshotIndex.next {
            throw StorageError.missingEntries(snapshotIndex: snapshotIndex, firstLogIndex: logStart)
        }
        let lastIndex = entries.last?.index ?? snapshotIndex
        needsReset = (replay.expectedNext ?? LogIndex(1)) != lastIndex.next
        var hardState = replay.hardState
        // The commit index is a hint: never beyond what is durable here, never behind the snapshot.
        hardState.commit = min(max(hardState.commit, snapshotIndex), lastIndex)
        state = RestoredState(hardState: hardState, snapshot: snapshot, entries: entries)
    }
}
