import BallastRaft

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The durable Raft log of one node: fixed-size segment files of checksummed records, plus snapshot files.
///
/// Ownership: a `WriteAheadLog` is not thread-safe. Exactly one thread or actor owns it at a
/// time (the node's storage shell, or a `LogWriter`); hand it over, never share it.
/// Hard state is stored as WAL records (each segment starts with the current one), so one
/// `fdatasync` in `sync()` makes entries and hard state durable together. See docs/storage.md.
public final class WriteAheadLog: RaftLogStore {
    /// Tuning knobs; the defaults suit a server.
    public struct Options: Sendable {
        /// Capacity of each segment file; a record never spans two segments.
        public var segmentSizeBytes: Int
        /// Encoded bytes kept in memory before they are written to the file (not synced).
        public var maxBufferedBytes: Int
        /// Whether new segments are preallocated to their full size.
        public var preallocate: Bool

        /// Creates options (64 MiB segments, 1 MiB write buffer, preallocation on).
        public init(segmentSizeBytes: Int = 64 << 20, maxBufferedBytes: Int = 1 << 20, preallocate: Bool = true) {
            precondition(segmentSizeBytes >= 4096 && segmentSizeBytes <= WALFormat.maxSegmentSizeBytes
                         && segmentSizeBytes % WALFormat.alignment == 0,
                         "segmentSizeBytes must be a multiple of 8 between 4 KiB and 4 GiB")
            precondition(maxBufferedBytes > 0, "maxBufferedBytes must be positive")
            self.segmentSizeBytes = segmentSizeBytes
            self.maxBufferedBytes = maxBufferedBytes
            self.preallocate = preallocate
        }
    }

    /// Counters for tests, benchmarks and metrics.
    public struct Statistics: Sendable {
        /// `fdatasync` calls on segment files.
        public var dataSyncs = 0
        /// Bytes handed to the operating system.
        public var bytesWritten = 0
        /// Records encoded (entries, hard states, truncations, resets).
        public var recordsAppended = 0
        /// Segment files created.
        public var segmentsCreated = 0
        /// Segment files deleted by compaction or snapshot install.
        public var segmentsDeleted = 0
    }

    /// An open segment file receiving appends.
    struct ActiveSegment {
        var info: SegmentInfo
        var descriptor: Int32
        var sizeBytes: Int
        var writtenEnd: Int
    }

    /// The data directory.
    public let directory: String
    /// The options the log was opened with.
    public let options: Options
    /// Counters since the log was opened.
    public internal(set) var statistics = Statistics()
    /// What recovery found and repaired when the log was opened.
    public private(set) var recoveryReport: RecoveryReport
    /// The index of the last entry (or of the snapshot when the log after it is empty).
    public internal(set) var lastIndex: LogIndex
    /// The last index made durable by `sync()`.
    public internal(set) var durableIndex: LogIndex
    /// The metadata of the stored snapshot, if any.
    public internal(set) var snapshotMetadata: SnapshotMetadata?

    var segments: [SegmentInfo]
    var active: ActiveSegment
    var pending: [UInt8] = []
    var hardState: HardState
    var needsDataSync = false
    var lockDescriptor: Int32
    var restored: RestoredState?
    var failure: String?
    var isClosed = false

    /// Opens (creating if needed) the log in `directory`, recovering and repairing a torn tail.
    ///
    /// Throws a `StorageError` naming the file and offset if data before the tail is corrupt:
    /// the node must then refuse to start.
    public init(directory: String, options: Options = Options()) throws {
        self.directory = directory
        self.options = options
        try Posix.makeDirectory(directory)
        lockDescriptor = try Posix.lockFile(directory + "/LOCK")
        let resetNeeded: Bool
        do {
            for name in try Posix.listDirectory(directory) where name.hasSuffix(".tmp") {
                try Posix.unlink(directory + "/" + name)
            }
            let recovery = try Recovery.read(directory: directory)
            resetNeeded = recovery.needsReset
            recoveryReport = recovery.report
            restored = recovery.state
            hardState = recovery.state.hardState
            snapshotMetadata = recovery.state.snapshot?.metadata
            lastIndex = recovery.state.entries.last?.index ?? recovery.state.snapshot?.metadata.index ?? .zero
            durableIndex = lastIndex
            segments = recovery.closedSegments
            active = try Self.openActive(recovery.last, directory: directory, options: options)
            if recovery.last == nil { statistics.segmentsCreated = 1 }
        } catch {
            _ = systemClose(lockDescriptor)
            throw error
        }
        try finishOpening(needsReset: resetNeeded)
    }

    /// Writes what opening requires: the first segment's hard state, or a reset after a stale log.
    private func finishOpening(needsReset: Bool) throws {
        if active.writtenEnd == WALFormat.segmentHeaderSize {
            // A new (or never written) segment starts with the hard state, so compaction never loses it.
            encode(.hardState(hardState))
        }
        if needsReset {
            try appendRecord(.reset(index: snapshotMetadata?.index ?? .zero, term: snapshotMetadata?.term ?? .zero),
                             payloadCount: 0)
        }
        try sync()
    }

    deinit {
        if !isClosed {
            _ = systemClose(active.descriptor)
            _ = systemClose(lockDescriptor)
        }
    }
}
