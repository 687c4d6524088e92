import Logging
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Decides whether this node's disk is too full to take new writes (docs/reliability.md, "Disk faults").
///
/// Two signals, either of which makes the disk "full":
/// * free space in the data directory's file system below `reserveBytes` (checked by `refresh()`,
///   which the node calls four times a second): new proposals are refused while the entries
///   already accepted still have the reserve to land in (the log, the history store);
/// * a write that actually failed for lack of space and is being retried (the log writer's
///   stall, or the history store during apply), reported through `noteWriteStalled`.
///
/// Thread-safe; `fullReason` is cheap (one lock) and is checked on every proposal.
public final class DiskSpaceGuard: Sendable {
    private struct State {
        var lowSpace: String?
        var stalledWrites: [String: String] = [:]
        var wasFull = false
    }

    /// The data directory whose file system is watched.
    public let directory: String
    /// Free bytes below which the node refuses new proposals (0 disables the check).
    public let reserveBytes: UInt64
    private let nodeID: UInt64
    private let logger: Logger
    private let state = Mutex(State())

    /// Creates a guard for `directory` (nothing is checked until `refresh()`).
    public init(directory: String, reserveBytes: UInt64, nodeID: UInt64, logger: Logger) {
        self.directory = directory
        self.reserveBytes = reserveBytes
        self.nodeID = nodeID
        self.logger = logger
    }

    /// Why the disk counts as full right now, or nil when writes are welcome.
    public var fullReason: String? {
        state.withLock { state in
            state.stalledWrites.keys.sorted().first.flatMap { state.stalledWrites[$0] } ?? state.lowSpace
        }
    }

    /// The status message clients get while the disk is full.
    public func clientMessage(_ reason: String) -> String {
        "disk full on node \(nodeID): \(reason); this node accepts no writes until space is freed (retry with backoff, or on another node)"
    }

    /// Free bytes available to this process in the data directory's file system, nil if unknown.
    public func freeBytes() -> UInt64? {
        var info = statvfs()
        guard statvfs(directory, &info) == 0 else { return nil }
        return UInt64(info.f_bavail) &* UInt64(info.f_frsize)
    }

    /// Re-reads the free space and updates the low-space signal.
    public func refresh() {
        guard reserveBytes > 0, let free = freeBytes() else { return }
        let reason: String? = free < reserveBytes
            ? "\(free >> 20) MiB free in \(directory), below the reserve of \(reserveBytes >> 20) MiB (--disk-reserve-bytes)"
            : nil
        update { $0.lowSpace = reason }
    }

    /// Records that a writer (`source`: "wal", "history") is retrying a write that failed for
    /// lack of space (`error`), or that it succeeded again (nil).
    public func noteWriteStalled(_ source: String, _ error: String?) {
        update { state in
            if let error { state.stalledWrites[source] = "\(source) write failed: \(error)" } else { state.stalledWrites[source] = nil }
        }
    }

    /// Applies `change` and logs when the disk becomes full or stops being full.
    private func update(_ change: (inout State) -> Void) {
        let (transition, reason) = state.withLock { state -> (Bool?, String?) in
            change(&state)
            let reason = state.stalledWrites.keys.sorted().first.flatMap { state.stalledWrites[$0] } ?? state.lowSpace
            let full = reason != nil
            defer { state.wasFull = full }
            return (full == state.wasFull ? nil : full, reason)
        }
        switch transition {
        case true?:
            logger.error("disk full: refusing new proposals (RESOURCE_EXHAUSTED) and handing over leadership",
                         metadata: ["node": "\(nodeID)", "reason": "\(reason ?? "")"])
        case false?:
            logger.notice("disk space recovered: accepting proposals again", metadata: ["node": "\(nodeID)"])
        case nil:
            break
        }
    }
}
