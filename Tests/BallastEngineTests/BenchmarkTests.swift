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
    }

    @Test("openRuns leaves every run waiting on a started activity")
    func openRuns() {
        let engine = EngineBenchmark.openRuns(20)
        #expect(engine.openRunCount == 20)
        #expect(engine.readyTasks(taskQueue: "transfers").isEmpty)
        #expect(engine.dueTimers().count == 20, "one start-to-close deadline per activity")
    }
}
