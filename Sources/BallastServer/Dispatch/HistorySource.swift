import BallastEngine
import BallastProto
import Synchronization

/// Where the dispatcher reads a run's history for the workflow and query tasks it pushes.
/// Called from any thread (never the Raft loop thread, so a disk read cannot stall Raft).
protocol HistorySource: Sendable {
    /// Up to `maxEvents` events of run `runId` with ids from `fromEventId` on, in order.
    func events(runId: String, fromEventId: Int64, maxEvents: Int) -> [Ballast_V1_HistoryEvent]
    /// Records what an applied entry appended or deleted; called on the Raft loop thread, in log
    /// order, on every node. A source backed by the node's own history store does nothing here.
    func record(_ result: ApplyResult)
    /// The engine was replaced from a snapshot.
    func restored()
}

/// The stop-gap source until the node keeps histories on disk: every node records the events it
/// applies in memory. Known limits: it is lost on restart and on snapshot restore (a task of a
/// run started before then is pushed with the events recorded since), and it grows until runs'
/// retention ends.
final class InMemoryHistorySource: HistorySource {
    private let store = Mutex(InMemoryHistoryStore())

    init() {}

    func events(runId: String, fromEventId: Int64, maxEvents: Int) -> [Ballast_V1_HistoryEvent] {
        store.withLock { $0.read(runId: runId, fromEventId: fromEventId, maxEvents: maxEvents) }
    }

    func record(_ result: ApplyResult) {
        guard !result.events.isEmpty || !result.deletedRuns.isEmpty else { return }
        store.withLock { store in
            // A gap or conflict means this source missed entries (it started empty after a
            // restart): keep what is consistent rather than stop the node over a cache.
            for batch in result.events { try? store.append(run: batch.run, events: batch.events) }
            for run in result.deletedRuns { store.delete(runId: run.runId) }
        }
    }

    func restored() {}
}
