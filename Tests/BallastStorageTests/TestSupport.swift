import BallastRaft
import Foundation
@testable import BallastStorage

/// Runs `body` with a fresh temporary directory that is removed afterwards.
func withTemporaryDirectory<T>(_ body: (String) throws -> T) throws -> T {
    let path = try makeTemporaryDirectory()
    defer { try? FileManager.default.removeItem(atPath: path) }
    return try body(path)
}

/// Creates a fresh temporary directory.
func makeTemporaryDirectory() throws -> String {
    var template = Array((NSTemporaryDirectory() + "/ballast-storage-XXXXXX").utf8CString)
    guard let result = mkdtemp(&template) else { throw StorageError.io(operation: "mkdtemp", path: "tmp", errno: errno) }
    return String(cString: result)
}

/// Entries `range` in `term`, each with `payloadBytes` bytes that never end in zero.
func makeEntries(_ range: ClosedRange<UInt64>, term: UInt64 = 1, payloadBytes: Int = 100) -> [Entry] {
    range.map { index in
        let data = (0..<payloadBytes).map { UInt8(truncatingIfNeeded: Int(index) &* 31 &+ $0) | 1 }
        return Entry(term: Term(term), index: LogIndex(index), data: data)
    }
}

/// Small segments so tests cross segment boundaries quickly.
let smallSegments = WriteAheadLog.Options(segmentSizeBytes: 4096)

/// The segment file names in `directory`, oldest first.
func segmentNames(_ directory: String) throws -> [String] {
    try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.hasSuffix(".wal") }.sorted()
}

/// The snapshot file names in `directory`.
func snapshotNames(_ directory: String) throws -> [String] {
    try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.hasSuffix(".snap") }.sorted()
}

/// Opens the log in `directory`, restores it, and closes it again.
func reopenAndRestore(_ directory: String, options: WriteAheadLog.Options = smallSegments) throws -> RestoredState {
    let log = try WriteAheadLog(directory: directory, options: options)
    defer { try? log.close() }
    return try log.restore()
}

/// Reads a whole file.
func readFile(_ path: String) throws -> [UInt8] {
    Array(try Data(contentsOf: URL(fileURLWithPath: path)))
}

/// Replaces a whole file's contents.
func writeFile(_ path: String, _ bytes: [UInt8]) throws {
    try Data(bytes).write(to: URL(fileURLWithPath: path))
}

/// A snapshot at `index`/`term` with a small recognisable payload.
func makeSnapshot(index: UInt64, term: UInt64, voters: [UInt64] = [1, 2, 3]) -> Snapshot {
    Snapshot(metadata: SnapshotMetadata(index: LogIndex(index), term: Term(term),
                                        membership: Membership(voters: voters.map(NodeID.init(_:)))),
             data: Array("state at \(index)".utf8))
}
