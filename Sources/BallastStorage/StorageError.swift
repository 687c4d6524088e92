#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import BallastRaft

/// Everything that can go wrong in the durable log, with the file, offset and expectation involved.
public enum StorageError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A record before the tail of the log is damaged: the data directory is corrupt.
    case corruptRecord(file: String, offset: Int, reason: String)
    /// A record's index does not follow the one before it.
    case indexGap(file: String, offset: Int, expected: LogIndex, found: LogIndex)
    /// A segment file between the first and the last one is missing.
    case missingSegment(expected: String, found: String)
    /// A segment file's header is damaged or belongs to another format.
    case corruptSegmentHeader(file: String, reason: String)
    /// A snapshot file is damaged (checksum, magic, version or length).
    case corruptSnapshot(file: String, reason: String)
    /// The log does not continue the snapshot: entries between them are missing.
    case missingEntries(snapshotIndex: LogIndex, firstLogIndex: LogIndex)
    /// An append does not continue the log (the caller broke the Raft contract).
    case nonContiguousAppend(expected: LogIndex, found: LogIndex)
    /// A record is larger than a segment can hold.
    case recordTooLarge(bytes: Int, limit: Int)
    /// A snapshot older than the stored one was offered.
    case staleSnapshot(stored: LogIndex, offered: LogIndex)
    /// Another process (or another open log) holds the directory's lock.
    case directoryLocked(path: String)
    /// A system call failed.
    case io(operation: String, path: String, errno: Int32)
    /// An earlier fsync failed: the log can no longer vouch for durability and must be reopened.
    case failed(reason: String)
    /// The log was closed.
    case closed

    /// Whether this is a system call that failed for lack of space (ENOSPC, or EDQUOT for a quota):
    /// a condition that can pass once space is freed.
    public var isNoSpace: Bool {
        if case let .io(_, _, code) = self { return code == ENOSPC || code == EDQUOT }
        return false
    }

    public var description: String {
        switch self {
        case let .corruptRecord(file, offset, reason):
            return "corrupt WAL record in \(file) at byte offset \(offset): \(reason); the data before the tail is damaged, refusing to start (replace this member: remove it, wipe its data directory and add it back under a new id, docs/operations.md \"Recovering a node\")"
        case let .indexGap(file, offset, expected, found):
            return "WAL index gap in \(file) at byte offset \(offset): expected \(expected), found \(found); refusing to start"
        case let .missingSegment(expected, found):
            return "WAL segment \(expected) is missing (found \(found) next); refusing to start"
        case let .corruptSegmentHeader(file, reason):
            return "corrupt WAL segment header in \(file): \(reason)"
        case let .corruptSnapshot(file, reason):
            return "corrupt snapshot file \(file): \(reason)"
        case let .missingEntries(snapshotIndex, firstLogIndex):
            return "the log starts at \(firstLogIndex) but the snapshot only covers up to \(snapshotIndex): entries are missing"
        case let .nonContiguousAppend(expected, found):
            return "append must continue the log at or before \(expected), got first index \(found)"
        case let .recordTooLarge(bytes, limit):
            return "a WAL record of \(bytes) bytes exceeds the segment capacity of \(limit) bytes; raise segmentSizeBytes"
        case let .staleSnapshot(stored, offered):
            return "snapshot at \(offered) is older than the stored snapshot at \(stored)"
        case let .directoryLocked(path):
            return "data directory \(path) is locked by another open log"
        case let .io(operation, path, code) where code == ENOSPC || code == EDQUOT:
            return "\(operation) failed on \(path): no space left on the device (errno \(code)); free space to resume"
        case let .io(operation, path, errno):
            return "\(operation) failed on \(path): errno \(errno)"
        case let .failed(reason):
            return "the log is unusable after an earlier failure (\(reason)); reopen it to recover"
        case .closed:
            return "the log is closed"
        }
    }
}
