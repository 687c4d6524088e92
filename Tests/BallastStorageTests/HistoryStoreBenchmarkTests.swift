import Foundation
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

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}
