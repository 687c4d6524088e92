/// Little-endian integer encoding into and out of byte buffers (the on-disk byte order).
extension Array where Element == UInt8 {
    /// Appends `value` as 8 little-endian bytes.
    mutating func appendLittleEndian(_ value: UInt64) {
        Swift.withUnsafeBytes(of: value.littleEndian) { append(contentsOf: $0) }
    }

    /// Appends `value` as 4 little-endian bytes.
    mutating func appendLittleEndian(_ value: UInt32) {
        Swift.withUnsafeBytes(of: value.littleEndian) { append(contentsOf: $0) }
    }

    /// Appends `value` as 2 little-endian bytes.
    mutating func appendLittleEndian(_ value: UInt16) {
        Swift.withUnsafeBytes(of: value.littleEndian) { append(contentsOf: $0) }
    }

    /// Appends `count` zero bytes.
    mutating func appendZeros(_ count: Int) {
        if count > 0 { append(contentsOf: repeatElement(0, count: count)) }
    }

    /// Overwrites 4 bytes at `offset` with `value`, little-endian.
    mutating func storeLittleEndian(_ value: UInt32, at offset: Int) {
        precondition(offset >= 0 && offset + 4 <= count, "store outside the buffer")
        withUnsafeMutableBytes { $0.storeBytes(of: value.littleEndian, toByteOffset: offset, as: UInt32.self) }
    }
}

extension UnsafeRawBufferPointer {
    /// The little-endian UInt64 at `offset`; the caller has checked the bounds.
    func loadUInt64(at offset: Int) -> UInt64 {
        precondition(offset >= 0 && offset + 8 <= count, "load outside the buffer")
        return UInt64(littleEndian: loadUnaligned(fromByteOffset: offset, as: UInt64.self))
    }

    /// The little-endian UInt32 at `offset`; the caller has checked the bounds.
    func loadUInt32(at offset: Int) -> UInt32 {
        precondition(offset >= 0 && offset + 4 <= count, "load outside the buffer")
        return UInt32(littleEndian: loadUnaligned(fromByteOffset: offset, as: UInt32.self))
    }

    /// The little-endian UInt16 at `offset`; the caller has checked the bounds.
    func loadUInt16(at offset: Int) -> UInt16 {
        precondition(offset >= 0 && offset + 2 <= count, "load outside the buffer")
        return UInt16(littleEndian: loadUnaligned(fromByteOffset: offset, as: UInt16.self))
    }

    /// Whether every byte in `range` is zero.
    func isAllZero(_ range: Range<Int>) -> Bool {
        guard let base = baseAddress else { return true }
        var position = range.lowerBound
        while position < range.upperBound && position % 8 != 0 {
            if base.load(fromByteOffset: position, as: UInt8.self) != 0 { return false }
            position += 1
        }
        while position + 8 <= range.upperBound {
            if base.load(fromByteOffset: position, as: UInt64.self) != 0 { return false }
            position += 8
        }
        while position < range.upperBound {
            if base.load(fromByteOffset: position, as: UInt8.self) != 0 { return false }
            position += 1
        }
        return true
    }
}
