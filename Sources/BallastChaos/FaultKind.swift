import Foundation

/// The faults the chaos suite injects into a live cluster (issue 8, docs/reliability.md).
///
/// The raw values are the names used in the fault log and the summary table, and accepted by
/// `--faults` to restrict a run; they are stable so that a seed and a fault list reproduce a run.
public enum FaultKind: String, CaseIterable, Sendable, Codable, Comparable {
    /// SIGKILL of the current leader (restarted after a pause).
    case killLeader = "kill-leader"
    /// SIGKILL of a node chosen at random (restarted after a pause).
    case killNode = "kill-node"
    /// SIGSTOP of a node, SIGCONT after a pause: a frozen VM or a long GC pause.
    case freezeNode = "freeze-node"
    /// Every link to and from the leader cut in both directions.
    case isolateLeader = "isolate-leader"
    /// The nodes split into a majority and a minority that cannot reach each other.
    case splitMajority = "split"
    /// One directed link drops everything, the reverse direction still works.
    case oneWayLoss = "one-way-loss"
    /// Added latency on the proxied links.
    case latency = "latency"
    /// Random drop of forwarded chunks on the proxied links (the connection is reset).
    case packetDrop = "packet-drop"
    /// SIGKILL of a worker process, likely mid-activity (restarted after a pause).
    case killWorker = "kill-worker"
    /// Every node killed, then all restarted.
    case restartCluster = "restart-cluster"

    public static func < (lhs: FaultKind, rhs: FaultKind) -> Bool {
        lhs.rawValue < rhs.rawValue
    }

    /// Parses a comma-separated list such as `kill-leader,split`; nil names the unknown entry.
    public static func parseList(_ text: String) -> Result<[FaultKind], FaultListError> {
        var kinds: [FaultKind] = []
        for part in text.split(separator: ",", omittingEmptySubsequences: false) {
            let name = part.trimmingCharacters(in: .whitespaces)
            guard let kind = FaultKind(rawValue: name) else { return .failure(FaultListError(unknown: name)) }
            if !kinds.contains(kind) { kinds.append(kind) }
        }
        return .success(kinds)
    }
}

/// A `--faults` list named a fault the suite does not know.
public struct FaultListError: Error, Equatable, CustomStringConvertible {
    public let unknown: String
    public init(unknown: String) { self.unknown = unknown }
    public var description: String {
        "unknown fault '\(unknown)'; known: \(FaultKind.allCases.map(\.rawValue).joined(separator: ", "))"
    }
}
