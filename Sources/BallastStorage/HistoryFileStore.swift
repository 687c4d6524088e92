import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The on-disk history store of one node (docs/storage.md, "History store"): append-only
/// segment files of CRC-32C-checked records, each holding the serialized events of one run
/// (opaque bytes, contiguous event ids), or a tombstone deleting a run. An in-memory index
/// maps each run to its records.
///
/// Appends are idempotent by event id: events already stored are compared byte for byte and
/// skipped; a different one is `HistoryError.conflict` and changes nothing. Appends are staged
/// in memory (indexed and readable at once) and written to the active segment by `flush()`,
/// which the node calls once per apply turn, in one `pwrite`; more than
/// `Options.writeBehindBytes` staged are written by the next append. Nothing is fsynced per
/// append (the Raft log replays them after a crash; see the docs); `sync()` writes and makes
/// durable everything appended so far and is called before a snapshot is saved.
///
/// Thread-safe: every method may be called from any thread. Reads take the lock only to find
/// the records, then read the files without it.
public final class HistoryFileStore: Sendable {
    /// Tunables.
    public struct Options: Sendable {
        /// A segment is closed (fsynced) and a new one started once it reaches this size.
        public var segmentSizeBytes: Int
        /// Compaction copies the oldest segment's live records forward once the dead bytes of
        /// the whole store exceed its live bytes and this many bytes.
        public var minimumDeadBytesToCompact: Int
        /// An append that finds at least this many bytes staged writes them first.
        public var writeBehindBytes: Int

        /// The defaults: 16 MiB segments, compaction past one segment of dead bytes, up to
        /// 1 MiB staged.
        public init(segmentSizeBytes: Int = 16 << 20, minimumDeadBytesToCompact: Int? = nil, writeBehindBytes: Int = 1 << 20) {
            precondition(segmentSizeBytes >= 4_096, "history segments must be at least 4 KiB")
            precondition(writeBehindBytes >= 0, "the write-behind limit cannot be negative")
            self.segmentSizeBytes = segmentSizeBytes
            self.minimumDeadBytesToCompact = minimumDeadBytesToCompact ?? segmentSizeBytes
            self.writeBehindBytes = writeBehindBytes
        }
    }

    /// The directory holding the segments.
    public let directory: String
    /// The options the store was opened with.
    public let options: Options
    /// What opening found and repaired.
    public let recoveryReport: HistoryRecoveryReport
    let state: Mutex<HistoryState>

    /// Opens (creating if needed) the store in `directory`: scans every segment, rebuilds the
    /// index, cuts a torn tail of the last segment, refuses corruption anywhere else.
    public init(directory: String, options: Options = Options()) throws(HistoryError) {
        self.directory = directory
        self.options = options
        let lockFD: Int32
        do {
            try Posix.makeDirectory(directory)
            lockFD = try Posix.lockFile(directory + "/LOCK")
        } catch {
            throw HistoryError.wrap(error)
        }
        do {
            var (recovered, report) = try HistoryRecovery.open(directory: directory)
            recovered.lockFD = lockFD
            recoveryReport = report
            state = Mutex(recovered)
        } catch {
            closeDescriptor(lockFD)
            throw error
        }
    }

    deinit { close() }

    /// Writes what is staged (best effort: what cannot be written is replayed from the Raft log
    /// after the restart, as after a crash), closes the store and releases the directory; later
    /// calls throw `closed`. Reads in progress finish (they hold their segments open).
    public func close() {
        state.withLock { state in
            if !state.isClosed, state.failure == nil { try? state.flushStaged() }
            if let prepared = state.prepared.take() { _ = try? Posix.unlink(prepared.path) }
            state.isClosed = true
            state.segments.removeAll()
            if let fd = state.lockFD { closeDescriptor(fd) }
            state.lockFD = nil
        }
    }

    /// Appends events with contiguous ids from `firstEventId`; returns how many were new.
    public func append(runId: String, firstEventId: Int64, events: [[UInt8]]) throws(HistoryError) -> Int {
        try Self.check(runId: runId)
        guard firstEventId >= 1 else { throw .invalidEventId(runId: runId, eventId: firstEventId) }
        guard !events.isEmpty else { return 0 }
        let options = self.options
        return try state.withLock { (state: inout HistoryState) throws(HistoryError) -> Int in
            try state.checkUsable()
            // Hashed once for both lookups. Only the count is read here: a copy of the run's entry
            // held across `write` would make its in-place append copy the run's record list.
            let key = HashedRunId(runId)
            let next = (state.runs[key]?.eventCount ?? 0) + 1
            guard firstEventId <= next else { throw .gap(runId: runId, expected: next, got: firstEventId) }
            let overlap = Int(min(Int64(events.count), next - firstEventId))
            if overlap > 0, let run = state.runs[key] {
                let through = firstEventId + Int64(overlap) - 1
                let stored = try readEvents(state.locate(run, from: firstEventId, through: through),
                                            from: firstEventId, through: through, maxBytes: .max)
                for position in 0..<overlap where stored[position] != events[position] {
                    throw .conflict(runId: runId, eventId: firstEventId + Int64(position))
                }
            }
            guard overlap < events.count else { return 0 }
            try state.write(runId: key, firstEventId: next, events: events[overlap...], options: options, directory: directory)
            return events.count - overlap
        }
    }

    /// Up to `maxEvents` events of a run from `fromEventId` on, stopping before `maxBytes`
    /// would be exceeded (at least one event is returned if any exists). Empty if the run or
    /// the events do not exist.
    public func read(runId: String, fromEventId: Int64, maxEvents: Int, maxBytes: Int = .max) throws(HistoryError) -> [[UInt8]] {
        guard fromEventId >= 1, maxEvents > 0 else { return [] }
        let through = fromEventId.addingReportingOverflow(Int64(maxEvents) - 1)
        let last = through.overflow ? Int64.max : through.partialValue
        let located = try state.withLock { (state: inout HistoryState) throws(HistoryError) in
            if state.isClosed { throw HistoryError.closed }
            guard let run = state.runs[runId] else { return [LocatedRecord]() }
            return state.locate(run, from: fromEventId, through: min(last, run.eventCount))
        }
        return try readEvents(located, from: fromEventId, through: last, maxBytes: maxBytes)
    }

    /// Deletes a run's history (a tombstone record); deleting an unknown run does nothing.
    public func delete(runId: String) throws(HistoryError) {
        try Self.check(runId: runId)
        let options = self.options
        try state.withLock { (state: inout HistoryState) throws(HistoryError) in
            try state.checkUsable()
            guard state.runs[runId] != nil else { return }
            // As in `write`: a lack of space throws here, before anything changed.
            if state.staged.count >= options.writeBehindBytes { try state.flushStaged() }
            guard let run = state.runs.removeValue(forKey: runId) else { return }
            for ref in run.records { state.usage[ref.segment, default: SegmentUsage()].liveBytes -= ref.size }
            try state.writeTombstone(runId: runId, options: options, directory: directory)
        }
    }

    /// The stored event count and content hash of a run, nil if none is stored.
    public func summary(runId: String) -> HistoryRunSummary? {
        state.withLock { state in
            state.runs[runId].map { HistoryRunSummary(eventCount: $0.eventCount, contentHash: $0.contentHash) }
        }
    }

    /// Every run with a stored history, sorted.
    public func runIds() -> [String] {
        state.withLock { state in state.runs.map(\.key).sorted() }
    }

    /// Writes the staged records to the active segment's file in one `pwrite`. A lack of space
    /// keeps them staged (still indexed and readable) and throws; the next `flush` tries again.
    /// Any other failure makes the store refuse writes.
    public func flush() throws(HistoryError) {
        try state.withLock { (state: inout HistoryState) throws(HistoryError) in
            try state.checkUsable()
            try state.flushStaged()
        }
    }

    /// Makes everything appended so far durable: writes what is staged, fdatasyncs the active
    /// segment (closed ones were synced when they were closed), and fsyncs the directory if a
    /// rotation renamed a segment into place since the last time. The disk work runs outside
    /// the store's lock, so appends (the Raft loop) do not wait for the disk meanwhile; a
    /// failure still makes the store refuse writes.
    public func sync() throws(HistoryError) {
        let (active, end, renames) = try state.withLock { (state: inout HistoryState) throws(HistoryError) in
            try state.checkUsable()
            try state.flushStaged()
            return (state.active, state.activeEnd, state.renames)
        }
        do {
            try Posix.dataSync(active.fd, path: active.path)
            try syncRenames(upTo: renames)
        } catch {
            state.withLock { state in
                if state.failure == nil { state.failure = "syncing \(active.name) failed: \(error)" }
            }
            throw HistoryError.wrap(error)
        }
        state.withLock { state in
            if state.activeSequence == active.sequence { state.syncedEnd = max(state.syncedEnd, end) }
        }
    }

    /// Fsyncs the directory if any of the first `renames` renames of segments into place is not
    /// yet known durable (outside the lock; the caller handles a failure).
    func syncRenames(upTo renames: UInt64) throws {
        guard state.withLock({ $0.renamesSynced }) < renames else { return }
        try Posix.syncDirectory(directory)
        state.withLock { $0.renamesSynced = max($0.renamesSynced, renames) }
    }

    /// Makes the file of the segment that comes after the active one (its header, fsynced)
    /// under a temporary name, so that closing the active segment is a rename on the thread
    /// that appends instead of two fsyncs (1–10 ms on the Raft loop). The disk work runs
    /// outside the store's lock. Returns whether it made one: false when the file is already
    /// there or being made, or when the active segment changed meanwhile (the file is removed).
    /// A failure (a full disk, say) changes nothing: rotation then creates the segment itself.
    @discardableResult
    public func prepareNextSegment() throws(HistoryError) -> Bool {
        let next = try state.withLock { (state: inout HistoryState) throws(HistoryError) -> UInt64? in
            try state.checkUsable()
            let next = state.activeSequence + 1
            guard !state.preparing, state.prepared?.sequence != next else { return nil }
            state.preparing = true
            return next
        }
        guard let next else { return false }
        let path = directory + "/" + HistoryFormat.segmentName(next) + ".next.tmp"
        do {
            try HistoryRecovery.writeSegmentHeaderFile(path, sequence: next)
        } catch {
            state.withLock { $0.preparing = false }
            throw error
        }
        // Nothing else was prepared meanwhile: `preparing` let one call through, and rotation
        // only ever takes a prepared file away.
        let kept = state.withLock { state -> Bool in
            state.preparing = false
            guard !state.isClosed, state.activeSequence + 1 == next else { return false }
            state.prepared = PreparedHistorySegment(sequence: next, path: path)
            return true
        }
        if !kept { _ = try? Posix.unlink(path) }
        return kept
    }

    /// Bytes of the active segment not yet known durable (staged ones included): what closing
    /// it would have to fdatasync, on the thread that appends. The node's writeback keeps this
    /// small with `sync()` on a thread of its own (`HistoryMaintenance`).
    public var unsyncedBytes: Int { state.withLock { $0.activeEnd - $0.syncedEnd } }

    /// Counters describing the store.
    public var statistics: HistoryStoreStatistics { state.withLock { $0.statistics } }

    static func check(runId: String) throws(HistoryError) {
        let count = runId.utf8.count
        guard count > 0, count <= HistoryFormat.maxRunIdBytes else { throw .invalidRunId(runId) }
    }
}

extension HistoryState {
    /// Stages `events` (ids from `firstEventId`) as one or more records at the end of the active
    /// segment, after writing what was staged before if it reached `writeBehindBytes` (so a
    /// lack of space there throws before anything of this call changed).
    mutating func write(runId key: HashedRunId, firstEventId: Int64, events: ArraySlice<[UInt8]>,
                        options: HistoryFileStore.Options, directory: String) throws(HistoryError) {
        let runId = key.runId
        if staged.count >= options.writeBehindBytes { try flushStaged() }
        // Encoded straight into the staged bytes: `activeEnd + written` is where each record goes.
        let stagedBefore = staged.count
        var written: Int { staged.count - stagedBefore }
        var refs: [HistoryRecordRef] = []
        var chunkStart = events.startIndex
        var chunkBytes = 0
        var id = firstEventId
        func flushChunk(upTo end: Int) {
            guard chunkStart < end else { return }
            let offset = activeEnd + written
            HistoryFormat.appendRecord(to: &staged, type: .events, runId: runId, firstEventId: id, events: events[chunkStart..<end])
            refs.append(HistoryRecordRef(segment: activeSequence, offset: offset, size: activeEnd + written - offset,
                                         firstEventId: id, eventCount: end - chunkStart))
            id += Int64(end - chunkStart)
            chunkStart = end
            chunkBytes = 0
        }
        for position in events.indices {
            let cost = 4 + events[position].count
            if chunkBytes + cost > HistoryFormat.maxRecordPayloadBytes { flushChunk(upTo: position) }
            chunkBytes += cost
        }
        flushChunk(upTo: events.endIndex)
        let recordBytes = written
        activeEnd += recordBytes
        var contentHash: UInt64 = 0
        var eventId = firstEventId
        for event in events {
            contentHash &+= HistoryContentHash.event(id: eventId, bytes: event)
            eventId += 1
        }
        // In place: a copy of the run's entry would share its record list, and appending to the
        // copy would copy the whole list.
        runs[key, default: RunHistoryIndex()].appended(records: refs, contentHash: contentHash, lastEventId: eventId - 1)
        usage[activeSequence, default: SegmentUsage()].totalBytes += recordBytes
        usage[activeSequence, default: SegmentUsage()].liveBytes += recordBytes
        try rotateIfFull(options: options, directory: directory)
    }

    /// Stages a tombstone for `runId` at the end of the active segment (dead bytes from the start).
    mutating func writeTombstone(runId: String, options: HistoryFileStore.Options, directory: String) throws(HistoryError) {
        var buffer: [UInt8] = []
        HistoryFormat.appendRecord(to: &buffer, type: .tombstone, runId: runId, firstEventId: 0, events: [])
        stage(buffer)
        usage[activeSequence, default: SegmentUsage()].totalBytes += buffer.count
        try rotateIfFull(options: options, directory: directory)
    }

    /// Adds whole records to the staged bytes of the active segment.
    mutating func stage(_ bytes: [UInt8]) {
        staged.append(contentsOf: bytes)
        activeEnd += bytes.count
    }

    /// Writes the staged records to the end of the active segment's file, then forgets them.
    mutating func flushStaged() throws(HistoryError) {
        guard !staged.isEmpty else { return }
        try writeToFile(staged, at: stagedStart)
        staged.removeAll(keepingCapacity: true)
    }

    /// Writes `bytes` at the end of the active segment, which must have nothing staged
    /// (compaction's copies, written at once so that they can be fsynced).
    mutating func writeAtEnd(_ bytes: [UInt8]) throws(HistoryError) {
        precondition(staged.isEmpty, "history records are written past staged ones")
        try writeToFile(bytes, at: activeEnd)
        activeEnd += bytes.count
    }

    /// Writes `bytes` at `offset`, the end of the active segment's file; a failure makes the
    /// store unusable (what reached the file is unknown until it is reopened and scanned),
    /// except a lack of space: then the file is cut back to its last whole record, nothing else
    /// changes, and the same write can be tried again once space is freed.
    private mutating func writeToFile(_ bytes: [UInt8], at offset: Int) throws(HistoryError) {
        let active = self.active
        do {
            try bytes.withUnsafeBytes { try Posix.pwriteAll(active.fd, $0, offset: offset, path: active.path) }
        } catch {
            let wrapped = HistoryError.wrap(error)
            // Cut what part of the write reached the file (segments are not preallocated, so
            // the file ends at `offset`): a shorter record written there later must not be
            // followed by whole records of this failed write, which recovery would take for
            // corruption. Cutting frees space, so it works on a full disk.
            if !wrapped.isNoSpace || (try? Posix.truncate(active.fd, size: offset, path: active.path)) == nil {
                failure = "write to \(active.name) failed: \(error)"
            }
            throw wrapped
        }
    }

    /// Closes the active segment (writes what is staged, fdatasync) and starts the next once it
    /// is full, so only the last segment can ever hold unsynced bytes. The next segment is the
    /// file `prepareNextSegment()` made, renamed into place, or else created here (two fsyncs).
    mutating func rotateIfFull(options: HistoryFileStore.Options, directory: String) throws(HistoryError) {
        guard activeEnd >= options.segmentSizeBytes else { return }
        try flushStaged()
        let active = self.active
        do {
            // Usually little or nothing is left to sync here: the node's writeback syncs as it goes.
            if syncedEnd < activeEnd { try Posix.dataSync(active.fd, path: active.path) }
            let next = activeSequence + 1
            if let ready = prepared, ready.sequence == next {
                // Made ahead (header fsynced): a rename, whose directory fsync the next `sync()`
                // does. At most one rename is ever pending: a crash may then lose only the last
                // segment's name, never leave a gap before a later one (which opening refuses).
                if renamesSynced < renames {
                    try Posix.syncDirectory(directory)
                    renamesSynced = renames
                }
                try Posix.rename(ready.path, directory + "/" + HistoryFormat.segmentName(next))
                prepared = nil
                renames += 1
            } else {
                if let stale = prepared.take() { _ = try? Posix.unlink(stale.path) }
                try HistoryRecovery.createSegment(directory: directory, sequence: next)
            }
            segments[next] = try HistorySegment(sequence: next, directory: directory, writable: true)
            usage[next] = SegmentUsage()
            activeSequence = next
            activeEnd = HistoryFormat.segmentHeaderSize
            syncedEnd = HistoryFormat.segmentHeaderSize
        } catch {
            // Lack of space leaves the full segment active (the records are written and indexed,
            // so a retried append finds them stored); the next write tries to rotate again.
            let wrapped = HistoryError.wrap(error)
            if !wrapped.isNoSpace { failure = "starting a new history segment failed: \(error)" }
            throw wrapped
        }
    }
}
