import BallastRaft
import Foundation
import Testing
@testable import BallastStorage

/// Thread-safe record of completions, with a deadline-bounded wait.
final class CompletionLog: @unchecked Sendable {
    // @unchecked: every field is guarded by `condition`.
    private let condition = NSCondition()
    private var completed = 0
    private var problems: [String] = []

    func record(problem: String?) {
        condition.lock()
        completed += 1
        if let problem { problems.append(problem) }
        condition.broadcast()
        condition.unlock()
    }

    /// Waits until `count` completions arrived or `timeout` passed; returns the count and problems.
    func wait(for count: Int, timeout: TimeInterval) -> (completed: Int, problems: [String]) {
        let deadline = Date(timeIntervalSinceNow: timeout)
        condition.lock()
        defer { condition.unlock() }
        while completed < count && condition.wait(until: deadline) {}
        return (completed, problems)
    }
}

@Suite struct LogWriterTests {
    @Test func concurrentCallersShareFsyncsAndCompleteOnlyWhenDurable() throws {
        try withTemporaryDirectory { directory in
            let writer = LogWriter(log: try WriteAheadLog(directory: directory, options: .init(segmentSizeBytes: 1 << 20)))
            let callers = 8, writesPerCaller = 250
            let total = callers * writesPerCaller
            let completions = CompletionLog()
            let sequencer = NSLock()
            nonisolated(unsafe) var nextIndex: UInt64 = 1
            DispatchQueue.concurrentPerform(iterations: callers) { caller in
                for _ in 0..<writesPerCaller {
                    // Indexes must reach the log in order, so take one and submit under the same lock.
                    sequencer.lock()
                    let entry = makeEntries(nextIndex...nextIndex, term: UInt64(caller + 1), payloadBytes: 256)[0]
                    nextIndex += 1
                    writer.submit(entries: [entry]) { result in
                        switch result {
                        case .success(let durable):
                            let known = writer.statistics.durableIndex
                            completions.record(problem: durable >= entry.index && known >= entry.index
                                               ? nil : "\(entry.index) completed before it was durable")
                        case .failure(let error):
                            completions.record(problem: "\(entry.index) failed: \(error)")
                        }
                    }
                    sequencer.unlock()
                }
            }
            let outcome = completions.wait(for: total, timeout: 60)
            #expect(outcome.completed == total)
            #expect(outcome.problems.isEmpty, "\(outcome.problems.prefix(3))")
            let statistics = writer.statistics
            writer.shutdown()
            #expect(statistics.batchesCommitted == total)
            #expect(statistics.groupsCommitted < total)
            #expect(statistics.dataSyncs < total)
            #expect(statistics.dataSyncs >= statistics.groupsCommitted)
            let restored = try reopenAndRestore(directory, options: .init(segmentSizeBytes: 1 << 20))
            #expect(restored.entries.map(\.index.rawValue) == Array(1...UInt64(total)))
        }
    }

    @Test func asyncWritesAndPerformRunInOrder() async throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let writer = LogWriter(log: try WriteAheadLog(directory: directory, options: smallSegments))
        let hardState = HardState(term: Term(2), votedFor: NodeID(1), commit: LogIndex(3))
        let durable = try await writer.write(entries: makeEntries(1...3, term: 2), hardState: hardState)
        #expect(durable == LogIndex(3))
        let lastIndex = try await writer.perform { log in
            try log.saveSnapshot(makeSnapshot(index: 3, term: 2))
            return log.lastIndex
        }
        #expect(lastIndex == LogIndex(3))
        await #expect(throws: StorageError.self) { try await writer.write(entries: makeEntries(9...9, term: 2)) }
        writer.shutdown()
        await #expect(throws: StorageError.closed) { try await writer.write(entries: makeEntries(4...4, term: 2)) }
        let restored = try reopenAndRestore(directory)
        #expect(restored.hardState == hardState)
        #expect(restored.snapshot == makeSnapshot(index: 3, term: 2))
        #expect(restored.entries.isEmpty)
    }

    @Test func aFullQueueBlocksSubmittersUntilTheWriterDrainsIt() throws {
        try withTemporaryDirectory { directory in
            let writer = LogWriter(log: try WriteAheadLog(directory: directory, options: .init(segmentSizeBytes: 1 << 20)),
                                   options: .init(maxQueuedBytes: 2048))
            let completions = CompletionLog()
            for index in 1...200 as ClosedRange<UInt64> {
                writer.submit(entries: makeEntries(index...index, payloadBytes: 256)) { result in
                    completions.record(problem: (try? result.get()) == nil ? "failed" : nil)
                }
            }
            let outcome = completions.wait(for: 200, timeout: 60)
            #expect(outcome.completed == 200 && outcome.problems.isEmpty)
            // With at most ~6 batches queued at once, the writer needed many groups.
            #expect(writer.statistics.groupsCommitted >= 200 / 7)
            writer.shutdown()
        }
    }
}
