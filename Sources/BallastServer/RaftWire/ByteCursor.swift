/// Appends big-endian integers and byte strings to a growing buffer.
struct ByteWriter {
    private(set) var bytes: [UInt8]

    init(reservingCapacity capacity: Int = 256) {
        bytes = []
        bytes.reserveCapacity(capacity)
    }

    mutating func write(_ value: UInt8) { bytes.append(value) }
    mutating func write(_ value: UInt32) {
        for shift in stride(from: 24, through: 0, by: -8) { bytes.append(UInt8(truncatingIfNeeded: value >> UInt32(shift))) }
    }
    mutating func write(_ value: UInt64) {
        for shift in stride(from: 56, through: 0, by: -8) { bytes.append(UInt8(truncatingIfNeeded: value >> UInt64(shift))) }
    }
    mutating func write(_ value: Bool) { bytes.append(value ? 1 : 0) }
    /// A length-prefixed (u32) byte string.
    mutating func writeBlob(_ blob: [UInt8]) {
        write(UInt32(blob.count))
        bytes.append(contentsOf: blob)
    }
}

/// Why bytes from a peer could not be decoded; the connection that sent them is closed.
public enum RaftWireError: Error, Sendable, Equatable, CustomStringConvertible {
    case truncated(needed: Int, offset: Int)
    case invalidValue(field: String, offset: Int)
    case tooLarge(field: String, bytes: Int, limit: Int)
    case trailingBytes(count: Int)
    case unsupportedVersion(UInt8)
    case checksumMismatch(expected: UInt32, actual: UInt32)

    public var description: String {
        switch self {
        case .truncated(let needed, let offset): "truncated: \(needed) more bytes needed at offset \(offset)"
        case .invalidValue(let field, let offset): "invalid \(field) at offset \(offset)"
        case .tooLarge(let field, let bytes, let limit): "\(field) of \(bytes) bytes exceeds the limit of \(limit)"
        case .trailingBytes(let count): "\(count) unexpected bytes after the message"
        case .unsupportedVersion(let version): "unsupported frame version \(version)"
        case .checksumMismatch(let expected, let actual):
            "checksum mismatch: frame says \(String(expected, radix: 16)), payload has \(String(actual, radix: 16))"
        }
    }
}

/// Reads big-endian integers and byte strings, checking every length against what is left.
struct ByteReader {
    private let bytes: [UInt8]
    private(set) var offset: Int

    init(_ bytes: [UInt8]) {
        self.bytes = bytes
        self.offset = 0
    }

    var remaining: Int { bytes.count - offset }

    private mutating func take(_ count: Int) throws(RaftWireError) -> ArraySlice<UInt8> {
        guard count >= 0, remaining >= count else { throw .truncated(needed: count - remaining, offset: offset) }
        defer { offset += count }
        return bytes[offset ..< offset + count]
    }

    mutating func readUInt8() throws(RaftWireError) -> UInt8 { try take(1).first ?? 0 }
    mutating func readUInt32() throws(RaftWireError) -> UInt32 { try take(4).reduce(0) { $0 << 8 | UInt32($1) } }
    mutating func readUInt64() throws(RaftWireError) -> UInt64 { try take(8).reduce(0) { $0 << 8 | UInt64($1) } }
    mutating func readBool(field: String) throws(RaftWireError) -> Bool {
        let at = offset
        switch try readUInt8() {
        case 0: return false
        case 1: return true
        default: throw .invalidValue(field: field, offset: at)
        }
    }
    /// A u32-length-prefixed byte string no longer than `limit`.
    mutating func readBlob(field: String, limit: Int) throws(RaftWireError) -> [UInt8] {
        let count = Int(try readUInt32())
        guard count <= limit else { throw .tooLarge(field: field, bytes: count, limit: limit) }
        return Array(try take(count))
    }
    func expectEnd() throws(RaftWireError) {
        guard remaining == 0 else { throw .trailingBytes(count: remaining) }
    }
}
