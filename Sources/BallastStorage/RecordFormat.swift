import BallastRaft

/// Sizes, magic numbers and the byte layout of segment files and their records (docs/storage.md).
enum WALFormat {
    /// "BALLASTW": the first 8 bytes of every segment file.
    static let segmentMagic: [UInt8] = Array("BALLASTW".utf8)
    /// The segment format version this code writes and reads.
    static let version: UInt32 = 1
    /// Bytes before the first record of a segment.
    static let segmentHeaderSize = 64
    /// Bytes of a record header (checksum, length, type, kind, term, index).
    static let recordHeaderSize = 32
    /// Records start at multiples of this many bytes.
    static let alignment = 8
    /// The largest segment capacity accepted (segments are read into memory whole during recovery).
    static let maxSegmentSizeBytes = 1 << 32
    /// Bytes of a hard-state record (header + vote).
    static let hardStateRecordSize = recordHeaderSize + 8

    /// The bytes a record with `payloadCount` payload bytes occupies, padding included.
    static func recordSize(payloadCount: Int) -> Int {
        (recordHeaderSize + payloadCount + alignment - 1) & ~(alignment - 1)
    }

    /// The 64-byte header of segment `sequence`.
    static func segmentHeader(sequence: UInt64, segmentSizeBytes: Int) -> [UInt8] {
        var header = segmentMagic
        header.appendLittleEndian(version)
        header.appendLittleEndian(UInt32(0))
        header.appendLittleEndian(sequence)
        header.appendLittleEndian(UInt64(segmentSizeBytes))
        header.appendZeros(60 - header.count)
        header.appendLittleEndian(CRC32C.checksum(header))
        assert(header.count == segmentHeaderSize)
        return header
    }

    /// Checks a segment header and returns the segment size it declares.
    static func parseSegmentHeader(_ bytes: UnsafeRawBufferPointer, sequence: UInt64, file: String) throws -> Int {
        guard bytes.count >= segmentHeaderSize else {
            throw StorageError.corruptSegmentHeader(file: file, reason: "file is \(bytes.count) bytes, shorter than the \(segmentHeaderSize)-byte header")
        }
        guard bytes.loadUInt32(at: 60) == CRC32C.checksum(UnsafeRawBufferPointer(rebasing: bytes[0..<60])) else {
            throw StorageError.corruptSegmentHeader(file: file, reason: "header checksum mismatch")
        }
        guard Array(bytes[0..<8]) == segmentMagic else {
            throw StorageError.corruptSegmentHeader(file: file, reason: "bad magic, expected BALLASTW")
        }
        let version = bytes.loadUInt32(at: 8)
        guard version == Self.version else {
            throw StorageError.corruptSegmentHeader(file: file, reason: "unsupported version \(version), expected \(Self.version)")
        }
        guard bytes.loadUInt64(at: 16) == sequence else {
            throw StorageError.corruptSegmentHeader(file: file, reason: "header sequence \(bytes.loadUInt64(at: 16)) does not match the file name")
        }
        let size = bytes.loadUInt64(at: 24)
        guard size >= UInt64(segmentHeaderSize + hardStateRecordSize), size <= UInt64(maxSegmentSizeBytes), size % UInt64(alignment) == 0 else {
            throw StorageError.corruptSegmentHeader(file: file, reason: "implausible segment size \(size)")
        }
        return Int(size)
    }
}

/// The kinds of record a segment holds (byte 8 of the record header).
enum RecordType: UInt8 {
    /// A log entry: kind in byte 9, term and index in the header, the entry's data as payload.
    case entry = 1
    /// Every entry at or after `index` is removed (a conflicting suffix); no payload.
    case truncate = 2
    /// Raft hard state: term in the term field, commit in the index field, vote (0 = none) as payload.
    case hardState = 3
    /// An installed snapshot at `index`/`term`: every entry before is discarded; no payload.
    case reset = 4
}

/// One decoded record.
enum WALRecord: Equatable {
    case entry(Entry)
    case truncate(from: LogIndex)
    case hardState(HardState)
    case reset(index: LogIndex, term: Term)
}

/// Result of decoding at one offset.
enum RecordDecoding {
    case record(WALRecord, size: Int)
    case invalid(reason: String)
}

extension WALFormat {
    /// Appends one record to `buffer`, checksum and padding included.
    static func appendRecord(
        to buffer: inout [UInt8], type: RecordType, kind: UInt8 = 0, term: UInt64, index: UInt64, payload: [UInt8] = []
    ) {
        let start = buffer.count
        buffer.appendLittleEndian(UInt32(0))  // checksum, filled in below
        buffer.appendLittleEndian(UInt32(payload.count))
        buffer.append(type.rawValue)
        buffer.append(kind)
        buffer.appendLittleEndian(UInt16(0))
        buffer.appendLittleEndian(UInt32(0))
        buffer.appendLittleEndian(term)
        buffer.appendLittleEndian(index)
        buffer.append(contentsOf: payload)
        let end = buffer.count
        buffer.appendZeros(recordSize(payloadCount: payload.count) - (end - start))
        let checksum = CRC32C.checksum(buffer[(start + 4)..<end])
        buffer.storeLittleEndian(checksum, at: start)
    }

    /// Appends the record for `record`.
    static func append(_ record: WALRecord, to buffer: inout [UInt8]) {
        switch record {
        case .entry(let entry):
            appendRecord(to: &buffer, type: .entry, kind: entry.kind.rawValue, term: entry.term.rawValue,
                         index: entry.index.rawValue, payload: entry.data)
        case .truncate(let from):
            appendRecord(to: &buffer, type: .truncate, term: 0, index: from.rawValue)
        case .hardState(let state):
            var vote: [UInt8] = []
            vote.appendLittleEndian(state.votedFor?.rawValue ?? 0)
            appendRecord(to: &buffer, type: .hardState, term: state.term.rawValue, index: state.commit.rawValue, payload: vote)
        case .reset(let index, let term):
            appendRecord(to: &buffer, type: .reset, term: term.rawValue, index: index.rawValue)
        }
    }

    /// Decodes the record at `offset`, checking bounds, reserved fields and the checksum.
    static func decodeRecord(_ bytes: UnsafeRawBufferPointer, at offset: Int) -> RecordDecoding {
        guard offset + recordHeaderSize <= bytes.count else { return .invalid(reason: "incomplete record header") }
        let length = Int(bytes.loadUInt32(at: offset + 4))
        guard let type = RecordType(rawValue: bytes[offset + 8]) else {
            return .invalid(reason: "unknown record type \(bytes[offset + 8])")
        }
        guard bytes.loadUInt16(at: offset + 10) == 0, bytes.loadUInt32(at: offset + 12) == 0 else {
            return .invalid(reason: "reserved header bytes are not zero")
        }
        let size = recordSize(payloadCount: length)
        guard length <= bytes.count, size <= bytes.count - offset else {
            return .invalid(reason: "record length \(length) runs past the end of the segment")
        }
        let payloadEnd = offset + recordHeaderSize + length
        let stored = bytes.loadUInt32(at: offset)
        let computed = CRC32C.checksum(UnsafeRawBufferPointer(rebasing: bytes[(offset + 4)..<payloadEnd]))
        guard stored == computed else {
            return .invalid(reason: "checksum mismatch (stored \(hex(stored)), computed \(hex(computed)))")
        }
        let term = bytes.loadUInt64(at: offset + 16)
        let index = bytes.loadUInt64(at: offset + 24)
        let payload = UnsafeRawBufferPointer(rebasing: bytes[(offset + recordHeaderSize)..<payloadEnd])
        guard let record = makeRecord(type: type, kind: bytes[offset + 9], term: term, index: index, payload: payload) else {
            return .invalid(reason: "malformed \(type) record")
        }
        return .record(record, size: size)
    }

    /// Builds the record value once the checksum has been verified.
    private static func makeRecord(
        type: RecordType, kind: UInt8, term: UInt64, index: UInt64, payload: UnsafeRawBufferPointer
    ) -> WALRecord? {
        switch type {
        case .entry:
            guard let entryKind = EntryKind(rawValue: kind), index > 0 else { return nil }
            return .entry(Entry(term: Term(term), index: LogIndex(index), kind: entryKind, data: Array(payload)))
        case .truncate:
            guard kind == 0, payload.isEmpty, index > 0 else { return nil }
            return .truncate(from: LogIndex(index))
        case .hardState:
            guard kind == 0, payload.count == 8 else { return nil }
            let vote = payload.loadUInt64(at: 0)
            return .hardState(HardState(term: Term(term), votedFor: vote == 0 ? nil : NodeID(vote), commit: LogIndex(index)))
        case .reset:
            guard kind == 0, payload.isEmpty else { return nil }
            return .reset(index: LogIndex(index), term: Term(term))
        }
    }

    /// Whether a valid record starts at any aligned offset after `offset` (used to tell a torn tail from corruption).
    static func validRecordExists(_ bytes: UnsafeRawBufferPointer, after offset: Int) -> Bool {
        var candidate = offset + alignment
        while candidate + recordHeaderSize <= bytes.count {
            // Cheap plausibility checks first; the checksum only for headers that look like one.
            let type = bytes[candidate + 8]
            if type >= 1 && type <= 4 && bytes.loadUInt16(at: candidate + 10) == 0 && bytes.loadUInt32(at: candidate + 12) == 0,
               case .record = decodeRecord(bytes, at: candidate) {
                return true
            }
            candidate += alignment
        }
        return false
    }
}

/// `value` as 0x-prefixed, 8-digit hexadecimal.
func hex(_ value: UInt32) -> String {
    let digits = String(value, radix: 16)
    return "0x" + String(repeating: "0", count: max(0, 8 - digits.count)) + digits
}
