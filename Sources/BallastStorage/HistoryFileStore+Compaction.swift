extension HistoryFileStore {
    /// Reclaims the oldest segment when it holds nothing live, or when the store's dead bytes
    /// exceed both its live bytes and `minimumDeadBytesToCompact`: its live records are copied
    /// verbatim to the end of the active segment, the copies are fsynced, then the old file is
    /// unlinked (and the directory fsynced). Only the oldest segment is ever removed, so a
    /// tombstone is never dropped while an older segment still holds records of its run.
    ///
    /// The store's lock is held only to find the live records and to write and index their
    /// copies. Reading the old segment (closed, so it no longer changes), the fdatasync, the
    /// unlink and the directory's fsync happen without it, so appends (the Raft loop) do not
    /// wait for the disk meanwhile. One compaction runs at a time; a call made during another
    /// returns false.
    ///
    /// One segment per call, so the pause it causes stays bounded; returns whether it reclaimed one.
    @discardableResult
    public func compactIfNeeded() throws(HistoryError) -> Bool {
        guard let plan = try planCompaction() else { return false }
        defer { state.withLock { $0.compacting = false } }
        let copies = try copyForward(plan, records: try plan.readLiveRecords())
        try finishCompaction(plan, copiesIn: copies)
        return true
    }

    /// Chooses the segment to reclaim (under the lock) and lists its live records (without it);
    /// nil when there is nothing to reclaim or a compaction is already running.
    ///
    /// The list comes from a copy of the run index taken under the lock (copy-on-write: each
    /// shard is copied once, by the next write to it): walking every run's records under the
    /// lock held appends — the Raft loop — for the whole walk, which grows with the runs
    /// retained. The oldest segment is closed, so no record reaches it after the copy: the list
    /// holds every record live at copy time and more (runs deleted meanwhile), and `copyForward`
    /// checks each against the index again.
    func planCompaction() throws(HistoryError) -> CompactionPlan? {
        let options = self.options
        let chosen = try state.withLock { (state: inout HistoryState) throws(HistoryError) -> (HistorySegment, HistoryRunTable?)? in
            try state.checkUsable()
            guard !state.compacting, let oldest = state.segments.keys.min(), oldest != state.activeSequence,
                  let segment = state.segments[oldest] else { return nil }
            let statistics = state.statistics
            let dead = statistics.totalBytes - statistics.liveBytes
            let oldestLive = state.usage[oldest]?.liveBytes ?? 0
            guard oldestLive == 0 || (dead > statistics.liveBytes && dead >= options.minimumDeadBytesToCompact) else {
                return nil
            }
            state.compacting = true
            return (segment, oldestLive > 0 ? state.runs : nil)
        }
        guard let (segment, runs) = chosen else { return nil }
        // Live records of the segment, in file order (so the copies keep the runs' order too).
        var live: [CompactionPlan.LiveRecord] = []
        if let runs {
            for (runId, run) in runs {
                for (position, ref) in run.records.enumerated() where ref.segment == segment.sequence {
                    live.append(CompactionPlan.LiveRecord(runId: runId, position: position, ref: ref))
                }
            }
            live.sort { $0.ref.offset < $1.ref.offset }
        }
        return CompactionPlan(segment: segment, live: live)
    }

    /// Appends the copies of the records still live to the active segment and points the index
    /// at them (under the lock); returns the segment that holds the copies, not yet fsynced
    /// (nil when nothing was copied). A run deleted since the plan was made has nothing copied.
    func copyForward(_ plan: CompactionPlan, records: [[UInt8]]) throws(HistoryError) -> HistorySegment? {
        try state.withLock { (state: inout HistoryState) throws(HistoryError) -> HistorySegment? in
            try state.checkUsable()
            // The copies are written at once (they are fsynced next), behind what was staged.
            try state.flushStaged()
            let copies = state.active
            var buffer: [UInt8] = []
            var moved: [CompactionPlan.LiveRecord] = []
            for (item, bytes) in zip(plan.live, records) {
                guard let records = state.runs[item.runId]?.records, item.position < records.count,
                      records[item.position] == item.ref else { continue }
                var ref = item.ref
                ref.segment = state.activeSequence
                ref.offset = state.activeEnd + buffer.count
                buffer.append(contentsOf: bytes)
                moved.append(CompactionPlan.LiveRecord(runId: item.runId, position: item.position, ref: ref))
            }
            guard !buffer.isEmpty else { return nil }
            try state.writeAtEnd(buffer)
            state.usage[state.activeSequence, default: SegmentUsage()].totalBytes += buffer.count
            state.usage[state.activeSequence, default: SegmentUsage()].liveBytes += buffer.count
            // The originals are dead from now on, whatever happens to the rest of the compaction
            // (a later step that fails leaves a segment the next compaction finds empty).
            state.usage[plan.segment.sequence, default: SegmentUsage()].liveBytes -= buffer.count
            for item in moved { state.runs[item.runId]?.records[item.position] = item.ref }
            return copies
        }
    }

    /// Makes the copies durable, then removes the old segment's file and forgets it. The disk
    /// work runs without the lock; a failure makes the store refuse writes.
    func finishCompaction(_ plan: CompactionPlan, copiesIn copies: HistorySegment?) throws(HistoryError) {
        let old = plan.segment
        do {
            // The copies are durable before the original goes: their data, and the name of their
            // segment if rotation renamed it into place since the directory was last synced.
            if let copies { try Posix.dataSync(copies.fd, path: copies.path) }
            try syncRenames(upTo: state.withLock { $0.renames })
            try Posix.unlink(old.path)
            try Posix.syncDirectory(directory)
        } catch {
            state.withLock { state in
                if state.failure == nil { state.failure = "compacting \(old.name) failed: \(error)" }
            }
            throw HistoryError.wrap(error)
        }
        let options = self.options
        let directory = self.directory
        try state.withLock { (state: inout HistoryState) throws(HistoryError) in
            state.segments.removeValue(forKey: old.sequence)
            state.usage.removeValue(forKey: old.sequence)
            state.compactedSegments += 1
            // The copies may have filled the active segment.
            if !state.isClosed { try state.rotateIfFull(options: options, directory: directory) }
        }
    }
}

/// The segment a compaction reclaims and the live records it found there.
struct CompactionPlan {
    /// A live record: the run, its position in the run's records, where it is.
    struct LiveRecord {
        var runId: String
        var position: Int
        var ref: HistoryRecordRef
    }

    /// The oldest segment (closed: nothing is written to it any more).
    let segment: HistorySegment
    /// Its live records when the plan was made, in file order.
    let live: [LiveRecord]

    /// The live records' bytes, each checked before it is copied so that damage is reported
    /// instead of propagated. Reads a closed segment: no lock is needed.
    func readLiveRecords() throws(HistoryError) -> [[UInt8]] {
        var records: [[UInt8]] = []
        records.reserveCapacity(live.count)
        for item in live { records.append(try segment.readRecordBytes(item.ref)) }
        return records
    }
}

extension HistoryFileStore {
    /// The whole stored histories of `runIds` (runs not stored are absent): `exportView()`
    /// read at once.
    public func export(runIds: [String]) throws(HistoryError) -> [String: [[UInt8]]] {
        try exportView().export(runIds: runIds)
    }

    /// The store's index as it is now, to read later from any thread: what a snapshot needs.
    /// Taking it copies nothing (the index and the staged bytes are copy-on-write; the store's
    /// next write copies them once). The view holds the segments it points into open, so
    /// appends, deletions, compaction and even `close()` after it was taken do not change what
    /// it reads.
    public func exportView() throws(HistoryError) -> ExportView {
        try state.withLock { (state: inout HistoryState) throws(HistoryError) in
            if state.isClosed { throw HistoryError.closed }
            return ExportView(state: state)
        }
    }

    /// A frozen copy of the store's index (see `exportView()`).
    public struct ExportView: Sendable {
        let runs: HistoryRunTable
        let segments: [UInt64: HistorySegment]
        /// What was staged when the view was taken (its records are read from here).
        let tail: StagedTail

        init(state: HistoryState) {
            runs = state.runs
            segments = state.segments
            tail = state.stagedTail
        }

        /// The whole histories of `runIds` as they were when the view was taken (runs not
        /// stored then are absent), reading each segment's needed region with one sequential
        /// read instead of one read per record. Memory: the result plus one segment region at
        /// a time.
        public func export(runIds: [String]) throws(HistoryError) -> [String: [[UInt8]]] {
            var wanted: [UInt64: (segment: HistorySegment, refs: [(runId: String, ref: HistoryRecordRef)])] = [:]
            for runId in runIds {
                guard let run = runs[runId] else { continue }
                for ref in run.records {
                    guard let segment = segments[ref.segment] else { preconditionFailure("a live record points at a closed segment") }
                    wanted[ref.segment, default: (segment, [])].refs.append((runId, ref))
                }
            }
            var pieces: [String: [(firstEventId: Int64, events: [[UInt8]])]] = [:]
            for sequence in wanted.keys.sorted() {
                guard let (segment, refs) = wanted[sequence], let first = refs.map(\.ref.offset).min() else { continue }
                let end = refs.map { $0.ref.offset + $0.ref.size }.max() ?? first
                let region = try segment.read(offset: first, count: end - first, tail: tail)
                for (runId, ref) in refs {
                    let decoded = region.withUnsafeBytes { HistoryFormat.decodeRecord($0, at: ref.offset - first) }
                    guard case .record(let record, _) = decoded, record.type == .events, record.runId == runId,
                          record.firstEventId == ref.firstEventId, record.events.count == ref.eventCount else {
                        let reason: String
                        if case .invalid(let why) = decoded { reason = why } else { reason = "record does not match the index" }
                        throw .unreadableRecord(file: segment.name, offset: ref.offset, reason: reason)
                    }
                    pieces[runId, default: []].append((record.firstEventId, record.events))
                }
            }
            var histories: [String: [[UInt8]]] = [:]
            histories.reserveCapacity(pieces.count)
            for (runId, parts) in pieces {
                histories[runId] = parts.sorted { $0.firstEventId < $1.firstEventId }.flatMap(\.events)
            }
            return histories
        }
    }
}
