import BallastRaft

/// Segment file names: `segment-<sequence>.wal`, the sequence zero-padded to 20 digits.
enum SegmentName {
    /// The file name of segment `sequence`.
    static func make(_ sequence: UInt64) -> String { "segment-\(padded(sequence)).wal" }

    /// The sequence number in a segment file name, nil for other names.
    static func parse(_ name: String) -> UInt64? {
        guard name.hasPrefix("segment-"), name.hasSuffix(".wal") else { return nil }
        let digits = name.dropFirst("segment-".count).dropLast(".wal".count)
        guard digits.count == 20 else { return nil }
        return UInt64(digits)
    }
}

/// What reading one segment found.
struct SegmentScan {
    /// The segment's sequence number.
    var sequence: UInt64
    /// The segment's file name.
    var name: String
    /// The capacity the segment header declares.
    var segmentSizeBytes: Int
    /// Where the whole records end: the next append goes here.
    var endOffset: Int
    /// Why the bytes at `endOffset` were treated as a torn tail, if they were not clean zeroes.
    var tornReason: String?
    /// The highest entry index in the segment (zero if none).
    var maxEntryIndex: LogIndex
}

/// Reads segment files record by record, telling a torn tail from corruption.
enum SegmentScanner {
    /// Scans one segment, calling `visit` for every whole record with its byte offset.
    ///
    /// In the last segment, a bad record with nothing valid after it is a torn tail (the scan
    /// stops there); anywhere else a bad record is corruption and throws `corruptRecord`.
    static func scan(
        directory: String, name: String, sequence: UInt64, isLast: Bool,
        visit: (WALRecord, Int) throws -> Void
    ) throws -> SegmentScan {
        var bytes = try Posix.readAll(directory + "/" + name)
        let size = try bytes.withUnsafeBytes { try WALFormat.parseSegmentHeader($0, sequence: sequence, file: name) }
        guard bytes.count <= size else {
            throw StorageError.corruptSegmentHeader(file: name, reason: "file is \(bytes.count) bytes, larger than its declared size \(size)")
        }
        // A file cut short (crash before preallocation was durable, or a torn tail) reads as zeroes.
        bytes.appendZeros(size - bytes.count)
        var result = SegmentScan(sequence: sequence, name: name, segmentSizeBytes: size,
                                 endOffset: WALFormat.segmentHeaderSize, tornReason: nil, maxEntryIndex: .zero)
        try bytes.withUnsafeBytes { buffer in
            try scanRecords(buffer, isLast: isLast, result: &result, visit: visit)
        }
        return result
    }

    /// The record loop of `scan`.
    private static func scanRecords(
        _ buffer: UnsafeRawBufferPointer, isLast: Bool, result: inout SegmentScan,
        visit: (WALRecord, Int) throws -> Void
    ) throws {
        var offset = WALFormat.segmentHeaderSize
        while offset < buffer.count {
            switch WALFormat.decodeRecord(buffer, at: offset) {
            case .record(let record, let size):
                try visit(record, offset)
                if case .entry(let entry) = record { result.maxEntryIndex = max(result.maxEntryIndex, entry.index) }
                offset += size
            case .invalid(let reason):
                result.endOffset = offset
                if buffer.isAllZero(offset..<buffer.count) { return }
                if isLast && !WALFormat.validRecordExists(buffer, after: offset) {
                    result.tornReason = reason
                    return
                }
                let where_ = isLast ? "a valid record follows it" : "the segment is not the last one"
                throw StorageError.corruptRecord(file: result.name, offset: offset, reason: "\(reason); \(where_)")
            }
        }
        result.endOffset = offset
    }
}

/// Rebuilds the log from records in write order: entries, truncations, hard states and resets.
struct LogReplay {
    /// The live entries, contiguous.
    private(set) var entries: [Entry] = []
    /// The index the next entry record must carry; nil before the first record that fixes it.
    private(set) var expectedNext: LogIndex?
    /// The last hard state recorded.
    private(set) var hardState = HardState()
    /// The last reset (installed snapshot) recorded.
    private(set) var lastReset: (index: LogIndex, term: Term)?

    /// Applies one record found at `offset` of `file`.
    mutating func apply(_ record: WALRecord, file: String, offset: Int) throws {
        switch record {
        case .entry(let entry):
            if let expected = expectedNext, entry.index != expected {
                throw StorageError.indexGap(file: file, offset: offset, expected: expected, found: entry.index)
            }
            entries.append(entry)
            expectedNext = entry.index.next
        case .truncate(let from):
            if let expected = expectedNext, from > expected {
                throw StorageError.indexGap(file: file, offset: offset, expected: expected, found: from)
            }
            removeEntries(from: from)
            expectedNext = from
        case .hardState(let state):
            hardState = state
        case .reset(let index, let term):
            entries.removeAll()
            expectedNext = index.next
            lastReset = (index, term)
        }
    }

    /// Drops every entry at or after `index`.
    private mutating func removeEntries(from index: LogIndex) {
        guard let first = entries.first else { return }
        if index <= first.index {
            entries.removeAll()
        } else {
            let keep = Int(index.rawValue - first.index.rawValue)
            if keep < entries.count { entries.removeSubrange(keep...) }
        }
    }
}
