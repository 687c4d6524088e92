import BallastServer
import BallastStorage
import Foundation
import Logging
import Testing

#if canImport(Glibc)
import Glibc
#endif

@Suite("History maintenance")
struct HistoryMaintenanceTests {
    @Test("the writeback thread syncs the active segment once enough of it is unsynced")
    func writebackSyncsTheActiveSegment() async throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let store = try HistoryFileStore(directory: directory)
        let maintenance = HistoryMaintenance.start(store, writebackBytes: 2_048, writebackInterval: .milliseconds(1),
                                                   logger: Logger(label: "test.history.maintenance"))
        defer {
            maintenance.cancel()
            store.close()
        }
        let event = [UInt8](repeating: 7, count: 1_000)
        _ = try store.append(runId: "run", firstEventId: 1, events: [event])
        #expect(store.unsyncedBytes > 0 && store.unsyncedBytes < 2_048)
        _ = try store.append(runId: "run", firstEventId: 2, events: [event, event, event])
        try await waitUntil("the writeback synced the segment") { store.unsyncedBytes == 0 }
        #expect(try store.read(runId: "run", fromEventId: 1, maxEvents: 10, maxBytes: .max).count == 4)
    }

    @Test("the writeback makes the next segment's file ahead, so rotation renames it; it does so again after each rotation")
    func writebackPreparesTheNextSegment() async throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let store = try HistoryFileStore(directory: directory, options: HistoryFileStore.Options(segmentSizeBytes: 8_192))
        let maintenance = HistoryMaintenance.start(store, writebackInterval: .milliseconds(1),
                                                   logger: Logger(label: "test.history.maintenance"))
        defer {
            maintenance.cancel()
            store.close()
        }
        func files(_ suffix: String) throws -> [String] {
            try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.hasSuffix(suffix) }.sorted()
        }
        try await waitUntil("the next segment's file was made") { (try? files(".next.tmp").count) == 1 }
        let event = [UInt8](repeating: 7, count: 1_000)
        var id: Int64 = 1
        while try files(".seg").count < 2 {
            _ = try store.append(runId: "run", firstEventId: id, events: [event])
            id += 1
        }
        try await waitUntil("the one after it was made") {
            (try? files(".next.tmp")) == ["history-00000000000000000003.seg.next.tmp"]
        }
        #expect(try store.read(runId: "run", fromEventId: 1, maxEvents: .max, maxBytes: .max).count == Int(id - 1))
    }

    @Test("on a full disk the writeback backs off instead of retrying every look, and resumes once space returns")
    func writebackBacksOffOnAFullDisk() async throws {
        let directory = try temporaryDirectory()
        defer {
            StorageFaultInjection.clear(pathContaining: directory)
            try? FileManager.default.removeItem(atPath: directory)
        }
        let store = try HistoryFileStore(directory: directory)
        _ = try store.append(runId: "run", firstEventId: 1, events: [[UInt8](repeating: 7, count: 3_000)])
        StorageFaultInjection.failNext(.write, pathContaining: directory, errno: ENOSPC)
        var failures: Int { StorageFaultInjection.injectedFailures(pathContaining: directory) }
        let started = ContinuousClock.now
        let maintenance = HistoryMaintenance.start(store, writebackBytes: 2_048, writebackInterval: .milliseconds(1),
                                                   logger: Logger(label: "test.history.maintenance"))
        defer {
            maintenance.cancel()
            store.close()
        }
        try await waitUntil("the writeback met the full disk") { failures > 0 }
        // A look every millisecond (at least: a busy machine stretches them). Without the
        // backoff every look is a failed try. With it, the gaps double up to 64 looks: about 7
        // tries in the first 134 looks, then one per 65. The bound allows twice that against the
        // time that really passed (a busy test pool can stretch the sleep well past 400 ms).
        try await Task.sleep(for: .milliseconds(400))
        let tries = failures
        let elapsed = ContinuousClock.now - started
        #expect(tries <= 8 + Int(elapsed / .milliseconds(32)), "\(tries) failed writes in \(elapsed)")
        #expect(store.unsyncedBytes > 0)
        StorageFaultInjection.clear(pathContaining: directory)
        try await waitUntil("the writeback synced once space returned") { store.unsyncedBytes == 0 }
    }
}
