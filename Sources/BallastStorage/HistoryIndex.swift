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

    /// Reads `count` bytes at `offset` of this segment, taking those at or past `tail.start`
    /// from `tail` when it holds this segment's staged bytes (`HistoryState.staged`).
    func read(offset: Int, count: Int, tail: StagedTail) throws(HistoryError) -> [UInt8] {
        guard tail.sequence == sequence, offset + count > tail.start else { return try read(offset: offset, count: count) }
        var bytes: [UInt8] = []
        if offset < tail.start {
            bytes = try read(offset: offset, count: tail.start - offset)
            // A file shorter than what was written to it: the caller's checks report it.
            guard bytes.count == tail.start - offset else { return bytes }
        }
        let from = max(offset, tail.start) - tail.start
        let to = min(offset + count - tail.start, tail.bytes.count)
        if from < to { bytes.append(contentsOf: tail.bytes[from ..< to]) }
        return bytes
    }

    /// Reads the bytes of the record described by `ref`, verified (for copying them verbatim).
    func readRecordBytes(_ ref: HistoryRecordRef) throws(HistoryError) -> [UInt8] {
        let bytes = try read(offset: ref.offset, count: ref.size)
        _ = try verifiedRecord(bytes, ref)
        return bytes
    }

    /// The record `bytes` hold, checked against `ref`.
    func verifiedRecord(_ bytes: [UInt8], _ ref: HistoryRecordRef) throws(HistoryError) -> HistoryRecord {
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
///
/// Each run id is hashed once per access and the hash is stored beside it (`HashedRunId`, as the
/// engine's `ShardedDictionary` does): a probe compares stored hashes before the strings, so an
/// append of a new run (every start, on every node) no longer reads the strings of every run it
/// probes past (cache misses, and `memcmp` on ids of equal length), and growing a shard does not
/// hash its run ids again.
struct HistoryRunTable: Sendable, Sequence {
    fileprivate static let shardBits = 6
    private var shards: [[HashedRunId: RunHistoryIndex]] = Array(repeating: [:], count: 1 << shardBits)
    /// Runs in all shards.
    private(set) var count = 0

    /// The run's entry; assigning nil removes it. Changes happen in place.
    subscript(runId: String) -> RunHistoryIndex? {
        get { self[HashedRunId(runId)] }
        set { self[HashedRunId(runId)] = newValue }
        _modify { yield &self[HashedRunId(runId)] }
    }

    /// The run's entry, by a run id hashed already; assigning nil removes it.
    subscript(key: HashedRunId) -> RunHistoryIndex? {
        get { shards[key.shard][key] }
        set {
            let before = shards[key.shard].count
            shards[key.shard][key] = newValue
            count += shards[key.shard].count - before
        }
        _modify {
            let before = shards[key.shard].count
            yield &shards[key.shard][key]
            count += shards[key.shard].count - before
        }
    }

    /// The run's entry, an empty one if absent; changed in place (and then kept).
    subscript(key: HashedRunId, default empty: @autoclosure () -> RunHistoryIndex) -> RunHistoryIndex {
        get { self[key] ?? empty() }
        _modify {
            let before = shards[key.shard].count
            yield &shards[key.shard][key, default: empty()]
            count += shards[key.shard].count - before
        }
    }

    @discardableResult
    mutating func removeValue(forKey runId: String) -> RunHistoryIndex? {
        let key = HashedRunId(runId)
        guard let removed = shards[key.shard].removeValue(forKey: key) else { return nil }
        count -= 1
        return removed
    }

    mutating func reserveCapacity(_ runs: Int) {
        for shard in shards.indices { shards[shard].reserveCapacity(runs >> Self.shardBits + 1) }
    }

    struct Iterator: IteratorProtocol {
        fileprivate var shards: IndexingIterator<[[HashedRunId: RunHistoryIndex]]>
        fileprivate var current: Dictionary<HashedRunId, RunHistoryIndex>.Iterator?

        mutating func next() -> (key: String, value: RunHistoryIndex)? {
            while true {
                if let element = current?.next() { return (element.key.runId, element.value) }
                guard let shard = shards.next() else { return nil }
                current = shard.makeIterator()
            }
        }
    }

    func makeIterator() -> Iterator { Iterator(shards: shards.makeIterator(), current: nil) }
}

/// A run id and its hash value (SipHash, keyed per process: run ids come from the engine, but
/// colliding keys must still not be cheap to make), computed once per access.
struct HashedRunId: Hashable, Sendable {
    let runId: String
    let hash: Int

    init(_ runId: String) {
        self.runId = runId
        hash = runId.hashValue
    }

    static func == (left: Self, right: Self) -> Bool { left.hash == right.hash && left.runId == right.runId }

    func hash(into hasher: inout Hasher) { hasher.combine(hash) }

    /// The stored hash mixed with the dictionary's per-storage seed (a multiply and a shift, not
    /// SipHash again): the hash is already well mixed; the seed only varies the order per storage.
    func _rawHashValue(seed: Int) -> Int {
        let mixed = UInt64(bitPattern: Int64(hash ^ seed)) &* 0x9e37_79b9_7f4a_7c15
        return Int(bitPattern: UInt(mixed ^ (mixed >> 32)))
    }

    /// The shard (the top bits; the shard's dictionary uses the low bits).
    var shard: Int { Int(UInt(bitPattern: hash) >> (UInt.bitWidth - HistoryRunTable.shardBits)) }
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
    /// Where the next record goes in the active segment: its file's end plus `staged`.
    var activeEnd: Int
    /// Records appended to the active segment but not yet written to its file (write-behind:
    /// one `pwrite` per `flush` instead of one per append). They are indexed and read from
    /// here; `flushStaged` writes them, and a lack of space there keeps them staged.
    var staged: [UInt8] = []
    var failure: String?
    var isClosed = false
    /// The end of what is known durable in the active segment (`sync()`); what lies past it
    /// must reach the disk before the segment is closed.
    var syncedEnd = HistoryFormat.segmentHeaderSize
    /// The descriptor holding the directory's `LOCK`, until the store is closed.
    var lockFD: Int32?
    var compactedSegments = 0
    /// A compaction is between its plan and its end (`HistoryFileStore.compactIfNeeded`).
    var compacting = false
    /// The next segment's file, made ahead by `HistoryFileStore.prepareNextSegment()` (off the
    /// thread that appends), which rotation renames into place instead of creating one.
    var prepared: PreparedHistorySegment?
    /// `prepareNextSegment()` is making a file (outside the lock).
    var preparing = false
    /// Segments renamed into place by rotation, and how many of those renames a directory
    /// fsync has made durable (`sync()` does it).
    var renames: UInt64 = 0
    var renamesSynced: UInt64 = 0

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

    /// Where the staged bytes begin in the active segment.
    var stagedStart: Int { activeEnd - staged.count }

    /// The staged bytes and where they go (what a reader without the lock needs of them).
    var stagedTail: StagedTail { StagedTail(sequence: activeSequence, start: stagedStart, bytes: staged) }

    /// The records of `run` that hold events `from...through`: where each is in its open
    /// segment, or a copy of its bytes while it is staged.
    func locate(_ run: RunHistoryIndex, from: Int64, through: Int64) -> [LocatedRecord] {
        guard from <= through else { return [] }
        // Records are sorted and contiguous: binary search the first one that ends at or after `from`.
        var low = 0, high = run.records.count
        while low < high {
            let middle = (low + high) / 2
            if run.records[middle].lastEventId < from { low = middle + 1 } else { high = middle }
        }
        var located: [LocatedRecord] = []
        var position = low
        while position < run.records.count, run.records[position].firstEventId <= through {
            let ref = run.records[position]
            guard let segment = segments[ref.segment] else { preconditionFailure("a live record points at a closed segment") }
            if ref.segment == activeSequence, ref.offset >= stagedStart {
                let start = ref.offset - stagedStart
                located.append(LocatedRecord(ref: ref, segment: segment, staged: Array(staged[start ..< start + ref.size])))
            } else {
                located.append(LocatedRecord(ref: ref, segment: segment, staged: nil))
            }
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

/// The staged bytes of the active segment (`HistoryState.staged`) and where they begin.
struct StagedTail: Sendable {
    var sequence: UInt64
    var start: Int
    var bytes: [UInt8]
}

/// A record found by `HistoryState.locate`: in its segment's file, or staged (its bytes copied).
struct LocatedRecord {
    var ref: HistoryRecordRef
    var segment: HistorySegment
    var staged: [UInt8]?

    /// The record, verified against `ref`.
    func read() throws(HistoryError) -> HistoryRecord {
        guard let staged else { return try segment.readRecord(ref) }
        return try segment.verifiedRecord(staged, ref)
    }
}

/// Reads events `from...through` out of located records (no lock held: file reads only).
func readEvents(_ located: [LocatedRecord], from: Int64, through: Int64,
                maxBytes: Int) throws(HistoryError) -> [[UInt8]] {
    var events: [[UInt8]] = []
    var bytes = 0
    for item in located {
        let ref = item.ref
        let record = try item.read()
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
