/// Protobuf's wire format, just enough to place one scalar at any field path of a message.
public enum WireFormat {
    public enum Value: Equatable, Sendable {
        case varint(UInt64), fixed64(UInt64), bytes([UInt8]), fixed32(UInt32)
    }

    public struct Field: Equatable, Sendable {
        public var number: UInt64
        public var value: Value

        public init(number: UInt64, value: Value) {
            self.number = number
            self.value = value
        }
    }

    /// The numbers put in: Int64.max, -1, Int64.min and 2^32 as varints (int64, int32, enum,
    /// bool and unsigned fields), and +inf, NaN and -1e300 as 64-bit doubles.
    public static let extremes: [Value] = [
        .varint(UInt64(Int64.max)), .varint(UInt64.max), .varint(UInt64(bitPattern: Int64.min)), .varint(1 << 32),
        .fixed64(Double.infinity.bitPattern), .fixed64(Double.nan.bitPattern), .fixed64((-1e300).bitPattern),
    ]

    /// Field numbers tried in every message (Ballast's messages number their fields below 20).
    public static let fieldNumbers: ClosedRange<UInt64> = 1...20

    /// The fields of a well-formed message, or nil (groups, truncation, a zero field number).
    public static func parse(_ bytes: [UInt8]) -> [Field]? {
        var fields: [Field] = []
        var offset = 0
        func varint() -> UInt64? {
            var value: UInt64 = 0
            var shift: UInt64 = 0
            while offset < bytes.count, shift < 64 {
                let byte = bytes[offset]
                offset += 1
                value |= UInt64(byte & 0x7F) << shift
                if byte & 0x80 == 0 { return value }
                shift += 7
            }
            return nil
        }
        while offset < bytes.count {
            guard let tag = varint(), tag >> 3 > 0 else { return nil }
            switch tag & 7 {
            case 0:
                guard let value = varint() else { return nil }
                fields.append(Field(number: tag >> 3, value: .varint(value)))
            case 1:
                guard bytes.count - offset >= 8 else { return nil }
                let value = bytes[offset..<offset + 8].reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
                offset += 8
                fields.append(Field(number: tag >> 3, value: .fixed64(value)))
            case 2:
                guard let length = varint(), length <= UInt64(bytes.count - offset) else { return nil }
                fields.append(Field(number: tag >> 3, value: .bytes(Array(bytes[offset..<offset + Int(length)]))))
                offset += Int(length)
            case 5:
                guard bytes.count - offset >= 4 else { return nil }
                let value = bytes[offset..<offset + 4].reversed().reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
                offset += 4
                fields.append(Field(number: tag >> 3, value: .fixed32(value)))
            default:
                return nil
            }
        }
        return fields
    }

    public static func encode(_ fields: [Field]) -> [UInt8] {
        var out: [UInt8] = []
        func varint(_ value: UInt64) {
            var rest = value
            while rest >= 0x80 {
                out.append(UInt8(rest & 0x7F) | 0x80)
                rest >>= 7
            }
            out.append(UInt8(rest))
        }
        for field in fields {
            switch field.value {
            case let .varint(value):
                varint(field.number << 3)
                varint(value)
            case let .fixed64(value):
                varint(field.number << 3 | 1)
                for shift in stride(from: 0, to: 64, by: 8) { out.append(UInt8(truncatingIfNeeded: value >> UInt64(shift))) }
            case let .bytes(content):
                varint(field.number << 3 | 2)
                varint(UInt64(content.count))
                out += content
            case let .fixed32(value):
                varint(field.number << 3 | 5)
                for shift in stride(from: 0, to: 32, by: 8) { out.append(UInt8(truncatingIfNeeded: value >> UInt32(shift))) }
            }
        }
        return out
    }

    /// `message` with one extreme value appended at each field number (the last value of a
    /// scalar field wins), and the same inside every nested message, down to `depth` levels. A
    /// length-delimited field counts as a message when its bytes parse as one; a string that
    /// happens to parse only gets longer (or invalid UTF-8, which the decoder refuses).
    public static func variants(of message: [UInt8], depth: Int) -> [[UInt8]] {
        guard let fields = parse(message) else { return [] }
        var out: [[UInt8]] = []
        for number in fieldNumbers {
            for value in extremes { out.append(message + encode([Field(number: number, value: value)])) }
        }
        guard depth > 0 else { return out }
        for (index, field) in fields.enumerated() {
            guard case let .bytes(content) = field.value, !content.isEmpty, parse(content) != nil else { continue }
            for inner in variants(of: content, depth: depth - 1) {
                var changed = fields
                changed[index].value = .bytes(inner)
                out.append(encode(changed))
            }
        }
        return out
    }
}
