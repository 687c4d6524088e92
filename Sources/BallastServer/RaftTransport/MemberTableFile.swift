import BallastStorage
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Encodings of the address book: as a list of members on the wire (the `members` frame sent
/// after a hello) and as the `members` file in the data directory.
public enum MemberTableCodec {
    /// Largest number of members in one frame or file.
    public static let maxMembers = AddressBook.maxMembers

    /// `count u32 | NodeInfo blob…` (each blob u32-length-prefixed).
    public static func encodeList(_ infos: [NodeInfo]) -> [UInt8] {
        var writer = ByteWriter()
        writer.write(UInt32(infos.count))
        for info in infos.sorted(by: { $0.id < $1.id }) { writer.writeBlob(info.encoded) }
        return writer.bytes
    }

    /// Decodes `encodeList`, refusing more than `maxMembers`, malformed entries and trailing bytes.
    public static func decodeList(_ bytes: [UInt8]) throws(RaftWireError) -> [NodeInfo] {
        var reader = ByteReader(bytes)
        let infos = try readList(&reader)
        try reader.expectEnd()
        return infos
    }

    static func readList(_ reader: inout ByteReader) throws(RaftWireError) -> [NodeInfo] {
        let count = Int(try reader.readUInt32())
        guard count <= maxMembers else { throw .tooLarge(field: "member list", bytes: count, limit: maxMembers) }
        var infos: [NodeInfo] = []
        for _ in 0 ..< count { infos.append(try NodeInfo(encoded: try reader.readBlob(field: "member", limit: 1024))) }
        return infos
    }

    static func readIDs(_ reader: inout ByteReader, field: String) throws(RaftWireError) -> [UInt64] {
        let count = Int(try reader.readUInt32())
        guard count <= maxMembers else { throw .tooLarge(field: field, bytes: count, limit: maxMembers) }
        var ids: [UInt64] = []
        for _ in 0 ..< count { ids.append(try reader.readUInt64()) }
        return ids
    }

    /// The file body: `initial voters (count u32, u64…) | members (list) | removed (count u32, u64…)`.
    public static func encodeBook(_ book: AddressBook) -> [UInt8] {
        var writer = ByteWriter()
        writer.write(UInt32(book.initialVoters.count))
        for id in book.initialVoters { writer.write(id) }
        var bytes = writer.bytes + encodeList(Array(book.members.values))
        var removed = ByteWriter()
        removed.write(UInt32(book.removed.count))
        for id in book.removed.sorted() { removed.write(id) }
        bytes += removed.bytes
        return bytes
    }

    /// Decodes `encodeBook`.
    public static func decodeBook(_ bytes: [UInt8]) throws(RaftWireError) -> AddressBook {
        var reader = ByteReader(bytes)
        let initial = try readIDs(&reader, field: "initial voters")
        let infos = try readList(&reader)
        let removed = try readIDs(&reader, field: "removed ids")
        try reader.expectEnd()
        var members: [UInt64: NodeInfo] = [:]
        for info in infos { members[info.id] = info }
        return AddressBook(initialVoters: initial, members: members, removed: Set(removed))
    }
}

/// Why the `members` file could not be read or written.
public struct MemberTableFileError: Error, Sendable, CustomStringConvertible {
    /// What went wrong, with the path and what to do.
    public let description: String
}

/// The address book in `DATA_DIR/members`: `"BLSTMEMB" | version u8 | body length u32 |
/// CRC32C(body) u32 | body`, written to a temporary file, fsynced, renamed over the old one and
/// the directory fsynced, so a crash leaves either the old or the new table.
public struct MemberTableFile: Sendable {
    static let magic = Array("BLSTMEMB".utf8)
    static let version: UInt8 = 1
    /// The file's path.
    public let path: String

    /// The table of the data directory `dataDirectory`.
    public init(dataDirectory: String) { path = dataDirectory + "/members" }

    /// The stored book, nil if there is no file yet; a damaged file is an error (it holds the
    /// cluster's initial voters, which cannot be guessed).
    public func load() throws(MemberTableFileError) -> AddressBook? {
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw MemberTableFileError(description: "cannot read \(path)")
        }
        let bytes = [UInt8](data)
        let header = Self.magic.count + 9
        guard bytes.count >= header, Array(bytes[0 ..< Self.magic.count]) == Self.magic, bytes[Self.magic.count] == Self.version else {
            throw MemberTableFileError(description: "\(path) is not a Ballast members file (version \(Self.version)); restore it from a backup, or wipe the data directory and rejoin as a new member (docs/operations.md)")
        }
        let length = bytes[(Self.magic.count + 1) ..< (Self.magic.count + 5)].reduce(0) { $0 << 8 | Int($1) }
        let checksum = bytes[(Self.magic.count + 5) ..< header].reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
        let body = Array(bytes[header...])
        guard body.count == length, body.withUnsafeBytes({ CRC32C.checksum($0) }) == checksum else {
            throw MemberTableFileError(description: "\(path) is damaged (length or checksum mismatch); restore it from a backup, or wipe the data directory and rejoin as a new member (docs/operations.md)")
        }
        do {
            return try MemberTableCodec.decodeBook(body)
        } catch {
            throw MemberTableFileError(description: "\(path) does not decode: \(error)")
        }
    }

    /// Replaces the stored book atomically and durably.
    public func save(_ book: AddressBook) throws(MemberTableFileError) {
        let body = MemberTableCodec.encodeBook(book)
        var bytes = Self.magic + [Self.version]
        for shift in stride(from: 24, through: 0, by: -8) { bytes.append(UInt8(truncatingIfNeeded: body.count >> shift)) }
        let checksum = body.withUnsafeBytes { CRC32C.checksum($0) }
        for shift in stride(from: 24, through: 0, by: -8) { bytes.append(UInt8(truncatingIfNeeded: checksum >> UInt32(shift))) }
        bytes += body
        do { try DurableFile.replace(path, with: bytes) } catch { throw MemberTableFileError(description: error.description) }
    }
}
