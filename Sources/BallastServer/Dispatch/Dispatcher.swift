import BallastEngine
import BallastRaft
import Logging

/// The leader's duties around the engine: matching ready tasks to connected workers and firing
/// timers. It hears every applied entry's result and every leadership change on the Raft
/// driver's loop thread.
final class Dispatcher: @unchecked Sendable {
    let logger: Logger

    init(logger: Logger) {
        self.logger = logger
    }

    /// Leadership started (with a complete engine) or ended; on the loop thread.
    func leadershipChanged(_ event: LeadershipEvent) {
        logger.info("leadership changed", metadata: ["event": "\(event)"])
    }

    /// An engine entry was applied; on the loop thread.
    func applied(index: UInt64, result: ApplyResult) {}

    /// The engine was replaced from a snapshot; on the loop thread.
    func restored() {}
}
