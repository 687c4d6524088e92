import CBallastCRC

/// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78): the CPU's crc32 instruction where the
/// CPU has SSE4.2, else table-driven with slicing-by-8 (both give the same values; tests check).
///
/// Used for WAL records, snapshot files and, later, Raft transport frames. The check value
/// for the ASCII bytes "123456789" is 0xE3069283.
public struct CRC32C: Sendable {
    /// The checksum of everything fed so far (already finalized; feeding more continues it).
    public private(set) var value: UInt32 = 0

    /// Starts an empty checksum.
    public init() {}

    /// Feeds `bytes` into the checksum.
    public mutating func update(_ bytes: UnsafeRawBufferPointer) {
        value = Self.extend(value, bytes)
    }

    /// Feeds `bytes` into the checksum.
    public mutating func update(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { update($0) }
    }

    /// Feeds `bytes` into the checksum.
    public mutating func update(_ bytes: ArraySlice<UInt8>) {
        bytes.withUnsafeBytes { update($0) }
    }

    /// The CRC-32C of `bytes`.
    public static func checksum(_ bytes: UnsafeRawBufferPointer) -> UInt32 {
        extend(0, bytes)
    }

    /// The CRC-32C of `bytes`.
    public static func checksum(_ bytes: [UInt8]) -> UInt32 {
        bytes.withUnsafeBytes { extend(0, $0) }
    }

    /// The CRC-32C of `bytes`.
    public static func checksum(_ bytes: ArraySlice<UInt8>) -> UInt32 {
        bytes.withUnsafeBytes { extend(0, $0) }
    }

    /// Whether the hardware instruction is used on this machine.
    public static let usesHardware = ballast_crc32c_hardware_available() != 0

    /// Continues the finalized checksum `crc` over `bytes` and returns the finalized result.
    public static func extend(_ crc: UInt32, _ bytes: UnsafeRawBufferPointer) -> UInt32 {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return crc }
        if usesHardware { return ~ballast_crc32c_hardware_update(~crc, base, bytes.count) }
        return extendWithTables(crc, bytes)
    }

    /// The table-driven computation (the fallback, and the reference the hardware path is tested against).
    static func extendWithTables(_ crc: UInt32, _ bytes: UnsafeRawBufferPointer) -> UInt32 {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return crc }
        let table = crc32cTable
        var state = ~crc
        var position = 0
        let count = bytes.count
        // Eight bytes per step: one lookup in each of the eight tables (slicing-by-8).
        while count - position >= 8 {
            let word = UInt64(littleEndian: base.loadUnaligned(fromByteOffset: position, as: UInt64.self))
            let low = UInt32(truncatingIfNeeded: word) ^ state
            let high = UInt32(truncatingIfNeeded: word >> 32)
            state = table[7 * 256 + Int(low & 0xFF)]
                ^ table[6 * 256 + Int((low >> 8) & 0xFF)]
                ^ table[5 * 256 + Int((low >> 16) & 0xFF)]
                ^ table[4 * 256 + Int(low >> 24)]
                ^ table[3 * 256 + Int(high & 0xFF)]
                ^ table[2 * 256 + Int((high >> 8) & 0xFF)]
                ^ table[1 * 256 + Int((high >> 16) & 0xFF)]
                ^ table[Int(high >> 24)]
            position += 8
        }
        while position < count {
            let byte = base.load(fromByteOffset: position, as: UInt8.self)
            state = table[Int((state ^ UInt32(byte)) & 0xFF)] ^ (state >> 8)
            position += 1
        }
        return ~state
    }
}

/// The eight 256-entry slicing tables, built once and never freed (read-only after creation).
nonisolated(unsafe) private let crc32cTable: UnsafePointer<UInt32> = {
    let polynomial: UInt32 = 0x82F6_3B78
    let table = UnsafeMutablePointer<UInt32>.allocate(capacity: 8 * 256)
    for byte in 0..<256 {
        var crc = UInt32(byte)
        for _ in 0..<8 { crc = (crc & 1) != 0 ? (crc >> 1) ^ polynomial : crc >> 1 }
        table[byte] = crc
    }
    for slice in 1..<8 {
        for byte in 0..<256 {
            let previous = table[(slice - 1) * 256 + byte]
            table[slice * 256 + byte] = table[Int(previous & 0xFF)] ^ (previous >> 8)
        }
    }
    return UnsafePointer(table)
}()
