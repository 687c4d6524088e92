import ArgumentParser
import BallastChaos
import Foundation
import Logging

/// `ballast chaos`: a local cluster under the transfers load, faults on a seeded schedule, then
/// the invariant checks (docs/reliability.md, "cluster/chaos").
struct ChaosCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chaos",
        abstract: "Run a local cluster under load, inject faults on a seeded schedule, heal, and check the invariants.",
        discussion: """
            Starts --nodes `ballast server` processes (each dialling its peers through a fault proxy per \
            directed link), --workers `transfers worker` processes and two `transfers start --for` loads \
            (one approving its large transfers by signal, one leaving them to their approval timers). For \
            --duration it injects the faults of a schedule drawn from --seed (printed at the start: the \
            same seed, node count, duration, worker count and fault list give the same schedule), logging \
            each with its time. Then it heals everything, waits for the load to close its transfers, checks \
            the invariants, and prints a summary. Exits 0 only if nothing was violated and every fault \
            could be injected and healed. Every child process is killed on exit. Faults: \
            \(FaultKind.allCases.map(\.rawValue).joined(separator: ", ")).
            """)

    @Option(help: "Nodes in the cluster: 3 or 5.") var nodes = 3
    @Option(help: "How long faults are injected (e.g. 40s, 30m).") var duration = "60s"
    @Option(help: "Seed of the fault schedule and the load (default: drawn and printed).") var seed: UInt64?
    @Option(help: "Comma-separated fault kinds to draw from (default: all).") var faults: String?
    @Option(help: "Directory for the nodes' data, logs, ack logs and the ledger (default: a new temporary one).") var dir: String?
    @Option(help: "Worker processes.") var workers = 2
    @Flag(help: "Keep the directory after a passing run (it is always kept after a failing one).") var keep = false
    @Flag(help: "Print the summary as one JSON object on stdout (progress goes to stderr).") var json = false
    @Option(help: "The transfers executable (default: next to this ballast, else on PATH).") var transfers: String?
    @Option(help: "After healing: how long the load may take to close its transfers, and the checker's deadline.")
    var quiescence = "90s"
    @Option(help: "Log level of the nodes.") var logLevel = "info"
    @Option(help: "Transfers in flight in the main load.") var concurrency = 8
    @Option(help: "The nodes' --snapshot-threshold-bytes (small, so restarts replay little and snapshots are sent).")
    var snapshotThresholdBytes = 4 << 20
    @Flag(help: ArgumentHelp("Mutual TLS on every port: a throwaway CA and certificates in DIR/tls, roles enforced, the workers, the load and the checker with client certificates.",
                             discussion: "Needs the openssl command. The fault proxies forward the TLS bytes unchanged."))
    var tls = false

    func validate() throws {
        guard nodes == 3 || nodes == 5 else { throw ValidationError("--nodes must be 3 or 5") }
        guard (1 ... 16).contains(workers) else { throw ValidationError("--workers must be 1…16") }
        guard (1 ... 1000).contains(concurrency) else { throw ValidationError("--concurrency must be 1…1000") }
        guard snapshotThresholdBytes >= 64 * 1024 else { throw ValidationError("--snapshot-threshold-bytes must be at least 65536") }
        _ = try Self.parseDuration(duration, flag: "--duration")
        _ = try Self.parseDuration(quiescence, flag: "--quiescence")
        if let faults, case .failure(let error) = FaultKind.parseList(faults) { throw ValidationError("--faults: \(error)") }
        guard Logger.Level(rawValue: logLevel) != nil else { throw ValidationError("--log-level: unknown level \(logLevel)") }
        if let problem = try makeConfiguration(directory: "/", seed: 1).scheduleParameters.problem { throw ValidationError(problem) }
    }

    func run() async throws {
        let seed = seed ?? UInt64.random(in: 1 ... 1_000_000)
        let temporary = dir == nil
        let directory = dir ?? NSTemporaryDirectory() + "ballast-chaos-\(getpid())-\(seed)"
        if FileManager.default.fileExists(atPath: directory + "/node-1") {
            throw ValidationError("--dir \(directory) already holds a chaos run: remove it or name another directory")
        }
        let configuration = try makeConfiguration(directory: directory, seed: seed)
        let output: @Sendable (String) -> Void = { [json] line in
            let handle = json ? FileHandle.standardError : FileHandle.standardOutput
            handle.write(Data((line + "\n").utf8))
        }
        ChildProcesses.shared.installSignalHandlers { signal in
            output("ballast chaos: interrupted (signal \(signal)); every child killed; logs in \(directory); seed \(seed)")
        }
        var logger = Logger(label: "ballast.chaos")
        logger.logLevel = .warning
        let runner = ChaosRunner(configuration: configuration, logger: logger, emit: output)
        let report = await runner.run()
        for line in report.table { output(line) }
        if json { print(report.json) }
        if report.passed && temporary && !keep { try? FileManager.default.removeItem(atPath: directory) }
        if !report.passed { throw ExitCode(1) }
    }

    private func makeConfiguration(directory: String, seed: UInt64) throws -> ChaosRunConfiguration {
        let ballast = Self.ownExecutable()
        let transfersBinary = try transfers ?? Self.findTransfers(besides: ballast)
        var configuration = ChaosRunConfiguration(directory: directory, ballastBinary: ballast, transfersBinary: transfersBinary)
        configuration.nodeCount = nodes
        configuration.workerCount = workers
        configuration.seed = seed
        configuration.duration = try Self.parseDuration(duration, flag: "--duration")
        configuration.quiescenceDeadline = try Self.parseDuration(quiescence, flag: "--quiescence")
        configuration.nodeLogLevel = logLevel
        configuration.load.concurrency = concurrency
        configuration.snapshotThresholdBytes = snapshotThresholdBytes
        configuration.tls = tls
        if let faults { configuration.faults = try FaultKind.parseList(faults).get() }
        return configuration
    }

    /// This executable's path (`/proc/self/exe`, else argv[0]).
    static func ownExecutable() -> String {
        if let path = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") { return path }
        return CommandLine.arguments[0]
    }

    /// `transfers` next to `ballast` (both products of one build), else on PATH.
    static func findTransfers(besides ballast: String) throws -> String {
        let sibling = URL(fileURLWithPath: ballast).deletingLastPathComponent().appendingPathComponent("transfers").path
        if FileManager.default.isExecutableFile(atPath: sibling) { return sibling }
        for directory in (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":") {
            let candidate = "\(directory)/transfers"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        throw ValidationError("cannot find the transfers executable next to \(ballast) or on PATH; build it (swift build --product transfers) or pass --transfers")
    }

    /// `500ms`, `40s`, `30m`, `2h`, or plain seconds.
    static func parseDuration(_ text: String, flag: String) throws -> Duration {
        let units: [(String, Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600)]
        var number = text
        var scale = 1.0
        for (suffix, factor) in units where text.hasSuffix(suffix) {
            number = String(text.dropLast(suffix.count))
            scale = factor
            break
        }
        guard let value = Double(number), value.isFinite, value > 0, value * scale <= 7 * 86_400 else {
            throw ValidationError("\(flag): '\(text)' is not a duration (e.g. 40s, 30m, 2h) of at most 7 days")
        }
        return .milliseconds(Int64((value * scale * 1000).rounded()))
    }
}
