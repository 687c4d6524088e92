import Logging
import NIOCore
import Synchronization

/// A bound on the connections a listening port keeps open, so that whoever can reach the
/// port cannot take every file descriptor of the process (the log, the history files and the
/// other ports need them): a connection over the bound is closed at accept.
final class ConnectionCap: Sendable {
    /// Connections kept open at most.
    let limit: Int
    private let open = Atomic<Int>(0)
    private let refusedCount = Atomic<Int>(0)

    init(limit: Int) {
        precondition(limit >= 1, "a connection cap must allow one connection")
        self.limit = limit
    }

    /// Counts `channel` in if there is room (uncounted again when it closes); false: close it.
    func admit(_ channel: any Channel) -> Bool {
        guard open.wrappingAdd(1, ordering: .relaxed).newValue <= limit else {
            open.wrappingSubtract(1, ordering: .relaxed)
            refusedCount.wrappingAdd(1, ordering: .relaxed)
            return false
        }
        channel.closeFuture.whenComplete { [self] _ in open.wrappingSubtract(1, ordering: .relaxed) }
        return true
    }

    /// Connections open now.
    var openConnections: Int { open.load(ordering: .relaxed) }
    /// Connections closed at accept because the cap was reached, since the port opened.
    var refusedConnections: Int { refusedCount.load(ordering: .relaxed) }
}

/// Why a connection was closed at accept.
struct ConnectionCapReached: Error, CustomStringConvertible {
    let port: String
    let limit: Int
    var description: String { "the \(port) port keeps at most \(limit) connections open" }
}

/// Closes a connection that has not done what it must within a time: deliver a complete
/// request (the admin port, from its opening or its last answer) or say hello (the Raft port).
/// Idle and trickling connections cannot hold a slot for ever. Use on the channel's event loop.
final class ConnectionDeadline {
    private let channel: any Channel
    private let limit: TimeAmount
    private let reason: String
    private let logger: Logger
    private var scheduled: Scheduled<Void>?

    init(channel: any Channel, limit: TimeAmount, reason: String, logger: Logger) {
        self.channel = channel
        self.limit = limit
        self.reason = reason
        self.logger = logger
    }

    /// Starts (or restarts) the countdown.
    func arm() {
        scheduled?.cancel()
        let channel = self.channel, logger = self.logger, reason = self.reason
        scheduled = channel.eventLoop.scheduleTask(in: limit) {
            logger.debug("closing a connection", metadata: ["reason": "\(reason)",
                                                            "remote": "\(channel.remoteAddress.map { "\($0)" } ?? "?")"])
            channel.close(promise: nil)
        }
    }

    /// Stops the countdown (the connection did what it must).
    func disarm() {
        scheduled?.cancel()
        scheduled = nil
    }
}
