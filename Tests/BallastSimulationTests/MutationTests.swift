import Testing

@testable import BallastRaft
@testable import BallastSimulation

/// The simulator must catch a deliberately broken Raft rule: a checker that passes a broken core
/// proves nothing. Each test enables one mutation of the real core (`RaftMutations`, internal to
/// BallastRaft) and runs the same seeds `ballast sim` runs until one fails, printing that seed.
@Suite struct MutationTests {
    /// Seeds tried before giving up; the simulator must find the bug well within this bound.
    static let maxSeeds: UInt64 = 400

    /// Runs seeds 1, 2, … (3 nodes for odd seeds, 5 for even ones, like `ballast sim`) with
    /// `mutate` applied to every node, and returns the first failing report.
    private func firstFailure(mutate: @escaping @Sendable (inout RaftMutations) -> Void) -> SimulationReport? {
        for seed in 1...Self.maxSeeds {
            var options = SimulationOptions(seed: seed, nodeCount: seed % 2 == 0 ? 5 : 3)
            options.configureRaft = { mutate(&$0.mutations) }
            let report = Simulation.run(options)
            if !report.passed { return report }
        }
        return nil
    }

    @Test func countingOldTermEntriesIsCaught() throws {
        let failure = try #require(firstFailure { $0.commitOldTermEntriesByCounting = true })
        let violation = try #require(failure.violation)
        print("commitOldTermEntriesByCounting caught by seed \(failure.seed) (\(failure.nodeCount) nodes): \(violation)")
        // The damage must be seen as lost safety, not as a stall.
        #expect(violation.invariant != .liveness && violation.invariant != .contract, "seed \(failure.seed): \(violation)")
    }

    @Test func grantingVotesWithoutTheLogCheckIsCaught() throws {
        let failure = try #require(firstFailure { $0.grantVoteWithoutLogCheck = true })
        let violation = try #require(failure.violation)
        print("grantVoteWithoutLogCheck caught by seed \(failure.seed) (\(failure.nodeCount) nodes): \(violation)")
        #expect(violation.invariant != .liveness && violation.invariant != .contract, "seed \(failure.seed): \(violation)")
    }

    @Test func theUnmutatedCorePassesTheSameSeeds() {
        // The seeds that catch the mutations must pass without them, or the catch proves nothing.
        for seed: UInt64 in 1...4 {
            let report = Simulation.run(SimulationOptions(seed: seed, nodeCount: seed % 2 == 0 ? 5 : 3))
            #expect(report.passed, "seed \(seed): \(report.violation.map(String.init(describing:)) ?? "")")
        }
    }
}
