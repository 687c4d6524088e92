import BallastRaft
import Testing

@testable import BallastSimulation

/// Whole-run tests: seeds pass, runs are reproducible, and the runs really contain faults.
@Suite struct SimulationRunTests {
    @Test func sameSeedReproducesTheSameRun() {
        for seed: UInt64 in [7, 1234] {
            let first = Simulation.run(SimulationOptions(seed: seed, nodeCount: 5))
            let second = Simulation.run(SimulationOptions(seed: seed, nodeCount: 5))
            #expect(first.fingerprint == second.fingerprint, "seed \(seed)")
            #expect(first.statistics == second.statistics, "seed \(seed)")
            #expect(first.trace == second.trace, "seed \(seed)")
        }
        let other = Simulation.run(SimulationOptions(seed: 8, nodeCount: 5))
        #expect(other.fingerprint != Simulation.run(SimulationOptions(seed: 7, nodeCount: 5)).fingerprint)
    }

    @Test(arguments: [3, 5])
    func aBatchOfSeedsPasses(nodeCount: Int) {
        var totals = SimulationStatistics()
        for seed: UInt64 in 1...20 {
            let report = Simulation.run(SimulationOptions(seed: seed, nodeCount: nodeCount))
            totals.add(report.statistics)
            #expect(report.passed, "seed \(seed) (\(nodeCount) nodes): \(report.violation.map(String.init(describing:)) ?? "")\n\(report.trace.joined(separator: "\n"))")
        }
        // The runs must actually contain faults and progress, or passing means nothing.
        #expect(totals.crashes > 0 && totals.partitions > 0 && totals.messagesDropped > 0)
        #expect(totals.commitsAcknowledged > 100 && totals.readsServed > 0 && totals.elections > 20)
        #expect(totals.snapshotsTaken > 0 && totals.snapshotsInstalled > 0)
    }
}

/// Regression scenarios found by the simulator, kept as named seeds.
@Suite struct FoundBugTests {
    /// Seed 497 (3 nodes): a follower with a stale suffix i15…i32 of term 1 receives the leader's
    /// i15…i60 and commit i43; the shell writes the hard state (commit i43) first, then the entries;
    /// the crash keeps the hard state but not the entries, so on restart the node "commits" its
    /// stale i15…i32 and applies them. Writing entries before the hard state fixes it.
    @Test func writingTheHardStateBeforeTheEntriesAppliesUncommittedEntriesAfterACrash() {
        var options = SimulationOptions(seed: 497, nodeCount: 3)
        options.hardStateBeforeEntries = true
        let broken = Simulation.run(options)
        #expect(broken.violation?.invariant == .stateMachineSafety, "\(broken.violation.map(String.init(describing:)) ?? "passed")")
        options.hardStateBeforeEntries = false
        let fixed = Simulation.run(options)
        #expect(fixed.passed, "\(fixed.violation.map(String.init(describing:)) ?? "")")
    }
}
