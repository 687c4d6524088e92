import BallastRaft
import Testing
@testable import BallastStorage

@Suite struct WriteAheadLogTests {
    @Test func appendSyncRestoreRoundTripAcrossSegments() throws {
        try withTemporaryDirectory { directory in
            let entries = makeEntries(1...200, term: 3)
            let hardState = HardState(term: Term(3), votedFor: NodeID(2), commit: LogIndex(150))
            do {
                let log = try WriteAheadLog(directory: directory, options: smallSegments)
                try log.setHardState(hardState)
                for batch in stride(from: 0, to: entries.count, by: 17) {
                    try log.append(Array(entries[batch..<min(batch + 17, entries.count)]))
                }
                try log.sync()
                #expect(log.durableIndex == LogIndex(200))
                #expect(log.statistics.segmentsCreated >= 5)
                try log.close()
            }
            #expect(try segmentNames(directory).count >= 5)
            let restored = try reopenAndRestore(directory)
            #expect(restored.entries == entries)
            #expect(restored.hardState == hardState)
            #expect(restored.snapshot == nil)
        }
    }

    @Test func restoreOnAnEmptyDirectoryIsEmpty() throws {
        try withTemporaryDirectory { directory in
            let restored = try reopenAndRestore(directory + "/data")
            #expect(restored.entries.isEmpty)
            #expect(restored.hardState == HardState())
            #expect(try segmentNames(directory + "/data").count == 1)
        }
    }

    @Test func conflictingSuffixIsReplaced() throws {
        try withTemporaryDirectory { directory in
            let log = try WriteAheadLog(directory: directory, options: smallSegments)
            try log.append(makeEntries(1...10, term: 1))
            try log.append(makeEntries(6...8, term: 2))
            try log.sync()
            #expect(log.lastIndex == LogIndex(8))
            try log.close()
            let expected = makeEntries(1...5, term: 1) + makeEntries(6...8, term: 2)
            #expect(try reopenAndRestore(directory).entries == expected)
            let reopened = try WriteAheadLog(directory: directory, options: smallSegments)
            _ = try reopened.restore()
            try reopened.append(makeEntries(9...9, term: 2))
            try reopened.close()
            #expect(try reopenAndRestore(directory).entries == expected + makeEntries(9...9, term: 2))
        }
    }

    @Test func conflictingSuffixAcrossSegmentBoundary() throws {
        try withTemporaryDirectory { directory in
            let log = try WriteAheadLog(directory: directory, options: smallSegments)
            try log.append(makeEntries(1...100, term: 1))
            try log.sync()
            #expect(try segmentNames(directory).count > 2)
            // Index 5 lives in the first segment; the replacement goes to the last one.
            try log.append(makeEntries(5...7, term: 2))
            try log.append(makeEntries(8...60, term: 2))
            try log.close()
            let expected = makeEntries(1...4, term: 1) + makeEntries(5...60, term: 2)
            #expect(try reopenAndRestore(directory).entries == expected)
        }
    }

    @Test func appendThatLeavesAGapIsRejected() throws {
        try withTemporaryDirectory { directory in
            let log = try WriteAheadLog(directory: directory, options: smallSegments)
            try log.append(makeEntries(1...3))
            #expect(throws: StorageError.nonContiguousAppend(expected: LogIndex(4), found: LogIndex(6))) {
                try log.append(makeEntries(6...7))
            }
            #expect(throws: StorageError.nonContiguousAppend(expected: LogIndex(5), found: LogIndex(6))) {
                try log.append(makeEntries(4...4) + makeEntries(6...6))
            }
            try log.append(makeEntries(4...4))
            try log.close()
        }
    }

    @Test func oversizedRecordIsRejected() throws {
        try withTemporaryDirectory { directory in
            let log = try WriteAheadLog(directory: directory, options: smallSegments)
            #expect(throws: StorageError.self) { try log.append(makeEntries(1...1, payloadBytes: 5000)) }
            try log.append(makeEntries(1...1, payloadBytes: 3000))
            try log.close()
            #expect(try reopenAndRestore(directory).entries == makeEntries(1...1, payloadBytes: 3000))
        }
    }

    @Test func compactionDeletesOnlySegmentsCoveredByTheSnapshot() throws {
        try withTemporaryDirectory { directory in
            let log = try WriteAheadLog(directory: directory, options: smallSegments)
            try log.setHardState(HardState(term: Term(1), votedFor: NodeID(1), commit: LogIndex(150)))
            try log.append(makeEntries(1...200))
            try log.sync()
            let before = try segmentNames(directory)
            try log.compact(through: LogIndex(150))  // no snapshot yet: nothing may go
            #expect(try segmentNames(directory) == before)
            try log.saveSnapshot(makeSnapshot(index: 150, term: 1))
            try log.compact(through: LogIndex(150))
            let after = try segmentNames(directory)
            #expect(after.count < before.count)
            #expect(after == Array(before.suffix(after.count)))
            #expect(log.statistics.segmentsDeleted == before.count - after.count)
            try log.close()
            let restored = try reopenAndRestore(directory)
            #expect(restored.snapshot == makeSnapshot(index: 150, term: 1))
            #expect(restored.entries == makeEntries(151...200))
            #expect(restored.hardState == HardState(term: Term(1), votedFor: NodeID(1), commit: LogIndex(150)))
        }
    }

    @Test func snapshotSaveRemovesOlderSnapshotsAndRestores() throws {
        try withTemporaryDirectory { directory in
            let log = try WriteAheadLog(directory: directory, options: smallSegments)
            try log.append(makeEntries(1...30))
            try log.saveSnapshot(makeSnapshot(index: 10, term: 1))
            try log.saveSnapshot(makeSnapshot(index: 20, term: 1))
            #expect(try snapshotNames(directory) == [SnapshotFile.name(index: LogIndex(20), term: Term(1))])
            #expect(throws: StorageError.staleSnapshot(stored: LogIndex(20), offered: LogIndex(15))) {
                try log.saveSnapshot(makeSnapshot(index: 15, term: 1))
            }
            try log.close()
            let restored = try reopenAndRestore(directory)
            #expect(restored.snapshot == makeSnapshot(index: 20, term: 1))
            #expect(restored.entries == makeEntries(21...30))
        }
    }

    @Test func installSnapshotDropsTheLogAndContinuesAfterIt() throws {
        try withTemporaryDirectory { directory in
            let log = try WriteAheadLog(directory: directory, options: smallSegments)
            try log.setHardState(HardState(term: Term(4), votedFor: NodeID(3), commit: LogIndex(40)))
            try log.append(makeEntries(1...100))
            try log.sync()
            let oldSegments = try segmentNames(directory)
            try log.installSnapshot(makeSnapshot(index: 500, term: 4))
            #expect(try segmentNames(directory).count == 1)
            #expect(Set(try segmentNames(directory)).isDisjoint(with: oldSegments))
            #expect(log.lastIndex == LogIndex(500))
            #expect(throws: StorageError.self) { try log.append(makeEntries(502...502, term: 4)) }
            try log.append(makeEntries(501...503, term: 4))
            try log.close()
            let restored = try reopenAndRestore(directory)
            #expect(restored.snapshot == makeSnapshot(index: 500, term: 4))
            #expect(restored.entries == makeEntries(501...503, term: 4))
            #expect(restored.hardState == HardState(term: Term(4), votedFor: NodeID(3), commit: LogIndex(500)))
        }
    }

    @Test func hardStateRoundTripAndCommitClamp() throws {
        try withTemporaryDirectory { directory in
            let log = try WriteAheadLog(directory: directory, options: smallSegments)
            try log.setHardState(HardState(term: Term(1), votedFor: nil, commit: .zero))
            try log.setHardState(HardState(term: Term(2), votedFor: NodeID(7), commit: .zero))
            try log.append(makeEntries(1...5, term: 2))
            // The commit index can run ahead of what this node has persisted; restore clamps it.
            try log.setHardState(HardState(term: Term(2), votedFor: NodeID(7), commit: LogIndex(9)))
            try log.close()
            let restored = try reopenAndRestore(directory)
            #expect(restored.hardState == HardState(term: Term(2), votedFor: NodeID(7), commit: LogIndex(5)))
        }
    }

    @Test func hardStateSurvivesCompactionOfEverySegmentThatRecordedIt() throws {
        try withTemporaryDirectory { directory in
            let log = try WriteAheadLog(directory: directory, options: smallSegments)
            try log.setHardState(HardState(term: Term(9), votedFor: NodeID(2), commit: .zero))
            try log.append(makeEntries(1...300, term: 9))
            try log.saveSnapshot(makeSnapshot(index: 290, term: 9))
            try log.compact(through: LogIndex(290))
            #expect(log.statistics.segmentsDeleted > 3)
            try log.close()
            let restored = try reopenAndRestore(directory)
            #expect(restored.hardState.term == Term(9))
            #expect(restored.hardState.votedFor == NodeID(2))
            #expect(restored.entries == makeEntries(291...300, term: 9))
        }
    }

    @Test func aSecondOpenOfTheSameDirectoryIsRefused() throws {
        try withTemporaryDirectory { directory in
            let log = try WriteAheadLog(directory: directory, options: smallSegments)
            #expect(throws: StorageError.directoryLocked(path: directory + "/LOCK")) {
                _ = try WriteAheadLog(directory: directory, options: smallSegments)
            }
            try log.close()
            #expect(throws: StorageError.closed) { try log.append(makeEntries(1...1)) }
            _ = try reopenAndRestore(directory)
        }
    }

    @Test func restoreAfterWritesRereadsTheFiles() throws {
        try withTemporaryDirectory { directory in
            let log = try WriteAheadLog(directory: directory, options: smallSegments)
            #expect(try log.restore().entries.isEmpty)
            try log.append(makeEntries(1...40))
            try log.sync()
            #expect(try log.restore().entries == makeEntries(1...40))
            try log.close()
        }
    }

    @Test func bufferedBytesAreBoundedAndIdleSyncsCostNothing() throws {
        try withTemporaryDirectory { directory in
            let log = try WriteAheadLog(directory: directory, options: .init(segmentSizeBytes: 1 << 20, maxBufferedBytes: 4096))
            try log.sync()
            let syncsAfterOpen = log.statistics.dataSyncs
            try log.sync()
            #expect(log.statistics.dataSyncs == syncsAfterOpen)
            for index in 1...100 as ClosedRange<UInt64> {
                try log.append(makeEntries(index...index, payloadBytes: 200))
                #expect(log.pending.count < 4096 + WALFormat.recordSize(payloadCount: 200))
            }
            #expect(log.statistics.bytesWritten > 100 * 200 - 4096)
            #expect(log.statistics.dataSyncs == syncsAfterOpen)
            try log.sync()
            #expect(log.statistics.dataSyncs == syncsAfterOpen + 1)
            try log.close()
        }
    }
}
