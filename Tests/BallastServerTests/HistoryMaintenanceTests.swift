import BallastServer
import BallastStorage
import Foundation
import Logging
import Testing

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
}
