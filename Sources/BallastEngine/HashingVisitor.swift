import BallastProto
import SwiftProtobuf

/// Names the bytes type protobuf uses (Data) without bringing its module into the core.
protocol ProtoBytesCarrier { associatedtype Bytes; var data: Bytes { get } }
extension Ballast_V1_Payload: ProtoBytesCarrier {}
typealias ProtoBytes = Ballast_V1_Payload.Bytes

/// Feeds a message's fields straight into FNV-1a 64 without serializing it: one traversal, no
/// buffer. Every value is preceded by its field number and a kind tag; map entries are hashed
/// one by one and combined by addition, so the result does not depend on map order.
///
/// It also counts the message's size on the way (`counted`): `fieldBound` bytes per field
/// visited (each map entry and each element of a repeated field is one) plus the bytes of every
/// string, bytes and unknown field. That is never less than the protobuf encoding's size (a tag
/// of a field numbered below 2,048 takes at most 2 bytes, and a varint value or a length prefix
/// at most 10), and for events that carry payloads it is close to it. Engine format 4 limits a
/// run's history by this count (`EngineLimits.historyMaxBytes`), so it is part of the replicated
/// state: changing what it counts needs a new entry format.
struct HashingVisitor: Visitor {
    private static let prime: UInt64 = 0x0000_0100_0000_01b3
    /// What each field adds to `counted` besides its string or bytes content.
    static let fieldBound: Int64 = 12
    private(set) var hash: UInt64
    /// The size counted so far (see above).
    private(set) var counted: Int64 = 0

    init(seed: UInt64) { hash = seed }

    /// Chains a message onto `previous`.
    static func combine(_ previous: UInt64, _ message: some Message) -> UInt64 {
        var visitor = HashingVisitor(seed: RollingHash.combine(previous, EmptyCollection<UInt8>()))
        try? message.traverse(visitor: &visitor)
        return visitor.hash
    }

    /// Word-wise FNV step with an extra shift so high bits reach low bits.
    fileprivate mutating func mix(_ value: UInt64) {
        hash = (hash ^ value) &* Self.prime
        hash ^= hash >> 29
    }

    fileprivate mutating func field(_ number: Int, _ kind: UInt64) {
        mix(UInt64(truncatingIfNeeded: number) << 8 | kind)
        counted &+= Self.fieldBound
    }

    private mutating func bytes(_ buffer: UnsafeRawBufferPointer) {
        mix(UInt64(buffer.count))
        counted &+= Int64(buffer.count)
        var offset = 0
        while buffer.count - offset >= 8 {
            mix(UInt64(littleEndian: buffer.loadUnaligned(fromByteOffset: offset, as: UInt64.self)))
            offset += 8
        }
        var tail: UInt64 = 0
        while offset < buffer.count {
            tail = tail << 8 | UInt64(buffer[offset])
            offset += 1
        }
        mix(tail)
    }

    mutating func visitSingularDoubleField(value: Double, fieldNumber: Int) throws {
        field(fieldNumber, 1)
        mix(value.bitPattern)
    }

    mutating func visitSingularInt64Field(value: Int64, fieldNumber: Int) throws {
        field(fieldNumber, 2)
        mix(UInt64(bitPattern: value))
    }

    mutating func visitSingularUInt64Field(value: UInt64, fieldNumber: Int) throws {
        field(fieldNumber, 3)
        mix(value)
    }

    mutating func visitSingularBoolField(value: Bool, fieldNumber: Int) throws {
        field(fieldNumber, 4)
        mix(value ? 1 : 0)
    }

    mutating func visitSingularStringField(value: String, fieldNumber: Int) throws {
        field(fieldNumber, 5)
        // Read in place (a `var` copy for `withUTF8` retained and released the string).
        let hashed: Void? = value.utf8.withContiguousStorageIfAvailable { bytes(UnsafeRawBufferPointer($0)) }
        if hashed != nil { return }
        var copy = value
        copy.withUTF8 { bytes(UnsafeRawBufferPointer($0)) }
    }

    mutating func visitSingularBytesField(value: ProtoBytes, fieldNumber: Int) throws {
        field(fieldNumber, 6)
        value.withUnsafeBytes { bytes($0) }
    }

    mutating func visitSingularEnumField<E: Enum>(value: E, fieldNumber: Int) throws {
        field(fieldNumber, 7)
        mix(UInt64(bitPattern: Int64(value.rawValue)))
    }

    mutating func visitSingularMessageField<M: Message>(value: M, fieldNumber: Int) throws {
        field(fieldNumber, 8)
        try value.traverse(visitor: &self)
        mix(0xfeed_face)
    }

    /// The same loop as swift-protobuf's default, declared here so that it is specialized for each
    /// message type (the default went through witness tables: about 2,200 instructions per `Payloads`).
    mutating func visitRepeatedMessageField<M: Message>(value: [M], fieldNumber: Int) throws {
        for element in value {
            try visitSingularMessageField(value: element, fieldNumber: fieldNumber)
        }
    }

    mutating func visitMapField<KeyType, ValueType: MapValueType>(
        fieldType: _ProtobufMap<KeyType, ValueType>.Type,
        value: _ProtobufMap<KeyType, ValueType>.BaseType, fieldNumber: Int
    ) throws {
        var sum: UInt64 = 0
        for (key, entry) in value {
            var sub = HashingVisitor(seed: RollingHash.empty)
            try KeyType.visitSingular(value: key, fieldNumber: 1, with: &sub)
            try ValueType.visitSingular(value: entry, fieldNumber: 2, with: &sub)
            sum &+= sub.hash
            counted &+= sub.counted &+ Self.fieldBound
        }
        field(fieldNumber, 9)
        mix(UInt64(value.count))
        mix(sum)
    }

    mutating func visitMapField<KeyType, ValueType>(
        fieldType: _ProtobufEnumMap<KeyType, ValueType>.Type,
        value: _ProtobufEnumMap<KeyType, ValueType>.BaseType, fieldNumber: Int
    ) throws where ValueType.RawValue == Int {
        var sum: UInt64 = 0
        for (key, entry) in value {
            var sub = HashingVisitor(seed: RollingHash.empty)
            try KeyType.visitSingular(value: key, fieldNumber: 1, with: &sub)
            try sub.visitSingularEnumField(value: entry, fieldNumber: 2)
            sum &+= sub.hash
            counted &+= sub.counted &+ Self.fieldBound
        }
        field(fieldNumber, 10)
        mix(UInt64(value.count))
        mix(sum)
    }

    mutating func visitMapField<KeyType, ValueType>(
        fieldType: _ProtobufMessageMap<KeyType, ValueType>.Type,
        value: _ProtobufMessageMap<KeyType, ValueType>.BaseType, fieldNumber: Int
    ) throws {
        var sum: UInt64 = 0
        for (key, entry) in value {
            var sub = HashingVisitor(seed: RollingHash.empty)
            try KeyType.visitSingular(value: key, fieldNumber: 1, with: &sub)
            try sub.visitSingularMessageField(value: entry, fieldNumber: 2)
            sum &+= sub.hash
            counted &+= sub.counted &+ Self.fieldBound
        }
        field(fieldNumber, 11)
        mix(UInt64(value.count))
        mix(sum)
    }

    mutating func visitUnknown(bytes unknown: ProtoBytes) throws {
        field(0, 12)
        unknown.withUnsafeBytes { bytes($0) }
    }
}

extension HashingVisitor {
    /// The rolling hash of the event `(eventId, time, attributes)` chained onto `previous`: exactly
    /// `combine(previous, event)` for a `HistoryEvent` with these fields and no unknown fields,
    /// without traversing the event (whose generated `traverse` copied and destroyed the `oneof`
    /// enum several times per event). The field numbers are those of `Ballast_V1_HistoryEvent`
    /// (1, 2 and the attribute cases); `HashingTests` compares this with `combine` for every case.
    static func combineEvent(_ previous: UInt64, eventId: Int64, time: Int64, attributes: EventAttributes) -> UInt64 {
        var counted: Int64 = 0
        return combineEvent(previous, eventId: eventId, time: time, attributes: attributes, counted: &counted)
    }

    /// `combineEvent`, adding the event's counted size (`counted`, above) to `counted`.
    static func combineEvent(_ previous: UInt64, eventId: Int64, time: Int64, attributes: EventAttributes,
                             counted: inout Int64) -> UInt64 {
        var visitor = HashingVisitor(seed: RollingHash.combine(previous, EmptyCollection<UInt8>()))
        if eventId != 0 { visitor.int64(eventId, 1) }
        if time != 0 { visitor.int64(time, 2) }
        switch attributes {
        case let .workflowExecutionStarted(value): visitor.message(value, 10)
        case let .workflowExecutionCompleted(value): visitor.message(value, 11)
        case let .workflowExecutionFailed(value): visitor.message(value, 12)
        case let .workflowExecutionTimedOut(value): visitor.message(value, 13)
        case let .workflowExecutionCanceled(value): visitor.message(value, 14)
        case let .workflowExecutionTerminated(value): visitor.message(value, 15)
        case let .workflowExecutionContinuedAsNew(value): visitor.message(value, 16)
        case let .workflowTaskScheduled(value): visitor.message(value, 20)
        case let .workflowTaskStarted(value): visitor.message(value, 21)
        case let .workflowTaskCompleted(value): visitor.message(value, 22)
        case let .workflowTaskTimedOut(value): visitor.message(value, 23)
        case let .workflowTaskFailed(value): visitor.message(value, 24)
        case let .activityTaskScheduled(value): visitor.message(value, 30)
        case let .activityTaskStarted(value): visitor.message(value, 31)
        case let .activityTaskCompleted(value): visitor.message(value, 32)
        case let .activityTaskFailed(value): visitor.message(value, 33)
        case let .activityTaskTimedOut(value): visitor.message(value, 34)
        case let .activityTaskCancelRequested(value): visitor.message(value, 35)
        case let .activityTaskCanceled(value): visitor.message(value, 36)
        case let .timerStarted(value): visitor.message(value, 40)
        case let .timerFired(value): visitor.message(value, 41)
        case let .timerCanceled(value): visitor.message(value, 42)
        case let .workflowExecutionSignaled(value): visitor.message(value, 50)
        case let .workflowExecutionCancelRequested(value): visitor.message(value, 51)
        case let .markerRecorded(value): visitor.message(value, 52)
        case let .upsertWorkflowSearchAttributes(value): visitor.message(value, 53)
        case let .startChildWorkflowExecutionInitiated(value): visitor.message(value, 60)
        case let .startChildWorkflowExecutionFailed(value): visitor.message(value, 61)
        case let .childWorkflowExecutionStarted(value): visitor.message(value, 62)
        case let .childWorkflowExecutionCompleted(value): visitor.message(value, 63)
        case let .childWorkflowExecutionFailed(value): visitor.message(value, 64)
        case let .childWorkflowExecutionCanceled(value): visitor.message(value, 65)
        case let .childWorkflowExecutionTimedOut(value): visitor.message(value, 66)
        case let .childWorkflowExecutionTerminated(value): visitor.message(value, 67)
        case let .signalExternalWorkflowExecutionInitiated(value): visitor.message(value, 70)
        case let .signalExternalWorkflowExecutionFailed(value): visitor.message(value, 71)
        case let .externalWorkflowExecutionSignaled(value): visitor.message(value, 72)
        }
        counted &+= visitor.counted
        return visitor.hash
    }

    private mutating func int64(_ value: Int64, _ fieldNumber: Int) {
        field(fieldNumber, 2)
        mix(UInt64(bitPattern: value))
    }

    private mutating func message(_ value: some Message, _ fieldNumber: Int) {
        field(fieldNumber, 8)
        try? value.traverse(visitor: &self)
        mix(0xfeed_face)
    }
}
