import Foundation
import SwiftProtobuf

/// Writes a message in protobuf's binary format, byte for byte what swift-protobuf's
/// `serializedBytes(options:)` writes with `useDeterministicOrdering` (map entries sorted by key),
/// in one traversal. Hand-written, not generated (`scripts/generate-protos.sh` rewrites only
/// `Generated/`).
///
/// swift-protobuf writes a nested message's length before the message, so it first traverses
/// the message to size it; a message three levels down (a payload's metadata inside `Payloads`
/// inside event attributes inside the event) is sized once per enclosing message and then
/// written. This encoder writes each nested message after a one-byte length slot and moves it
/// up in the rare case its length needs more than one byte: about 4× faster for history events
/// (docs/benchmarks.md).
/// `DeterministicBinaryEncoderTests` compares its output with swift-protobuf's for random
/// instances of every history message and of the engine snapshot.
public struct DeterministicBinaryEncoder: Visitor {
    public private(set) var bytes: [UInt8] = []

    public init(capacity: Int = 256) { bytes.reserveCapacity(capacity) }

    /// `message`'s deterministic binary encoding.
    public static func encode(_ message: some Message) throws -> [UInt8] {
        var encoder = DeterministicBinaryEncoder()
        try message.traverse(visitor: &encoder)
        return encoder.bytes
    }

    // MARK: Primitives

    private mutating func varint(_ value: UInt64) {
        var rest = value
        while rest > 127 {
            bytes.append(UInt8(truncatingIfNeeded: rest) & 0x7f | 0x80)
            rest >>= 7
        }
        bytes.append(UInt8(rest))
    }

    private mutating func tag(_ fieldNumber: Int, _ wireType: UInt64) {
        varint(UInt64(truncatingIfNeeded: fieldNumber) << 3 | wireType)
    }

    private mutating func fixed32(_ value: UInt32) {
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }

    private mutating func fixed64(_ value: UInt64) {
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }

    /// Starts a length-delimited value: returns where its one-byte length slot is.
    private mutating func openLength() -> Int {
        bytes.append(0)
        return bytes.count - 1
    }

    /// Fills the length slot opened at `slot` with the length of what was written since,
    /// widening it (moving the value up) when the length takes more than one byte.
    private mutating func closeLength(_ slot: Int) {
        let length = bytes.count - slot - 1
        if length < 0x80 {
            bytes[slot] = UInt8(length)
            return
        }
        var encoded: [UInt8] = []
        var rest = UInt64(length)
        while rest > 127 {
            encoded.append(UInt8(truncatingIfNeeded: rest) & 0x7f | 0x80)
            rest >>= 7
        }
        encoded.append(UInt8(rest))
        bytes.replaceSubrange(slot ..< slot + 1, with: encoded)
    }

    private mutating func lengthDelimited(_ buffer: UnsafeRawBufferPointer) {
        varint(UInt64(buffer.count))
        bytes.append(contentsOf: buffer)
    }

    // MARK: Visitor

    public mutating func visitUnknown(bytes unknown: Data) throws {
        unknown.withUnsafeBytes { bytes.append(contentsOf: $0) }
    }

    public mutating func visitSingularFloatField(value: Float, fieldNumber: Int) throws {
        tag(fieldNumber, 5)
        fixed32(value.bitPattern)
    }

    public mutating func visitSingularDoubleField(value: Double, fieldNumber: Int) throws {
        tag(fieldNumber, 1)
        fixed64(value.bitPattern)
    }

    public mutating func visitSingularInt32Field(value: Int32, fieldNumber: Int) throws {
        tag(fieldNumber, 0)
        varint(UInt64(bitPattern: Int64(value)))
    }

    public mutating func visitSingularInt64Field(value: Int64, fieldNumber: Int) throws {
        tag(fieldNumber, 0)
        varint(UInt64(bitPattern: value))
    }

    public mutating func visitSingularUInt32Field(value: UInt32, fieldNumber: Int) throws {
        tag(fieldNumber, 0)
        varint(UInt64(value))
    }

    public mutating func visitSingularUInt64Field(value: UInt64, fieldNumber: Int) throws {
        tag(fieldNumber, 0)
        varint(value)
    }

    public mutating func visitSingularSInt32Field(value: Int32, fieldNumber: Int) throws {
        try visitSingularSInt64Field(value: Int64(value), fieldNumber: fieldNumber)
    }

    public mutating func visitSingularSInt64Field(value: Int64, fieldNumber: Int) throws {
        tag(fieldNumber, 0)
        varint(Self.zigZag(value))
    }

    public mutating func visitSingularFixed32Field(value: UInt32, fieldNumber: Int) throws {
        tag(fieldNumber, 5)
        fixed32(value)
    }

    public mutating func visitSingularFixed64Field(value: UInt64, fieldNumber: Int) throws {
        tag(fieldNumber, 1)
        fixed64(value)
    }

    public mutating func visitSingularSFixed32Field(value: Int32, fieldNumber: Int) throws {
        tag(fieldNumber, 5)
        fixed32(UInt32(bitPattern: value))
    }

    public mutating func visitSingularSFixed64Field(value: Int64, fieldNumber: Int) throws {
        tag(fieldNumber, 1)
        fixed64(UInt64(bitPattern: value))
    }

    public mutating func visitSingularBoolField(value: Bool, fieldNumber: Int) throws {
        tag(fieldNumber, 0)
        bytes.append(value ? 1 : 0)
    }

    public mutating func visitSingularStringField(value: String, fieldNumber: Int) throws {
        tag(fieldNumber, 2)
        let written: Void? = value.utf8.withContiguousStorageIfAvailable { lengthDelimited(UnsafeRawBufferPointer($0)) }
        if written == nil {
            varint(UInt64(value.utf8.count))
            bytes.append(contentsOf: value.utf8)
        }
    }

    public mutating func visitSingularBytesField(value: Data, fieldNumber: Int) throws {
        tag(fieldNumber, 2)
        value.withUnsafeBytes { lengthDelimited($0) }
    }

    public mutating func visitSingularEnumField<E: Enum>(value: E, fieldNumber: Int) throws {
        tag(fieldNumber, 0)
        varint(UInt64(bitPattern: Int64(value.rawValue)))
    }

    public mutating func visitSingularMessageField<M: Message>(value: M, fieldNumber: Int) throws {
        tag(fieldNumber, 2)
        let slot = openLength()
        try value.traverse(visitor: &self)
        closeLength(slot)
    }

    public mutating func visitSingularGroupField<G: Message>(value: G, fieldNumber: Int) throws {
        tag(fieldNumber, 3)
        try value.traverse(visitor: &self)
        tag(fieldNumber, 4)
    }

    /// The default loop, declared here so that it is specialized per message type.
    public mutating func visitRepeatedMessageField<M: Message>(value: [M], fieldNumber: Int) throws {
        for element in value { try visitSingularMessageField(value: element, fieldNumber: fieldNumber) }
    }

    public mutating func visitRepeatedStringField(value: [String], fieldNumber: Int) throws {
        for element in value { try visitSingularStringField(value: element, fieldNumber: fieldNumber) }
    }

    public mutating func visitRepeatedBytesField(value: [Data], fieldNumber: Int) throws {
        for element in value { try visitSingularBytesField(value: element, fieldNumber: fieldNumber) }
    }

    // Packed fields: the elements' encodings in one length-delimited value.

    private mutating func packed<T>(_ values: [T], _ fieldNumber: Int, _ write: (inout Self, T) -> Void) {
        tag(fieldNumber, 2)
        let slot = openLength()
        for value in values { write(&self, value) }
        closeLength(slot)
    }

    public mutating func visitPackedFloatField(value: [Float], fieldNumber: Int) throws {
        packed(value, fieldNumber) { $0.fixed32($1.bitPattern) }
    }

    public mutating func visitPackedDoubleField(value: [Double], fieldNumber: Int) throws {
        packed(value, fieldNumber) { $0.fixed64($1.bitPattern) }
    }

    public mutating func visitPackedInt32Field(value: [Int32], fieldNumber: Int) throws {
        packed(value, fieldNumber) { $0.varint(UInt64(bitPattern: Int64($1))) }
    }

    public mutating func visitPackedInt64Field(value: [Int64], fieldNumber: Int) throws {
        packed(value, fieldNumber) { $0.varint(UInt64(bitPattern: $1)) }
    }

    public mutating func visitPackedSInt32Field(value: [Int32], fieldNumber: Int) throws {
        packed(value, fieldNumber) { $0.varint(Self.zigZag(Int64($1))) }
    }

    public mutating func visitPackedSInt64Field(value: [Int64], fieldNumber: Int) throws {
        packed(value, fieldNumber) { $0.varint(Self.zigZag($1)) }
    }

    public mutating func visitPackedUInt32Field(value: [UInt32], fieldNumber: Int) throws {
        packed(value, fieldNumber) { $0.varint(UInt64($1)) }
    }

    public mutating func visitPackedUInt64Field(value: [UInt64], fieldNumber: Int) throws {
        packed(value, fieldNumber) { $0.varint($1) }
    }

    public mutating func visitPackedFixed32Field(value: [UInt32], fieldNumber: Int) throws {
        packed(value, fieldNumber) { $0.fixed32($1) }
    }

    public mutating func visitPackedFixed64Field(value: [UInt64], fieldNumber: Int) throws {
        packed(value, fieldNumber) { $0.fixed64($1) }
    }

    public mutating func visitPackedSFixed32Field(value: [Int32], fieldNumber: Int) throws {
        packed(value, fieldNumber) { $0.fixed32(UInt32(bitPattern: $1)) }
    }

    public mutating func visitPackedSFixed64Field(value: [Int64], fieldNumber: Int) throws {
        packed(value, fieldNumber) { $0.fixed64(UInt64(bitPattern: $1)) }
    }

    public mutating func visitPackedBoolField(value: [Bool], fieldNumber: Int) throws {
        packed(value, fieldNumber) { $0.bytes.append($1 ? 1 : 0) }
    }

    public mutating func visitPackedEnumField<E: Enum>(value: [E], fieldNumber: Int) throws {
        packed(value, fieldNumber) { $0.varint(UInt64(bitPattern: Int64($1.rawValue))) }
    }

    // Maps: one length-delimited entry per key, keys in `_lessThan` order (deterministic),
    // each entry its key as field 1 and its value as field 2.

    private mutating func mapEntries<Key, Value>(
        _ map: [Key: Value], _ fieldNumber: Int, _ isOrderedBefore: (Key, Key) -> Bool,
        _ write: (inout Self, Key, Value) throws -> Void
    ) throws {
        func entry(_ key: Key, _ value: Value) throws {
            tag(fieldNumber, 2)
            let slot = openLength()
            try write(&self, key, value)
            closeLength(slot)
        }
        if map.count == 1, let only = map.first {
            try entry(only.key, only.value)
            return
        }
        for (key, value) in map.sorted(by: { isOrderedBefore($0.key, $1.key) }) { try entry(key, value) }
    }

    public mutating func visitMapField<KeyType, ValueType: MapValueType>(
        fieldType: _ProtobufMap<KeyType, ValueType>.Type,
        value: _ProtobufMap<KeyType, ValueType>.BaseType, fieldNumber: Int
    ) throws {
        try mapEntries(value, fieldNumber, KeyType._lessThan) { encoder, key, value in
            try KeyType.visitSingular(value: key, fieldNumber: 1, with: &encoder)
            try ValueType.visitSingular(value: value, fieldNumber: 2, with: &encoder)
        }
    }

    public mutating func visitMapField<KeyType, ValueType>(
        fieldType: _ProtobufEnumMap<KeyType, ValueType>.Type,
        value: _ProtobufEnumMap<KeyType, ValueType>.BaseType, fieldNumber: Int
    ) throws where ValueType.RawValue == Int {
        try mapEntries(value, fieldNumber, KeyType._lessThan) { encoder, key, value in
            try KeyType.visitSingular(value: key, fieldNumber: 1, with: &encoder)
            try encoder.visitSingularEnumField(value: value, fieldNumber: 2)
        }
    }

    public mutating func visitMapField<KeyType, ValueType>(
        fieldType: _ProtobufMessageMap<KeyType, ValueType>.Type,
        value: _ProtobufMessageMap<KeyType, ValueType>.BaseType, fieldNumber: Int
    ) throws {
        try mapEntries(value, fieldNumber, KeyType._lessThan) { encoder, key, value in
            try KeyType.visitSingular(value: key, fieldNumber: 1, with: &encoder)
            try encoder.visitSingularMessageField(value: value, fieldNumber: 2)
        }
    }

    private static func zigZag(_ value: Int64) -> UInt64 {
        UInt64(bitPattern: (value << 1) ^ (value >> 63))
    }
}

extension DeterministicBinaryEncoder {
    /// A history event's encoding: `event_id` (1), `event_time_unix_nanos` (2), the attributes
    /// case, unknown fields. The attributes are matched here rather than through the event's
    /// generated `traverse`, which copies the `oneof` enum on its way.
    public static func encode(event: Ballast_V1_HistoryEvent) throws -> [UInt8] {
        var encoder = DeterministicBinaryEncoder()
        if event.eventID != 0 { try encoder.visitSingularInt64Field(value: event.eventID, fieldNumber: 1) }
        if event.eventTimeUnixNanos != 0 { try encoder.visitSingularInt64Field(value: event.eventTimeUnixNanos, fieldNumber: 2) }
        switch event.attributes {
        case nil: break
        case let .workflowExecutionStarted(value)?: try encoder.visitSingularMessageField(value: value, fieldNumber: 10)
        case let .workflowExecutionCompleted(value)?: try encoder.visitSingularMessageField(value: value, fieldNumber: 11)
        case let .workflowExecutionFailed(value)?: try encoder.visitSingularMessageField(value: value, fieldNumber: 12)
        case let .workflowExecutionTimedOut(value)?: try encoder.visitSingularMessageField(value: value, fieldNumber: 13)
        case let .workflowExecutionCanceled(value)?: try encoder.visitSingularMessageField(value: value, fieldNumber: 14)
        case let .workflowExecutionTerminated(value)?: try encoder.visitSingularMessageField(value: value, fieldNumber: 15)
        case let .workflowExecutionContinuedAsNew(value)?: try encoder.visitSingularMessageField(value: value, fieldNumber: 16)
        case let .workflowTaskScheduled(value)?: try encoder.visitSingularMessageField(value: value, fieldNumber: 20)
        case let .workflowTaskStarted(value)?: try encoder.visitSingularMessageField(value: value, fieldNumber: 21)
        case let .workflowTaskCompleted(value)?: try encoder.visitSingularMessageField(value: value, fieldNumber: 22)
        case let .workflowTaskTimedOut(value)?: try encoder.visitSingularMessageField(value: value, fieldNumber: 23)
        case let .workflowTaskFailed(value)?: try encoder.visitSingularMessageField(value: value, fieldNumber: 24)
        case let .activityTaskScheduled(value)?: try encoder.visitSingularMessageField(value: value, fieldNumber: 30)
        case let .activityTaskStarted(value)?: try encoder.visitSingularMessageField(value: value, fieldNumber: 31)
        case let .activityTaskCompleted(value)?: try encoder.visitSingularMessageField(value: value, fieldNumber: 32)
        case let .activityTaskFailed(value)?: try encoder.visitSingularMessageField(value: value, fieldNumber: 33)
        case let .activityTaskTimedOut(value)?: try encoder.visitSingularMessageField(value: value, fieldNumber: 34)
        case let .activityTaskCancelRequested(value)?: try encoder.visitSingularMessageField(value: value, fieldNumber: 35)
        case let .activityTaskCanceled(value)?: try encoder.visitSingularMessageField(value: value, fieldNumber: 36)
        case let .timerStarted(value)?: try encoder.visitSingularMessageField(value: value, fieldNumber: 40)
        case let .timerFired(value)?: try encoder.visitSingularMessageField(value: value, fieldNumber: 41)
        case let .timerCanceled(value)?: try encoder.visitSingularMessageField(value: value, fieldNumber: 42)
        case let .workflowExecutionSignaled(value)?: try encoder.visitSingularMessageField(value: value, fieldNumber: 50)
        case let .workflowExecutionCancelRequested(value)?: try encoder.visitSingularMessageField(value: value, fieldNumber: 51)
        case let .markerRecorded(value)?: try encoder.visitSingularMessageField(value: value, fieldNumber: 52)
        case let .upsertWorkflowSearchAttributes(value)?: try encoder.visitSingularMessageField(value: value, fieldNumber: 53)
        case let .startChildWorkflowExecutionInitiated(value)?: try encoder.visitSingularMessageField(value: value, fieldNumber: 60)
        case let .startChildWorkflowExecutionFailed(value)?: try encoder.visitSingularMessageField(value: value, fieldNumber: 61)
        case let .childWorkflowExecutionStarted(value)?: try encoder.visitSingularMessageField(value: value, fieldNumber: 62)
        case let .childWorkflowExecutionCompleted(value)?: try encoder.visitSingularMessageField(value: value, fieldNumber: 63)
        case let .childWorkflowExecutionFailed(value)?: try encoder.visitSingularMessageField(value: value, fieldNumber: 64)
        case let .childWorkflowExecutionCanceled(value)?: try encoder.visitSingularMessageField(value: value, fieldNumber: 65)
        case let .childWorkflowExecutionTimedOut(value)?: try encoder.visitSingularMessageField(value: value, fieldNumber: 66)
        case let .childWorkflowExecutionTerminated(value)?: try encoder.visitSingularMessageField(value: value, fieldNumber: 67)
        case let .signalExternalWorkflowExecutionInitiated(value)?: try encoder.visitSingularMessageField(value: value, fieldNumber: 70)
        case let .signalExternalWorkflowExecutionFailed(value)?: try encoder.visitSingularMessageField(value: value, fieldNumber: 71)
        case let .externalWorkflowExecutionSignaled(value)?: try encoder.visitSingularMessageField(value: value, fieldNumber: 72)
        }
        try event.unknownFields.traverse(visitor: &encoder)
        return encoder.bytes
    }
}
