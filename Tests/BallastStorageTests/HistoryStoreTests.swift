import Dispatch
import Foundation
import Testing
@testable import BallastStorage

/// `count` recognisable events of a run from `firstEventId`.
func historyEvents(_ runId: String, from firstEventId: Int64, count: Int, bytes: Int = 40) -> [[UInt8]] {
    (0..<count).map { position in
        let id = firstEventId + Int64(position)
        return Array("\(runId)#\(id)|".utf8) + (0..<bytes).map { UInt8(truncatingIfNeeded: Int(id) &* 7 &+ $0) }
    }
}

/// Every stored run with all its events.
func storedHistories(_ store: HistoryFileStore) throws -> [String: [[UInt8]]] {
    var histories: [String: [[UInt8]]] = [:]
    for runId in store.runIds() { histories[runId] = try store.read(runId: runId, fromEventId: 1, maxEvents: .max) }
    return histories
}

func historySegmentNames(_ directory: String) throws -> [String] {
    try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.hasSuffix(".seg") }.sorted()
}

@Suite("History store")
struct HistoryStoreTests {
    @Test func appendsAndReadsRangesAndSurvivesReopening() throws {
        try withTemporaryDirectory { directory in
            do {
                let store = try HistoryFileStore(directory: directory)
                #expect(try store.append(runId: "run-a", firstEventId: 1, events: historyEvents("run-a", from: 1, count: 3)) == 3)
                #expect(try store.append(runId: "run-b", firstEventId: 1, events: historyEvents("run-b", from: 1, count: 2)) == 2)
                #expect(try store.append(runId: "run-a", firstEventId: 4, events: historyEvents("run-a", from: 4, count: 4)) == 4)
                #expect(try store.read(runId: "run-a", fromEventId: 3, maxEvents: 3) == historyEvents("run-a", from: 3, count: 3))
                #expect(try store.read(runId: "run-a", fromEventId: 7, maxEvents: 10) == historyEvents("run-a", from: 7, count: 1))
                #expect(try store.read(runId: "run-a", fromEventId: 8, maxEvents: 10).isEmpty)
                #expect(try store.read(runId: "nobody", fromEventId: 1, maxEvents: 10).isEmpty)
                let limited = try store.read(runId: "run-a", fromEventId: 1, maxEvents: 100, maxBytes: 100)
                #expect(limited.count == 2)
                store.close()
            }
            let reopened = try HistoryFileStore(directory: directory)
            #expect(try storedHistories(reopened) == [
                "run-a": historyEvents("run-a", from: 1, count: 7), "run-b": historyEvents("run-b", from: 1, count: 2),
            ])
            #expect(reopened.summary(runId: "run-a")
                    == HistoryRunSummary(eventCount: 7, contentHash: HistoryContentHash.of(historyEvents("run-a", from: 1, count: 7), firstEventId: 1)))
            #expect(reopened.recoveryReport.tornTail == nil)
        }
    }

    @Test func reappendingStoredEventsIsIdempotentAndAConflictChangesNothing() throws {
        try withTemporaryDirectory { directory in
            let store = try HistoryFileStore(directory: directory)
            _ = try store.append(runId: "r", firstEventId: 1, events: historyEvents("r", from: 1, count: 5))
            let before = store.statistics
            #expect(try store.append(runId: "r", firstEventId: 1, events: historyEvents("r", from: 1, count: 5)) == 0)
            #expect(try store.append(runId: "r", firstEventId: 2, events: historyEvents("r", from: 2, count: 3)) == 0)
            #expect(store.statistics == before)
            // Overlapping then new: only 6...8 are written.
            #expect(try store.append(runId: "r", firstEventId: 4, events: historyEvents("r", from: 4, count: 5)) == 3)
            var altered = historyEvents("r", from: 7, count: 3)
            altered[1][0] ^= 0xFF
            #expect(throws: HistoryError.conflict(runId: "r", eventId: 8)) {
                try store.append(runId: "r", firstEventId: 7, events: altered)
            }
            #expect(throws: HistoryError.gap(runId: "r", expected: 9, got: 11)) {
                try store.append(runId: "r", firstEventId: 11, events: historyEvents("r", from: 11, count: 1))
            }
            #expect(throws: HistoryError.invalidEventId(runId: "r", eventId: 0)) {
                try store.append(runId: "r", firstEventId: 0, events: historyEvents("r", from: 0, count: 1))
            }
            #expect(throws: HistoryError.invalidRunId("")) { try store.append(runId: "", firstEventId: 1, events: [[1]]) }
            #expect(try store.read(runId: "r", fromEventId: 1, maxEvents: 100) == historyEvents("r", from: 1, count: 8))
        }
    }

    @Test func deleteWritesATombstoneThatSurvivesReopening() throws {
        try withTemporaryDirectory { directory in
            do {
                let store = try HistoryFileStore(directory: directory)
                _ = try store.append(runId: "gone", firstEventId: 1, events: historyEvents("gone", from: 1, count: 4))
                _ = try store.append(runId: "kept", firstEventId: 1, events: historyEvents("kept", from: 1, count: 4))
                try store.delete(runId: "gone")
                try store.delete(runId: "never-existed")
                #expect(try store.read(runId: "gone", fromEventId: 1, maxEvents: 10).isEmpty)
                // A deleted run may be stored again from event 1 (a snapshot restore does this).
                _ = try store.append(runId: "again", firstEventId: 1, events: historyEvents("again", from: 1, count: 1))
                try store.delete(runId: "again")
                _ = try store.append(runId: "again", firstEventId: 1, events: historyEvents("again2", from: 1, count: 2))
            }
            let reopened = try HistoryFileStore(directory: directory)
            #expect(reopened.runIds() == ["again", "kept"])
            #expect(try reopened.read(runId: "again", fromEventId: 1, maxEvents: 10) == historyEvents("again2", from: 1, count: 2))
        }
    }

    @Test func segmentsRotateAndEveryOneIsReadBackAfterReopening() throws {
        try withTemporaryDirectory { directory in
            let options = HistoryFileStore.Options(segmentSizeBytes: 4_096)
            var expected: [String: [[UInt8]]] = [:]
            do {
                let store = try HistoryFileStore(directory: directory, options: options)
                for round in 0..<40 {
                    for run in 0..<5 {
                        let runId = "run-\(run)"
                        let events = historyEvents(runId, from: Int64(round * 2 + 1), count: 2, bytes: 30 + run)
                        _ = try store.append(runId: runId, firstEventId: Int64(round * 2 + 1), events: events)
                        expected[runId, default: []].append(contentsOf: events)
                    }
                }
                #expect(store.statistics.segmentCount > 5)
                #expect(try storedHistories(store) == expected)
                // The snapshot export reads each segment once and yields the same histories.
                #expect(try store.export(runIds: expected.keys.sorted() + ["not-stored"]) == expected)
            }
            #expect(try historySegmentNames(directory).count > 5)
            let reopened = try HistoryFileStore(directory: directory, options: options)
            #expect(try storedHistories(reopened) == expected)
        }
    }

    @Test func compactionReclaimsDeadSegmentsAndKeepsLiveRunsReadable() throws {
        try withTemporaryDirectory { directory in
            let options = HistoryFileStore.Options(segmentSizeBytes: 4_096, minimumDeadBytesToCompact: 4_096)
            var expected: [String: [[UInt8]]] = [:]
            do {
                let store = try HistoryFileStore(directory: directory, options: options)
                for run in 0..<60 {
                    let runId = "run-\(run)"
                    let events = historyEvents(runId, from: 1, count: 3, bytes: 100)
                    _ = try store.append(runId: runId, firstEventId: 1, events: events)
                    if run % 10 == 0 { expected[runId] = events } else { try store.delete(runId: runId) }
                }
                // The long-lived runs get more events later, in newer segments.
                for runId in expected.keys.sorted() {
                    let more = historyEvents(runId, from: 4, count: 2, bytes: 100)
                    _ = try store.append(runId: runId, firstEventId: 4, events: more)
                    expected[runId]?.append(contentsOf: more)
                }
                let segmentsBefore = try historySegmentNames(directory).count
                var reclaimed = 0
                while try store.compactIfNeeded() { reclaimed += 1 }
                #expect(reclaimed > 0)
                #expect(try historySegmentNames(directory).count < segmentsBefore)
                let statistics = store.statistics
                #expect(statistics.totalBytes - statistics.liveBytes <= max(statistics.liveBytes, options.minimumDeadBytesToCompact))
                #expect(try storedHistories(store) == expected)
                #expect(try store.export(runIds: expected.keys.sorted()) == expected)
            }
            let reopened = try HistoryFileStore(directory: directory, options: options)
            #expect(try storedHistories(reopened) == expected)
        }
    }

    /// A store of 4 KiB segments whose runs 0–29 fill the first segment and more, two in three
    /// of them deleted so that it is worth compacting; and the histories left.
    private func storeWorthCompacting(_ directory: String) throws
        -> (HistoryFileStore, HistoryFileStore.Options, [String: [[UInt8]]]) {
        let options = HistoryFileStore.Options(segmentSizeBytes: 4_096, minimumDeadBytesToCompact: 1)
        var expected: [String: [[UInt8]]] = [:]
        let store = try HistoryFileStore(directory: directory, options: options)
        for run in 0..<30 {
            let runId = "run-\(run)"
            let events = historyEvents(runId, from: 1, count: 2, bytes: 100)
            _ = try store.append(runId: runId, firstEventId: 1, events: events)
            expected[runId] = events
        }
        for run in 0..<30 where run % 3 != 0 {
            try store.delete(runId: "run-\(run)")
            expected["run-\(run)"] = nil
        }
        return (store, options, expected)
    }

    /// `compactIfNeeded` holds the lock only to plan and to copy forward; appends and deletes
    /// may land between its steps. Run here step by step, with such changes in each gap.
    @Test func appendsAndDeletesBetweenCompactionStepsAreKept() throws {
        try withTemporaryDirectory { directory in
            let (store, options, stored) = try storeWorthCompacting(directory)
            var expected = stored
            let plan = try #require(try store.planCompaction(), "the oldest segment is worth compacting")
            let oldName = plan.segment.name
            #expect(!plan.live.isEmpty)
            #expect(try store.planCompaction() == nil, "one compaction at a time")
            #expect(try store.compactIfNeeded() == false, "one compaction at a time")
            let planned = Set(plan.live.map(\.runId))
            let survivors = planned.sorted()
            #expect(survivors.count >= 3)
            // Between the plan and the copies: one planned run deleted, one extended.
            try store.delete(runId: survivors[0])
            expected[survivors[0]] = nil
            let more = historyEvents(survivors[1], from: 3, count: 2, bytes: 100)
            _ = try store.append(runId: survivors[1], firstEventId: 3, events: more)
            expected[survivors[1]]?.append(contentsOf: more)
            let copies = try store.copyForward(plan, records: try plan.readLiveRecords())
            #expect(copies != nil)
            // Between the copies and the end: another planned run deleted, a new run written.
            try store.delete(runId: survivors[2])
            expected[survivors[2]] = nil
            let later = historyEvents("later", from: 1, count: 3)
            _ = try store.append(runId: "later", firstEventId: 1, events: later)
            expected["later"] = later
            try store.finishCompaction(plan, copiesIn: copies)
            store.state.withLock { $0.compacting = false }

            #expect(!(try historySegmentNames(directory)).contains(oldName))
            #expect(try storedHistories(store) == expected)
            let statistics = store.statistics
            #expect(statistics.compactedSegments == 1)
            store.close()
            // Reopening scans the files afresh: the same histories and the same byte accounting.
            let reopened = try HistoryFileStore(directory: directory, options: options)
            #expect(try storedHistories(reopened) == expected)
            #expect(reopened.statistics.liveBytes == statistics.liveBytes)
            #expect(reopened.statistics.totalBytes == statistics.totalBytes)
        }
    }

    /// A compaction stopped after its copies were written (its fsync or unlink failed, or the
    /// process died) leaves the byte accounting right; the next one reclaims the old segment.
    @Test func aCompactionStoppedAfterItsCopiesIsFinishedByTheNext() throws {
        try withTemporaryDirectory { directory in
            let (store, options, expected) = try storeWorthCompacting(directory)
            let plan = try #require(try store.planCompaction())
            _ = try store.copyForward(plan, records: try plan.readLiveRecords())
            store.state.withLock { $0.compacting = false } // stopped here
            let oldName = plan.segment.name
            #expect(store.state.withLock { $0.usage[plan.segment.sequence]?.liveBytes } == 0, "the originals count as dead")
            #expect(try store.compactIfNeeded(), "the next compaction reclaims the emptied segment")
            #expect(!(try historySegmentNames(directory)).contains(oldName))
            #expect(try storedHistories(store) == expected)
            let statistics = store.statistics
            store.close()
            let reopened = try HistoryFileStore(directory: directory, options: options)
            #expect(try storedHistories(reopened) == expected)
            #expect(reopened.statistics.liveBytes == statistics.liveBytes)
        }
    }

    @Test func anExportViewReadsTheHistoriesOfItsMomentWhateverHappensAfter() throws {
        try withTemporaryDirectory { directory in
            let options = HistoryFileStore.Options(segmentSizeBytes: 4_096, minimumDeadBytesToCompact: 4_096)
            let store = try HistoryFileStore(directory: directory, options: options)
            var atView: [String: [[UInt8]]] = [:]
            for run in 0..<60 {
                let runId = "run-\(run)"
                let events = historyEvents(runId, from: 1, count: 3, bytes: 100)
                _ = try store.append(runId: runId, firstEventId: 1, events: events)
                atView[runId] = events
            }
            let view = try store.exportView()
            // After the view: most runs deleted, the rest extended, new runs, the old segments
            // compacted away (their files unlinked), and the store closed.
            for run in 0..<60 {
                let runId = "run-\(run)"
                if run % 10 == 0 {
                    _ = try store.append(runId: runId, firstEventId: 4, events: historyEvents(runId, from: 4, count: 2, bytes: 100))
                } else {
                    try store.delete(runId: runId)
                }
            }
            _ = try store.append(runId: "later", firstEventId: 1, events: historyEvents("later", from: 1, count: 2))
            let segmentsBefore = try historySegmentNames(directory)
            var reclaimed = 0
            while try store.compactIfNeeded() { reclaimed += 1 }
            #expect(reclaimed > 0)
            #expect(Set(segmentsBefore).subtracting(try historySegmentNames(directory)).count > 0, "old segment files are gone")
            store.close()
            #expect(try view.export(runIds: atView.keys.sorted() + ["later"]) == atView)
        }
    }

    @Test func aTornTailIsCutAtEveryByteOfTheLastRecord() throws {
        try withTemporaryDirectory { base in
            let original = base + "/original"
            let before: [String: [[UInt8]]]
            let (start, end): (Int, Int)
            let segment: String
            do {
                let store = try HistoryFileStore(directory: original)
                _ = try store.append(runId: "a", firstEventId: 1, events: historyEvents("a", from: 1, count: 2))
                _ = try store.append(runId: "b", firstEventId: 1, events: historyEvents("b", from: 1, count: 1))
                before = try storedHistories(store)
                segment = original + "/" + (try historySegmentNames(original).last ?? "")
                start = try readFile(segment).count
                _ = try store.append(runId: "a", firstEventId: 3, events: historyEvents("a", from: 3, count: 2))
                end = try readFile(segment).count
            }
            let full = try readFile(segment)
            for zeroFill in [false, true] {
                for cut in start..<end {
                    let copy = base + "/cut-\(cut)-\(zeroFill)"
                    try FileManager.default.copyItem(atPath: original, toPath: copy)
                    let damaged = Array(full[..<cut]) + (zeroFill ? [UInt8](repeating: 0, count: end - cut) : [])
                    try writeFile(copy + "/" + (segment as NSString).lastPathComponent, damaged)
                    let store = try HistoryFileStore(directory: copy)
                    // Zeroing only the record's padding leaves it whole.
                    let survives = zeroFill && full[cut..<end].allSatisfy { $0 == 0 }
                    var expected = before
                    if survives { expected["a"]?.append(contentsOf: historyEvents("a", from: 3, count: 2)) }
                    #expect(try storedHistories(store) == expected, "cut at \(cut), zero-filled \(zeroFill)")
                    if cut > start, !zeroFill { #expect(store.recoveryReport.tornTail?.offset == start) }
                    if survives { continue }
                    // Appends continue where the whole records end.
                    #expect(try store.append(runId: "a", firstEventId: 3, events: historyEvents("a", from: 3, count: 1)) == 1)
                    store.close()
                    let again = try HistoryFileStore(directory: copy)
                    #expect(try again.read(runId: "a", fromEventId: 1, maxEvents: 10) == historyEvents("a", from: 1, count: 3))
                    again.close()
                    try FileManager.default.removeItem(atPath: copy)
                }
            }
        }
    }

    @Test func corruptionBeforeTheTailIsRefusedWithTheFileAndOffset() throws {
        try withTemporaryDirectory { directory in
            let options = HistoryFileStore.Options(segmentSizeBytes: 4_096)
            do {
                let store = try HistoryFileStore(directory: directory, options: options)
                for run in 0..<30 {
                    _ = try store.append(runId: "run-\(run)", firstEventId: 1, events: historyEvents("run-\(run)", from: 1, count: 2, bytes: 200))
                }
            }
            let names = try historySegmentNames(directory)
            #expect(names.count >= 2)
            // A flipped payload byte in the first record of the first segment (which is not the last).
            var bytes = try readFile(directory + "/" + names[0])
            bytes[HistoryFormat.segmentHeaderSize + 40] ^= 0x55
            try writeFile(directory + "/" + names[0], bytes)
            #expect {
                _ = try HistoryFileStore(directory: directory, options: options)
            } throws: { error in
                guard case let HistoryError.corruptRecord(file, offset, _) = error else { return false }
                return file == names[0] && offset == HistoryFormat.segmentHeaderSize
            }
        }
    }

    @Test func corruptionInTheLastSegmentFollowedByAValidRecordIsRefused() throws {
        try withTemporaryDirectory { directory in
            do {
                let store = try HistoryFileStore(directory: directory)
                _ = try store.append(runId: "a", firstEventId: 1, events: historyEvents("a", from: 1, count: 1))
                _ = try store.append(runId: "b", firstEventId: 1, events: historyEvents("b", from: 1, count: 1))
            }
            let name = try historySegmentNames(directory)[0]
            var bytes = try readFile(directory + "/" + name)
            bytes[HistoryFormat.segmentHeaderSize + 4] ^= 0x01  // the first record's length
            try writeFile(directory + "/" + name, bytes)
            #expect(throws: HistoryError.self) { _ = try HistoryFileStore(directory: directory) }
        }
    }

    @Test func concurrentReadersSeeWholePrefixesWhileAWriterAppends() async throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let store = try HistoryFileStore(directory: directory, options: .init(segmentSizeBytes: 8_192, minimumDeadBytesToCompact: 8_192))
        let all = historyEvents("r", from: 1, count: 400)
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                for id in 1...400 {
                    _ = try? store.append(runId: "r", firstEventId: Int64(id), events: [all[id - 1]])
                    _ = try? store.append(runId: "junk-\(id)", firstEventId: 1, events: [all[0]])
                    try? store.delete(runId: "junk-\(id)")
                    _ = try? store.compactIfNeeded()
                }
            }
            for _ in 0..<2 {
                group.addTask {
                    for _ in 0..<200 {
                        let read = (try? store.read(runId: "r", fromEventId: 1, maxEvents: .max)) ?? []
                        #expect(read == Array(all.prefix(read.count)))
                    }
                }
            }
        }
        #expect(try store.read(runId: "r", fromEventId: 1, maxEvents: .max) == all)
        #expect(store.statistics.compactedSegments > 0)
    }

    @Test func aSecondOpenOfTheSameDirectoryIsRefused() throws {
        try withTemporaryDirectory { directory in
            let store = try HistoryFileStore(directory: directory)
            #expect(throws: HistoryError.self) { _ = try HistoryFileStore(directory: directory) }
            store.close()
        }
    }
}
