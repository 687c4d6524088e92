import BallastStorage
import Logging

/// Background compaction of a node's history store, off the Raft loop thread.
public enum HistoryMaintenance {
    /// Starts a task that calls `compactIfNeeded()` every `interval` (reclaiming one segment per
    /// call while there is work) until cancelled or the store fails or closes.
    public static func start(_ store: HistoryFileStore, every interval: Duration = .seconds(2), logger: Logger) -> Task<Void, Never> {
        Task.detached(priority: .utility) {
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
        }
    }
}
