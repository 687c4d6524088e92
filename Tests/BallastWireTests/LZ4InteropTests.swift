import BallastProto
import BallastWire
import Foundation
import Testing

/// LZ4 event batches against independent LZ4 implementations: the `lz4` CLI and Python `lz4.frame`.
@Suite("LZ4 event batches")
struct LZ4InteropTests {
    @Test("a Ballast batch decodes with lz4 -d and Python lz4.frame into a ballast.v1.History")
    func ballastBatchDecodesElsewhere() async throws {
        let events = SampleHistory.transfer(eventCount: 300)
        let batches = try LZ4EventBatchCodec.makeBatches(events: events, firstEventID: 1)
        let batch = try #require(batches.first)
        #expect(batches.count == 1 && batch.eventCount == 300 && batch.firstEventID == 1)
        let plain = try History.with { $0.events = events }.serializedBytes() as [UInt8]
        #expect(Int(batch.uncompressedBytes) == plain.count)

        let dir = try TestPaths.temporaryDirectory("ballast-lz4")
        defer { try? FileManager.default.removeItem(at: dir) }
        let framePath = dir.appendingPathComponent("batch.lz4")
        try Data(batch.lz4Frame).write(to: framePath)
        let lz4 = try #require(TestPaths.which("lz4"), "the lz4 CLI is missing (apt-get install lz4)")
        let (status, output, stderr) = try await ChildProcess.run(lz4, ["-d", "-c", framePath.path])
        #expect(status == 0, "lz4 -d failed: \(stderr)")
        #expect(output == Data(plain), "lz4 -d gave \(output.count) bytes, expected \(plain.count)")

        let protoDir = try await PythonInteropTests.compileProtos()
        defer { try? FileManager.default.removeItem(at: protoDir) }
        let script = """
        import sys, lz4.frame
        sys.path.insert(0, sys.argv[1])
        from ballast.v1 import history_pb2
        history = history_pb2.History.FromString(lz4.frame.decompress(open(sys.argv[2], "rb").read()))
        print(len(history.events), history.events[0].event_id, history.events[-1].event_id)
        """
        let (pyStatus, pyOut, pyErr) = try await ChildProcess.run(
            TestPaths.python, ["-c", script, protoDir.path, framePath.path])
        #expect(pyStatus == 0, "python failed: \(pyErr)")
        #expect(String(decoding: pyOut, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines) == "300 1 300")
    }

    @Test("frames made by lz4 and Python lz4.frame decode in Ballast")
    func foreignFramesDecodeInBallast() async throws {
        let events = SampleHistory.transfer(eventCount: 120, seed: 9)
        let plain = try History.with { $0.events = events }.serializedBytes() as [UInt8]
        let dir = try TestPaths.temporaryDirectory("ballast-lz4")
        defer { try? FileManager.default.removeItem(at: dir) }
        let plainPath = dir.appendingPathComponent("history.bin")
        try Data(plain).write(to: plainPath)

        let lz4 = try #require(TestPaths.which("lz4"))
        let (status, cliFrame, stderr) = try await ChildProcess.run(lz4, ["-c", "-9", plainPath.path])
        #expect(status == 0, "lz4 failed: \(stderr)")
        let cliBatch = LZ4EventBatch(eventCount: 120, firstEventID: 1, uncompressedBytes: UInt32(plain.count), lz4Frame: Array(cliFrame))
        #expect(try LZ4EventBatchCodec.decode(cliBatch, as: HistoryEvent.self) == events)

        let script = "import sys, lz4.frame; sys.stdout.buffer.write(lz4.frame.compress(open(sys.argv[1], 'rb').read()))"
        let (pyStatus, pyFrame, pyErr) = try await ChildProcess.run(TestPaths.python, ["-c", script, plainPath.path])
        #expect(pyStatus == 0, "python failed: \(pyErr)")
        let pyBatch = LZ4EventBatch(eventCount: 120, firstEventID: 1, uncompressedBytes: UInt32(plain.count), lz4Frame: Array(pyFrame))
        #expect(try LZ4EventBatchCodec.decode(pyBatch, as: HistoryEvent.self) == events)
    }

    @Test("batches page at the size limit, keep contiguous ids, and an oversized event travels alone")
    func paging() throws {
        let events = SampleHistory.transfer(eventCount: 2_000)
        let batches = try LZ4EventBatchCodec.makeBatches(events: events, firstEventID: 1, maxUncompressedBytes: 64 << 10)
        #expect(batches.count > 3)
        var next: UInt64 = 1
        var decoded: [HistoryEvent] = []
        for batch in batches {
            #expect(batch.firstEventID == next)
            #expect(batch.uncompressedBytes <= 64 << 10)
            next += UInt64(batch.eventCount)
            decoded += try LZ4EventBatchCodec.decode(batch, as: HistoryEvent.self)
        }
        #expect(decoded == events)
        let big = [[UInt8](repeating: 7, count: 100), [UInt8](repeating: 8, count: 5_000), [UInt8](repeating: 9, count: 10)]
        let split = try LZ4EventBatchCodec.makeBatches(serializedEvents: big, firstEventID: 10, maxUncompressedBytes: 1_000)
        #expect(split.map(\.eventCount) == [1, 1, 1] && split.map(\.firstEventID) == [10, 11, 12])
    }

    @Test("truncated, corrupted, oversized and miscounted batches are rejected with a typed error")
    func badBatches() throws {
        let batch = try LZ4EventBatchCodec.encode(serializedEvents: [[1, 2, 3], [4, 5]], firstEventID: 1)
        var truncated = batch
        truncated.lz4Frame.removeLast(3)
        #expect(throws: LZ4EventBatchError.self) { try LZ4EventBatchCodec.decode(truncated) }
        var corrupted = batch
        corrupted.lz4Frame[corrupted.lz4Frame.count / 2] ^= 0xFF
        #expect(throws: LZ4EventBatchError.self) { try LZ4EventBatchCodec.decode(corrupted) }
        var miscounted = batch
        miscounted.eventCount = 3
        #expect(throws: LZ4EventBatchError.countMismatch(announced: 3, found: 2)) { try LZ4EventBatchCodec.decode(miscounted) }
        let bomb = try LZ4Frame.compress([UInt8](repeating: 0, count: 1 << 20))
        #expect(throws: LZ4Error.tooLarge(limitBytes: 1000)) { try LZ4Frame.decompress(bomb, maxOutputBytes: 1000) }
        #expect(throws: LZ4Error.trailingBytes(offset: batch.lz4Frame.count)) {
            try LZ4Frame.decompress(batch.lz4Frame + [0], maxOutputBytes: 1000)
        }
    }
}

typealias History = Ballast_V1_History
typealias HistoryEvent = Ballast_V1_HistoryEvent
