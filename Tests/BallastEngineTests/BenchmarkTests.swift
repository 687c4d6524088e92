import BallastEngine
import Testing

@Suite("Benchmark workload")
struct BenchmarkTests {
    @Test("the benchmark mix applies 7 entries per workflow, none rejected, all completed")
    func workload() {
        let report = EngineBenchmark.run(workflows: 250, concurrency: 100)
        #expect(report.entries == 1_750)
        #expect(report.rejected == 0)
        #expect(report.workflowsCompleted == 250)
        #expect(report.events == 250 * 11)
        #expect(report.peakOpenRuns == 100)
        #expect(report.applyNanos == 0, "nothing timed without a clock")
    }

    @Test("with a clock, every apply is timed: two readings per entry, the same workload")
    func timedApply() {
        final class TickingClock: @unchecked Sendable { var readings: UInt64 = 0 }
        let clock = TickingClock()
        let report = EngineBenchmark.run(workflows: 250, concurrency: 100, applyClock: {
            clock.readings += 1
            return clock.readings * 1_000
        })
        #expect(report.entries == 1_750)
        #expect(report.rejected == 0)
        #expect(report.events == 250 * 11)
        #expect(clock.readings == 2 * 1_750)
        #expect(report.applyNanos == 1_750 * 1_000, "each apply spans one tick of the test clock")
    }

    @Test("openRuns leaves every run waiting on a started activity")
    func openRuns() {
        let engine = EngineBenchmark.openRuns(20)
        #expect(engine.openRunCount == 20)
        #expect(engine.readyTasks(taskQueue: "transfers").isEmpty)
        #expect(engine.dueTimers().count == 20, "one start-to-close deadline per activity")
    }
}
