import SwiftProtobuf

/// A page of history events: count, first event id and the LZ4 frame of their protobuf encoding.
///
/// The uncompressed bytes are the encoding of `repeated HistoryEvent events = 1` (each event
/// as tag 0x0A, varint length, event bytes), so `lz4 -d | protoc --decode` of any message
/// with that field, or Python `lz4.frame.decompress`, reads it.
public struct LZ4EventBatch: Sendable, Equatable {
    /// Number of events in the batch.
    public var eventCount: UInt32
    /// Event id of the first event; the others follow contiguously.
    public var firstEventID: UInt64
    /// Size of the uncompressed encoding, in bytes.
    public var uncompressedBytes: UInt32
    /// The LZ4 frame.
    public var lz4Frame: [UInt8]

    /// Creates a batch from its parts.
    public init(eventCount: UInt32, firstEventID: UInt64, uncompressedBytes: UInt32, lz4Frame: [UInt8]) {
        self.eventCount = eventCount
        self.firstEventID = firstEventID
        self.uncompressedBytes = uncompressedBytes
        self.lz4Frame = lz4Frame
    }
}

/// Errors decoding an event batch, with the offending position.
public enum LZ4EventBatchError: Error, Sendable, Equatable {
    /// The LZ4 frame is invalid.
    case lz4(LZ4Error)
    /// The decompressed bytes are not a sequence of field-1 length-delimited records.
    case malformed(offset: Int, detail: String)
    /// The batch announces a different number of events than it holds.
    case countMismatch(announced: UInt32, found: Int)
}

/// Encodes and pages LZ4 event batches; pure functions.
public enum LZ4EventBatchCodec {
    /// Default upper bound of one batch's uncompressed encoding.
    public static let defaultMaxUncompressedBytes = 1 << 20

    /// Encodes already-serialized events (contiguous ids from `firstEventID`) into one batch.
    public static func encode(serializedEvents: [[UInt8]], firstEventID: UInt64) throws(LZ4Error) -> LZ4EventBatch {
        var plain: [UInt8] = []
        plain.reserveCapacity(serializedEvents.reduce(0) { $0 + $1.count + 6 })
        for event in serializedEvents {
            plain.append(0x0A)
            appendVarint(UInt64(event.count), to: &plain)
            plain.append(contentsOf: event)
        }
        let frame = try LZ4Frame.compress(plain)
        return LZ4EventBatch(eventCount: UInt32(serializedEvents.count), firstEventID: firstEventID,
                             uncompressedBytes: UInt32(plain.count), lz4Frame: frame)
    }

    /// Splits events into batches whose uncompressed size stays under `maxUncompressedBytes`.
    ///
    /// An event larger than the limit travels alone in its own batch rather than being dropped.
    public static func makeBatches(serializedEvents: [[UInt8]], firstEventID: UInt64,
                                   maxUncompressedBytes: Int = defaultMaxUncompressedBytes) throws(LZ4Error) -> [LZ4EventBatch] {
        precondition(maxUncompressedBytes > 0, "maxUncompressedBytes must be positive")
        var batches: [LZ4EventBatch] = []
        var page: [[UInt8]] = []
        var pageBytes = 0
        var nextID = firstEventID
        for event in serializedEvents {
            let cost = event.count + 1 + varintSize(UInt64(event.count))
            if !page.isEmpty, pageBytes + cost > maxUncompressedBytes {
                batches.append(try encode(serializedEvents: page, firstEventID: nextID))
                nextID += UInt64(page.count)
                page.removeAll(keepingCapacity: true)
                pageBytes = 0
            }
            page.append(event)
            pageBytes += cost
        }
        if !page.isEmpty { batches.append(try encode(serializedEvents: page, firstEventID: nextID)) }
        return batches
    }

    /// Decodes a batch into the serialized events, checking the announced count.
    public static func decode(_ batch: LZ4EventBatch,
                              maxUncompressedBytes: Int = 16 << 20) throws(LZ4EventBatchError) -> [[UInt8]] {
        let plain: [UInt8]
        do {
            plain = try LZ4Frame.decompress(batch.lz4Frame, maxOutputBytes: maxUncompressedBytes)
        } catch {
            throw .lz4(error)
        }
        let events = try splitRecords(plain)
        guard events.count == Int(batch.eventCount) else {
            throw .countMismatch(announced: batch.eventCount, found: events.count)
        }
        return events
    }

    /// Encodes protobuf messages (for example `HistoryEvent`) into batches.
    public static func makeBatches<Event: SwiftProtobuf.Message>(
        events: [Event], firstEventID: UInt64, maxUncompressedBytes: Int = defaultMaxUncompressedBytes
    ) throws -> [LZ4EventBatch] {
        let serialized = try events.map { try [UInt8]($0.serializedBytes() as [UInt8]) }
        return try makeBatches(serializedEvents: serialized, firstEventID: firstEventID,
                               maxUncompressedBytes: maxUncompressedBytes)
    }

    /// Decodes a batch into protobuf messages.
    public static func decode<Event: SwiftProtobuf.Message>(_ batch: LZ4EventBatch, as type: Event.Type) throws -> [Event] {
        try decode(batch).map { try Event(serializedBytes: $0) }
    }

    static func splitRecords(_ plain: [UInt8]) throws(LZ4EventBatchError) -> [[UInt8]] {
        var events: [[UInt8]] = []
        var offset = 0
        while offset < plain.count {
            guard plain[offset] == 0x0A else {
                throw .malformed(offset: offset, detail: "expected field 1 (tag 0x0A), found 0x\(String(plain[offset], radix: 16))")
            }
            offset += 1
            var length: UInt64 = 0
            var shift: UInt64 = 0
            while true {
                guard offset < plain.count, shift < 64 else { throw .malformed(offset: offset, detail: "truncated varint") }
                let byte = plain[offset]
                offset += 1
                length |= UInt64(byte & 0x7F) << shift
                if byte & 0x80 == 0 { break }
                shift += 7
            }
            guard length <= UInt64(plain.count - offset) else {
                throw .malformed(offset: offset, detail: "record of \(length) bytes overruns the batch")
            }
            events.append(Array(plain[offset..<(offset + Int(length))]))
            offset += Int(length)
        }
        return events
    }

    static func appendVarint(_ value: UInt64, to bytes: inout [UInt8]) {
        var value = value
        while value >= 0x80 {
            bytes.append(UInt8(value & 0x7F) | 0x80)
            value >>= 7
        }
        bytes.append(UInt8(value))
    }

    static func varintSize(_ value: UInt64) -> Int {
        var size = 1
        var value = value >> 7
        while value != 0 { size += 1; value >>= 7 }
        return size
    }
}
