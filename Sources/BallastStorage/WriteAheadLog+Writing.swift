import BallastRaft

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension WriteAheadLog {
    /// Returns the durable state: the one recovered at open the first time, a fresh read of the files afterwards.
    public func restore() throws -> RestoredState {
        try checkUsable()
        if let state = restored {
            restored = nil  // do not keep a second copy of the whole log in memory
            return state
        }
        try poisoningOnFailure { try flushPending() }
        return try Recovery.read(directory: directory).state
    }

    /// Records a new hard state; durable at the next `sync()`.
    public func setHardState(_ state: HardState) throws {
        try checkUsable()
        guard state != hardState else { return }
        precondition(state.term >= hardState.term, "the term never decreases")
        try poisoningOnFailure {
            hardState = state
            try appendRecord(.hardState(state), payloadCount: 8)
        }
    }

    /// Appends contiguous entries, first removing any stored entry at or after `entries[0].index`.
    public func append(_ entries: [Entry]) throws {
        try checkUsable()
        guard let first = entries.first else { return }
        let snapshotIndex = snapshotMetadata?.index ?? .zero
        guard first.index <= lastIndex.next, first.index > snapshotIndex else {
            throw StorageError.nonContiguousAppend(expected: lastIndex.next, found: first.index)
        }
        // Every record must fit in a fresh segment after its leading hard-state record.
        let limit = options.segmentSizeBytes - WALFormat.segmentHeaderSize - WALFormat.hardStateRecordSize
        for (offset, entry) in entries.enumerated() {
            guard entry.index == first.index.advanced(by: offset) else {
                throw StorageError.nonContiguousAppend(expected: first.index.advanced(by: offset), found: entry.index)
            }
            let size = WALFormat.recordSize(payloadCount: entry.data.count)
            if size > limit {
                throw StorageError.recordTooLarge(bytes: size, limit: limit)
            }
        }
        try poisoningOnFailure {
            if first.index <= lastIndex { try appendRecord(.truncate(from: first.index), payloadCount: 0) }
            for entry in entries {
                try appendRecord(.entry(entry), payloadCount: entry.data.count)
                active.info.maxEntryIndex = max(active.info.maxEntryIndex, entry.index)
            }
            lastIndex = entries[entries.count - 1].index
            if durableIndex >= first.index { durableIndex = first.index.previous }
        }
    }

    /// Writes out buffered records and `fdatasync`s the active segment.
    public func sync() throws {
        try checkUsable()
        try poisoningOnFailure {
            try flushAndSyncActive()
            durableIndex = lastIndex
        }
    }

    /// Makes buffered records durable, releases the directory lock and closes the files.
    public func close() throws {
        guard !isClosed else { return }
        defer {
            isClosed = true
            _ = systemClose(active.descriptor)
            _ = systemClose(lockDescriptor)
        }
        if failure == nil { try sync() }
    }

    /// Encodes a record into the buffer, rolling to a new segment first if it does not fit.
    func appendRecord(_ record: WALRecord, payloadCount: Int) throws {
        let size = WALFormat.recordSize(payloadCount: payloadCount)
        if active.writtenEnd + pending.count + size > active.sizeBytes {
            try rollSegment()
        }
        encode(record)
        if pending.count >= options.maxBufferedBytes { try flushPending() }
    }

    /// Encodes a record into the buffer without any size check.
    func encode(_ record: WALRecord) {
        WALFormat.append(record, to: &pending)
        statistics.recordsAppended += 1
        precondition(active.writtenEnd + pending.count <= active.sizeBytes, "a record must never span segments")
    }

    /// Hands the buffered bytes to the operating system (no fsync).
    func flushPending() throws {
        guard !pending.isEmpty else { return }
        try pending.withUnsafeBytes {
            try Posix.pwriteAll(active.descriptor, $0, offset: active.writtenEnd, path: directory + "/" + active.info.name)
        }
        active.writtenEnd += pending.count
        statistics.bytesWritten += pending.count
        pending.removeAll(keepingCapacity: true)
        needsDataSync = true
    }

    /// Whether the log still takes calls: not closed, and no write or fsync failed in a way
    /// that leaves the file's state unknown. (A failure for lack of space while creating a
    /// segment leaves it usable: nothing of the new segment was believed.)
    public var isUsable: Bool { !isClosed && failure == nil }

    /// Makes sure `bytes` of records fit in the active segment, rolling to a new segment now if
    /// they do not (and would fit in a fresh one). Call it before a batch so that a full disk
    /// is met here, before any record of the batch is written: a segment that cannot be created
    /// for lack of space throws an `isNoSpace` error and leaves the log usable and unchanged,
    /// and the same call can be retried once space is freed.
    public func prepareRoom(forBytes bytes: Int) throws {
        try checkUsable()
        guard active.writtenEnd + pending.count + bytes > active.sizeBytes else { return }
        guard bytes <= options.segmentSizeBytes - WALFormat.segmentHeaderSize - WALFormat.hardStateRecordSize else { return }
        try rollSegment()
    }

    /// Writes out buffered records and `fdatasync`s the active segment if anything was written.
    private func flushAndSyncActive() throws {
        try flushPending()
        guard needsDataSync else { return }
        try Posix.dataSync(active.descriptor, path: directory + "/" + active.info.name)
        statistics.dataSyncs += 1
        needsDataSync = false
    }

    /// Closes the full active segment (synced, so only the last segment can ever hold a torn tail) and starts the next.
    ///
    /// A failure to write or sync the old segment poisons the log; a new segment that cannot be
    /// created for lack of space does not (its temporary file is removed, the old segment stays
    /// active and durable), so the caller may retry.
    func rollSegment() throws {
        try poisoningOnFailure { try flushAndSyncActive() }
        let next: ActiveSegment
        do {
            next = try Self.createSegment(active.info.sequence + 1, directory: directory, options: options)
        } catch {
            if (error as? StorageError)?.isNoSpace != true { failure = "\(error)" }
            throw error
        }
        _ = systemClose(active.descriptor)
        segments.append(active.info)
        active = next
        statistics.segmentsCreated += 1
        encode(.hardState(hardState))
    }

    /// Creates segment `sequence` durably: header written, preallocated, fsynced, renamed, directory fsynced.
    static func createSegment(_ sequence: UInt64, directory: String, options: Options) throws -> ActiveSegment {
        let name = SegmentName.make(sequence)
        let temporary = directory + "/" + name + ".tmp"
        let descriptor = try Posix.open(temporary, O_WRONLY | O_CREAT | O_TRUNC)
        do {
            let header = WALFormat.segmentHeader(sequence: sequence, segmentSizeBytes: options.segmentSizeBytes)
            try header.withUnsafeBytes { try Posix.pwriteAll(descriptor, $0, offset: 0, path: temporary) }
            if options.preallocate {
                try Posix.preallocate(descriptor, size: options.segmentSizeBytes, path: temporary)
            }
            try Posix.fullSync(descriptor, path: temporary)
            try Posix.rename(temporary, directory + "/" + name)
            try Posix.syncDirectory(directory)
        } catch {
            _ = systemClose(descriptor)
            // A segment that could not be made whole is not left to take space (the rename is
            // the last step that can fail before the file counts).
            _ = try? Posix.unlink(temporary)
            throw error
        }
        return ActiveSegment(info: SegmentInfo(sequence: sequence, name: name, maxEntryIndex: .zero),
                             descriptor: descriptor, sizeBytes: options.segmentSizeBytes,
                             writtenEnd: WALFormat.segmentHeaderSize)
    }

    /// Opens the last scanned segment for appending (cutting a torn tail), or creates the first segment.
    static func openActive(_ last: SegmentScan?, directory: String, options: Options) throws -> ActiveSegment {
        guard let last else { return try createSegment(1, directory: directory, options: options) }
        let path = directory + "/" + last.name
        let descriptor = try Posix.open(path, O_WRONLY)
        do {
            var info = stat()
            guard fstat(descriptor, &info) == 0 else { throw StorageError.io(operation: "fstat", path: path, errno: errno) }
            if last.tornReason != nil || Int(info.st_size) != last.segmentSizeBytes {
                // Drop the torn bytes and restore the zero-filled tail the scan expects.
                try Posix.truncate(descriptor, size: last.endOffset, path: path)
                if options.preallocate { try Posix.preallocate(descriptor, size: last.segmentSizeBytes, path: path) }
                try Posix.fullSync(descriptor, path: path)
            }
        } catch {
            _ = systemClose(descriptor)
            throw error
        }
        return ActiveSegment(info: SegmentInfo(sequence: last.sequence, name: last.name, maxEntryIndex: last.maxEntryIndex),
                             descriptor: descriptor, sizeBytes: last.segmentSizeBytes, writtenEnd: last.endOffset)
    }

    /// Throws if the log was closed or an earlier write or fsync failed.
    func checkUsable() throws {
        if isClosed { throw StorageError.closed }
        if let failure { throw StorageError.failed(reason: failure) }
    }

    /// Runs `body`; on failure marks the log unusable, because after a failed write or fsync the
    /// state of the file is unknown (a later fsync may report success for lost pages).
    func poisoningOnFailure<T>(_ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch {
            failure = "\(error)"
            throw error
        }
    }
}

/// `close(2)`, out of reach of the `close()` method's name.
func systemClose(_ descriptor: Int32) -> Int32 {
    close(descriptor)
}
