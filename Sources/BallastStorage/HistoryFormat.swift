/// Byte layout of history segment files and their records (docs/storage.md, "History store").
enum HistoryFormat {
    /// "BALLASTH": the first 8 bytes of every history segment file.
    static let segmentMagic: [UInt8] = Array("BALLASTH".utf8)
    /// The history segment format version this code writes and reads.
    static let version: UInt32 = 1
    /// Bytes before the first record of a segment.
    static let segmentHeaderSize = 64
    /// Bytes of a record header.
    static let recordHeaderSize = 32
    /// Records start at multiples of this many bytes.
    static let alignment = 8
    /// The longest run id accepted, in UTF-8 bytes.
    static let maxRunIdBytes = 1_024
    /// The largest record payload written (appends are split into several records above it,
    /// except that one event larger than this travels alone).
    static let maxRecordPayloadBytes = 4 << 20
    /// The largest record payload accepted when reading (a length above it is damage).
    static let maxAcceptedPayloadBytes = 1 << 30

    /// The file name of history segment `sequence`.
    static func segmentName(_ sequence: UInt64) -> String { "history-\(padded(sequence)).seg" }

    /// The sequence number in a history segment file name, nil for other names.
    static func parseSegmentName(_ name: String) -> UInt64? {
        guard name.hasPrefix("history-"), name.hasSuffix(".seg") else { return nil }
        let digits = name.dropFirst("history-".count).dropLast(".seg".count)
        guard digits.count == 20 else { return nil }
        return UInt64(digits)
    }

    /// The bytes a record with `payloadCount` payload bytes occupies, padding included.
    static func recordSize(payloadCount: Int) -> Int {
        (recordHeaderSize + payloadCount + alignment - 1) & ~(alignment - 1)
    }

    /// The 64-byte header of segment `sequence`.
    static func segmentHeader(sequence: UInt64) -> [UInt8] {
        var header = segmentMagic
        header.appendLittleEndian(version)
        header.appendLittleEndian(UInt32(0))
        header.appendLittleEndian(sequence)
        header.appendZeros(60 - header.count)
        header.appendLittleEndian(CRC32C.checksum(header))
        assert(header.count == segmentHeaderSize)
        return header
    }

    /// Checks a segment header against the sequence in the file name.
    static func checkSegmentHeader(_ bytes: UnsafeRawBufferPointer, sequence: UInt64, file: String) throws(HistoryError) {
        guard bytes.count >= segmentHeaderSize else {
            throw .corruptSegmentHeader(file: file, reason: "file is \(bytes.count) bytes, shorter than the \(segmentHeaderSize)-byte header")
        }
        guard bytes.loadUInt32(at: 60) == CRC32C.checksum(UnsafeRawBufferPointer(rebasing: bytes[0..<60])) else {
            throw .corruptSegmentHeader(file: file, reason: "header checksum mismatch")
        }
        guard Array(bytes[0..<8]) == segmentMagic else {
            throw .corruptSegmentHeader(file: file, reason: "bad magic, expected BALLASTH")
        }
        let found = bytes.loadUInt32(at: 8)
        guard found == version else {
            throw .corruptSegmentHeader(file: file, reason: "unsupported version \(found), expected \(version)")
        }
        guard bytes.loadUInt64(at: 16) == sequence else {
            throw .corruptSegmentHeader(file: file, reason: "header sequence \(bytes.loadUInt64(at: 16)) does not match the file name")
        }
    }
}

/// The kinds of history record (byte 8 of the record header).
enum HistoryRecordType: UInt8 {
    /// Events of one run: contiguous ids from the first event id.
    case events = 1
    /// The run's history is deleted: every earlier record of the run is dead.
    case tombstone = 2
}

/// One decoded history record; event bytes are slices of the segment buffer's copy.
struct HistoryRecord: Equatable {
    var type: HistoryRecordType
    var runId: String
    var firstEventId: Int64
    var events: [[UInt8]]
}

/// The outcome of decoding at one offset.
enum HistoryRecordDecoding {
    case record(HistoryRecord, size: Int)
    case invalid(reason: String)
}

extension HistoryFormat {
    /// Appends one record to `buffer`, checksum and padding included.
    static func appendRecord(to buffer: inout [UInt8], type: HistoryRecordType, runId: String, firstEventId: Int64,
                             events: ArraySlice<[UInt8]>) {
        let start = buffer.count
        let runIdBytes = Array(runId.utf8)
        let payloadCount = runIdBytes.count + events.reduce(0) { $0 + 4 + $1.count }
        buffer.appendLittleEndian(UInt32(0))  // checksum, filled in below
        buffer.appendLittleEndian(UInt32(payloadCount))
        buffer.append(type.rawValue)
        buffer.append(0)
        buffer.appendLittleEndian(UInt16(runIdBytes.count))
        buffer.appendLittleEndian(UInt32(events.count))
        buffer.appendLittleEndian(UInt64(bitPattern: firstEventId))
        buffer.appendLittleEndian(UInt64(0))
        buffer.append(contentsOf: runIdBytes)
        for event in events {
            buffer.appendLittleEndian(UInt32(event.count))
            buffer.append(contentsOf: event)
        }
        let end = buffer.count
        buffer.appendZeros(recordSize(payloadCount: payloadCount) - (end - start))
        buffer.storeLittleEndian(CRC32C.checksum(buffer[(start + 4)..<end]), at: start)
    }

    /// Decodes the record at `offset`, checking bounds, reserved fields and the checksum.
    static func decodeRecord(_ bytes: UnsafeRawBufferPointer, at offset: Int) -> HistoryRecordDecoding {
        guard offset + recordHeaderSize <= bytes.count else { return .invalid(reason: "incomplete record header") }
        guard let type = HistoryRecordType(rawValue: bytes[offset + 8]) else {
            return .invalid(reason: "unknown record type \(bytes[offset + 8])")
        }
        guard bytes[offset + 9] == 0, bytes.loadUInt64(at: offset + 24) == 0 else {
            return .invalid(reason: "reserved header bytes are not zero")
        }
        let length = Int(bytes.loadUInt32(at: offset + 4))
        guard length <= maxAcceptedPayloadBytes, recordSize(payloadCount: length) <= bytes.count - offset else {
            return .invalid(reason: "record length \(length) runs past the end of the segment")
        }
        let payloadEnd = offset + recordHeaderSize + length
        let stored = bytes.loadUInt32(at: offset)
        let computed = CRC32C.checksum(UnsafeRawBufferPointer(rebasing: bytes[(offset + 4)..<payloadEnd]))
        guard stored == computed else {
            return .invalid(reason: "checksum mismatch (stored \(hex(stored)), computed \(hex(computed)))")
        }
        let payload = UnsafeRawBufferPointer(rebasing: bytes[(offset + recordHeaderSize)..<payloadEnd])
        let runIdCount = Int(bytes.loadUInt16(at: offset + 10))
        let eventCount = Int(bytes.loadUInt32(at: offset + 12))
        let firstEventId = Int64(bitPattern: bytes.loadUInt64(at: offset + 16))
        guard let record = makeRecord(type: type, runIdCount: runIdCount, eventCount: eventCount,
                                      firstEventId: firstEventId, payload: payload) else {
            return .invalid(reason: "malformed \(type) record")
        }
        return .record(record, size: recordSize(payloadCount: length))
    }

    /// Builds the record value once the checksum has been verified; nil if the fields disagree.
    private static func makeRecord(type: HistoryRecordType, runIdCount: Int, eventCount: Int, firstEventId: Int64,
                                   payload: UnsafeRawBufferPointer) -> HistoryRecord? {
        guard runIdCount > 0, runIdCount <= maxRunIdBytes, runIdCount <= payload.count else { return nil }
        let runId = String(decoding: payload[0..<runIdCount], as: UTF8.self)
        var position = runIdCount
        var events: [[UInt8]] = []
        switch type {
        case .tombstone:
            guard eventCount == 0, firstEventId == 0, position == payload.count else { return nil }
        case .events:
            guard eventCount > 0, firstEventId >= 1, eventCount <= payload.count else { return nil }
            events.reserveCapacity(eventCount)
            for _ in 0..<eventCount {
                guard position + 4 <= payload.count else { return nil }
                let length = Int(payload.loadUInt32(at: position))
                position += 4
                guard length <= payload.count - position else { return nil }
                events.append(Array(payload[position..<(position + length)]))
                position += length
            }
            guard position == payload.count else { return nil }
        }
        return HistoryRecord(type: type, runId: runId, firstEventId: firstEventId, events: events)
    }

    /// Whether a valid record starts at any aligned offset after `offset` (torn tail versus corruption).
    static func validRecordExists(_ bytes: UnsafeRawBufferPointer, after offset: Int) -> Bool {
        var candidate = offset + alignment
        while candidate + recordHeaderSize <= bytes.count {
            let type = bytes[candidate + 8]
            if (type == 1 || type == 2) && bytes[candidate + 9] == 0, case .record = decodeRecord(bytes, at: candidate) {
                return true
            }
            candidate += alignment
        }
        return false
    }
}

/// The order-independent content hash of a run's history: the wrapping sum of one 64-bit
/// value per event (two CRC-32Cs over the event id and bytes). Equal histories have equal
/// hashes; a prefix's hash can be computed from the events alone, so a store and a snapshot
/// are compared without reading the store back.
public enum HistoryContentHash {
    /// The hash of an empty history.
    public static let empty: UInt64 = 0

    /// The contribution of one event.
    public static func event(id: Int64, bytes: [UInt8]) -> UInt64 {
        var idBytes: [UInt8] = []
        idBytes.appendLittleEndian(UInt64(bitPattern: id))
        let low = bytes.withUnsafeBytes { CRC32C.extend(idBytes.withUnsafeBytes { CRC32C.checksum($0) }, $0) }
        let high = bytes.withUnsafeBytes { CRC32C.extend(0x9E37_79B9 ^ UInt32(truncatingIfNeeded: id), $0) }
        return UInt64(high) << 32 | UInt64(low)
    }

    /// The hash of events with contiguous ids from `firstEventId`.
    public static func of(_ events: some Sequence<[UInt8]>, firstEventId: Int64) -> UInt64 {
        var hash = empty
        var id = firstEventId
        for event in events {
            hash &+= self.event(id: id, bytes: event)
            id += 1
        }
        return hash
    }
}
