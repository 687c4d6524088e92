extension HistoryFileStore {
    /// Reclaims the oldest segment when it holds nothing live, or when the store's dead bytes
    /// exceed both its live bytes and `minimumDeadBytesToCompact`: its live records are copied
    /// verbatim to the end of the active segment, the copies are fsynced, then the old file is
    /// unlinked (and the directory fsynced). Only the oldest segment is ever removed, so a
    /// tombstone is never dropped while an older segment still holds records of its run.
    ///
    /// One segment per call, so the pause it causes stays bounded; returns whether it reclaimed one.
    @discardableResult
    public func compactIfNeeded() throws(HistoryError) -> Bool {
        let options = self.options
        let directory = self.directory
        return try state.withLock { (state: inout HistoryState) throws(HistoryError) -> Bool in
            try state.checkUsable()
            guard let oldest = state.segments.keys.min(), oldest != state.activeSequence else { return false }
            let statistics = state.statistics
            let dead = statistics.totalBytes - statistics.liveBytes
            let oldestLive = state.usage[oldest]?.liveBytes ?? 0
            guard oldestLive == 0 || (dead > statistics.liveBytes && dead >= options.minimumDeadBytesToCompact) else {
                return false
            }
            try state.reclaim(oldest, options: options, directory: directory)
            return true
        }
    }
}

extension HistoryState {
    /// Copies the live records of segment `sequence` forward and removes the segment.
    mutating func reclaim(_ sequence: UInt64, options: HistoryFileStore.Options, directory: String) throws(HistoryError) {
        guard let segment = segments[sequence] else { return }
        // Live records of the segment, in file order (so the copies keep the runs' order too).
        var moving: [(runId: String, position: Int, ref: HistoryRecordRef)] = []
        for (runId, run) in runs {
            for (position, ref) in run.records.enumerated() where ref.segment == sequence {
                moving.append((runId, position, ref))
            }
        }
        moving.sort { $0.ref.offset < $1.ref.offset }
        var buffer: [UInt8] = []
        var moved: [(runId: String, position: Int, ref: HistoryRecordRef)] = []
        for item in moving {
            let bytes = try segment.read(offset: item.ref.offset, count: item.ref.size)
            // Re-verify before copying, so damage is reported instead of propagated.
            _ = try segment.readRecord(item.ref)
            var ref = item.ref
            ref.segment = activeSequence
            ref.offset = activeEnd + buffer.count
            buffer.append(contentsOf: bytes)
            moved.append((item.runId, item.position, ref))
        }
        if !buffer.isEmpty {
            try writeAtEnd(buffer)
            usage[activeSequence, default: SegmentUsage()].totalBytes += buffer.count
            usage[activeSequence, default: SegmentUsage()].liveBytes += buffer.count
            for item in moved { runs[item.runId]?.records[item.position] = item.ref }
        }
        let active = self.active
        do {
            // The copies are durable before the originals go.
            try Posix.dataSync(active.fd, path: active.path)
            try Posix.unlink(segment.path)
            try Posix.syncDirectory(directory)
        } catch {
            failure = "compacting \(segment.name) failed: \(error)"
            throw HistoryError.wrap(error)
        }
        segments.removeValue(forKey: sequence)
        usage.removeValue(forKey: sequence)
        compactedSegments += 1
        try rotateIfFull(options: options, directory: directory)
    }
}

extension HistoryFileStore {
    /// The whole stored histories of `runIds` (runs not stored are absent): `exportView()`
    /// read at once.
    public func export(runIds: [String]) throws(HistoryError) -> [String: [[UInt8]]] {
        try exportView().export(runIds: runIds)
    }

    /// The store's index as it is now, to read later from any thread: what a snapshot needs.
    /// Taking it copies nothing (the index is copy-on-write; the store's next write copies it
    /// once). The view holds the segments it points into open, so appends, deletions,
    /// compaction and even `close()` after it was taken do not change what it reads.
    public func exportView() throws(HistoryError) -> ExportView {
        try state.withLock { (state: inout HistoryState) throws(HistoryError) in
            if state.isClosed { throw HistoryError.closed }
            return ExportView(state: state)
        }
    }

    /// A frozen copy of the store's index (see `exportView()`).
    public struct ExportView: Sendable {
        let runs: [String: RunHistoryIndex]
        let segments: [UInt64: HistorySegment]

        init(state: HistoryState) {
            runs = state.runs
            segments = state.segments
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
                let region = try segment.read(offset: first, count: end - first)
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
