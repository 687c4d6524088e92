import Foundation
import TransfersKit

/// One node's `/status?digest=1` answer, reduced to what the digest check needs.
public struct NodeDigestReading: Sendable, Equatable {
    /// The admin endpoint asked.
    public var endpoint: String
    /// The member id it reports.
    public var id: String
    /// Its applied index.
    public var applied: UInt64
    /// The index the digest was taken at.
    public var digestIndex: UInt64
    /// SHA-256 of the engine state, hex.
    public var digest: String

    /// A reading.
    public init(endpoint: String, id: String, applied: UInt64, digestIndex: UInt64, digest: String) {
        self.endpoint = endpoint
        self.id = id
        self.applied = applied
        self.digestIndex = digestIndex
        self.digest = digest
    }

    /// Why a status body is not a digest reading.
    public struct ParseError: Error, Equatable, CustomStringConvertible {
        /// What is wrong.
        public var description: String
    }

    /// Parses a `/status?digest=1` JSON body.
    public static func parse(_ body: [UInt8], endpoint: String) throws(ParseError) -> NodeDigestReading {
        guard let object = try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any] else {
            throw ParseError(description: "\(endpoint): the status is not a JSON object")
        }
        func integer(_ key: String) throws(ParseError) -> UInt64 {
            guard let number = object[key] as? NSNumber, number.int64Value >= 0 else {
                throw ParseError(description: "\(endpoint): the status has no non-negative integer \(key)")
            }
            return number.uint64Value
        }
        guard let digest = object["state_digest"] as? String, !digest.isEmpty else {
            throw ParseError(description: "\(endpoint): the status has no state_digest (is ?digest=1 supported?)")
        }
        let id = (object["id"] as? String) ?? (object["id"] as? NSNumber)?.stringValue ?? endpoint
        return NodeDigestReading(endpoint: endpoint, id: id, applied: try integer("applied"), digestIndex: try integer("digest_index"),
                                 digest: digest)
    }
}

/// What one poll of every node's digest says.
public enum DigestVerdict: Sendable, Equatable {
    /// Every node answered with the same digest at the same index.
    case agreed(index: UInt64, digest: String)
    /// Not yet comparable (a node unreachable or at another index): poll again; the reason.
    case waiting(String)
    /// Two nodes at the same index with different digests: the replicas diverged.
    case diverged([ChaosViolation])
}

/// The cluster-level invariants: digests, and the ledger's outcome.
public enum ClusterInvariants {
    /// Judges one poll: readings of the nodes that answered and the errors of those that did not.
    public static func judgeDigests(_ readings: [NodeDigestReading], unreachable: [String: String]) -> DigestVerdict {
        var violations: [ChaosViolation] = []
        let byIndex = Dictionary(grouping: readings, by: \.digestIndex)
        for index in byIndex.keys.sorted() {
            guard let group = byIndex[index], let first = group.first else { continue }
            for other in group.dropFirst() where other.digest != first.digest {
                violations.append(ChaosViolation(invariant: ChaosInvariant.digest, workflowID: nil,
                                                 detail: "at applied index \(index) node \(first.id) (\(first.endpoint)) has digest \(first.digest) "
                                                     + "but node \(other.id) (\(other.endpoint)) has \(other.digest)"))
            }
        }
        if !violations.isEmpty { return .diverged(violations) }
        if !unreachable.isEmpty {
            return .waiting(unreachable.sorted { $0.key < $1.key }.map { "node at \($0.key) did not answer (\($0.value))" }.joined(separator: "; "))
        }
        guard let first = readings.first else { return .waiting("no node to ask") }
        if byIndex.count == 1 { return .agreed(index: first.digestIndex, digest: first.digest) }
        let highest = readings.map(\.digestIndex).max() ?? 0
        let behind = readings.filter { $0.digestIndex < highest }.sorted { $0.id < $1.id }
        return .waiting(behind.map { "node \($0.id) (\($0.endpoint)) is at index \($0.digestIndex)" }.joined(separator: ", ")
                        + ", others at \(highest)")
    }

    /// outcome: every stuck transfer (TransferAudit's judgement against the ledger) and money
    /// not conserved. Running transfers are the quiescence check's business.
    public static func outcomeViolations(_ audit: TransferAudit) -> [ChaosViolation] {
        var violations: [ChaosViolation] = []
        for detail in audit.stuckDetails {
            let workflowID = detail.split(separator: ":", maxSplits: 1).first.map(String.init)
            violations.append(ChaosViolation(invariant: ChaosInvariant.outcome, workflowID: workflowID, detail: "neither completed nor compensated: \(detail)"))
        }
        if audit.stuck > audit.stuckDetails.count {
            violations.append(ChaosViolation(invariant: ChaosInvariant.outcome, workflowID: nil,
                                             detail: "\(audit.stuck - audit.stuckDetails.count) more transfers neither completed nor compensated"))
        }
        if !audit.conserved {
            violations.append(ChaosViolation(invariant: ChaosInvariant.outcome, workflowID: nil,
                                             detail: "money not conserved: \(audit.ledgerBefore) deposited, \(audit.ledgerAfter) now "
                                                 + "(balances plus \(audit.inFlight) in flight)"))
        }
        return violations
    }
}
