import Foundation
import Testing
@testable import BallastStorage

#if canImport(Glibc)
import Glibc
#endif

/// The names in `directory` of files made ahead for the next segment.
private func preparedFiles(_ directory: String) throws -> [String] {
    try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.hasSuffix(".next.tmp") }.sorted()
}

/// Appends 500-byte events to run `runId` from `id` on until the store has `segments` segment files.
private func appendUntil(segments: Int, _ store: HistoryFileStore, _ directory: String, runId: String,
                         from id: inout Int64) throws {
    while try historySegmentNames(directory).count < segments {
        _ = try store.append(runId: runId, firstEventId: id, events: historyEvents(runId, from: id, count: 1, bytes: 500))
        id += 1
    }
}

/// Runs `body` with a store of 4 KiB segments in a fresh directory; afterwards closes the store
/// and clears the fault rules armed for the directory.
private func withSmallStore(_ body: (HistoryFileStore, String) throws -> Void) throws {
    try withTemporaryDirectory { directory in
        defer { StorageFaultInjection.clear(pathContaining: directory) }
        let store = try HistoryFileStore(directory: directory, options: HistoryFileStore.Options(segmentSizeBytes: 4_096))
        defer { store.close() }
        try body(store, directory)
    }
}

/// The segment that follows the active one made ahead of need (`prepareNextSegment`), so that
/// closing a segment on the Raft loop is a rename instead of two fsyncs.
@Suite("History store: the next segment made ahead", .serialized)
struct HistoryPreparedSegmentTests {
    @Test("rotation renames the prepared file into place; the store reads on, and reopens without temporary files")
    func rotationUsesThePreparedFile() throws {
        try withTemporaryDirectory { directory in
            var id: Int64 = 1
            do {
                let store = try HistoryFileStore(directory: directory, options: HistoryFileStore.Options(segmentSizeBytes: 4_096))
                defer { store.close() }
                #expect(try store.prepareNextSegment())
                #expect(try preparedFiles(directory) == [HistoryFormat.segmentName(2) + ".next.tmp"])
                #expect(try !store.prepareNextSegment(), "already made")
                try appendUntil(segments: 2, store, directory, runId: "a", from: &id)
                #expect(try preparedFiles(directory).isEmpty, "renamed into place")
                #expect(try historySegmentNames(directory) == [HistoryFormat.segmentName(1), HistoryFormat.segmentName(2)])
                // The next one can be made; rotation without one creates the segment itself.
                #expect(try store.prepareNextSegment())
                #expect(try preparedFiles(directory) == [HistoryFormat.segmentName(3) + ".next.tmp"])
                try appendUntil(segments: 4, store, directory, runId: "a", from: &id)
                #expect(try preparedFiles(directory).isEmpty)
                #expect(try store.read(runId: "a", fromEventId: 1, maxEvents: .max) == (1 ..< id).flatMap {
                    historyEvents("a", from: $0, count: 1, bytes: 500)
                })
                #expect(try store.prepareNextSegment())
            }
            #expect(try preparedFiles(directory).isEmpty, "closing the store removes a prepared file")
            let reopened = try HistoryFileStore(directory: directory, options: HistoryFileStore.Options(segmentSizeBytes: 4_096))
            defer { reopened.close() }
            #expect(reopened.recoveryReport.removedTemporaryFiles.isEmpty)
            #expect(try reopened.read(runId: "a", fromEventId: 1, maxEvents: .max).count == Int(id - 1))
        }
    }

    @Test("after a rotation by rename, sync() fsyncs the directory (and only then)")
    func syncMakesTheRenameDurable() throws {
        try withSmallStore { store, directory in
            var id: Int64 = 1
            _ = try store.append(runId: "a", firstEventId: id, events: historyEvents("a", from: id, count: 1))
            id += 1
            // No rename pending: sync() leaves the directory alone, so an armed failure stays unused.
            StorageFaultInjection.failNext(.syncDirectory, pathContaining: directory, errno: EIO, count: 1)
            var injected: Int { StorageFaultInjection.injectedFailures(pathContaining: directory) }
            try store.sync()
            #expect(injected == 0)
            // Rotation by rename does not fsync the directory either ...
            try store.prepareNextSegment()
            try appendUntil(segments: 2, store, directory, runId: "a", from: &id)
            #expect(injected == 0)
            // ... the next sync() does: here it fails, and the store refuses writes as after any failed sync.
            #expect(throws: HistoryError.self) { try store.sync() }
            #expect(injected == 1)
            #expect(throws: HistoryError.self) {
                _ = try store.append(runId: "a", firstEventId: id, events: historyEvents("a", from: id, count: 1))
            }
        }
    }

    @Test("with no sync between two rotations by rename, the second fsyncs the directory first (never two names pending)")
    func neverTwoRenamesPending() throws {
        try withSmallStore { store, directory in
            var id: Int64 = 1
            try store.prepareNextSegment()
            try appendUntil(segments: 2, store, directory, runId: "a", from: &id)
            try store.prepareNextSegment()
            StorageFaultInjection.failNext(.syncDirectory, pathContaining: directory, errno: EIO, count: 1)
            #expect(throws: HistoryError.self) { try appendUntil(segments: 3, store, directory, runId: "a", from: &id) }
            #expect(StorageFaultInjection.injectedFailures(pathContaining: directory) == 1)
            #expect(try historySegmentNames(directory).count == 2, "segment 3 was not renamed into place")
        }
    }

    @Test("a sync that made a rename durable does not fsync the directory again")
    func oneDirectorySyncPerRename() throws {
        try withSmallStore { store, directory in
            var id: Int64 = 1
            try store.prepareNextSegment()
            try appendUntil(segments: 2, store, directory, runId: "a", from: &id)
            try store.sync()
            StorageFaultInjection.failNext(.syncDirectory, pathContaining: directory, errno: EIO, count: 1)
            _ = try store.append(runId: "a", firstEventId: id, events: historyEvents("a", from: id, count: 1))
            try store.sync()
            #expect(store.summary(runId: "a")?.eventCount == id)
        }
    }

    @Test("a full disk while preparing leaves no file behind, and rotation then creates the segment itself")
    func preparingOnAFullDisk() throws {
        try withTemporaryDirectory { directory in
            let prepared = directory + "/" + HistoryFormat.segmentName(2) + ".next.tmp"
            defer { StorageFaultInjection.clear(pathContaining: prepared) }
            let store = try HistoryFileStore(directory: directory, options: HistoryFileStore.Options(segmentSizeBytes: 4_096))
            defer { store.close() }
            StorageFaultInjection.failNext(.write, pathContaining: prepared, errno: ENOSPC, count: 1)
            #expect { try store.prepareNextSegment() } throws: { ($0 as? HistoryError)?.isNoSpace == true }
            #expect(try preparedFiles(directory).isEmpty)
            var id: Int64 = 1
            try appendUntil(segments: 2, store, directory, runId: "a", from: &id)
            try store.sync()
            #expect(try store.read(runId: "a", fromEventId: 1, maxEvents: .max).count == Int(id - 1))
        }
    }

    @Test("a crash leaves a prepared file behind: opening removes it and reports it")
    func aCrashLeavesAPreparedFile() throws {
        try withTemporaryDirectory { directory in
            let store = try HistoryFileStore(directory: directory, options: HistoryFileStore.Options(segmentSizeBytes: 4_096))
            _ = try store.append(runId: "a", firstEventId: 1, events: historyEvents("a", from: 1, count: 2))
            try store.sync()
            try store.prepareNextSegment()
            // The crash image: the segments and the prepared file as they are on disk now.
            let image = try historyCrashImage(of: directory)
            defer { try? FileManager.default.removeItem(atPath: image) }
            let name = try #require(try preparedFiles(directory).first)
            try FileManager.default.copyItem(atPath: directory + "/" + name, toPath: image + "/" + name)
            store.close()
            let reopened = try HistoryFileStore(directory: image)
            defer { reopened.close() }
            #expect(reopened.recoveryReport.removedTemporaryFiles == [name])
            #expect(try preparedFiles(image).isEmpty)
            #expect(try reopened.read(runId: "a", fromEventId: 1, maxEvents: 10) == historyEvents("a", from: 1, count: 2))
        }
    }
}
