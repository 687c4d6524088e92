/// Everything a chaos run needs to know.
public struct ChaosRunConfiguration: Sendable {
    public var nodeCount = 3
    public var duration: Duration = .seconds(60)
    public var seed: UInt64 = 1
    public var faults: [FaultKind] = FaultKind.allCases
    /// Where the nodes' data, every log and the ledger go.
    public var directory: String
    public var workerCount = 2
    /// The `ballast` and `transfers` executables.
    public var ballastBinary: String
    public var transfersBinary: String
    /// Log level of the nodes, and of the workers and load generators.
    public var nodeLogLevel = "info"
    public var clientLogLevel = "warning"
    /// How long to wait for a leader at the start.
    public var startupTimeout: Duration = .seconds(60)
    /// After healing: how long the load may take to close its transfers, and the checker's deadline.
    public var quiescenceDeadline = ChaosDefaults.quiescenceDeadline
    /// The nodes' `--snapshot-threshold-bytes`: a restarted node replays the log written since its
    /// last snapshot, so the default 64 MiB would make each restart late in a run take minutes
    /// (debug build, loaded machine) and would rarely exercise snapshot catch-up.
    public var snapshotThresholdBytes = 4 << 20
    /// How long a node fault waits for earlier faults' nodes to be ready before it is skipped.
    public var recoveryWait: Duration = .seconds(30)
    public var load = ChaosWorkload.LoadOptions()
    /// Mutual TLS on every node port, the clients with certificates and roles enforced
    /// (`ballast chaos --tls`, see `ChaosTLS`); false: cleartext.
    public var tls = false

    /// A configuration with the defaults above.
    public init(directory: String, ballastBinary: String, transfersBinary: String) {
        self.directory = directory
        self.ballastBinary = ballastBinary
        self.transfersBinary = transfersBinary
    }

    /// The schedule's parameters.
    public var scheduleParameters: ChaosSchedule.Parameters {
        ChaosSchedule.Parameters(seed: seed, durationMilliseconds: Int64(duration.components.seconds) * 1000
                                     + duration.components.attoseconds / 1_000_000_000_000_000,
                                 nodeCount: nodeCount, workerCount: workerCount, faults: faults)
    }
}

/// Why a run could not go on.
public enum ChaosRunError: Error, CustomStringConvertible {
    case cannotStart(String, String)
    case noLeader(Duration, String)

    public var description: String {
        switch self {
        case .cannotStart(let what, let why): "cannot start \(what): \(why)"
        case .noLeader(let timeout, let directory): "no leader within \(timeout); node logs are in \(directory)/node-*/log"
        }
    }
}
