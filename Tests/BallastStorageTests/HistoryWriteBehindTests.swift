import Foundation
import Testing
@testable import BallastStorage

/// The size of a history segment file.
func historyFileSize(_ directory: String, _ name: String) throws -> Int {
    let attributes = try FileManager.default.attributesOfItem(atPath: directory + "/" + name)
    return (attributes[.size] as? NSNumber)?.intValue ?? -1
}

/// A copy of the store's segment files as they are on disk now: what a crash (of the process,
/// before anything else is written) would leave.
func historyCrashImage(of directory: String) throws -> String {
    let copy = try makeTemporaryDirectory()
    for name in try historySegmentNames(directory) {
        try FileManager.default.copyItem(atPath: directory + "/" + name, toPath: copy + "/" + name)
    }
    return copy
}

@Suite("History store write-behind")
struct HistoryWriteBehindTests {
    @Test("appends are staged: readable at once, written to the file by flush, in order")
    func stagedAppendsAreReadAtOnceAndWrittenByFlush() throws {
        try withTemporaryDirectory { directory in
            let store = try HistoryFileStore(directory: directory)
            let segment = try #require(try historySegmentNames(directory).first)
            let header = HistoryFormat.segmentHeaderSize
            _ = try store.append(runId: "a", firstEventId: 1, events: historyEvents("a", from: 1, count: 3))
            _ = try store.append(runId: "b", firstEventId: 1, events: historyEvents("b", from: 1, count: 2))
            _ = try store.append(runId: "a", firstEventId: 4, events: historyEvents("a", from: 4, count: 2))
            #expect(try historyFileSize(directory, segment) == header, "nothing written before the flush")
            #expect(try store.read(runId: "a", fromEventId: 2, maxEvents: 10) == historyEvents("a", from: 2, count: 4))
            #expect(store.summary(runId: "b")?.eventCount == 2)
            // Re-appending staged events compares them with the staged bytes.
            #expect(try store.append(runId: "a", firstEventId: 3, events: historyEvents("a", from: 3, count: 3)) == 0)
            #expect(throws: HistoryError.self) {
                _ = try store.append(runId: "a", firstEventId: 5, events: historyEvents("x", from: 5, count: 1))
            }
            let staged = store.statistics.totalBytes
            try store.flush()
            #expect(try historyFileSize(directory, segment) == header + staged)
            try store.flush()
            #expect(try historyFileSize(directory, segment) == header + staged, "a flush with nothing staged writes nothing")

            // A crash after the flush keeps everything flushed, and only that: later appends and a
            // deletion still staged are replayed from the Raft log, so the image is a clean prefix.
            _ = try store.append(runId: "c", firstEventId: 1, events: historyEvents("c", from: 1, count: 1))
            try store.delete(runId: "b")
            let image = try historyCrashImage(of: directory)
            defer { try? FileManager.default.removeItem(atPath: image) }
            let crashed = try HistoryFileStore(directory: image)
            #expect(crashed.recoveryReport.tornTail == nil)
            #expect(try storedHistories(crashed) == [
                "a": historyEvents("a", from: 1, count: 5), "b": historyEvents("b", from: 1, count: 2),
            ])
            crashed.close()

            // Closing writes what is staged.
            store.close()
            let reopened = try HistoryFileStore(directory: directory)
            defer { reopened.close() }
            #expect(try storedHistories(reopened) == [
                "a": historyEvents("a", from: 1, count: 5), "c": historyEvents("c", from: 1, count: 1),
            ])
        }
    }

    @Test("an append that finds writeBehindBytes staged writes them first; its own records stay staged")
    func theLimitWritesStagedRecordsBeforeTheNextAppend() throws {
        try withTemporaryDirectory { directory in
            let options = HistoryFileStore.Options(writeBehindBytes: 1_000)
            let store = try HistoryFileStore(directory: directory, options: options)
            let segment = try #require(try historySegmentNames(directory).first)
            let header = HistoryFormat.segmentHeaderSize
            var written = header
            var total = 0
            for id in 1 ... 40 {
                let stagedBefore = store.statistics.totalBytes - (written - header)
                _ = try store.append(runId: "r", firstEventId: Int64(id), events: historyEvents("r", from: Int64(id), count: 1, bytes: 100))
                if stagedBefore >= 1_000 { written = header + total }
                total = store.statistics.totalBytes
                #expect(try historyFileSize(directory, segment) == written, "after event \(id)")
                #expect(total - (written - header) < 1_000 + 200, "staged bytes stay bounded")
            }
            #expect(written > header, "the limit was reached")
            #expect(try store.read(runId: "r", fromEventId: 1, maxEvents: .max) == (1 ... 40).flatMap {
                historyEvents("r", from: Int64($0), count: 1, bytes: 100)
            })
            store.close()
        }
    }

    @Test("unsyncedBytes counts what the active segment holds past its last sync, staged bytes too; a new segment starts synced")
    func unsyncedBytesFollowAppendsSyncsAndRotation() throws {
        try withTemporaryDirectory { directory in
            let store = try HistoryFileStore(directory: directory, options: HistoryFileStore.Options(segmentSizeBytes: 4_096))
            defer { store.close() }
            #expect(store.unsyncedBytes == 0)
            _ = try store.append(runId: "a", firstEventId: 1, events: historyEvents("a", from: 1, count: 2))
            let first = store.statistics.totalBytes
            #expect(store.unsyncedBytes == first, "staged")
            try store.flush()
            #expect(store.unsyncedBytes == first, "written, not synced")
            try store.sync()
            #expect(store.unsyncedBytes == 0)
            _ = try store.append(runId: "a", firstEventId: 3, events: historyEvents("a", from: 3, count: 1))
            #expect(store.unsyncedBytes == store.statistics.totalBytes - first)
            // Fill the segment: the append that closes it leaves the new one with nothing unsynced
            // but the records appended after.
            var id: Int64 = 4
            while try historySegmentNames(directory).count == 1 {
                _ = try store.append(runId: "a", firstEventId: id, events: historyEvents("a", from: id, count: 1, bytes: 500))
                id += 1
            }
            #expect(store.unsyncedBytes == 0)
            _ = try store.append(runId: "a", firstEventId: id, events: historyEvents("a", from: id, count: 1))
            #expect(store.unsyncedBytes > 0)
        }
    }

    @Test("an export view reads records partly written and partly staged when it was taken")
    func anExportViewReadsWrittenAndStagedRecords() throws {
        try withTemporaryDirectory { directory in
            let store = try HistoryFileStore(directory: directory)
            _ = try store.append(runId: "a", firstEventId: 1, events: historyEvents("a", from: 1, count: 3))
            _ = try store.append(runId: "b", firstEventId: 1, events: historyEvents("b", from: 1, count: 1))
            try store.flush()
            _ = try store.append(runId: "a", firstEventId: 4, events: historyEvents("a", from: 4, count: 2))
            _ = try store.append(runId: "c", firstEventId: 1, events: historyEvents("c", from: 1, count: 2))
            let view = try store.exportView()
            _ = try store.append(runId: "a", firstEventId: 6, events: historyEvents("a", from: 6, count: 1))
            try store.delete(runId: "c")
            try store.flush()
            #expect(try view.export(runIds: ["a", "b", "c"]) == [
                "a": historyEvents("a", from: 1, count: 5), "b": historyEvents("b", from: 1, count: 1),
                "c": historyEvents("c", from: 1, count: 2),
            ])
            store.close()
        }
    }

    /// Random appends, deletions, flushes, syncs, compactions, views, reopenings and crashes
    /// against a dictionary, with small segments and a small write-behind limit so that
    /// rotation and the limit happen often.
    @Test("random operations keep the store equal to a model; a crash image is a clean prefix", arguments: 0 ..< 12)
    func randomOperationsMatchAModel(seed: UInt64) throws {
        try withTemporaryDirectory { directory in
            var random = SplitMix(seed: 0xB10C_0000 + seed)
            func below(_ bound: Int) -> Int { Int(random.next() % UInt64(bound)) }
            let options = HistoryFileStore.Options(segmentSizeBytes: 4_096, minimumDeadBytesToCompact: 4_096,
                                                   writeBehindBytes: [0, 300, 2_000, 1 << 20][below(4)])
            var store = try HistoryFileStore(directory: directory, options: options)
            defer { store.close() }
            var model: [String: [[UInt8]]] = [:]
            // Every history a run id ever had (ids are never reused after a deletion).
            var ever: [String: [[UInt8]]] = [:]
            var nextRun = 0
            var views: [(HistoryFileStore.ExportView, [String: [[UInt8]]])] = []
            for step in 0 ..< 300 {
                switch below(100) {
                case 0 ..< 45:
                    let runId: String
                    if model.isEmpty || below(4) == 0 {
                        runId = "run-\(nextRun)"
                        nextRun += 1
                    } else {
                        runId = model.keys.sorted()[below(model.count)]
                    }
                    let existing = model[runId] ?? []
                    // Sometimes re-append some stored events with the new ones.
                    let overlap = min(below(3), existing.count)
                    let fresh = historyEvents(runId, from: Int64(existing.count + 1), count: 1 + below(4), bytes: 20 + below(200))
                    let added = try store.append(runId: runId, firstEventId: Int64(existing.count - overlap + 1),
                                                 events: Array(existing.suffix(overlap)) + fresh)
                    #expect(added == fresh.count, "step \(step)")
                    model[runId] = existing + fresh
                    ever[runId] = model[runId]
                case 45 ..< 55:
                    guard let runId = model.keys.sorted().randomElement(using: &random) else { continue }
                    try store.delete(runId: runId)
                    model[runId] = nil
                case 55 ..< 65:
                    try store.flush()
                case 65 ..< 70:
                    try store.sync()
                case 70 ..< 75:
                    _ = try store.compactIfNeeded()
                case 75 ..< 80:
                    views.append((try store.exportView(), model))
                case 80 ..< 83:
                    store.close()
                    store = try HistoryFileStore(directory: directory, options: options)
                    #expect(store.recoveryReport.tornTail == nil, "step \(step)")
                case 83 ..< 88:
                    // What a crash would leave: whole records, each run a prefix of a history it had.
                    let image = try historyCrashImage(of: directory)
                    defer { try? FileManager.default.removeItem(atPath: image) }
                    let crashed = try HistoryFileStore(directory: image, options: options)
                    #expect(crashed.recoveryReport.tornTail == nil, "step \(step)")
                    for (runId, events) in try storedHistories(crashed) {
                        let had = ever[runId] ?? []
                        #expect(events.count <= had.count && Array(had.prefix(events.count)) == events, "step \(step): \(runId)")
                    }
                    crashed.close()
                default:
                    guard let runId = model.keys.sorted().randomElement(using: &random), let events = model[runId] else { continue }
                    let from = 1 + below(events.count)
                    let count = 1 + below(events.count)
                    #expect(try store.read(runId: runId, fromEventId: Int64(from), maxEvents: count)
                            == Array(events[(from - 1) ..< min(events.count, from - 1 + count)]), "step \(step)")
                }
            }
            #expect(try storedHistories(store) == model)
            for (view, expected) in views {
                #expect(try view.export(runIds: expected.keys.sorted()) == expected)
            }
            try store.flush()
            let image = try historyCrashImage(of: directory)
            defer { try? FileManager.default.removeItem(atPath: image) }
            let crashed = try HistoryFileStore(directory: image, options: options)
            defer { crashed.close() }
            #expect(try storedHistories(crashed) == model, "after a flush a crash loses nothing")
        }
    }
}

extension SplitMix: RandomNumberGenerator {}
