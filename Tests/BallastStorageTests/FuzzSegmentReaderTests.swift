import BallastFuzzSupport
import BallastRaft
import Foundation
import Testing
@testable import BallastStorage

/// Seeded fuzzing of the on-disk readers (issue 8 §3): a damaged WAL or history segment opens
/// (torn tail cut) or is refused with an error naming the file, never a crash, a hang or a
/// record believed that was not written. `BALLAST_FUZZ_ITERATIONS=N` changes the input count.
@Suite("fuzz: WAL and history segment readers", .serialized)
struct FuzzSegmentReaderTests {
    /// The bytes of a small valid WAL: a few segments with entries, truncations and hard states.
    static func validWAL() throws -> [String: [UInt8]] {
        try withTemporaryDirectory { directory in
            let log = try WriteAheadLog(directory: directory, options: smallSegments)
            try log.append(makeEntries(1 ... 40, payloadBytes: 60))
            try log.setHardState(HardState(term: Term(2), votedFor: NodeID(1), commit: LogIndex(30)))
            try log.append(makeEntries(35 ... 50, term: 2, payloadBytes: 90))
            try log.sync()
            try log.close()
            var files: [String: [UInt8]] = [:]
            for name in try segmentNames(directory) { files[name] = try readFile(directory + "/" + name) }
            return files
        }
    }

    @Test("WAL records: mutated segment bytes decode record by record without trapping")
    func walRecordDecoding() async throws {
        let segments = try Self.validWAL().sorted { $0.key < $1.key }.map(\.value)
        await forEachFuzzCase(seed: 0x5E6_0001, count: fuzzIterations(4_000)) { random, _ in
            let bytes = FuzzMutation.mutate(segments[random.below(segments.count)], &random)
            bytes.withUnsafeBytes { buffer in
                var offset = WALFormat.segmentHeaderSize
                while offset < buffer.count {
                    guard case .record(_, let size) = WALFormat.decodeRecord(buffer, at: offset) else {
                        _ = WALFormat.validRecordExists(buffer, after: offset)
                        break
                    }
                    offset += size
                }
            }
        }
    }

    @Test("WAL open: a damaged segment is recovered as a prefix of what was written, or refused with a StorageError")
    func walOpen() async throws {
        let files = try Self.validWAL()
        let written = try withTemporaryDirectory { directory -> [Entry] in
            for (name, bytes) in files { try writeFile(directory + "/" + name, bytes) }
            return try reopenAndRestore(directory).entries
        }
        var refused = 0
        await forEachFuzzCase(seed: 0x5E6_0002, count: fuzzIterations(300)) { random, caseSeed in
            let outcome: Result<[Entry], any Error> = Result {
                try withTemporaryDirectory { directory in
                    let names = files.keys.sorted()
                    let damaged = names[random.below(names.count)]
                    for name in names {
                        let bytes = files[name]!
                        try writeFile(directory + "/" + name, name == damaged ? FuzzMutation.mutate(bytes, &random) : bytes)
                    }
                    return try reopenAndRestore(directory).entries
                }
            }
            switch outcome {
            case .success(let entries):
                // Whatever opens holds only entries that were written (a torn tail may be cut).
                let known = Dictionary(written.map { ($0.index, $0) }, uniquingKeysWith: { $1 })
                #expect(entries.allSatisfy { known[$0.index] == $0 }, "case \(caseSeed): an entry that was never written")
            case .failure(let error):
                refused += 1
                #expect(error is StorageError, "case \(caseSeed): \(error)")
            }
        }
        #expect(refused > 0)
    }

    @Test("history store open: a damaged segment opens with only events that were written, or is refused with a HistoryError")
    func historyOpen() async throws {
        let options = HistoryFileStore.Options(segmentSizeBytes: 4096)
        let events = (1 ... 30).map { id in (0 ..< 70).map { UInt8(truncatingIfNeeded: id &* 13 &+ $0) } }
        let files = try withTemporaryDirectory { directory -> [String: [UInt8]] in
            let store = try HistoryFileStore(directory: directory, options: options)
            _ = try store.append(runId: "run-a", firstEventId: 1, events: Array(events[0 ..< 20]))
            _ = try store.append(runId: "run-b", firstEventId: 1, events: Array(events[20 ..< 30]))
            try store.delete(runId: "run-b")
            _ = try store.append(runId: "run-c", firstEventId: 1, events: Array(events[5 ..< 25]))
            try store.sync()
            store.close()
            var files: [String: [UInt8]] = [:]
            for name in try FileManager.default.contentsOfDirectory(atPath: directory) where name.hasSuffix(".seg") {
                files[name] = try readFile(directory + "/" + name)
            }
            return files
        }
        let original = ["run-a": Array(events[0 ..< 20]), "run-c": Array(events[5 ..< 25])]
        await forEachFuzzCase(seed: 0x5E6_0003, count: fuzzIterations(300)) { random, caseSeed in
            let outcome: Result<[String: [[UInt8]]], any Error> = Result {
                try withTemporaryDirectory { directory in
                    let names = files.keys.sorted()
                    let damaged = names[random.below(names.count)]
                    for name in names {
                        try writeFile(directory + "/" + name, name == damaged ? FuzzMutation.mutate(files[name]!, &random) : files[name]!)
                    }
                    let store = try HistoryFileStore(directory: directory, options: options)
                    defer { store.close() }
                    var read: [String: [[UInt8]]] = [:]
                    for run in store.runIds() { read[run] = try store.read(runId: run, fromEventId: 1, maxEvents: 100) }
                    return read
                }
            }
            switch outcome {
            case .success(let runs):
                for (run, stored) in runs {
                    // A run may be cut short (torn tail) but never holds an event that was not written.
                    let expected = original[run] ?? events
                    #expect(original[run] != nil || run == "run-b", "case \(caseSeed): unknown run \(run)")
                    #expect(Array(expected.prefix(stored.count)) == stored || run == "run-b", "case \(caseSeed): run \(run)")
                }
            case .failure(let error):
                #expect(error is HistoryError, "case \(caseSeed): \(error)")
            }
        }
    }
}
