import BallastRaft
import Foundation
import Testing
@testable import BallastStorage

@Suite struct RecoveryTests {
    /// Writes `entries` to a fresh log in `directory` and returns the byte offset of each record
    /// in the (single) segment, plus that segment's name.
    static func writeRecords(_ entries: [Entry], directory: String,
                             options: WriteAheadLog.Options = smallSegments) throws -> (offsets: [Int], name: String) {
        let log = try WriteAheadLog(directory: directory, options: options)
        var offsets: [Int] = []
        for entry in entries {
            try log.sync()
            offsets.append(log.active.writtenEnd)
            try log.append([entry])
        }
        let name = log.active.info.name
        try log.close()
        return (offsets, name)
    }

    @Test(arguments: [false, true])
    func tornTailAtEveryByteOfTheLastRecordLosesOnlyThatRecord(zeroFilled: Bool) throws {
        try withTemporaryDirectory { directory in
            let entries = makeEntries(1...12, payloadBytes: 50)
            let (offsets, name) = try Self.writeRecords(entries, directory: directory,
                                                        options: .init(segmentSizeBytes: 16384))
            let path = directory + "/" + name
            let original = try readFile(path)
            let lastStart = offsets[offsets.count - 1]
            let lastEnd = lastStart + WALFormat.recordHeaderSize + 50
            for cut in lastStart..<lastEnd {
                // Either the file ends at the cut, or the bytes from the cut on never reached the disk (zeroes).
                let damaged = zeroFilled
                    ? Array(original[..<cut]) + [UInt8](repeating: 0, count: original.count - cut)
                    : Array(original[..<cut])
                try writeFile(path, damaged)
                let log = try WriteAheadLog(directory: directory, options: .init(segmentSizeBytes: 16384))
                let restored = try log.restore()
                #expect(restored.entries == Array(entries.dropLast()), "cut at \(cut)")
                if cut > lastStart { #expect(log.recoveryReport.tornTail?.offset == lastStart, "cut at \(cut)") }
                let replacement = makeEntries(12...13, term: 2, payloadBytes: 50)
                try log.append(replacement)
                try log.close()
                let again = try reopenAndRestore(directory, options: .init(segmentSizeBytes: 16384))
                #expect(again.entries == Array(entries.dropLast()) + replacement, "cut at \(cut)")
            }
        }
    }

    @Test func garbageAfterTheLastWholeRecordIsATornTail() throws {
        try withTemporaryDirectory { directory in
            let entries = makeEntries(1...5)
            let (offsets, name) = try Self.writeRecords(entries, directory: directory)
            let path = directory + "/" + name
            var bytes = try readFile(path)
            let end = offsets[4] + WALFormat.recordSize(payloadCount: 100)
            for position in end..<(end + 37) { bytes[position] = 0xA5 }
            try writeFile(path, bytes)
            let log = try WriteAheadLog(directory: directory, options: smallSegments)
            #expect(try log.restore().entries == entries)
            #expect(log.recoveryReport.tornTail?.offset == end)
            try log.close()
            // The repair zeroed the garbage for good.
            #expect(try readFile(path)[end..<(end + 37)].allSatisfy { $0 == 0 })
        }
    }

    @Test func flippedByteInAnEarlyRecordIsCorruptionNamingFileAndOffset() throws {
        try withTemporaryDirectory { directory in
            let (offsets, name) = try Self.writeRecords(makeEntries(1...10), directory: directory)
            let path = directory + "/" + name
            let pristine = try readFile(path)
            // Flip a payload byte, a checksum byte and a length byte of record 4 in turn.
            for position in [offsets[3] + 40, offsets[3] + 1, offsets[3] + 4] {
                var bytes = pristine
                bytes[position] ^= 0x10
                try writeFile(path, bytes)
                do {
                    _ = try WriteAheadLog(directory: directory, options: smallSegments)
                    Issue.record("corruption at byte \(position) was not detected")
                } catch let StorageError.corruptRecord(file, offset, reason) {
                    #expect(file == name)
                    #expect(offset == offsets[3])
                    #expect(!reason.isEmpty)
                }
            }
        }
    }

    @Test func corruptionInANonLastSegmentIsAnError() throws {
        try withTemporaryDirectory { directory in
            do {
                let log = try WriteAheadLog(directory: directory, options: smallSegments)
                try log.append(makeEntries(1...100))
                try log.close()
            }
            let names = try segmentNames(directory)
            #expect(names.count > 2)
            let path = directory + "/" + names[0]
            var bytes = try readFile(path)
            let firstEntryOffset = WALFormat.segmentHeaderSize + WALFormat.hardStateRecordSize
            bytes[firstEntryOffset + 50] ^= 0x01
            try writeFile(path, bytes)
            #expect(throws: StorageError.self) { _ = try WriteAheadLog(directory: directory, options: smallSegments) }
            do {
                _ = try WriteAheadLog(directory: directory, options: smallSegments)
            } catch let StorageError.corruptRecord(file, offset, _) {
                #expect(file == names[0])
                #expect(offset == firstEntryOffset)
            }
        }
    }

    @Test func anIndexGapIsCorruption() throws {
        try withTemporaryDirectory { directory in
            let (offsets, name) = try Self.writeRecords(makeEntries(1...5), directory: directory)
            let path = directory + "/" + name
            var bytes = try readFile(path)
            var record: [UInt8] = []
            WALFormat.append(.entry(Entry(term: Term(1), index: LogIndex(7), data: [1, 2, 3])), to: &record)
            let end = offsets[4] + WALFormat.recordSize(payloadCount: 100)
            bytes.replaceSubrange(end..<(end + record.count), with: record)
            try writeFile(path, bytes)
            #expect(throws: StorageError.indexGap(file: name, offset: end, expected: LogIndex(6), found: LogIndex(7))) {
                _ = try WriteAheadLog(directory: directory, options: smallSegments)
            }
        }
    }

    @Test func aMissingMiddleSegmentIsAnError() throws {
        try withTemporaryDirectory { directory in
            do {
                let log = try WriteAheadLog(directory: directory, options: smallSegments)
                try log.append(makeEntries(1...100))
                try log.close()
            }
            let names = try segmentNames(directory)
            try FileManager.default.removeItem(atPath: directory + "/" + names[1])
            #expect(throws: StorageError.missingSegment(expected: names[1], found: names[2])) {
                _ = try WriteAheadLog(directory: directory, options: smallSegments)
            }
        }
    }

    @Test func corruptNewestSnapshotFallsBackToAnOlderValidOne() throws {
        try withTemporaryDirectory { directory in
            do {
                let log = try WriteAheadLog(directory: directory, options: smallSegments)
                try log.append(makeEntries(1...30))
                try log.saveSnapshot(makeSnapshot(index: 20, term: 1))
                try log.close()
            }
            // An older snapshot is still around (say a crash before its removal).
            _ = try SnapshotFile.write(makeSnapshot(index: 10, term: 1), directory: directory)
            let newest = directory + "/" + SnapshotFile.name(index: LogIndex(20), term: Term(1))
            var bytes = try readFile(newest)
            bytes[bytes.count - 6] ^= 0xFF
            try writeFile(newest, bytes)
            let log = try WriteAheadLog(directory: directory, options: smallSegments)
            let restored = try log.restore()
            #expect(restored.snapshot == makeSnapshot(index: 10, term: 1))
            #expect(restored.entries == makeEntries(11...30))
            #expect(log.recoveryReport.skippedSnapshots.count == 1)
            try log.close()
        }
    }

    @Test func corruptSnapshotWithTheLogCompactedIsAnError() throws {
        try withTemporaryDirectory { directory in
            do {
                let log = try WriteAheadLog(directory: directory, options: smallSegments)
                try log.append(makeEntries(1...200))
                try log.saveSnapshot(makeSnapshot(index: 150, term: 1))
                try log.compact(through: LogIndex(150))
                try log.close()
            }
            let path = directory + "/" + SnapshotFile.name(index: LogIndex(150), term: Term(1))
            var bytes = try readFile(path)
            bytes[20] ^= 0x01
            try writeFile(path, bytes)
            do {
                _ = try WriteAheadLog(directory: directory, options: smallSegments)
                Issue.record("a compacted log without its snapshot must not open")
            } catch let StorageError.missingEntries(snapshotIndex, firstLogIndex) {
                #expect(snapshotIndex == .zero)
                #expect(firstLogIndex > LogIndex(1))
            }
        }
    }

    @Test func snapshotFileDecodingRejectsEveryTruncation() throws {
        let snapshot = makeSnapshot(index: 42, term: 7)
        let name = SnapshotFile.name(index: LogIndex(42), term: Term(7))
        var checksum = CRC32C()
        let head = SnapshotFile.header(snapshot.metadata, dataCount: snapshot.data.count)
        checksum.update(head)
        checksum.update(snapshot.data)
        var bytes = head + snapshot.data
        bytes.appendLittleEndian(checksum.value)
        #expect(try bytes.withUnsafeBytes { try SnapshotFile.decode($0, name: name) } == snapshot)
        for cut in 0..<bytes.count {
            #expect(throws: StorageError.self) { try bytes[..<cut].withUnsafeBytes { try SnapshotFile.decode($0, name: name) } }
        }
    }

    @Test func crashDuringInstallBeforeTheResetKeepsTheSnapshotAndDropsTheStaleLog() throws {
        try withTemporaryDirectory { directory in
            do {
                let log = try WriteAheadLog(directory: directory, options: smallSegments)
                try log.append(makeEntries(1...10, term: 1))
                try log.close()
            }
            // The snapshot file became durable, then the node crashed before writing the reset record.
            _ = try SnapshotFile.write(makeSnapshot(index: 5, term: 9), directory: directory)
            let log = try WriteAheadLog(directory: directory, options: smallSegments)
            let restored = try log.restore()
            #expect(restored.snapshot == makeSnapshot(index: 5, term: 9))
            #expect(restored.entries.isEmpty)
            #expect(log.recoveryReport.discardedStaleEntries)
            try log.append(makeEntries(6...6, term: 9))
            try log.close()
            #expect(try reopenAndRestore(directory).entries == makeEntries(6...6, term: 9))
        }
    }

    @Test func leftoverTemporaryFilesAreRemoved() throws {
        try withTemporaryDirectory { directory in
            try Posix.makeDirectory(directory)
            try writeFile(directory + "/segment-00000000000000000001.wal.tmp", [1, 2, 3])
            try writeFile(directory + "/" + SnapshotFile.name(index: LogIndex(3), term: Term(1)) + ".tmp", [4])
            let log = try WriteAheadLog(directory: directory, options: smallSegments)
            #expect(try FileManager.default.contentsOfDirectory(atPath: directory).allSatisfy { !$0.hasSuffix(".tmp") })
            try log.close()
        }
    }

    @Test func aDamagedSegmentHeaderIsAnError() throws {
        try withTemporaryDirectory { directory in
            let (_, name) = try Self.writeRecords(makeEntries(1...3), directory: directory)
            var bytes = try readFile(directory + "/" + name)
            bytes[2] ^= 0x01
            try writeFile(directory + "/" + name, bytes)
            #expect(throws: StorageError.corruptSegmentHeader(file: name, reason: "header checksum mismatch")) {
                _ = try WriteAheadLog(directory: directory, options: smallSegments)
            }
        }
    }

    @Test func tornTailInTheLastOfSeveralSegments() throws {
        try withTemporaryDirectory { directory in
            let entries = makeEntries(1...100)
            let (offsets, name) = try Self.writeRecords(entries, directory: directory)
            #expect(try segmentNames(directory).count > 2)
            let path = directory + "/" + name
            let original = try readFile(path)
            let lastStart = offsets[offsets.count - 1]
            for cut in [lastStart + 1, lastStart + 31, lastStart + 32, lastStart + 131] {
                try writeFile(path, Array(original[..<cut]))
                #expect(try reopenAndRestore(directory).entries == Array(entries.dropLast()), "cut at \(cut)")
            }
        }
    }

    @Test func aLastSegmentWithOnlyItsHeaderIsOpenedAndContinued() throws {
        try withTemporaryDirectory { directory in
            let (_, name) = try Self.writeRecords(makeEntries(1...5), directory: directory)
            let hardState = HardState(term: Term(3), votedFor: NodeID(2), commit: LogIndex(5))
            do {
                let log = try WriteAheadLog(directory: directory, options: smallSegments)
                try log.setHardState(hardState)
                try log.close()
            }
            // A crash right after the next segment was renamed into place, before its first record.
            guard let sequence = SegmentName.parse(name) else { Issue.record("bad segment name \(name)"); return }
            let empty = try WriteAheadLog.createSegment(sequence + 1, directory: directory, options: smallSegments)
            _ = systemClose(empty.descriptor)
            let log = try WriteAheadLog(directory: directory, options: smallSegments)
            let restored = try log.restore()
            #expect(restored.entries == makeEntries(1...5))
            #expect(restored.hardState == hardState)
            try log.append(makeEntries(6...7))
            try log.close()
            #expect(try reopenAndRestore(directory).entries == makeEntries(1...7))
        }
    }

    @Test func oldSegmentsLeftByACrashDuringInstallAreIgnored() throws {
        try withTemporaryDirectory { directory in
            let log = try WriteAheadLog(directory: directory, options: smallSegments)
            try log.append(makeEntries(1...100))
            try log.sync()
            let names = try segmentNames(directory)
            // Keep copies of the two newest old segments: deletion goes oldest first, so a crash leaves a suffix.
            let kept = try names.suffix(2).map { ($0, try readFile(directory + "/" + $0)) }
            try log.installSnapshot(makeSnapshot(index: 200, term: 2))
            try log.close()
            for (name, bytes) in kept { try writeFile(directory + "/" + name, bytes) }
            let reopened = try WriteAheadLog(directory: directory, options: smallSegments)
            let restored = try reopened.restore()
            #expect(restored.snapshot == makeSnapshot(index: 200, term: 2))
            #expect(restored.entries.isEmpty)
            try reopened.append(makeEntries(201...202, term: 2))
            try reopened.compact(through: LogIndex(200))
            #expect(try segmentNames(directory).count == 1)
            try reopened.close()
            #expect(try reopenAndRestore(directory).entries == makeEntries(201...202, term: 2))
        }
    }
}
