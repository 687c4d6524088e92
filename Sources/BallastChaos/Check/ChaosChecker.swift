import BallastProto
import BallastSDK
import BallastServer
import BallastWire
import Foundation
import Logging
import NIOPosix
import TransfersKit

/// The invariant checker of a chaos run (issue 8 §1, docs/reliability.md "Invariants"): waits
/// for quiescence, then reads every run's history through the API, the ledger and the ack logs,
/// and applies the pure checks of `HistoryInvariants`, `AcknowledgementInvariant` and
/// `ClusterInvariants`. Violations are reported, never thrown; `check` throws only when the
/// cluster, the ledger or an ack log cannot be read at all.
public enum ChaosChecker {
    /// Why the check could not be made.
    public struct CheckError: Error, CustomStringConvertible {
        /// What went wrong.
        public var description: String
    }

    /// Runs every check against the healed cluster described by `configuration`.
    public static func check(_ configuration: ChaosCheckConfiguration, logger: Logger) async throws -> ChaosCheckReport {
        guard !configuration.apiEndpoints.isEmpty else { throw CheckError(description: "no API endpoint given") }
        guard configuration.historyConcurrency >= 1 else { throw CheckError(description: "history concurrency must be at least 1") }
        let endpoints: [BallastEndpoint]
        do {
            endpoints = try BallastEndpoint.parseList(configuration.apiEndpoints.joined(separator: ","))
        } catch {
            throw CheckError(description: "API endpoints: \(error)")
        }
        let acks: AckLogReader.Contents
        do { acks = try AckLogReader.read(configuration.ackLogPaths) } catch { throw CheckError(description: "\(error)") }
        var options = BallastClientOptions()
        options.namespace = configuration.namespace
        options.identity = "chaos-check-\(ProcessInfo.processInfo.processIdentifier)"
        options.callTimeout = .seconds(20)
        options.tls = configuration.tls
        let client = BallastClient(endpoints: endpoints, options: options, logger: logger)
        do {
            let report = try await check(configuration, client: client, acks: acks, logger: logger)
            await client.close()
            return report
        } catch {
            await client.close()
            throw error
        }
    }

    static func check(_ configuration: ChaosCheckConfiguration, client: BallastClient, acks: AckLogReader.Contents,
                      logger: Logger) async throws -> ChaosCheckReport {
        var violations: [ChaosViolation] = []
        let deadline = ContinuousClock.now + configuration.quiescenceDeadline
        violations += try await waitForTransfersToClose(client, until: deadline, readTimeout: configuration.readTimeout, logger: logger)
        let digests = await waitForDigests(configuration.adminEndpoints, tls: configuration.tls, until: deadline, logger: logger)
        violations += digests.violations

        let runs = try await Reads.retrying(for: configuration.readTimeout) {
            try await client.list(pageSize: 1000, limit: 100_000_000)
        }
        logger.info("reading histories", metadata: ["runs": "\(runs.count)"])
        let histories = try await readHistories(runs, client: client, configuration: configuration, logger: logger)
        violations += histories.violations

        let audit: TransferAudit
        do {
            let ledger = try Ledger(path: configuration.ledgerPath, busyTimeout: TransferServices.ledgerBusyTimeout)
            audit = try await Reads.retrying(for: configuration.readTimeout) { try await TransferServices.audit(client: client, ledger: ledger) }
        } catch {
            throw CheckError(description: "cannot audit the ledger \(configuration.ledgerPath): \(error)")
        }
        violations += ClusterInvariants.outcomeViolations(audit)

        let acknowledged = AcknowledgementInvariant.check(acks.records, runs: histories.summaries)
        violations += acknowledged.violations
        if !acks.missingFiles.isEmpty {
            logger.warning("ack logs missing (writers killed before opening them?)", metadata: ["files": "\(acks.missingFiles)"])
        }
        if !acks.unreadableLines.isEmpty {
            logger.warning("ack-log lines skipped (torn by a killed writer?)", metadata: ["lines": "\(acks.unreadableLines.prefix(20))"])
        }
        var report = ChaosCheckReport(workflows: runs.count, completed: audit.completed, compensated: audit.compensated,
                                      events: histories.events, acknowledgedChecked: acknowledged.checked, violations: violations)
        report.unreadableAckLines = acks.unreadableLines
        report.missingAckLogs = acks.missingFiles
        report.digestIndex = digests.agreed?.index
        report.stateDigest = digests.agreed?.digest
        report.identities = histories.identities
        return report
    }

    /// quiescence, first half: polls the count of running `Transfer` runs until it is zero.
    static func waitForTransfersToClose(_ client: BallastClient, until deadline: ContinuousClock.Instant, readTimeout: Duration,
                                        logger: Logger) async throws -> [ChaosViolation] {
        var filter = Ballast_V1_WorkflowExecutionFilter()
        filter.workflowType = TransferDefaults.workflowType
        filter.statuses = [.running]
        var running: Int64 = -1
        var lastError = ""
        while true {
            do {
                running = try await client.count(filter: filter)
                if running == 0 { return [] }
            } catch {
                lastError = "\(error)"
            }
            guard ContinuousClock.now + .milliseconds(200) < deadline else { break }
            try await Task.sleep(for: .milliseconds(200))
        }
        if running > 0 {
            let open = (try? await client.list(filter: filter, pageSize: 20, limit: 20)) ?? []
            return [ChaosViolation(invariant: ChaosInvariant.quiescence, workflowID: open.first?.execution.workflowID,
                                   detail: "\(running) transfers still running at the deadline, e.g. "
                                       + open.map(\.execution.workflowID).joined(separator: ", "))]
        }
        return [ChaosViolation(invariant: ChaosInvariant.quiescence, workflowID: nil,
                               detail: "could not count running transfers before the deadline: \(lastError)")]
    }

    /// quiescence, second half, and digest: polls every node's `/status?digest=1` until all show
    /// the same digest at the same index (or two differ at the same index) or the deadline.
    static func waitForDigests(_ adminEndpoints: [String], tls: TLSClientOptions?, until deadline: ContinuousClock.Instant,
                               logger: Logger) async -> (violations: [ChaosViolation], agreed: (index: UInt64, digest: String)?) {
        guard !adminEndpoints.isEmpty else {
            return ([ChaosViolation(invariant: ChaosInvariant.quiescence, workflowID: nil, detail: "no admin endpoint to compare digests on")], nil)
        }
        var reason = "not polled"
        while true {
            // All nodes at once, so that entries applied between two answers rarely split them.
            var readings: [NodeDigestReading] = []
            var unreachable: [String: String] = [:]
            await withTaskGroup(of: (String, Result<NodeDigestReading, NodeDigestReading.ParseError>).self) { group in
                for endpoint in adminEndpoints { group.addTask { (endpoint, await readDigest(endpoint, tls: tls)) } }
                for await (endpoint, result) in group {
                    switch result {
                    case .success(let reading): readings.append(reading)
                    case .failure(let error): unreachable[endpoint] = error.description
                    }
                }
            }
            readings.sort { $0.endpoint < $1.endpoint }
            switch ClusterInvariants.judgeDigests(readings, unreachable: unreachable) {
            case .agreed(let index, let digest):
                logger.info("digests agree", metadata: ["index": "\(index)", "digest": "\(digest)"])
                return ([], (index, digest))
            case .diverged(let violations):
                return (violations, nil)
            case .waiting(let why):
                reason = why
            }
            guard ContinuousClock.now + .milliseconds(200) < deadline else { break }
            try? await Task.sleep(for: .milliseconds(200))
        }
        return ([ChaosViolation(invariant: ChaosInvariant.quiescence, workflowID: nil, detail: "digests did not agree by the deadline: \(reason)")], nil)
    }

    /// One node's digest reading.
    static func readDigest(_ endpoint: String, tls: TLSClientOptions?) async -> Result<NodeDigestReading, NodeDigestReading.ParseError> {
        guard let colon = endpoint.lastIndex(of: ":"), let port = Int(endpoint[endpoint.index(after: colon)...]), (1 ... 65535).contains(port) else {
            return .failure(.init(description: "\(endpoint) is not HOST:PORT"))
        }
        let host = String(endpoint[..<colon]).trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
        do {
            // A digest walks the whole engine state: about a second per 100,000 open runs.
            let (status, body) = try await AdminHTTPClient.get(host: host, port: port, path: "/status?digest=1", timeout: .seconds(30),
                                                               group: MultiThreadedEventLoopGroup.singleton, maxBodyBytes: 4 << 20,
                                                               tls: tls)
            guard status == 200 else { return .failure(.init(description: "\(endpoint) answered HTTP \(status)")) }
            return Result { () throws(NodeDigestReading.ParseError) in try NodeDigestReading.parse(body, endpoint: endpoint) }
        } catch {
            return .failure(.init(description: "\(endpoint): \(error)"))
        }
    }

    /// What reading every history gave.
    struct Histories {
        var summaries: [String: [RunHistorySummary]] = [:]
        var violations: [ChaosViolation] = []
        var events = 0
        var identities: [String: Int] = [:]
    }

    /// Reads and analyzes every run's history, `historyConcurrency` at a time; keeps only the summaries.
    static func readHistories(_ runs: [Ballast_V1_WorkflowExecutionInfo], client: BallastClient, configuration: ChaosCheckConfiguration,
                              logger: Logger) async throws -> Histories {
        try await withThrowingTaskGroup(of: (RunHistorySummary, [ChaosViolation])?.self) { group in
            var histories = Histories()
            var pending = runs.makeIterator()
            func add(_ result: (RunHistorySummary, [ChaosViolation])?) {
                guard let (summary, violations) = result else { return }
                histories.summaries[summary.workflowID, default: []].append(summary)
                histories.violations += violations
                histories.events += summary.events
                histories.identities.merge(summary.identities, uniquingKeysWith: +)
            }
            func launch(_ run: Ballast_V1_WorkflowExecutionInfo) {
                group.addTask { try await readHistory(run.execution, client: client, readTimeout: configuration.readTimeout) }
            }
            for _ in 0 ..< configuration.historyConcurrency {
                guard let run = pending.next() else { break }
                launch(run)
            }
            var done = 0
            while let result = try await group.next() {
                add(result)
                done += 1
                if done % 1000 == 0 { logger.info("histories read", metadata: ["runs": "\(done)", "events": "\(histories.events)"]) }
                if let run = pending.next() { launch(run) }
            }
            return histories
        }
    }

    /// One run's history, analyzed; a run listed but without a readable history is a violation.
    static func readHistory(_ execution: Ballast_V1_WorkflowExecution, client: BallastClient,
                            readTimeout: Duration) async throws -> (RunHistorySummary, [ChaosViolation]) {
        do {
            let events = try await Reads.retrying(for: readTimeout) {
                try await client.history(workflowID: execution.workflowID, runID: execution.runID)
            }
            var (summary, violations) = HistoryInvariants.analyze(workflowID: execution.workflowID, runID: execution.runID, events: events)
            if !summary.hasStartedEvent {
                violations.append(ChaosViolation(invariant: ChaosInvariant.acknowledgedPresent, workflowID: execution.workflowID,
                                                 detail: "run \(execution.runID) is listed but its history does not begin with WorkflowExecutionStarted"))
            }
            return (summary, violations)
        } catch let error as BallastClientError where error.code == .notFound {
            let summary = RunHistorySummary(workflowID: execution.workflowID, runID: execution.runID)
            return (summary, [ChaosViolation(invariant: ChaosInvariant.acknowledgedPresent, workflowID: execution.workflowID,
                                             detail: "run \(execution.runID) is listed but its history is not found: \(error)")])
        }
    }
}

/// Reads retried across leader changes.
enum Reads {
    /// Runs `read` again (backoff 100 ms doubling to 2 s) while it fails the way a leader
    /// change or a lost connection explains, for up to `limit`.
    static func retrying<T>(for limit: Duration, _ read: () async throws -> T) async throws -> T {
        let deadline = ContinuousClock.now + limit
        var delay = Duration.milliseconds(100)
        while true {
            do {
                return try await read()
            } catch let error as BallastClientError {
                guard isTransient(error), ContinuousClock.now + delay < deadline else { throw error }
                try await Task.sleep(for: delay)
                delay = min(delay * 2, .seconds(2))
            }
        }
    }

    /// Failures a retry can heal.
    static func isTransient(_ error: BallastClientError) -> Bool {
        switch error.code {
        case .cancelled?, .unavailable?, .deadlineExceeded?, .unknown?, .aborted?, .internal?: true
        default: false
        }
    }
}
