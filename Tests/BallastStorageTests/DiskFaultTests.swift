import BallastRaft
import Foundation
import Synchronization
import Testing
@testable import BallastStorage

/// A full or failing disk, injected with `StorageFaultInjection` (rules match this test's own
/// directory only, so they cannot touch other suites running in parallel).
@Suite("disk faults: full and failing disks in the storage layer", .serialized)
struct DiskFaultTests {
    @Test("a segment that cannot be created for lack of space fails the batch cleanly; the log stays usable and recovers it all")
    func walSegmentRollOnFullDiskIsClean() throws {
        try withTemporaryDirectory { directory in
            defer { StorageFaultInjection.clear(pathContaining: directory) }
            let log = try WriteAheadLog(directory: directory, options: smallSegments)
            try log.append(makeEntries(1 ... 20))
            try log.sync()
            // Fill the first segment: the next batch needs a new one, which the "disk" refuses.
            StorageFaultInjection.failNext(.allocate, pathContaining: directory)
            let batch = makeEntries(21 ... 30, payloadBytes: 300)
            let bytes = batch.reduce(0) { $0 + WALFormat.recordSize(payloadCount: $1.data.count) }
            #expect(throws: StorageError.self) { try log.prepareRoom(forBytes: bytes) }
            #expect(log.isUsable)
            #expect(log.lastIndex == LogIndex(20))
            #expect(try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.hasSuffix(".tmp") }.isEmpty)
            // Space returns: the same batch goes in.
            StorageFaultInjection.clear(pathContaining: directory)
            try log.prepareRoom(forBytes: bytes)
            try log.append(batch)
            try log.sync()
            try log.close()
            let restored = try reopenAndRestore(directory)
            #expect(restored.entries.map(\.index.rawValue) == Array(1 ... 30))
            #expect(restored.entries.last?.data == batch.last?.data)
        }
    }

    @Test("an fsync or write error inside a segment poisons the log: later calls fail with `failed`, reopening recovers what was synced")
    func walIOErrorPoisons() throws {
        try withTemporaryDirectory { directory in
            defer { StorageFaultInjection.clear(pathContaining: directory) }
            let log = try WriteAheadLog(directory: directory, options: smallSegments)
            try log.append(makeEntries(1 ... 3))
            try log.sync()
            StorageFaultInjection.failNext(.sync, pathContaining: directory, errno: EIO, count: 1)
            try log.append(makeEntries(4 ... 5))
            #expect(throws: StorageError.self) { try log.sync() }
            #expect(!log.isUsable)
            #expect { try log.append(makeEntries(6 ... 6)) } throws: { error in
                if case .failed = error as? StorageError { return true }
                return false
            }
            try log.close()
            let restored = try reopenAndRestore(directory)
            #expect(Array(restored.entries.map(\.index.rawValue).prefix(3)) == [1, 2, 3])
        }
    }

    @Test("the log writer stalls on a full disk: completions wait, nothing fails, and everything lands in order once space returns")
    func logWriterStallsAndResumes() throws {
        try withTemporaryDirectory { directory in
            defer { StorageFaultInjection.clear(pathContaining: directory) }
            let pressure = Mutex<[String?]>([])
            let writer = LogWriter(
                log: try WriteAheadLog(directory: directory, options: smallSegments),
                options: LogWriter.Options(noSpaceRetryInterval: .milliseconds(5),
                                           onDiskPressure: { reason in pressure.withLock { $0.append(reason) } }))
            let completed = Mutex<[String?]>([])  // nil: success, else the error
            func submit(_ range: ClosedRange<UInt64>) {
                writer.submit(entries: makeEntries(range, payloadBytes: 200)) { result in
                    completed.withLock { list in
                        if case .failure(let error) = result { list.append("\(error)") } else { list.append(nil) }
                    }
                }
            }
            submit(1 ... 5)
            try poll("the first batch") { completed.withLock { $0.count } == 1 }
            StorageFaultInjection.failNext(.allocate, pathContaining: directory)
            for start in stride(from: UInt64(6), through: 96, by: 10) { submit(start ... start + 9) }
            try poll("the writer to stall") { pressure.withLock { $0.count } == 1 && writer.statistics.noSpaceRetries >= 3 }
            let beforeSpace = completed.withLock { $0 }
            #expect(beforeSpace.allSatisfy { $0 == nil }, "\(beforeSpace)")
            #expect(beforeSpace.count < 11, "some batches must be waiting for space")
            StorageFaultInjection.clear(pathContaining: directory)
            try poll("every batch to complete") { completed.withLock { $0.count } == 11 }
            let all = completed.withLock { $0 }
            #expect(all.allSatisfy { $0 == nil }, "\(all)")
            #expect(pressure.withLock { $0 }.count == 2 && pressure.withLock { $0 }.last! == nil)
            #expect(writer.statistics.noSpaceStalls == 1)
            writer.shutdown()
            let restored = try reopenAndRestore(directory)
            #expect(restored.entries.map(\.index.rawValue) == Array(1 ... 105))
        }
    }

    @Test("shutting down a stalled writer fails the waiting batches with the lack-of-space error; the log still recovers")
    func stalledWriterShutdownFailsWaiters() throws {
        try withTemporaryDirectory { directory in
            defer { StorageFaultInjection.clear(pathContaining: directory) }
            let writer = LogWriter(log: try WriteAheadLog(directory: directory, options: smallSegments),
                                   options: LogWriter.Options(noSpaceRetryInterval: .milliseconds(5)))
            let failures = Mutex<[String]>([])
            StorageFaultInjection.failNext(.allocate, pathContaining: directory)
            for start in stride(from: UInt64(1), through: 91, by: 10) {
                writer.submit(entries: makeEntries(start ... start + 9, payloadBytes: 200)) { result in
                    if case .failure(let error) = result { failures.withLock { $0.append("\(error)") } }
                }
            }
            try poll("the writer to stall") { writer.statistics.noSpaceRetries >= 2 }
            writer.shutdown()
            #expect(failures.withLock { $0 }.contains { $0.contains("no space left") })
            StorageFaultInjection.clear(pathContaining: directory)
            let restored = try reopenAndRestore(directory)
            #expect(restored.entries.map(\.index.rawValue) == Array(1 ... UInt64(restored.entries.count)))
        }
    }

    @Test("a snapshot without room is removed and changes nothing; the log stays usable")
    func snapshotOnFullDisk() throws {
        try withTemporaryDirectory { directory in
            defer { StorageFaultInjection.clear(pathContaining: directory) }
            let log = try WriteAheadLog(directory: directory, options: smallSegments)
            try log.append(makeEntries(1 ... 10))
            try log.sync()
            StorageFaultInjection.failNext(.write, pathContaining: directory + "/snapshot", bytesWrittenFirst: 20)
            #expect(throws: StorageError.self) { try log.saveSnapshot(makeSnapshot(index: 8, term: 1)) }
            #expect(log.isUsable && log.snapshotMetadata == nil)
            #expect(try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.contains(".snap") }.isEmpty)
            #expect(throws: StorageError.self) { try log.installSnapshot(makeSnapshot(index: 20, term: 2)) }
            #expect(log.isUsable && log.lastIndex == LogIndex(10))
            StorageFaultInjection.clear(pathContaining: directory)
            try log.installSnapshot(makeSnapshot(index: 20, term: 2))
            try log.close()
            let restored = try reopenAndRestore(directory)
            #expect(restored.snapshot?.metadata.index == LogIndex(20) && restored.entries.isEmpty)
        }
    }

    @Test("a history flush that fails part-way for lack of space is cut back and kept staged; nothing partial is ever read")
    func historyPartialWriteOnFullDisk() throws {
        try withTemporaryDirectory { directory in
            defer { StorageFaultInjection.clear(pathContaining: directory) }
            let options = HistoryFileStore.Options(segmentSizeBytes: 4096)
            let store = try HistoryFileStore(directory: directory, options: options)
            let segment = try #require(try historySegmentNames(directory).first)
            func events(_ count: Int, _ seed: UInt8) -> [[UInt8]] { (0 ..< count).map { [UInt8](repeating: seed &+ UInt8($0), count: 90) } }
            _ = try store.append(runId: "run-a", firstEventId: 1, events: events(5, 1))
            try store.flush()
            let written = try historyFileSize(directory, segment)
            // Two records' worth staged (a big batch), of which only 150 bytes reach the disk.
            let big = events(30, 50)
            #expect(try store.append(runId: "run-a", firstEventId: 6, events: big) == 30)
            StorageFaultInjection.failNext(.write, pathContaining: directory, bytesWrittenFirst: 150)
            #expect { try store.flush() } throws: { error in (error as? HistoryError)?.isNoSpace == true }
            #expect(try historyFileSize(directory, segment) == written, "the partial write is cut back")
            // Still staged: indexed and read from memory; a crash now leaves the whole first records only.
            #expect(store.summary(runId: "run-a")?.eventCount == 35)
            #expect(try store.read(runId: "run-a", fromEventId: 1, maxEvents: 100) == events(5, 1) + big)
            let image = try historyCrashImage(of: directory)
            defer { try? FileManager.default.removeItem(atPath: image) }
            let crashed = try HistoryFileStore(directory: image, options: options)
            #expect(crashed.recoveryReport.tornTail == nil)
            #expect(try storedHistories(crashed) == ["run-a": events(5, 1)])
            crashed.close()
            StorageFaultInjection.clear(pathContaining: directory)
            // The next flush writes it all, with what was staged meanwhile.
            _ = try store.append(runId: "run-b", firstEventId: 1, events: events(1, 9))
            try store.flush()
            try store.sync()
            store.close()
            let reopened = try HistoryFileStore(directory: directory, options: options)
            defer { reopened.close() }
            #expect(try reopened.read(runId: "run-a", fromEventId: 1, maxEvents: 100) == events(5, 1) + big)
            #expect(try reopened.read(runId: "run-b", fromEventId: 1, maxEvents: 100) == events(1, 9))
        }
    }

    @Test("an append that must write the staged records first and finds no space changes nothing; retried, it is stored once")
    func historyAppendAtTheWriteBehindLimitOnFullDisk() throws {
        try withTemporaryDirectory { directory in
            defer { StorageFaultInjection.clear(pathContaining: directory) }
            let store = try HistoryFileStore(directory: directory, options: HistoryFileStore.Options(writeBehindBytes: 500))
            let event = [UInt8](repeating: 3, count: 600)
            _ = try store.append(runId: "run", firstEventId: 1, events: [event])
            let before = store.statistics
            StorageFaultInjection.failNext(.write, pathContaining: directory)
            #expect { _ = try store.append(runId: "run", firstEventId: 2, events: [event]) } throws: { error in
                (error as? HistoryError)?.isNoSpace == true
            }
            #expect { try store.delete(runId: "run") } throws: { error in (error as? HistoryError)?.isNoSpace == true }
            #expect(store.statistics == before && store.summary(runId: "run")?.eventCount == 1)
            StorageFaultInjection.clear(pathContaining: directory)
            #expect(try store.append(runId: "run", firstEventId: 1, events: [event, event]) == 1)
            store.close()
            let reopened = try HistoryFileStore(directory: directory)
            defer { reopened.close() }
            #expect(try reopened.read(runId: "run", fromEventId: 1, maxEvents: 10) == [event, event])
        }
    }

    @Test("a history segment that cannot be started for lack of space leaves the store usable; the append is not lost")
    func historyRotationOnFullDisk() throws {
        try withTemporaryDirectory { directory in
            defer { StorageFaultInjection.clear(pathContaining: directory) }
            let store = try HistoryFileStore(directory: directory, options: HistoryFileStore.Options(segmentSizeBytes: 4096))
            let event = [UInt8](repeating: 7, count: 500)
            StorageFaultInjection.failNext(.write, pathContaining: directory + "/history-00000000000000000002")
            var stored = 0
            var sawNoSpace = false
            for id in 1 ... 12 {
                do {
                    _ = try store.append(runId: "run", firstEventId: Int64(id), events: [event])
                } catch let error as HistoryError where error.isNoSpace {
                    sawNoSpace = true
                }
                stored = Int(store.summary(runId: "run")?.eventCount ?? 0)
            }
            #expect(sawNoSpace && stored == 12)
            StorageFaultInjection.clear(pathContaining: directory)
            _ = try store.append(runId: "run", firstEventId: 13, events: [event])
            store.close()
            let reopened = try HistoryFileStore(directory: directory, options: HistoryFileStore.Options(segmentSizeBytes: 4096))
            defer { reopened.close() }
            #expect(reopened.summary(runId: "run")?.eventCount == 13)
        }
    }
}

/// Polls `condition` every millisecond until it holds, failing after `timeout`.
func poll(_ what: String, timeout: Duration = .seconds(10), _ condition: () throws -> Bool) throws {
    let deadline = ContinuousClock.now + timeout
    while try !condition() {
        guard ContinuousClock.now < deadline else { throw StorageTestTimeout(what: what) }
        usleep(1_000)
    }
}

struct StorageTestTimeout: Error, CustomStringConvertible {
    var what: String
    var description: String { "timed out waiting for \(what)" }
}
