import ArgumentParser
import BallastSimulation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// `ballast sim`: runs the deterministic cluster simulator over a range of seeds.
struct SimCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sim",
        abstract: "Run the deterministic Raft cluster simulator over a range of seeds.",
        discussion: """
            Each seed drives the real Raft core through a simulated network, disks and clocks with \
            injected faults, then checks the safety and liveness invariants. The same seed always \
            reproduces the same run. Exits non-zero on the first violation, printing the seed, the \
            invariant and a trace of the last events. See docs/simulation.md.
            """)

    @Option(help: "Number of seeds to run.")
    var seeds: Int = 100
    @Option(help: "The first seed.")
    var startSeed: UInt64 = 1
    @Option(help: "Voting members per cluster: 3 or 5 (default: alternate by seed).")
    var nodes: Int?
    @Option(help: "Events kept in the failure trace.")
    var traceEvents: Int = 50
    @Flag(help: "Write each Ready's hard state before its entries (the unsafe order docs/raft.md prescribed), to reproduce that bug.")
    var hardStateBeforeEntries = false
    @Flag(help: "Print the trace of passing runs too (with --trace-events to see a whole run).")
    var showTrace = false
    @Flag(help: "Print one line of statistics per seed (default: a summary every 100 seeds).")
    var verbose = false

    func validate() throws {
        guard traceEvents >= 1 && traceEvents <= 100_000 else { throw ValidationError("--trace-events must be 1…100000") }
        guard seeds >= 1 else { throw ValidationError("--seeds must be at least 1") }
        if let nodes, nodes != 3 && nodes != 5 { throw ValidationError("--nodes must be 3 or 5") }
        guard startSeed <= UInt64.max - UInt64(seeds) else { throw ValidationError("--start-seed + --seeds overflows") }
    }

    func run() throws {
        let clock = ContinuousClock()
        let started = clock.now
        var totals = SimulationStatistics()
        for offset in 0..<UInt64(seeds) {
            let seed = startSeed + offset
            let nodeCount = nodes ?? (seed % 2 == 0 ? 5 : 3)
            var options = SimulationOptions(seed: seed, nodeCount: nodeCount)
            options.traceCapacity = traceEvents
            options.hardStateBeforeEntries = hardStateBeforeEntries
            let report = Simulation.run(options)
            totals.add(report.statistics)
            if let violation = report.violation {
                print("FAILED seed \(seed) (\(nodeCount) nodes): \(violation)")
                print("statistics: \(report.statistics.summary)")
                print("last events:")
                for line in report.trace { print("  \(line)") }
                print("reproduce: ballast sim --seeds 1 --start-seed \(seed) --nodes \(nodeCount)\(hardStateBeforeEntries ? " --hard-state-before-entries" : "") --show-trace --trace-events 2000")
                throw ExitCode.failure
            }
            if showTrace { for line in report.trace { print("  \(line)") } }
            let done = Int(offset) + 1
            if verbose {
                print("seed \(seed) (\(nodeCount) nodes) ok fingerprint=\(report.fingerprint) \(report.statistics.summary)")
            } else if done % 100 == 0 || done == seeds {
                print("\(done)/\(seeds) seeds passed (\(rate(done, since: started, clock: clock)) seeds/s)")
                fflush(nil)  // progress of a long run shows up even when the output is a file
            }
        }
        print("all \(seeds) seeds passed, seeds \(startSeed)…\(startSeed + UInt64(seeds) - 1), \(rate(seeds, since: started, clock: clock)) seeds/s")
        print("totals: \(totals.summary)")
    }

    private func rate(_ count: Int, since start: ContinuousClock.Instant, clock: ContinuousClock) -> String {
        let elapsed = clock.now - start
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        guard seconds > 0 else { return "∞" }
        let perSecond = Double(count) / seconds
        return String(Int(perSecond * 10) / 10) + "." + String(Int(perSecond * 10) % 10)
    }
}
