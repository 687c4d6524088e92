import Foundation

/// The outcome of a chaos run: faults injected, what the checker found, and anything that kept
/// the run from being a clean test (a node that crashed on its own, a fault that could not heal).
public struct ChaosRunReport: Sendable {
    public var seed: UInt64
    public var nodes: Int
    public var durationSeconds: Double
    public var workers: Int
    public var directory: String
    /// Faults injected, by kind.
    public var faultsByKind: [FaultKind: Int]
    /// The checker's report; nil if it could not run.
    public var check: ChaosCheckReport?
    /// What went wrong outside the invariants (each makes the run fail).
    public var problems: [String]
    /// Node faults skipped because a node had not recovered from earlier ones, by kind.
    public var skippedByKind: [FaultKind: Int] = [:]
    /// What happened that is worth knowing but breaks nothing (a worker that gave up and was restarted).
    public var notes: [String] = []
    /// Whether the run had mutual TLS on every port (`--tls`).
    public var tls = false
    /// What the fault proxies did on the Raft links, over the whole run: connections accepted,
    /// connections reset by a dropped chunk, bytes forwarded.
    public var proxyConnections = 0
    public var proxyResets = 0
    public var proxyForwardedBytes = 0

    /// A report with every field given.
    public init(seed: UInt64, nodes: Int, durationSeconds: Double, workers: Int, directory: String,
                faultsByKind: [FaultKind: Int], check: ChaosCheckReport?, problems: [String]) {
        self.seed = seed
        self.nodes = nodes
        self.durationSeconds = durationSeconds
        self.workers = workers
        self.directory = directory
        self.faultsByKind = faultsByKind
        self.check = check
        self.problems = problems
    }

    /// Whether the run passed: the checker ran, found no violation, and nothing else went wrong.
    public var passed: Bool {
        guard let check else { return false }
        return check.violations.isEmpty && problems.isEmpty
    }

    /// The summary table printed at the end of a run.
    public var table: [String] {
        var lines = ["", "chaos run summary (seed \(seed), \(nodes) nodes, \(workers) workers, \(Int(durationSeconds)) s of faults"
            + (tls ? ", mutual TLS)" : ")")]
        func row(_ name: String, _ value: String) { lines.append("  " + name.padding(toLength: 28, withPad: " ", startingAt: 0) + value) }
        lines.append("  faults injected:")
        for kind in FaultKind.allCases.sorted(by: { $0.rawValue < $1.rawValue }) {
            row("  " + kind.rawValue, String(faultsByKind[kind] ?? 0))
        }
        row("  total", String(faultsByKind.values.reduce(0, +)))
        if !skippedByKind.isEmpty {
            let skipped = skippedByKind.sorted { $0.key.rawValue < $1.key.rawValue }.map { "\($0.key.rawValue) \($0.value)" }
            row("  skipped (node recovering)", skipped.joined(separator: ", "))
        }
        row("proxied raft links", "\(proxyConnections) connections, \(proxyResets) reset by packet-drop, "
            + "\(proxyForwardedBytes / 1024) KiB forwarded")
        if let check {
            row("workflows", "\(check.workflows) (completed \(check.completed), compensated \(check.compensated))")
            row("history events", String(check.events))
            row("acknowledged events checked", String(check.acknowledgedChecked))
            let identities = check.identities.sorted { $0.value > $1.value }
            row("caller identities", identities.prefix(8).map { "\($0.key) \($0.value)" }.joined(separator: ", ")
                + (identities.count > 8 ? ", … (\(identities.count) in all)" : ""))
            if let index = check.digestIndex, let digest = check.stateDigest {
                row("state digests", "every node equal at applied index \(index) (\(digest.prefix(16))…)")
            }
            row("violations", String(check.violations.count))
            for violation in check.violations.prefix(50) {
                lines.append("    \(violation.invariant)\(violation.workflowID.map { " [\($0)]" } ?? ""): \(violation.detail)")
            }
            if check.violations.count > 50 { lines.append("    … and \(check.violations.count - 50) more (see --json)") }
        } else {
            row("invariants", "NOT CHECKED (the checker did not run)")
        }
        if !notes.isEmpty {
            row("notes", String(notes.count))
            for note in notes.prefix(20) { lines.append("    \(note)") }
        }
        row("problems", String(problems.count))
        for problem in problems { lines.append("    \(problem)") }
        lines.append("result: \(passed ? "PASS" : "FAIL") — reproduce the schedule with --seed \(seed) --nodes \(nodes) "
            + "--duration \(Int(durationSeconds))s\(tls ? " --tls" : ""); logs in \(directory)")
        return lines
    }

    /// The report as one JSON object.
    public var json: String {
        var object: [String: Any] = [
            "seed": seed, "nodes": nodes, "duration_s": durationSeconds, "workers": workers, "directory": directory,
            "faults": Dictionary(uniqueKeysWithValues: FaultKind.allCases.map { ($0.rawValue, faultsByKind[$0] ?? 0) }),
            "problems": problems, "passed": passed, "notes": notes, "tls": tls,
            "proxy_connections": proxyConnections, "proxy_resets": proxyResets, "proxy_forwarded_bytes": proxyForwardedBytes,
            "skipped": Dictionary(uniqueKeysWithValues: skippedByKind.map { ($0.key.rawValue, $0.value) }),
        ]
        if let check {
            object["workflows"] = check.workflows
            object["completed"] = check.completed
            object["compensated"] = check.compensated
            object["events"] = check.events
            object["acknowledged_checked"] = check.acknowledgedChecked
            object["identities"] = check.identities
            if let index = check.digestIndex { object["digest_index"] = index }
            object["violations"] = check.violations.map { violation -> [String: Any] in
                var entry: [String: Any] = ["invariant": violation.invariant, "detail": violation.detail]
                if let workflowID = violation.workflowID { entry["workflow_id"] = workflowID }
                return entry
            }
        }
        guard let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]),
              let text = String(data: data, encoding: .utf8) else { return "{\"passed\":false}" }
        return text
    }
}
