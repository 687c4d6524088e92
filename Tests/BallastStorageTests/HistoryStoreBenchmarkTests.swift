import Foundation
import Synchronization
import Testing
@testable import BallastStorage

/// Throughput figures for docs/storage.md; runs only with `BALLAST_HISTORY_BENCH=1` (use a
/// release build: `BALLAST_HISTORY_BENCH=1 swift test -c release --filter HistoryStoreBenchmark`).
@Suite("History store benchmark", .enabled(if: ProcessInfo.processInfo.environment["BALLAST_HISTORY_BENCH"] == "1"))
struct HistoryStoreBenchmarkTests {
    @Test func appendReadExportAndReopen() throws {
        try withTemporaryDirectory { directory in
            let runs = 20_000, appendsPerRun = 5, eventBytes = 300
            let event = [UInt8](repeating: 0x5A, count: eventBytes)
            let clock = ContinuousClock()
            var figures: [String] = []
            do {
                let store = try HistoryFileStore(directory: directory)
                let appendTime = try clock.measure {
                    for round in 0..<appendsPerRun {
                        for run in 0..<runs {
                            _ = try store.append(runId: "run-\(run)", firstEventId: Int64(round * 2 + 1), events: [event, event])
                        }
                    }
                }
                let appends = runs * appendsPerRun
                figures.append("append: \(appends) appends of 2 × \(eventBytes) B in \(appendTime) → \(Int(Double(appends) / appendTime.seconds)) appends/s")
                let readTime = try clock.measure {
                    for run in 0..<runs { _ = try store.read(runId: "run-\(run)", fromEventId: 1, maxEvents: .max) }
                }
                figures.append("read whole history (10 events): \(runs) runs in \(readTime) → \(Int(Double(runs) / readTime.seconds)) runs/s")
                let ids = (0..<runs).map { "run-\($0)" }
                var exported = 0
                let exportTime = try clock.measure { exported = try store.export(runIds: ids).count }
                #expect(exported == runs)
                let megabytes = Double(store.statistics.liveBytes) / 1_048_576
                figures.append("export all \(runs) runs (\(Int(megabytes)) MiB) in \(exportTime)")
                let syncTime = try clock.measure { try store.sync() }
                figures.append("sync: \(syncTime)")
                store.close()
            }
            var reopened: HistoryFileStore?
            let reopenTime = try clock.measure { reopened = try HistoryFileStore(directory: directory) }
            #expect(reopened?.runIds().count == runs)
            figures.append("reopen (scan + index rebuild): \(reopenTime)")
            for line in figures { print("history bench: \(line)") }
        }
    }
}

extension HistoryStoreBenchmarkTests {
    /// The slowest append while compactions run on another thread over many retained runs (the
    /// Raft loop appends while the node's maintenance task compacts). Runs are retained as in a
    /// node: most closed runs' histories deleted, the rest live in every segment.
    @Test func appendLatencyDuringCompaction() throws {
        try withTemporaryDirectory { directory in
            let runs = Int(ProcessInfo.processInfo.environment["BALLAST_HISTORY_BENCH_RUNS"] ?? "") ?? 300_000
            let options = HistoryFileStore.Options(segmentSizeBytes: 4 << 20, minimumDeadBytesToCompact: 4 << 20)
            let store = try HistoryFileStore(directory: directory, options: options)
            defer { store.close() }
            let event = [UInt8](repeating: 0x5A, count: 100)
            for run in 0 ..< runs { _ = try store.append(runId: "run-\(run)", firstEventId: 1, events: [event]) }
            for run in 0 ..< runs where run % 3 != 0 { try store.delete(runId: "run-\(run)") }
            try store.flush()
            let done = Atomic<Bool>(false)
            let compactions = Atomic<Int>(0)
            let clock = ContinuousClock()
            let compactor = Thread {
                while (try? store.compactIfNeeded()) == true { compactions.add(1, ordering: .relaxed) }
                done.store(true, ordering: .releasing)
            }
            compactor.start()
            var latencies: [Duration] = []
            var next = runs
            while !done.load(ordering: .acquiring) {
                let started = clock.now
                _ = try store.append(runId: "run-\(next)", firstEventId: 1, events: [event])
                if next % 256 == 0 { try store.flush() }
                latencies.append(clock.now - started)
                next += 1
            }
            latencies.sort()
            let p999 = latencies[min(latencies.count - 1, latencies.count * 999 / 1000)]
            print("history bench: \(runs) runs, \(compactions.load(ordering: .relaxed)) compactions, \(latencies.count) appends meanwhile: "
                  + "slowest \(latencies.last ?? .zero), p99.9 \(p999)")
            #expect(compactions.load(ordering: .relaxed) > 0)
        }
    }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}
