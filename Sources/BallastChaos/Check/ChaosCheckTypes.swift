import BallastWire
import Foundation

/// What `ChaosChecker.check` looks at: the cluster (API and admin ports), the transfers'
/// ledger and the ack logs of the load generator and the workers.
public struct ChaosCheckConfiguration: Sendable {
    /// `HOST:PORT` of every node's API port.
    public var apiEndpoints: [String]
    /// `HOST:PORT` of every node's admin port (`/status?digest=1`).
    public var adminEndpoints: [String]
    /// The namespace the transfers run in (`default`).
    public var namespace: String
    /// The transfers' SQLite ledger.
    public var ledgerPath: String
    /// The JSONL ack logs of `transfers start --ack-log` and `transfers worker --ack-log`.
    public var ackLogPaths: [String]
    /// How long to wait for the transfers to close and the nodes' digests to agree.
    public var quiescenceDeadline: Duration
    /// Histories read at once.
    public var historyConcurrency = 8
    /// Deadline of one history or list read, retries across leader changes included.
    public var readTimeout: Duration = .seconds(60)
    /// What the checker presents on a TLS cluster (API and admin ports); nil: cleartext.
    public var tls: TLSClientOptions?

    /// A configuration; the tuning fields keep their defaults.
    public init(apiEndpoints: [String], adminEndpoints: [String], namespace: String, ledgerPath: String,
                ackLogPaths: [String], quiescenceDeadline: Duration) {
        self.apiEndpoints = apiEndpoints
        self.adminEndpoints = adminEndpoints
        self.namespace = namespace
        self.ledgerPath = ledgerPath
        self.ackLogPaths = ackLogPaths
        self.quiescenceDeadline = quiescenceDeadline
    }
}

/// One broken invariant (docs/reliability.md, "Invariants").
public struct ChaosViolation: Sendable, Codable, Equatable, CustomStringConvertible {
    /// The invariant's name: `quiescence`, `digest`, `outcome`, `acknowledged-present`,
    /// `single-completion`, `attempts`, `timers`.
    public var invariant: String
    /// The workflow concerned, when there is one.
    public var workflowID: String?
    /// What was seen.
    public var detail: String

    /// A violation.
    public init(invariant: String, workflowID: String?, detail: String) {
        self.invariant = invariant
        self.workflowID = workflowID
        self.detail = detail
    }

    /// `invariant [workflow]: detail`.
    public var description: String {
        "\(invariant)\(workflowID.map { " [\($0)]" } ?? ""): \(detail)"
    }
}

/// The names of the invariants the checker reports.
public enum ChaosInvariant {
    /// No transfer still running, every node at the same applied index, within the deadline.
    public static let quiescence = "quiescence"
    /// Two nodes at the same applied index with different state digests.
    public static let digest = "digest"
    /// Every transfer completed or compensated as the ledger shows; money conserved.
    public static let outcome = "outcome"
    /// Every acknowledged start, signal and task response is in the final history.
    public static let acknowledgedPresent = "acknowledged-present"
    /// No activity closed twice.
    public static let singleCompletion = "single-completion"
    /// No activity attempt beyond its retry policy's maximum.
    public static let attempts = "attempts"
    /// No timer fired before its start time plus its duration.
    public static let timers = "timers"

    /// Every name, in report order.
    public static let all = [quiescence, digest, outcome, acknowledgedPresent, singleCompletion, attempts, timers]
}

/// What the checker found.
public struct ChaosCheckReport: Sendable, Codable {
    /// Workflow runs read (every type).
    public var workflows: Int
    /// Transfers that completed (money at the recipient).
    public var completed: Int
    /// Transfers compensated (sender refunded or never debited).
    public var compensated: Int
    /// History events read.
    public var events: Int
    /// Acknowledged calls checked against history.
    public var acknowledgedChecked: Int
    /// Every violation found (empty: the run passed).
    public var violations: [ChaosViolation]
    /// Ack-log lines that did not parse (a killed writer's torn line), as `file:line`; not a violation.
    public var unreadableAckLines: [String] = []
    /// Ack logs that did not exist (a writer killed before it opened its log); not a violation.
    public var missingAckLogs: [String] = []
    /// The applied index at which every node showed the same digest (nil if they never did).
    public var digestIndex: UInt64?
    /// That digest.
    public var stateDigest: String?
    /// History events per recorded caller identity (started, signaled, task started), over every
    /// run: on a TLS cluster only the certificates' identities, in cleartext claims marked
    /// `(unverified)`.
    public var identities: [String: Int] = [:]

    /// A report.
    public init(workflows: Int, completed: Int, compensated: Int, events: Int, acknowledgedChecked: Int, violations: [ChaosViolation]) {
        self.workflows = workflows
        self.completed = completed
        self.compensated = compensated
        self.events = events
        self.acknowledgedChecked = acknowledgedChecked
        self.violations = violations
    }

    /// Whether nothing was violated.
    public var passed: Bool { violations.isEmpty }

    /// Violations per invariant name (every name present, zero included).
    public var violationsByInvariant: [String: Int] {
        var counts = Dictionary(uniqueKeysWithValues: ChaosInvariant.all.map { ($0, 0) })
        for violation in violations { counts[violation.invariant, default: 0] += 1 }
        return counts
    }
}
