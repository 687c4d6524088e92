import Foundation
import Synchronization

/// The `transfers` processes of a chaos run: workers (each incarnation with its own ack log) and
/// two load generators — one whose large transfers are approved by signal, one whose large
/// transfers are never approved and are refunded when their durable approval timer fires.
public final class ChaosWorkload: Sendable {
    /// How the load is shaped.
    public struct LoadOptions: Sendable, Equatable {
        /// Transfers in flight at once in the main load.
        public var concurrency = 8
        /// Transfers in flight in the load that waits for approval timers.
        public var timerConcurrency = 2
        /// Fraction of transfers the bank rejects for good (compensated).
        public var failRate = 0.05
        /// Fraction of bank calls that fail transiently (retried).
        public var transientRate = 0.2
        /// Fraction of transfers above the approval threshold (main load).
        public var largeFraction = 0.2
        /// How long an unapproved large transfer waits for its approval timer.
        public var approvalTimeout = "5s"

        /// The defaults above.
        public init() {}
    }

    let binary: String
    let directory: String
    let apiList: String
    let logLevel: String
    /// Extra flags of the workers and of the load generators (their TLS certificates).
    let workerArguments: [String]
    let loadArguments: [String]
    public let ledgerPath: String
    private let workers = Mutex<[Int: ChildProcess]>([:])
    private let generations = Mutex<[Int: Int]>([:])
    private let ackLogs = Mutex<[String]>([])
    private let loads = Mutex<[ChildProcess]>([])

    /// Workers and load against the API addresses `apiEndpoints`, files under `directory`;
    /// `workerArguments` and `loadArguments` are added to their `transfers` command lines.
    public init(binary: String, directory: String, apiEndpoints: [String], logLevel: String,
                workerArguments: [String] = [], loadArguments: [String] = []) {
        self.binary = binary
        self.directory = directory
        self.apiList = apiEndpoints.joined(separator: ",")
        self.logLevel = logLevel
        self.workerArguments = workerArguments
        self.loadArguments = loadArguments
        self.ledgerPath = directory + "/ledger.sqlite"
    }

    /// Every ack log of a process started so far (workers' incarnations and the loads).
    public var ackLogPaths: [String] { ackLogs.withLock { $0 } }

    /// The ack logs that exist: a process killed or failed before it opened its ack log leaves
    /// none, and acknowledged nothing.
    public var existingAckLogPaths: [String] { ackLogPaths.filter { FileManager.default.fileExists(atPath: $0) } }

    /// Starts worker `index` (a new incarnation with its own ack log if it ran before).
    public func startWorker(_ index: Int) throws {
        if let running = workers.withLock({ $0[index] }), running.isRunning { return }
        let generation = generations.withLock { map in
            defer { map[index, default: 0] += 1 }
            return map[index, default: 0]
        }
        let stem = directory + "/worker-\(index)-\(generation)"
        let arguments = [
            "worker", "--address", apiList, "--ledger", ledgerPath, "--identity", "chaos-worker-\(index)-\(generation)",
            "--ack-log", stem + ".acks.jsonl", "--log-level", logLevel,
        ] + workerArguments
        let child = try ChildProcesses.shared.spawn(name: "worker \(index)", executable: binary, arguments: arguments,
                                                    logPath: stem + ".log", environment: Self.childEnvironment)
        ackLogs.withLock { $0.append(stem + ".acks.jsonl") }
        workers.withLock { $0[index] = child }
    }

    /// SIGKILL worker `index`.
    public func killWorker(_ index: Int) async {
        guard let child = workers.withLock({ $0.removeValue(forKey: index) }) else { return }
        await child.killAndWait()
    }

    /// Workers that exited without being killed by the run.
    public var unexpectedWorkerExits: [(worker: Int, status: Int32, log: String)] {
        workers.withLock { map in map.compactMap { index, child in child.exitStatus.map { (index, $0, child.logPath) } } }
            .sorted { $0.worker < $1.worker }
    }

    /// Starts both load generators: they start transfers for `duration`, then wait up to
    /// `closeTimeout` for those they started to close, and exit (0 only if every one closed).
    public func startLoad(duration: Duration, closeTimeout: Duration, seed: UInt64, options: LoadOptions) throws {
        let common = ["--address", apiList, "--ledger", ledgerPath, "--for", Self.flag(duration), "--timeout", Self.flag(closeTimeout),
                      "--fail-rate", String(options.failRate), "--transient-rate", String(options.transientRate),
                      "--approval-timeout", options.approvalTimeout, "--log-level", logLevel] + loadArguments
        let approved = ["start", "--seed", String(seed), "--concurrency", String(options.concurrency),
                        "--large-fraction", String(options.largeFraction), "--ack-log", directory + "/load-approved.acks.jsonl"]
        let timers = ["start", "--seed", String(seed &+ 1), "--concurrency", String(options.timerConcurrency),
                      "--large-fraction", "0.5", "--no-approve", "--ack-log", directory + "/load-timers.acks.jsonl"]
        let main = try ChildProcesses.shared.spawn(name: "load (approved)", executable: binary, arguments: approved + common,
                                                   logPath: directory + "/load-approved.log", environment: Self.childEnvironment)
        loads.withLock { $0.append(main) }
        ackLogs.withLock { $0.append(directory + "/load-approved.acks.jsonl") }
        let timer = try ChildProcesses.shared.spawn(name: "load (timers)", executable: binary, arguments: timers + common,
                                                    logPath: directory + "/load-timers.log", environment: Self.childEnvironment)
        loads.withLock { $0.append(timer) }
        ackLogs.withLock { $0.append(directory + "/load-timers.acks.jsonl") }
    }

    /// The load generators.
    public var loadProcesses: [ChildProcess] { loads.withLock { $0 } }

    /// Kills every worker.
    public func killWorkers() async {
        for index in workers.withLock({ Array($0.keys) }) { await killWorker(index) }
    }

    /// This process's environment without `BALLAST_TLS_*`: the run alone decides whether its
    /// clients speak TLS and with which certificate (`cluster/` scripts export an operator's).
    static var childEnvironment: [String: String] {
        ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("BALLAST_TLS_") }
    }

    /// `1500ms`: a duration as `transfers` flags take it.
    static func flag(_ duration: Duration) -> String {
        "\(duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000)ms"
    }
}
