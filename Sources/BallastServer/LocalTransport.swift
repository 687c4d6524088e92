import BallastRaft
import Synchronization

/// Delivers Raft messages between drivers in one process: for the in-process benchmark and for
/// tests. Messages to an unknown or disconnected node are dropped, as a network would.
public final class LocalTransport: RaftTransport {
    private let receivers = Mutex<[NodeID: @Sendable (Message) -> Void]>([:])

    /// Creates an empty transport; attach receivers with `connect`.
    public init() {}

    /// Routes messages addressed to `id` into `receive`.
    public func connect(_ id: NodeID, receive: @escaping @Sendable (Message) -> Void) {
        receivers.withLock { $0[id] = receive }
    }

    /// Stops delivering to `id` (a crashed or partitioned node).
    public func disconnect(_ id: NodeID) {
        _ = receivers.withLock { $0.removeValue(forKey: id) }
    }

    public func send(_ messages: [Message]) {
        for message in messages {
            let receive = receivers.withLock { $0[message.to] }
            receive?(message)
        }
    }
}
