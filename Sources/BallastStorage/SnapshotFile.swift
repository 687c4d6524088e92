import BallastRaft

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Snapshot files: `snapshot-<index>-<term>.snap`, header + membership + data + CRC32C trailer.
enum SnapshotFile {
    /// "BALLASTS": the first 8 bytes of every snapshot file.
    static let magic: [UInt8] = Array("BALLASTS".utf8)
    /// The snapshot format version.
    static let version: UInt32 = 1
    /// Bytes before the member list.
    static let fixedHeaderSize = 48
    /// Upper bound on members, to reject garbage counts before allocating.
    static let maxMembers = 1 << 16

    /// The file name of the snapshot at `index`/`term` (zero-padded so names sort by index).
    static func name(index: LogIndex, term: Term) -> String {
        "snapshot-\(padded(index.rawValue))-\(padded(term.rawValue)).snap"
    }

    /// Index and term from a snapshot file name, nil for other names.
    static func parse(name: String) -> (index: UInt64, term: UInt64)? {
        guard name.hasPrefix("snapshot-"), name.hasSuffix(".snap") else { return nil }
        let parts = name.dropFirst("snapshot-".count).dropLast(".snap".count).split(separator: "-")
        guard parts.count == 2, parts[0].count == 20, parts[1].count == 20,
              let index = UInt64(parts[0]), let term = UInt64(parts[1]) else { return nil }
        return (index, term)
    }

    /// The header and member list (everything before the data).
    static func header(_ metadata: SnapshotMetadata, dataCount: Int) -> [UInt8] {
        var bytes = magic
        bytes.appendLittleEndian(version)
        bytes.appendLittleEndian(UInt32(metadata.membership.voters.count))
        bytes.appendLittleEndian(UInt32(metadata.membership.learners.count))
        bytes.appendLittleEndian(UInt32(0))
        bytes.appendLittleEndian(metadata.index.rawValue)
        bytes.appendLittleEndian(metadata.term.rawValue)
        bytes.appendLittleEndian(UInt64(dataCount))
        for member in metadata.membership.voters + metadata.membership.learners { bytes.appendLittleEndian(member.rawValue) }
        return bytes
    }

    /// Writes `snapshot` durably: temp file, fsync, rename, directory fsync. Returns the final name.
    static func write(_ snapshot: Snapshot, directory: String) throws -> String {
        let finalName = name(index: snapshot.metadata.index, term: snapshot.metadata.term)
        let temporary = directory + "/" + finalName + ".tmp"
        let fd = try Posix.open(temporary, O_WRONLY | O_CREAT | O_TRUNC)
        defer { _ = close(fd) }
        let head = header(snapshot.metadata, dataCount: snapshot.data.count)
        var checksum = CRC32C()
        checksum.update(head)
        checksum.update(snapshot.data)
        var trailer: [UInt8] = []
        trailer.appendLittleEndian(checksum.value)
        do {
            try head.withUnsafeBytes { try Posix.pwriteAll(fd, $0, offset: 0, path: temporary) }
            try snapshot.data.withUnsafeBytes { try Posix.pwriteAll(fd, $0, offset: head.count, path: temporary) }
            try trailer.withUnsafeBytes { try Posix.pwriteAll(fd, $0, offset: head.count + snapshot.data.count, path: temporary) }
            try Posix.fullSync(fd, path: temporary)
            try Posix.rename(temporary, directory + "/" + finalName)
        } catch {
            // A half-written snapshot never counts (only renamed files do); free its space now.
            _ = try? Posix.unlink(temporary)
            throw error
        }
        try Posix.syncDirectory(directory)
        return finalName
    }

    /// Reads and verifies one snapshot file.
    static func read(directory: String, name: String) throws -> Snapshot {
        let bytes = try Posix.readAll(directory + "/" + name)
        return try bytes.withUnsafeBytes { try decode($0, name: name) }
    }

    /// Decodes and verifies snapshot bytes; `name` is used for errors and must match the metadata.
    static func decode(_ bytes: UnsafeRawBufferPointer, name: String) throws -> Snapshot {
        func corrupt(_ reason: String) -> StorageError { .corruptSnapshot(file: name, reason: reason) }
        guard bytes.count >= fixedHeaderSize + 4 else { throw corrupt("file is \(bytes.count) bytes, too short for a header") }
        guard Array(bytes[0..<8]) == magic else { throw corrupt("bad magic, expected BALLASTS") }
        guard bytes.loadUInt32(at: 8) == version else { throw corrupt("unsupported version \(bytes.loadUInt32(at: 8))") }
        let voterCount = Int(bytes.loadUInt32(at: 12)), learnerCount = Int(bytes.loadUInt32(at: 16))
        guard voterCount + learnerCount <= maxMembers else { throw corrupt("implausible member count") }
        let dataOffset = fixedHeaderSize + 8 * (voterCount + learnerCount)
        let dataCount = bytes.loadUInt64(at: 40)
        guard dataCount <= UInt64(bytes.count), UInt64(dataOffset) + dataCount + 4 == UInt64(bytes.count) else {
            throw corrupt("length fields do not match the file size \(bytes.count)")
        }
        let end = dataOffset + Int(dataCount)
        let stored = bytes.loadUInt32(at: end)
        let computed = CRC32C.checksum(UnsafeRawBufferPointer(rebasing: bytes[0..<end]))
        guard stored == computed else { throw corrupt("checksum mismatch (stored \(hex(stored)), computed \(hex(computed)))") }
        let members = (0..<(voterCount + learnerCount)).map { NodeID(bytes.loadUInt64(at: fixedHeaderSize + 8 * $0)) }
        let metadata = SnapshotMetadata(
            index: LogIndex(bytes.loadUInt64(at: 24)), term: Term(bytes.loadUInt64(at: 32)),
            membership: Membership(voters: Array(members[..<voterCount]), learners: Array(members[voterCount...])))
        if let parsed = parse(name: name), parsed != (metadata.index.rawValue, metadata.term.rawValue) {
            throw corrupt("header says \(metadata.index)/\(metadata.term), the file name disagrees")
        }
        return Snapshot(metadata: metadata, data: Array(bytes[dataOffset..<end]))
    }

    /// The newest valid snapshot among `names`, and the names of newer ones that failed verification.
    static func loadNewest(directory: String, names: [String]) throws -> (snapshot: Snapshot?, skipped: [StorageError]) {
        let candidates = names.compactMap { name in parse(name: name).map { (name, $0) } }
            .sorted { ($0.1.index, $0.1.term) > ($1.1.index, $1.1.term) }
        var skipped: [StorageError] = []
        for (name, _) in candidates {
            do {
                return (try read(directory: directory, name: name), skipped)
            } catch let error as StorageError {
                guard case .corruptSnapshot = error else { throw error }
                skipped.append(error)
            }
        }
        return (nil, skipped)
    }
}

/// `value` in decimal, zero-padded to 20 digits (the width of UInt64.max).
func padded(_ value: UInt64) -> String {
    let digits = String(value)
    return String(repeating: "0", count: 20 - digits.count) + digits
}
