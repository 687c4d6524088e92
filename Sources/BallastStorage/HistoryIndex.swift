#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Closes a file descriptor (for types that have a `close()` method of their own).
func closeDescriptor(_ fd: Int32) { _ = close(fd) }

/// An open history segment file; the descriptor is closed when the last reference goes, so a
/// reader holding one keeps reading a segment that compaction has already unlinked.
final class HistorySegment: Sendable {
    let sequence: UInt64
    let name: String
    let path: String
    let fd: Int32

    init(sequence: UInt64, directory: String, writable: Bool) throws(HistoryError) {
        self.sequence = sequence
        name = HistoryFormat.segmentName(sequence)
        path = directory + "/" + name
        do { fd = try Posix.open(path, writable ? O_RDWR : O_RDONLY) } catch { throw HistoryError.wrap(error) }
    }

    deinit { _ = close(fd) }

    /// Reads `count` bytes at `offset`; fewer only at the end of the file.
    func read(offset: Int, count: Int) throws(HistoryError) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        var done = 0
        while done < count {
            let got = bytes.withUnsafeMutableBytes { buffer in
                pread(fd, buffer.baseAddress.map { $0 + done }, count - done, off_t(offset + done))
            }
            if got < 0 {
                if errno == EINTR { continue }
                throw .io(operation: "pread", path: path, errno: errno)
            }
            if got == 0 { break }
            done += got
        }
        if done < count { bytes.removeSubrange(done...) }
        return bytes
    }

    /// Reads and verifies the record described by `ref`.
    func readRecord(_ ref: HistoryRecordRef) throws(HistoryError) -> HistoryRecord {
        try verifiedRecord(read(offset: ref.offset, count: ref.size), ref)
    }

    /// Reads the bytes of the record described by `ref`, verified (for copying them verbatim).
    func readRecordBytes(_ ref: HistoryRecordRef) throws(HistoryError) -> [UInt8] {
        let bytes = try read(offset: ref.offset, count: ref.size)
        _ = try verifiedRecord(bytes, ref)
        return bytes
    }

    /// The record `bytes` hold, checked against `ref`.
    private func verifiedRecord(_ bytes: [UInt8], _ ref: HistoryRecordRef) throws(HistoryError) -> HistoryRecord {
        guard bytes.count == ref.size else {
            throw .unreadableRecord(file: name, offset: ref.offset, reason: "file ends after \(bytes.count) of \(ref.size) bytes")
        }
        let decoded = bytes.withUnsafeBytes { HistoryFormat.decodeRecord($0, at: 0) }
        switch decoded {
        case .invalid(let reason):
            throw .unreadableRecord(file: name, offset: ref.offset, reason: reason)
        case .record(let record, _):
            guard record.type == .events, record.firstEventId == ref.firstEventId, record.events.count == ref.eventCount else {
                throw .unreadableRecord(file: name, offset: ref.offset, reason: "record does not match the index")
            }
            return record
        }
    }
}

/// Where one record of a run lives.
struct HistoryRecordRef: Sendable, Equatable {
    /// The segment's sequence number.
    var segment: UInt64
    /// Byte offset of the record in the segment.
    var offset: Int
    /// Bytes the record occupies, padding included.
    var size: Int
    /// The id of the record's first event.
    var firstEventId: Int64
    /// How many events the record holds.
    var eventCount: Int

    /// The id of the record's last event.
    var lastEventId: Int64 { firstEventId + Int64(eventCount) - 1 }
}

/// The in-memory index of one run: its records in event order, contiguous from event 1.
struct RunHistoryIndex: Sendable {
    var records: [HistoryRecordRef] = []
    var eventCount: Int64 = 0
    var contentHash: UInt64 = HistoryContentHash.empty

    /// Adds the records of events written through `lastEventId`, whose content hashes sum to `contentHash`.
    mutating func appended(records newRecords: [HistoryRecordRef], contentHash newHash: UInt64, lastEventId: Int64) {
        records.append(contentsOf: newRecords)
        contentHash &+= newHash
        eventCount = lastEventId
    }
}

/// The store's index of runs, split into 64 shards by the run id's hash. A single dictionary
/// rehashed every run at once when it grew (each doubling, on the Raft loop, on every node at the
/// same index), and the first append after a frozen view (a snapshot's `exportView`) copied the
/// whole index; both grew with the retained runs. Shards grow and are copied one at a time.
/// Iteration order is unspecified, as a dictionary's.
struct HistoryRunTable: Sendable, Sequence {
    private static let shardBits = 6
    private var shards: [[String: RunHistoryIndex]] = Array(repeating: [:], count: 1 << shardBits)
    /// Runs in all shards.
    private(set) var count = 0

    private static func shard(_ runId: String) -> Int {
        Int(UInt(bitPattern: runId.hashValue) >> (UInt.bitWidth - shardBits))
    }

    /// The run's entry; assigning nil removes it. Changes happen in place.
    subscript(runId: String) -> RunHistoryIndex? {
        get { shards[Self.shard(runId)][runId] }
        set {
            let shard = Self.shard(runId)
            let before = shards[shard].count
            shards[shard][runId] = newValue
            count += shards[shard].count - before
        }
        _modify {
            let shard = Self.shard(runId)
            let before = shards[shard].count
            yield &shards[shard][runId]
            count += shards[shard].count - before
        }
    }

    /// The run's entry, an empty one if absent; changed in place (and then kept).
    subscript(runId: String, default empty: @autoclosure () -> RunHistoryIndex) -> RunHistoryIndex {
        get { self[runId] ?? empty() }
        _modify {
            let shard = Self.shard(runId)
            let before = shards[shard].count
            yield &shards[shard][runId, default: empty()]
            count += shards[shard].count - before
        }
    }

    @discardableResult
    mutating func removeValue(forKey runId: String) -> RunHistoryIndex? {
        let shard = Self.shard(runId)
        guard let removed = shards[shard].removeValue(forKey: runId) else { return nil }
        count -= 1
        return removed
    }

    mutating func reserveCapacity(_ runs: Int) {
        for shard in shards.indices { shards[shard].reserveCapacity(runs >> Self.shardBits + 1) }
    }

    struct Iterator: IteratorProtocol {
        fileprivate var shards: IndexingIterator<[[String: RunHistoryIndex]]>
        fileprivate var current: Dictionary<String, RunHistoryIndex>.Iterator?

        mutating func next() -> (key: String, value: RunHistoryIndex)? {
            while true {
                if let element = current?.next() { return element }
                guard let shard = shards.next() else { return nil }
                current = shard.makeIterator()
            }
        }
    }

    func makeIterator() -> Iterator { Iterator(shards: shards.makeIterator(), current: nil) }
}

/// Bytes of records in a segment, and how many of them still belong to a live run.
struct SegmentUsage: Sendable {
    var totalBytes = 0
    var liveBytes = 0
}

/// What `HistoryFileStore.summary(runId:)` tells about a stored run.
public struct HistoryRunSummary: Sendable, Equatable {
    /// Events stored (ids 1 through this).
    public var eventCount: Int64
    /// `HistoryContentHash` of the stored events.
    public var contentHash: UInt64

    /// Creates a summary.
    public init(eventCount: Int64, contentHash: UInt64) {
        self.eventCount = eventCount
        self.contentHash = contentHash
    }
}

/// Counters describing the store (for metrics and tests).
public struct HistoryStoreStatistics: Sendable, Equatable {
    /// Runs with a stored history.
    public var runCount = 0
    /// Segment files.
    public var segmentCount = 0
    /// Record bytes that belong to live runs.
    public var liveBytes = 0
    /// Record bytes in all segments (live, deleted and tombstones).
    public var totalBytes = 0
    /// Segments reclaimed by compaction since open.
    public var compactedSegments = 0

    /// All zero.
    public init() {}
}

/// What opening the store found and repaired.
public struct HistoryRecoveryReport: Sendable, Equatable {
    /// The file and byte offset where a torn tail was cut, and why the bytes there were invalid.
    public var tornTail: TornTail?
    /// Temporary files deleted.
    public var removedTemporaryFiles: [String] = []

    /// A cut torn tail.
    public struct TornTail: Sendable, Equatable {
        public var file: String
        public var offset: Int
        public var reason: String
    }
}

/// The mutable state of an open store, guarded by its mutex.
struct HistoryState {
    var runs: HistoryRunTable
    var segments: [UInt64: HistorySegment]
    var usage: [UInt64: SegmentUsage]
    var activeSequence: UInt64
    var activeEnd: Int
    var failure: String?
    var isClosed = false
    /// The descriptor holding the directory's `LOCK`, until the store is closed.
    var lockFD: Int32?
    var compactedSegments = 0
    /// A compaction is between its plan and its end (`HistoryFileStore.compactIfNeeded`).
    var compacting = false

    /// Throws if the store was closed or a write failed.
    func checkUsable() throws(HistoryError) {
        if isClosed { throw .closed }
        if let failure { throw .failed(reason: failure) }
    }

    /// The active (last) segment.
    var active: HistorySegment {
        guard let segment = segments[activeSequence] else { preconditionFailure("the active history segment is not open") }
        return segment
    }

    /// The records of `run` that hold events `from...through`, with their open segments.
    func locate(_ run: RunHistoryIndex, from: Int64, through: Int64) -> [(HistoryRecordRef, HistorySegment)] {
        guard from <= through else { return [] }
        // Records are sorted and contiguous: binary search the first one that ends at or after `from`.
        var low = 0, high = run.records.count
        while low < high {
            let middle = (low + high) / 2
            if run.records[middle].lastEventId < from { low = middle + 1 } else { high = middle }
        }
        var located: [(HistoryRecordRef, HistorySegment)] = []
        var position = low
        while position < run.records.count, run.records[position].firstEventId <= through {
            let ref = run.records[position]
            guard let segment = segments[ref.segment] else { preconditionFailure("a live record points at a closed segment") }
            located.append((ref, segment))
            position += 1
        }
        return located
    }

    var statistics: HistoryStoreStatistics {
        var statistics = HistoryStoreStatistics()
        statistics.runCount = runs.count
        statistics.segmentCount = segments.count
        statistics.liveBytes = usage.values.reduce(0) { $0 + $1.liveBytes }
        statistics.totalBytes = usage.values.reduce(0) { $0 + $1.totalBytes }
        statistics.compactedSegments = compactedSegments
        return statistics
    }
}

/// Reads events `from...through` out of located records (no lock held: file reads only).
func readEvents(_ located: [(HistoryRecordRef, HistorySegment)], from: Int64, through: Int64,
                maxBytes: Int) throws(HistoryError) -> [[UInt8]] {
    var events: [[UInt8]] = []
    var bytes = 0
    for (ref, segment) in located {
        let record = try segment.readRecord(ref)
        var id = ref.firstEventId
        for event in record.events {
            defer { id += 1 }
            guard id >= from else { continue }
            guard id <= through else { return events }
            // A page always holds at least one event, however large.
            if !events.isEmpty, bytes + event.count > maxBytes { return events }
            events.append(event)
            bytes += event.count
        }
    }
    return events
}
