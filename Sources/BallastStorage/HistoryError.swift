#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Everything that can go wrong in the history store, with the run, file or offset involved.
public enum HistoryError: Error, Sendable, Equatable, CustomStringConvertible {
    /// An append would leave a gap in the run's history.
    case gap(runId: String, expected: Int64, got: Int64)
    /// An event with an already stored id differs from the stored bytes (this replica diverged).
    case conflict(runId: String, eventId: Int64)
    /// The run id is empty or longer than the format allows.
    case invalidRunId(String)
    /// An event id below 1 was offered.
    case invalidEventId(runId: String, eventId: Int64)
    /// A record before the tail of the last segment (or in an older segment) is damaged.
    case corruptRecord(file: String, offset: Int, reason: String)
    /// A segment's header is damaged or belongs to another format.
    case corruptSegmentHeader(file: String, reason: String)
    /// The records of a run do not form one contiguous history from event 1.
    case inconsistentRun(runId: String, reason: String)
    /// A record read back for a request no longer verifies.
    case unreadableRecord(file: String, offset: Int, reason: String)
    /// Another process holds the directory's lock.
    case directoryLocked(path: String)
    /// A system call failed.
    case io(operation: String, path: String, errno: Int32)
    /// An earlier write failed: the store refuses further calls until it is reopened.
    case failed(reason: String)
    /// The store was closed.
    case closed

    /// Whether a system call failed for lack of space (ENOSPC or EDQUOT): the store is still
    /// usable and the same call may be retried once space is freed.
    public var isNoSpace: Bool {
        if case let .io(_, _, code) = self { return code == ENOSPC || code == EDQUOT }
        return false
    }

    public var description: String {
        switch self {
        case let .gap(runId, expected, got):
            return "history of run \(runId): expected event \(expected), got \(got); events must be appended in order"
        case let .conflict(runId, eventId):
            return "history of run \(runId): event \(eventId) differs from the stored one; this replica diverged"
        case let .invalidRunId(runId):
            return "run id \"\(runId.prefix(64))\" is empty or longer than \(HistoryFormat.maxRunIdBytes) bytes"
        case let .invalidEventId(runId, eventId):
            return "history of run \(runId): event id \(eventId) is below 1"
        case let .corruptRecord(file, offset, reason):
            return "corrupt history record in \(file) at byte offset \(offset): \(reason); refusing to open (restore this node's data from a peer)"
        case let .corruptSegmentHeader(file, reason):
            return "corrupt history segment header in \(file): \(reason)"
        case let .inconsistentRun(runId, reason):
            return "the stored history of run \(runId) is inconsistent: \(reason); refusing to open"
        case let .unreadableRecord(file, offset, reason):
            return "history record in \(file) at byte offset \(offset) no longer verifies: \(reason)"
        case let .directoryLocked(path):
            return "history directory \(path) is locked by another open store"
        case let .io(operation, path, errno):
            return "\(operation) failed on \(path): errno \(errno)"
        case let .failed(reason):
            return "the history store is unusable after an earlier failure (\(reason)); restart the node to recover"
        case .closed:
            return "the history store is closed"
        }
    }

    /// Wraps a failure of the shared POSIX helpers.
    static func wrap(_ error: any Error) -> HistoryError {
        if let history = error as? HistoryError { return history }
        if let storage = error as? StorageError {
            switch storage {
            case let .io(operation, path, errno): return .io(operation: operation, path: path, errno: errno)
            case let .directoryLocked(path): return .directoryLocked(path: path)
            default: return .failed(reason: "\(storage)")
            }
        }
        return .failed(reason: "\(error)")
    }
}
