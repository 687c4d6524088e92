import BallastProto
import SwiftProtobuf

/// Task tokens are encoded and decoded on almost every entry; swift-protobuf's generic codec
/// made that about a tenth of the engine's time. This codec writes the same bytes as
/// swift-protobuf's binary encoding of `Ballast_V1_TaskToken` (fields in number order, default
/// values omitted) and reads the canonical form directly; anything else — unknown or repeated
/// fields, other wire types, non-ASCII text, truncation — falls back to swift-protobuf, so what
/// is accepted or rejected, and the decoded token, never differ from the generic codec's.
/// A field added to `TaskToken` must be added here too (field order, size and fast path);
/// `TaskTokenCodecTests` compares every ready task's bytes with swift-protobuf's and fails otherwise.
enum TaskTokenCodec {
    /// The binary encoding of a token with these fields (identical to `serializedBytes()`).
    static func encode(
        namespace: String, workflowId: String, runId: String, scheduledEventId: Int64, attempt: Int32,
        activityId: String, isActivity: Bool, taskQueue: String
    ) -> ProtoBytes {
        var size = 0
        size += stringFieldSize(namespace)
        size += stringFieldSize(workflowId)
        size += stringFieldSize(runId)
        if scheduledEventId != 0 { size += 1 + varintSize(UInt64(bitPattern: scheduledEventId)) }
        if attempt != 0 { size += 1 + varintSize(UInt64(bitPattern: Int64(attempt))) }
        size += stringFieldSize(activityId)
        if isActivity { size += 2 }
        size += stringFieldSize(taskQueue)
        return withUnsafeTemporaryAllocation(byteCount: size, alignment: 1) { buffer in
            var offset = 0
            writeString(1, namespace, buffer, &offset)
            writeString(2, workflowId, buffer, &offset)
            writeString(3, runId, buffer, &offset)
            if scheduledEventId != 0 {
                buffer[offset] = 4 << 3
                offset += 1
                writeVarint(UInt64(bitPattern: scheduledEventId), buffer, &offset)
            }
            if attempt != 0 {
                buffer[offset] = 5 << 3
                offset += 1
                writeVarint(UInt64(bitPattern: Int64(attempt)), buffer, &offset)
            }
            writeString(6, activityId, buffer, &offset)
            if isActivity {
                buffer[offset] = 7 << 3
                buffer[offset + 1] = 1
                offset += 2
            }
            writeString(8, taskQueue, buffer, &offset)
            guard let base = buffer.baseAddress, size > 0 else { return ProtoBytes() }
            return ProtoBytes(bytes: base, count: size)
        }
    }

    /// Decodes a token, exactly as `Ballast_V1_TaskToken(serializedBytes:)` would.
    static func decode<Bytes: SwiftProtobufContiguousBytes>(_ bytes: Bytes) throws(EngineRejection) -> Ballast_V1_TaskToken {
        var token = Ballast_V1_TaskToken()
        // Decoded in place: returning the token through an optional from the closure copied it.
        if bytes.withUnsafeBytes({ decodeCanonical($0, into: &token) }) { return token }
        do {
            return try Ballast_V1_TaskToken(serializedBytes: bytes)
        } catch {
            throw .malformedTaskToken
        }
    }

    /// The token if `buffer` holds only known fields with their proto3 wire types, each at most
    /// once, in increasing field order, with ASCII strings; nil for anything else.
    static func decodeCanonical(_ buffer: UnsafeRawBufferPointer) -> Ballast_V1_TaskToken? {
        var token = Ballast_V1_TaskToken()
        return decodeCanonical(buffer, into: &token) ? token : nil
    }

    /// Fills `token` (which must be empty) and returns true if `buffer` is canonical, as
    /// `decodeCanonical(_:)`; on false, `token` holds a part of the fields and must be dropped.
    static func decodeCanonical(_ buffer: UnsafeRawBufferPointer, into token: inout Ballast_V1_TaskToken) -> Bool {
        var offset = 0
        var lastField = 0
        while offset < buffer.count {
            let tag = buffer[offset]
            offset += 1
            let field = Int(tag >> 3), wireType = tag & 7
            guard tag < 0x80, field > lastField, field <= 8 else { return false }
            lastField = field
            switch field {
            case 1, 2, 3, 6, 8:
                guard wireType == 2, let length = readVarint(buffer, &offset), length <= UInt64(buffer.count - offset)
                else { return false }
                let end = offset + Int(length)
                let bytes = UnsafeRawBufferPointer(rebasing: buffer[offset..<end])
                // ASCII is valid UTF-8 as it stands; other text is left to swift-protobuf's validation.
                guard isASCII(bytes) else { return false }
                let text = String(decoding: bytes, as: UTF8.self)
                offset = end
                switch field {
                case 1: token.namespace = text
                case 2: token.workflowID = text
                case 3: token.runID = text
                case 6: token.activityID = text
                default: token.taskQueue = text
                }
            default:
                guard wireType == 0, let value = readVarint(buffer, &offset) else { return false }
                switch field {
                case 4: token.scheduledEventID = Int64(bitPattern: value)
                case 5: token.attempt = Int32(truncatingIfNeeded: value)
                default: token.isActivity = value != 0
                }
            }
        }
        return true
    }

    /// Whether every byte is below 0x80 (eight bytes at a time).
    static func isASCII(_ bytes: UnsafeRawBufferPointer) -> Bool {
        var bits: UInt64 = 0
        var offset = 0
        while bytes.count - offset >= 8 {
            bits |= bytes.loadUnaligned(fromByteOffset: offset, as: UInt64.self)
            offset += 8
        }
        while offset < bytes.count {
            bits |= UInt64(bytes[offset])
            offset += 1
        }
        return bits & 0x8080_8080_8080_8080 == 0
    }

    private static func stringFieldSize(_ value: String) -> Int {
        let count = value.utf8.count
        return count == 0 ? 0 : 1 + varintSize(UInt64(count)) + count
    }

    private static func varintSize(_ value: UInt64) -> Int {
        var size = 1
        var rest = value >> 7
        while rest != 0 {
            size += 1
            rest >>= 7
        }
        return size
    }

    private static func writeVarint(_ value: UInt64, _ buffer: UnsafeMutableRawBufferPointer, _ offset: inout Int) {
        var rest = value
        while rest >= 0x80 {
            buffer[offset] = UInt8(truncatingIfNeeded: rest) | 0x80
            offset += 1
            rest >>= 7
        }
        buffer[offset] = UInt8(rest)
        offset += 1
    }

    private static func writeString(_ field: UInt8, _ value: String, _ buffer: UnsafeMutableRawBufferPointer, _ offset: inout Int) {
        let count = value.utf8.count
        guard count > 0 else { return }
        buffer[offset] = field << 3 | 2
        offset += 1
        writeVarint(UInt64(count), buffer, &offset)
        let start = offset
        let copied: Void? = value.utf8.withContiguousStorageIfAvailable { source in
            UnsafeMutableRawBufferPointer(rebasing: buffer[start..<start + count]).copyMemory(from: UnsafeRawBufferPointer(source))
        }
        if copied == nil {
            for (position, byte) in value.utf8.enumerated() { buffer[start + position] = byte }
        }
        offset += count
    }

    /// A varint of at most 10 bytes (the 10th carrying only its lowest bit, as protobuf requires).
    private static func readVarint(_ buffer: UnsafeRawBufferPointer, _ offset: inout Int) -> UInt64? {
        var value: UInt64 = 0
        var shift: UInt64 = 0
        while offset < buffer.count {
            let byte = buffer[offset]
            offset += 1
            if shift == 63, byte > 1 { return nil }
            value |= UInt64(byte & 0x7f) << shift
            if byte < 0x80 { return value }
            shift += 7
            if shift > 63 { return nil }
        }
        return nil
    }
}
