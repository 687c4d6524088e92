#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Opening a history directory: scan every segment in order, rebuild the index, repair a torn tail.
enum HistoryRecovery {
    /// Reads the directory and returns the state of the open store and what was repaired.
    static func open(directory: String) throws(HistoryError) -> (HistoryState, HistoryRecoveryReport) {
        var report = HistoryRecoveryReport()
        let names: [String]
        do {
            let all = try Posix.listDirectory(directory)
            for name in all where name.hasPrefix("history-") && name.hasSuffix(".tmp") {
                try Posix.unlink(directory + "/" + name)
                report.removedTemporaryFiles.append(name)
            }
            names = all
        } catch {
            throw HistoryError.wrap(error)
        }
        var sequences = names.compactMap(HistoryFormat.parseSegmentName).sorted()
        for (position, sequence) in sequences.enumerated() where position > 0 && sequence != sequences[position - 1] + 1 {
            throw .corruptSegmentHeader(file: HistoryFormat.segmentName(sequence),
                                        reason: "segment \(HistoryFormat.segmentName(sequences[position - 1] + 1)) is missing before it")
        }
        var builder = HistoryIndexBuilder()
        var usage: [UInt64: SegmentUsage] = [:]
        var lastEnd = HistoryFormat.segmentHeaderSize
        for (position, sequence) in sequences.enumerated() {
            let isLast = position == sequences.count - 1
            let scan = try scanSegment(directory: directory, sequence: sequence, isLast: isLast, builder: &builder)
            usage[sequence] = SegmentUsage(totalBytes: scan.endOffset - HistoryFormat.segmentHeaderSize, liveBytes: 0)
            if isLast {
                lastEnd = scan.endOffset
                if let reason = scan.tornReason {
                    report.tornTail = .init(file: HistoryFormat.segmentName(sequence), offset: scan.endOffset, reason: reason)
                }
                if scan.endOffset < scan.fileSize { try cut(directory: directory, sequence: sequence, at: scan.endOffset) }
            }
        }
        if sequences.isEmpty {
            try createSegment(directory: directory, sequence: 1)
            sequences = [1]
            usage[1] = SegmentUsage()
        }
        let runs = try builder.build()
        for (_, run) in runs {
            for ref in run.records { usage[ref.segment, default: SegmentUsage()].liveBytes += ref.size }
        }
        var segments: [UInt64: HistorySegment] = [:]
        for sequence in sequences {
            segments[sequence] = try HistorySegment(sequence: sequence, directory: directory, writable: sequence == sequences.last)
        }
        let state = HistoryState(runs: runs, segments: segments, usage: usage, activeSequence: sequences[sequences.count - 1],
                                 activeEnd: lastEnd)
        return (state, report)
    }

    /// What scanning one segment found.
    struct Scan {
        var endOffset: Int
        var fileSize: Int
        var tornReason: String?
    }

    /// Scans one segment, feeding every whole record to `builder`.
    ///
    /// In the last segment, a bad record with nothing valid after it (or only zeroes) is a torn
    /// tail; anywhere else a bad record is corruption.
    static func scanSegment(directory: String, sequence: UInt64, isLast: Bool,
                            builder: inout HistoryIndexBuilder) throws(HistoryError) -> Scan {
        let name = HistoryFormat.segmentName(sequence)
        let bytes: [UInt8]
        do { bytes = try Posix.readAll(directory + "/" + name) } catch { throw HistoryError.wrap(error) }
        do {
            return try bytes.withUnsafeBytes { buffer in try scanRecords(buffer, name: name, sequence: sequence, isLast: isLast, builder: &builder) }
        } catch {
            throw HistoryError.wrap(error)
        }
    }

    /// The record loop of `scanSegment`.
    private static func scanRecords(_ buffer: UnsafeRawBufferPointer, name: String, sequence: UInt64, isLast: Bool,
                                    builder: inout HistoryIndexBuilder) throws(HistoryError) -> Scan {
        try HistoryFormat.checkSegmentHeader(buffer, sequence: sequence, file: name)
        var offset = HistoryFormat.segmentHeaderSize
        while offset < buffer.count {
            switch HistoryFormat.decodeRecord(buffer, at: offset) {
            case .record(let record, let size):
                try builder.add(record, ref: HistoryRecordRef(segment: sequence, offset: offset, size: size,
                                                              firstEventId: record.firstEventId, eventCount: record.events.count))
                offset += size
            case .invalid(let reason):
                if buffer.isAllZero(offset..<buffer.count) { return Scan(endOffset: offset, fileSize: buffer.count) }
                if isLast && !HistoryFormat.validRecordExists(buffer, after: offset) {
                    return Scan(endOffset: offset, fileSize: buffer.count, tornReason: reason)
                }
                let where_ = isLast ? "a valid record follows it" : "the segment is not the last one"
                throw .corruptRecord(file: name, offset: offset, reason: "\(reason); \(where_)")
            }
        }
        return Scan(endOffset: offset, fileSize: buffer.count)
    }

    /// Cuts the last segment after its last whole record and makes the cut durable.
    static func cut(directory: String, sequence: UInt64, at offset: Int) throws(HistoryError) {
        let path = directory + "/" + HistoryFormat.segmentName(sequence)
        do {
            let fd = try Posix.open(path, O_RDWR)
            defer { _ = close(fd) }
            try Posix.truncate(fd, size: offset, path: path)
            try Posix.fullSync(fd, path: path)
        } catch {
            throw HistoryError.wrap(error)
        }
    }

    /// Creates segment `sequence` durably: header to a temporary file, fsync, rename, directory fsync.
    static func createSegment(directory: String, sequence: UInt64) throws(HistoryError) {
        let temporary = directory + "/" + HistoryFormat.segmentName(sequence) + ".tmp"
        try writeSegmentHeaderFile(temporary, sequence: sequence)
        do {
            try Posix.rename(temporary, directory + "/" + HistoryFormat.segmentName(sequence))
            try Posix.syncDirectory(directory)
        } catch {
            _ = try? Posix.unlink(temporary)
            throw HistoryError.wrap(error)
        }
    }

    /// Writes a file at `path` holding only segment `sequence`'s header, and fsyncs it: a
    /// segment once renamed into place always has a whole header. A failure removes the file.
    static func writeSegmentHeaderFile(_ path: String, sequence: UInt64) throws(HistoryError) {
        do {
            let fd = try Posix.open(path, O_WRONLY | O_CREAT | O_TRUNC)
            defer { _ = close(fd) }
            try HistoryFormat.segmentHeader(sequence: sequence).withUnsafeBytes {
                try Posix.pwriteAll(fd, $0, offset: 0, path: path)
            }
            try Posix.fullSync(fd, path: path)
        } catch {
            _ = try? Posix.unlink(path)
            throw HistoryError.wrap(error)
        }
    }
}

/// The next segment's file, made ahead of need under a temporary name (header written and
/// fsynced), waiting for rotation to rename it into place. Opening a store removes it (like
/// every `history-*.tmp` file).
struct PreparedHistorySegment {
    var sequence: UInt64
    var path: String
}

/// Collects records in file order and builds each run's index.
///
/// A tombstone drops the records of its run seen so far. Compaction copies whole records
/// forward, so the same event range can appear twice (the copy and, until the old segment is
/// unlinked, the original): the later one wins. Ranges must otherwise be disjoint and, once
/// sorted, contiguous from event 1.
struct HistoryIndexBuilder {
    private var pending: [String: [Int64: (ref: HistoryRecordRef, hash: UInt64)]] = [:]

    mutating func add(_ record: HistoryRecord, ref: HistoryRecordRef) throws(HistoryError) {
        switch record.type {
        case .tombstone:
            pending.removeValue(forKey: record.runId)
        case .events:
            let hash = HistoryContentHash.of(record.events, firstEventId: record.firstEventId)
            if let existing = pending[record.runId]?[record.firstEventId], existing.ref.eventCount != ref.eventCount {
                throw .inconsistentRun(runId: record.runId,
                                       reason: "two records start at event \(record.firstEventId) with different lengths")
            }
            pending[record.runId, default: [:]][record.firstEventId] = (ref, hash)
        }
    }

    func build() throws(HistoryError) -> HistoryRunTable {
        var runs = HistoryRunTable()
        runs.reserveCapacity(pending.count)
        for (runId, records) in pending {
            var run = RunHistoryIndex()
            for firstEventId in records.keys.sorted() {
                guard let (ref, hash) = records[firstEventId] else { continue }
                guard firstEventId == run.eventCount + 1 else {
                    throw .inconsistentRun(runId: runId, reason: "expected a record starting at event \(run.eventCount + 1), found \(firstEventId)")
                }
                run.records.append(ref)
                run.eventCount = ref.lastEventId
                run.contentHash &+= hash
            }
            runs[runId] = run
        }
        return runs
    }
}
