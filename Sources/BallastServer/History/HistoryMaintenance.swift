import BallastStorage
import Foundation
import Logging
import Synchronization

/// Background work on a node's history store, off the Raft loop thread: compaction, and
/// writeback of the active segment.
///
/// Writeback: closing a full segment fdatasyncs it, on the thread that appends (the Raft loop).
/// With 16 MiB of it never synced that took 31–37 ms per node at concurrency 256 (strace,
/// 2026-11-27), and longer on slower disks. A thread of its own syncs the active segment
/// (`HistoryFileStore.sync()`, whose fdatasync runs without the store's lock) whenever
/// `writebackBytes` are unsynced, so closing a segment finds little left to sync. It also makes
/// the next segment's file ahead of need (`prepareNextSegment()`): creating one on the loop
/// cost two more fsyncs, 1–10 ms.
public final class HistoryMaintenance: Sendable {
    private let compaction: Task<Void, Never>
    private let stopping = Atomic<Bool>(false)

    private init(compaction: Task<Void, Never>) {
        self.compaction = compaction
    }

    /// Starts compaction (`compactIfNeeded()` every `interval`, reclaiming one segment per call
    /// while there is work) and writeback (a look every `writebackInterval`, a `sync()` once
    /// `writebackBytes` are unsynced), until `cancel()` or the store fails or closes.
    public static func start(_ store: HistoryFileStore, every interval: Duration = .seconds(2),
                             writebackBytes: Int = 1 << 20, writebackInterval: Duration = .milliseconds(50),
                             logger: Logger) -> HistoryMaintenance {
        let maintenance = HistoryMaintenance(compaction: Task.detached(priority: .utility) {
            while !Task.isCancelled {
                do {
                    var reclaimed = 0
                    // Bounded burst, so one call never monopolizes the store's lock for long.
                    while reclaimed < 8, try store.compactIfNeeded() { reclaimed += 1 }
                    if reclaimed > 0 {
                        let statistics = store.statistics
                        logger.debug("history store compacted", metadata: [
                            "segments": "\(statistics.segmentCount)", "liveBytes": "\(statistics.liveBytes)",
                            "totalBytes": "\(statistics.totalBytes)",
                        ])
                    }
                } catch {
                    if case .closed? = error as? HistoryError { return }
                    logger.error("history compaction failed; it stops until the node restarts", metadata: ["error": "\(error)"])
                    return
                }
                try? await Task.sleep(for: interval)
            }
        })
        // A thread, not a task: fdatasync blocks, and the cooperative pool has one thread per core.
        let thread = Thread { [maintenance] in maintenance.writeback(store, bytes: writebackBytes, every: writebackInterval, logger: logger) }
        thread.name = "history-writeback"
        thread.start()
        return maintenance
    }

    /// Stops both (a sync in progress finishes).
    public func cancel() {
        compaction.cancel()
        stopping.store(true, ordering: .relaxed)
    }

    private func writeback(_ store: HistoryFileStore, bytes: Int, every interval: Duration, logger: Logger) {
        let micros = UInt32(clamping: microseconds(interval))
        // Looks skipped after a lack of space: doubling from one up to 64 (3.2 s at 50 ms), so a
        // full disk is not rewritten and cut back 20 times a second; reset by a success.
        var skip = 0
        var backoff = 1
        while !stopping.load(ordering: .relaxed) {
            if skip > 0 {
                skip -= 1
            } else {
                do {
                    if store.unsyncedBytes >= bytes { try store.sync() }
                    // Closing the active segment is then a rename on the Raft loop, not two fsyncs.
                    try store.prepareNextSegment()
                    backoff = 1
                } catch {
                    // A closed store ends the writeback quietly; a failed one refuses writes and
                    // the Raft loop stops the node. A lack of space is tried again later.
                    if case .closed = error { return }
                    if !error.isNoSpace {
                        logger.error("history writeback failed; it stops", metadata: ["error": "\(error)"])
                        return
                    }
                    skip = backoff
                    backoff = min(backoff * 2, 64)
                }
            }
            usleep(micros)
        }
    }
}
