import BallastRaft
@testable import BallastStorage
import Foundation
import Testing

@Suite struct LogWriterOrderTests {
    /// A crash keeps a prefix of the unsynced writes, so the records of one batch must put the
    /// entries before the hard state that may commit them (found by the simulator, seed 497).
    @Test func entriesReachTheSegmentBeforeTheHardStateThatCommitsThem() throws {
        try withTemporaryDirectory { directory in
            let writer = LogWriter(log: try WriteAheadLog(directory: directory))
            let done = DispatchSemaphore(value: 0)
            writer.submit(entries: makeEntries(1...3, term: 2, payloadBytes: 16),
                          hardState: HardState(term: Term(2), votedFor: nil, commit: LogIndex(3))) { _ in done.signal() }
            #expect(done.wait(timeout: .now() + 30) == .success)
            writer.shutdown()

            let segments = try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.hasSuffix(".wal") }.sorted()
            let name = try #require(segments.last)
            let sequence = try #require(SegmentName.parse(name))
            var order: [String] = []
            _ = try SegmentScanner.scan(directory: directory, name: name, sequence: sequence, isLast: true) { record, _ in
                switch record {
                case .entry(let entry): order.append("entry \(entry.index.rawValue)")
                case .hardState(let state): order.append("hardState commit \(state.commit.rawValue)")
                default: break
                }
            }
            #expect(order.suffix(4) == ["entry 1", "entry 2", "entry 3", "hardState commit 3"])
        }
    }
}
