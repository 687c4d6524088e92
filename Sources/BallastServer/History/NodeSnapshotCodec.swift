import BallastStorage
import BallastWire

/// One run's whole history in a node snapshot.
public struct SnapshotRunHistory: Sendable, Equatable {
    /// The run id.
    public var runId: String
    /// Serialized events, ids 1 through `events.count`.
    public var events: [[UInt8]]

    /// Creates a run history.
    public init(runId: String, events: [[UInt8]]) {
        self.runId = runId
        self.events = events
    }
}

/// A node's state-machine snapshot: the engine's snapshot bytes plus the history of every run
/// the engine knows (docs/storage.md, "Node snapshots").
public struct NodeSnapshot: Sendable, Equatable {
    /// `WorkflowEngine.snapshot()` bytes.
    public var engine: [UInt8]
    /// Histories sorted by run id.
    public var histories: [SnapshotRunHistory]

    /// Creates a snapshot from its parts.
    public init(engine: [UInt8], histories: [SnapshotRunHistory]) {
        self.engine = engine
        self.histories = histories
    }
}

/// Why snapshot bytes could not be decoded.
public enum NodeSnapshotError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The bytes are damaged, truncated or of another format.
    case corrupt(String)

    public var description: String {
        switch self {
        case .corrupt(let reason): "node snapshot is corrupt: \(reason); fetch a fresh snapshot from a peer"
        }
    }
}

/// Frames, versions, checksums and LZ4-compresses node snapshots; pure functions.
///
/// Layout (big-endian, as the Raft wire): magic `BLSTNODE`; version u32 (`1`); flags u32 (bit 0:
/// the body is an LZ4 frame); stored body length u64; uncompressed body length u64; CRC-32C of
/// the stored body u32; CRC-32C of the 36 header bytes before it u32; then the body: engine
/// bytes (u64 length + bytes), run count u32, and per run: run id (u32 length + UTF-8), event
/// count u32, each event (u32 length + bytes).
public enum NodeSnapshotCodec {
    static let magic: [UInt8] = Array("BLSTNODE".utf8)
    static let version: UInt32 = 1
    static let headerSize = 40
    static let flagLZ4: UInt32 = 1
    /// Decoding refuses bodies announced larger than this (16 GiB): damage, not data.
    static let maxBodyBytes: UInt64 = 16 << 30
    /// Events and run ids are refused above these sizes when decoding.
    static let maxEventBytes = 64 << 20
    static let maxRunIdBytes = 1_024

    /// Encodes a snapshot, compressing the body with LZ4 when `compress` is set.
    public static func encode(_ snapshot: NodeSnapshot, compress: Bool = true) throws -> [UInt8] {
        var body = SnapshotWriter(reservingCapacity: snapshot.engine.count + 64)
        body.write(UInt64(snapshot.engine.count))
        body.append(snapshot.engine)
        body.write(UInt32(snapshot.histories.count))
        for run in snapshot.histories {
            body.writeBlob(Array(run.runId.utf8))
            body.write(UInt32(run.events.count))
            for event in run.events { body.writeBlob(event) }
        }
        let plain = body.bytes
        let stored = compress ? try LZ4Frame.compress(plain) : plain
        var header = SnapshotWriter(reservingCapacity: headerSize + stored.count)
        header.append(magic)
        header.write(version)
        header.write(compress ? flagLZ4 : 0)
        header.write(UInt64(stored.count))
        header.write(UInt64(plain.count))
        header.write(CRC32C.checksum(stored))
        header.write(CRC32C.checksum(header.bytes))
        header.append(stored)
        return header.bytes
    }

    /// Decodes and verifies snapshot bytes.
    public static func decode(_ bytes: [UInt8]) throws(NodeSnapshotError) -> NodeSnapshot {
        guard bytes.count >= headerSize else { throw .corrupt("\(bytes.count) bytes, shorter than the \(headerSize)-byte header") }
        guard Array(bytes[0..<8]) == magic else { throw .corrupt("bad magic, expected BLSTNODE") }
        var reader = SnapshotReader(Array(bytes[8..<headerSize]))
        do {
            let version = try reader.readUInt32()
            guard version == Self.version else { throw NodeSnapshotError.corrupt("unsupported version \(version)") }
            let flags = try reader.readUInt32()
            let storedCount = try reader.readUInt64()
            let plainCount = try reader.readUInt64()
            let bodyChecksum = try reader.readUInt32()
            let headerChecksum = try reader.readUInt32()
            guard headerChecksum == CRC32C.checksum(bytes[0..<(headerSize - 4)]) else { throw NodeSnapshotError.corrupt("header checksum mismatch") }
            guard flags & ~flagLZ4 == 0 else { throw NodeSnapshotError.corrupt("unknown flags \(flags)") }
            guard storedCount == UInt64(bytes.count - headerSize), plainCount <= maxBodyBytes else {
                throw NodeSnapshotError.corrupt("length fields do not match the \(bytes.count) bytes")
            }
            let stored = Array(bytes[headerSize...])
            guard CRC32C.checksum(stored) == bodyChecksum else { throw NodeSnapshotError.corrupt("body checksum mismatch") }
            let plain = flags & flagLZ4 != 0 ? try LZ4Frame.decompress(stored, maxOutputBytes: Int(plainCount)) : stored
            guard plain.count == Int(plainCount) else { throw NodeSnapshotError.corrupt("body is \(plain.count) bytes, header says \(plainCount)") }
            return try decodeBody(plain)
        } catch let error as NodeSnapshotError {
            throw error
        } catch {
            throw .corrupt("\(error)")
        }
    }

    private static func decodeBody(_ plain: [UInt8]) throws -> NodeSnapshot {
        var reader = SnapshotReader(plain)
        let engineCount = try reader.readUInt64()
        guard engineCount <= UInt64(reader.remaining) else { throw NodeSnapshotError.corrupt("engine length \(engineCount) overruns the body") }
        let engine = try reader.readBytes(Int(engineCount))
        let runCount = Int(try reader.readUInt32())
        var histories: [SnapshotRunHistory] = []
        histories.reserveCapacity(min(runCount, reader.remaining / 8))
        var previous: String?
        for _ in 0..<runCount {
            let runId = String(decoding: try reader.readBlob(field: "run id", limit: maxRunIdBytes), as: UTF8.self)
            if let previous, previous >= runId { throw NodeSnapshotError.corrupt("run ids are not sorted and unique at \(runId)") }
            previous = runId
            let eventCount = Int(try reader.readUInt32())
            guard eventCount <= reader.remaining / 4 else { throw NodeSnapshotError.corrupt("event count \(eventCount) overruns the body") }
            var events: [[UInt8]] = []
            events.reserveCapacity(eventCount)
            for _ in 0..<eventCount { events.append(try reader.readBlob(field: "event", limit: maxEventBytes)) }
            histories.append(SnapshotRunHistory(runId: runId, events: events))
        }
        try reader.expectEnd()
        return NodeSnapshot(engine: engine, histories: histories)
    }
}

/// Appends big-endian integers and length-prefixed byte strings.
struct SnapshotWriter {
    var bytes: [UInt8] = []

    init(reservingCapacity capacity: Int) { bytes.reserveCapacity(capacity) }

    mutating func write(_ value: UInt32) {
        for shift in stride(from: 24, through: 0, by: -8) { bytes.append(UInt8(truncatingIfNeeded: value >> UInt32(shift))) }
    }
    mutating func write(_ value: UInt64) {
        for shift in stride(from: 56, through: 0, by: -8) { bytes.append(UInt8(truncatingIfNeeded: value >> UInt64(shift))) }
    }
    mutating func append(_ raw: [UInt8]) { bytes.append(contentsOf: raw) }
    /// A u32-length-prefixed byte string.
    mutating func writeBlob(_ blob: [UInt8]) {
        write(UInt32(blob.count))
        bytes.append(contentsOf: blob)
    }
}

/// Reads big-endian integers and byte strings, checking every length against what is left.
struct SnapshotReader {
    private let bytes: [UInt8]
    private(set) var offset = 0

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    var remaining: Int { bytes.count - offset }

    mutating func readBytes(_ count: Int) throws(NodeSnapshotError) -> [UInt8] {
        guard count >= 0, remaining >= count else { throw .corrupt("truncated at offset \(offset): \(count) bytes needed") }
        defer { offset += count }
        return Array(bytes[offset..<(offset + count)])
    }
    mutating func readUInt32() throws(NodeSnapshotError) -> UInt32 { try readBytes(4).reduce(0) { $0 << 8 | UInt32($1) } }
    mutating func readUInt64() throws(NodeSnapshotError) -> UInt64 { try readBytes(8).reduce(0) { $0 << 8 | UInt64($1) } }
    /// A u32-length-prefixed byte string no longer than `limit`.
    mutating func readBlob(field: String, limit: Int) throws(NodeSnapshotError) -> [UInt8] {
        let count = Int(try readUInt32())
        guard count <= limit else { throw .corrupt("\(field) of \(count) bytes at offset \(offset) exceeds \(limit)") }
        return try readBytes(count)
    }
    func expectEnd() throws(NodeSnapshotError) {
        guard remaining == 0 else { throw .corrupt("\(remaining) unexpected bytes after the body") }
    }
}
