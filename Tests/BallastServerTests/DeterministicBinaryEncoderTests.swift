import BallastFuzzSupport
import BallastProto
import BallastRaft
@testable import BallastServer
import Foundation
import SwiftProtobuf
import Testing

@Suite("Deterministic binary encoder")
struct DeterministicBinaryEncoderTests {
    static let deterministic: BinaryEncodingOptions = {
        var options = BinaryEncodingOptions()
        options.useDeterministicOrdering = true
        return options
    }()

    /// swift-protobuf's bytes and ours for `event`, and ours decode back to the event.
    static func check(_ event: Ballast_V1_HistoryEvent, _ label: String) throws {
        let expected: [UInt8] = try event.serializedBytes(options: deterministic)
        let ours = try DeterministicBinaryEncoder.encode(event: event)
        #expect(ours == expected, "\(label): \(ours.count) bytes against swift-protobuf's \(expected.count)")
        #expect(try Ballast_V1_HistoryEvent(serializedBytes: ours) == event, "\(label)")
        #expect(try DeterministicBinaryEncoder.encode(event) == expected, "\(label): through the event's own traverse")
    }

    @Test("random events of every kind, nested messages, maps and repeated fields encode as swift-protobuf does")
    func randomEvents() async throws {
        var kinds = Set<String>()
        var yielder = PoolYielder() // seconds of work in a debug build: the other tests' waits go on
        for seed in UInt64(1) ... 3_000 {
            await yielder.yieldIfDue()
            var filler = RandomFieldDecoder(seed: seed)
            var event = Ballast_V1_HistoryEvent()
            try event.decodeMessage(decoder: &filler)
            if let attributes = event.attributes { kinds.insert("\(attributes)".prefix { $0 != "(" }.description) }
            try Self.check(event, "seed \(seed)")
        }
        #expect(kinds.count == 37, "every attributes case was drawn: \(kinds.count)")
    }

    @Test("unknown fields are written after the known ones, in the event and in nested messages")
    func unknownFields() throws {
        let unknown: [UInt8] = [0xb8, 0x3e, 0x07] // field 999, varint 7
        for seed in UInt64(1) ... 200 {
            var filler = RandomFieldDecoder(seed: seed)
            var event = Ballast_V1_HistoryEvent()
            try event.decodeMessage(decoder: &filler)
            let withUnknown = try Ballast_V1_HistoryEvent(serializedBytes: try event.serializedBytes() + unknown)
            #expect(!withUnknown.unknownFields.data.isEmpty)
            try Self.check(withUnknown, "seed \(seed) with an unknown field")
        }
        var attributes = try Ballast_V1_ActivityTaskCompletedEventAttributes(serializedBytes: unknown)
        attributes.scheduledEventID = 5
        var event = Ballast_V1_HistoryEvent()
        event.eventID = 7
        event.attributes = .activityTaskCompleted(attributes)
        try Self.check(event, "nested unknown field")
    }

    @Test("a nested length of two and three bytes moves the message up without changing it")
    func longNestedLengths() throws {
        for size in [0, 1, 126, 127, 128, 129, 300, 16_383, 16_384, 20_000, 2_100_000] {
            var payload = Ballast_V1_Payload()
            payload.metadata = ["encoding": Data("json/plain".utf8), "z": Data(), "a": Data([1, 2])]
            payload.data = Data(repeating: 0x5a, count: size)
            var attributes = Ballast_V1_ActivityTaskScheduledEventAttributes()
            attributes.activityID = "debit"
            attributes.input.payloads = [payload, payload]
            var event = Ballast_V1_HistoryEvent()
            event.eventID = 3
            event.eventTimeUnixNanos = 1_700_000_000_000_000_000
            event.attributes = .activityTaskScheduled(attributes)
            try Self.check(event, "payload of \(size) bytes")
        }
    }

    @Test("map entries are sorted by key as swift-protobuf's deterministic ordering sorts them")
    func mapOrder() throws {
        var attributes = Ballast_V1_UpsertWorkflowSearchAttributesEventAttributes()
        for key in ["b", "a", "é", "e", "Z", "日本", "", "aa", "ab", "a\u{301}"] {
            var value = Ballast_V1_SearchAttributeValue()
            value.keywordValue = key + "!"
            attributes.searchAttributes.indexedFields[key] = value
        }
        var event = Ballast_V1_HistoryEvent()
        event.attributes = .upsertWorkflowSearchAttributes(attributes)
        try Self.check(event, "ten keys")
    }

    @Test("an empty event, and events whose attributes hold no field")
    func emptyCases() throws {
        try Self.check(Ballast_V1_HistoryEvent(), "empty event")
        for seed in UInt64(1) ... 400 {
            var filler = RandomFieldDecoder(seed: seed, maxDepth: 1)
            var event = Ballast_V1_HistoryEvent()
            try event.decodeMessage(decoder: &filler)
            try Self.check(event, "seed \(seed), attributes without fields")
        }
    }

    @Test("random engine snapshots encode as swift-protobuf does (the snapshot's engine part uses it)")
    func randomSnapshots() throws {
        for seed in UInt64(1) ... 60 {
            var filler = RandomFieldDecoder(seed: seed, maxDepth: 3)
            var snapshot = Ballast_V1_EngineSnapshot()
            try snapshot.decodeMessage(decoder: &filler)
            let expected: [UInt8] = try snapshot.serializedBytes(options: Self.deterministic)
            #expect(try DeterministicBinaryEncoder.encode(snapshot) == expected, "seed \(seed)")
        }
    }

    @Test("the history store's event coding writes swift-protobuf's deterministic bytes")
    func historyCoding() throws {
        var filler = RandomFieldDecoder(seed: 99)
        var event = Ballast_V1_HistoryEvent()
        try event.decodeMessage(decoder: &filler)
        #expect(try HistoryEventCoding.encode(event) == (try event.serializedBytes(options: Self.deterministic)))
    }
}

/// A swift-protobuf `Decoder` that fills a message with random values instead of reading bytes:
/// every field of the message is offered with probability one half, in random order (so `oneof`
/// members compete, the last one offered winning), nested messages down to `maxDepth`, repeated
/// fields and maps with up to four elements, strings with non-ASCII text and values long enough
/// to need multi-byte lengths.
struct RandomFieldDecoder: SwiftProtobuf.Decoder {
    private var random: DeterministicRandom
    private let maxDepth: Int
    private var depth = 0
    private var pending: [[Int]] = []

    init(seed: UInt64, maxDepth: Int = 4) {
        random = DeterministicRandom(seed: seed)
        self.maxDepth = maxDepth
    }

    private mutating func next() -> UInt64 { random.next() }

    private mutating func below(_ bound: Int) -> Int { Int(next() % UInt64(bound)) }

    private mutating func int64() -> Int64 {
        switch below(5) {
        case 0: return 0
        case 1: return Int64(below(200))
        case 2: return -Int64(below(200)) - 1
        case 3: return Int64(bitPattern: next())
        default: return Int64(below(1 << 20))
        }
    }

    private mutating func string() -> String {
        let samples = ["", "a", "transfer-17", "é", "日本語", "a\u{301}", "Z", "emoji 💸", String(repeating: "x", count: 200)]
        return samples[below(samples.count)]
    }

    private mutating func data() -> Data {
        let count = [0, 1, 5, 127, 128, 300][below(6)]
        return Data((0 ..< count).map { _ in UInt8(truncatingIfNeeded: next()) })
    }

    private mutating func count() -> Int { below(5) }

    mutating func handleConflictingOneOf() throws {}

    /// Field numbers 1…80 (every history message's fields are below 80), each offered with
    /// probability one half, shuffled; nothing below `maxDepth`.
    mutating func nextFieldNumber() throws -> Int? {
        if pending.count <= depth {
            var numbers: [Int] = []
            if depth < maxDepth { for number in 1 ... 80 where below(2) == 0 { numbers.append(number) } }
            for index in numbers.indices.reversed() { numbers.swapAt(index, below(index + 1)) }
            pending.append(numbers)
        }
        guard let number = pending[depth].popLast() else {
            pending.removeLast()
            return nil
        }
        return number
    }

    private mutating func nested<M: SwiftProtobuf.Message>(_ type: M.Type) throws -> M {
        var message = M()
        depth += 1
        defer { depth -= 1 }
        try message.decodeMessage(decoder: &self)
        return message
    }

    mutating func decodeSingularFloatField(value: inout Float) throws { value = Float(int64()) / 3 }
    mutating func decodeSingularFloatField(value: inout Float?) throws { value = Float(int64()) / 3 }
    mutating func decodeRepeatedFloatField(value: inout [Float]) throws { value = (0 ..< count()).map { _ in Float(int64()) / 3 } }
    mutating func decodeSingularDoubleField(value: inout Double) throws { value = Double(int64()) / 3 }
    mutating func decodeSingularDoubleField(value: inout Double?) throws { value = Double(int64()) / 3 }
    mutating func decodeRepeatedDoubleField(value: inout [Double]) throws { value = (0 ..< count()).map { _ in Double(int64()) / 3 } }
    mutating func decodeSingularInt32Field(value: inout Int32) throws { value = Int32(truncatingIfNeeded: int64()) }
    mutating func decodeSingularInt32Field(value: inout Int32?) throws { value = Int32(truncatingIfNeeded: int64()) }
    mutating func decodeRepeatedInt32Field(value: inout [Int32]) throws { value = (0 ..< count()).map { _ in Int32(truncatingIfNeeded: int64()) } }
    mutating func decodeSingularInt64Field(value: inout Int64) throws { value = int64() }
    mutating func decodeSingularInt64Field(value: inout Int64?) throws { value = int64() }
    mutating func decodeRepeatedInt64Field(value: inout [Int64]) throws { value = (0 ..< count()).map { _ in int64() } }
    mutating func decodeSingularUInt32Field(value: inout UInt32) throws { value = UInt32(truncatingIfNeeded: int64()) }
    mutating func decodeSingularUInt32Field(value: inout UInt32?) throws { value = UInt32(truncatingIfNeeded: int64()) }
    mutating func decodeRepeatedUInt32Field(value: inout [UInt32]) throws { value = (0 ..< count()).map { _ in UInt32(truncatingIfNeeded: int64()) } }
    mutating func decodeSingularUInt64Field(value: inout UInt64) throws { value = UInt64(bitPattern: int64()) }
    mutating func decodeSingularUInt64Field(value: inout UInt64?) throws { value = UInt64(bitPattern: int64()) }
    mutating func decodeRepeatedUInt64Field(value: inout [UInt64]) throws { value = (0 ..< count()).map { _ in UInt64(bitPattern: int64()) } }
    mutating func decodeSingularSInt32Field(value: inout Int32) throws { value = Int32(truncatingIfNeeded: int64()) }
    mutating func decodeSingularSInt32Field(value: inout Int32?) throws { value = Int32(truncatingIfNeeded: int64()) }
    mutating func decodeRepeatedSInt32Field(value: inout [Int32]) throws { value = (0 ..< count()).map { _ in Int32(truncatingIfNeeded: int64()) } }
    mutating func decodeSingularSInt64Field(value: inout Int64) throws { value = int64() }
    mutating func decodeSingularSInt64Field(value: inout Int64?) throws { value = int64() }
    mutating func decodeRepeatedSInt64Field(value: inout [Int64]) throws { value = (0 ..< count()).map { _ in int64() } }
    mutating func decodeSingularFixed32Field(value: inout UInt32) throws { value = UInt32(truncatingIfNeeded: int64()) }
    mutating func decodeSingularFixed32Field(value: inout UInt32?) throws { value = UInt32(truncatingIfNeeded: int64()) }
    mutating func decodeRepeatedFixed32Field(value: inout [UInt32]) throws { value = (0 ..< count()).map { _ in UInt32(truncatingIfNeeded: int64()) } }
    mutating func decodeSingularFixed64Field(value: inout UInt64) throws { value = UInt64(bitPattern: int64()) }
    mutating func decodeSingularFixed64Field(value: inout UInt64?) throws { value = UInt64(bitPattern: int64()) }
    mutating func decodeRepeatedFixed64Field(value: inout [UInt64]) throws { value = (0 ..< count()).map { _ in UInt64(bitPattern: int64()) } }
    mutating func decodeSingularSFixed32Field(value: inout Int32) throws { value = Int32(truncatingIfNeeded: int64()) }
    mutating func decodeSingularSFixed32Field(value: inout Int32?) throws { value = Int32(truncatingIfNeeded: int64()) }
    mutating func decodeRepeatedSFixed32Field(value: inout [Int32]) throws { value = (0 ..< count()).map { _ in Int32(truncatingIfNeeded: int64()) } }
    mutating func decodeSingularSFixed64Field(value: inout Int64) throws { value = int64() }
    mutating func decodeSingularSFixed64Field(value: inout Int64?) throws { value = int64() }
    mutating func decodeRepeatedSFixed64Field(value: inout [Int64]) throws { value = (0 ..< count()).map { _ in int64() } }
    mutating func decodeSingularBoolField(value: inout Bool) throws { value = below(2) == 0 }
    mutating func decodeSingularBoolField(value: inout Bool?) throws { value = below(2) == 0 }
    mutating func decodeRepeatedBoolField(value: inout [Bool]) throws { value = (0 ..< count()).map { _ in below(2) == 0 } }
    mutating func decodeSingularStringField(value: inout String) throws { value = string() }
    mutating func decodeSingularStringField(value: inout String?) throws { value = string() }
    mutating func decodeRepeatedStringField(value: inout [String]) throws { value = (0 ..< count()).map { _ in string() } }
    mutating func decodeSingularBytesField(value: inout Data) throws { value = data() }
    mutating func decodeSingularBytesField(value: inout Data?) throws { value = data() }
    mutating func decodeRepeatedBytesField(value: inout [Data]) throws { value = (0 ..< count()).map { _ in data() } }

    /// Known values mostly, sometimes an unrecognized one (proto3 keeps those).
    private mutating func enumValue<E: Enum>() -> E where E.RawValue == Int {
        E(rawValue: below(8) == 0 ? 77 : below(4)) ?? E()
    }

    mutating func decodeSingularEnumField<E: Enum>(value: inout E) throws where E.RawValue == Int { value = enumValue() }
    mutating func decodeSingularEnumField<E: Enum>(value: inout E?) throws where E.RawValue == Int { value = enumValue() }
    mutating func decodeRepeatedEnumField<E: Enum>(value: inout [E]) throws where E.RawValue == Int {
        value = (0 ..< count()).map { _ in enumValue() }
    }

    mutating func decodeSingularMessageField<M: SwiftProtobuf.Message>(value: inout M?) throws { value = try nested(M.self) }
    mutating func decodeRepeatedMessageField<M: SwiftProtobuf.Message>(value: inout [M]) throws {
        for _ in 0 ..< count() { value.append(try nested(M.self)) }
    }

    mutating func decodeSingularGroupField<G: SwiftProtobuf.Message>(value: inout G?) throws { value = try nested(G.self) }
    mutating func decodeRepeatedGroupField<G: SwiftProtobuf.Message>(value: inout [G]) throws {
        for _ in 0 ..< count() { value.append(try nested(G.self)) }
    }

    mutating func decodeMapField<KeyType, ValueType: MapValueType>(
        fieldType: _ProtobufMap<KeyType, ValueType>.Type, value: inout _ProtobufMap<KeyType, ValueType>.BaseType
    ) throws {
        for _ in 0 ..< count() {
            var key: KeyType.BaseType?
            var entry: ValueType.BaseType?
            try KeyType.decodeSingular(value: &key, from: &self)
            try ValueType.decodeSingular(value: &entry, from: &self)
            if let key, let entry { value[key] = entry }
        }
    }

    mutating func decodeMapField<KeyType, ValueType>(
        fieldType: _ProtobufEnumMap<KeyType, ValueType>.Type, value: inout _ProtobufEnumMap<KeyType, ValueType>.BaseType
    ) throws where ValueType.RawValue == Int {
        for _ in 0 ..< count() {
            var key: KeyType.BaseType?
            try KeyType.decodeSingular(value: &key, from: &self)
            if let key { value[key] = enumValue() }
        }
    }

    mutating func decodeMapField<KeyType, ValueType>(
        fieldType: _ProtobufMessageMap<KeyType, ValueType>.Type, value: inout _ProtobufMessageMap<KeyType, ValueType>.BaseType
    ) throws {
        for _ in 0 ..< count() {
            var key: KeyType.BaseType?
            try KeyType.decodeSingular(value: &key, from: &self)
            if let key { value[key] = try nested(ValueType.self) }
        }
    }

    mutating func decodeExtensionField(values: inout ExtensionFieldValueSet, messageType: any SwiftProtobuf.Message.Type, fieldNumber: Int) throws {
        Issue.record("history messages have no extensions")
    }
}
