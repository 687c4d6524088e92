import BallastEngine
import BallastProto

/// Where the dispatcher reads a run's history for the workflow and query tasks it pushes.
/// Called from any thread (never the Raft loop thread, so a disk read cannot stall Raft).
protocol HistorySource: Sendable {
    /// The stored encodings of up to `maxEvents` contiguous events of run `runId` from event id
    /// `fromEventId` on, stopping before `maxBytes` (at least one event); empty when unknown.
    func eventBytes(runId: String, fromEventId: Int64, maxEvents: Int, maxBytes: Int) -> [[UInt8]]
}

/// Reads the node's own history store (through its replicated state machine).
struct StoreHistorySource: HistorySource {
    let stateMachine: EngineStateMachine

    func eventBytes(runId: String, fromEventId: Int64, maxEvents: Int, maxBytes: Int) -> [[UInt8]] {
        (try? stateMachine.historyEventBytes(runId: runId, from: fromEventId, max: maxEvents, maxBytes: maxBytes)) ?? []
    }
}
