import BallastProto
import BallastSDK
import Foundation
import Logging

/// The shells around the example's cores: registering the search attribute, opening the
/// plan's accounts, building a worker, and collecting what `transfers verify` judges.
public enum TransferServices {
    /// Registers the keyword search attribute `TransferOutcome` in the client's namespace (the
    /// engine refuses upserts of unregistered attributes). Idempotent.
    public static func registerSearchAttributes(_ client: BallastClient) async throws(BallastClientError) {
        try await client.addSearchAttributes([TransferDefaults.outcomeAttribute: .keyword])
    }

    /// Runs `body` until it succeeds, retrying UNAVAILABLE and DEADLINE_EXCEEDED (the client's
    /// own retries exhausted: no leader answered) after a pause that doubles from 200 ms to at
    /// most `maxPause`; any other error is final. A worker outlives cluster outages this way —
    /// a restart, an election on a starved machine — rather than exiting at start-up.
    public static func retryingWhileUnavailable<Value>(
        logger: Logger, maxPause: Duration = .seconds(5),
        sleep: (Duration) async throws -> Void = { try await Task.sleep(for: $0) },
        _ body: () async throws(BallastClientError) -> Value
    ) async throws -> Value {
        var pause = Duration.milliseconds(200)
        while true {
            let failure: BallastClientError
            do {
                return try await body()
            } catch {
                failure = error
            }
            guard failure.code == .unavailable || failure.code == .deadlineExceeded else { throw failure }
            logger.warning("no leader answered yet; retrying", metadata: ["error": "\(failure)", "pause": "\(pause)"])
            try await sleep(pause)
            pause = min(pause * 2, maxPause)
        }
    }

    /// Opens the plan's accounts that do not exist yet with `balance` each; returns how many
    /// were created now.
    @discardableResult
    public static func openAccounts(_ accounts: [String], balance: Int64, in ledger: Ledger) throws(LedgerError) -> Int {
        var created = 0
        for account in accounts {
            if try ledger.openAccount(account, initialBalance: balance) { created += 1 }
        }
        return created
    }

    /// The busy timeout workers open the ledger with: shorter than the ledger activities'
    /// start-to-close timeout, so a lock held too long fails the attempt (retried) first.
    public static let ledgerBusyTimeout: Duration = .seconds(5)

    /// A worker serving the `Transfer` workflow and its activities on `taskQueue`; `onAcknowledged`
    /// hears of every task response the cluster acknowledged (the ack log).
    public static func makeWorker(client: BallastClient, ledger: Ledger, taskQueue: String = TransferDefaults.taskQueue,
                                  identity: String? = nil, maxConcurrentActivities: Int = 100,
                                  logger: Logger = Logger(label: "transfers.worker"),
                                  onAcknowledged: (@Sendable (WorkerAcknowledgement) -> Void)? = nil) throws(WorkerError) -> Worker {
        var options = WorkerOptions(taskQueue: taskQueue)
        options.onAcknowledged = onAcknowledged
        if let identity { options.identity = identity }
        options.maxConcurrentActivities = maxConcurrentActivities
        let runtime = WorkflowRuntime(workflows: [TransferWorkflow.self], logger: logger)
        let activities = ActivityExecutor(activities: TransferActivities.registry(ledger: ledger), logger: logger)
        return try Worker(client: client, options: options, workflows: runtime, activities: activities, logger: logger)
    }

    /// Reads every `Transfer` workflow (at most `limit`) and the ledger, and judges them.
    public static func audit(client: BallastClient, ledger: Ledger, limit: Int = 1_000_000) async throws -> TransferAudit {
        var filter = Ballast_V1_WorkflowExecutionFilter()
        filter.workflowType = TransferDefaults.workflowType
        let executions = try await client.list(filter: filter, pageSize: 1000, limit: limit)
        let runs = latestRuns(executions).map(Self.run)
        let operations = try ledger.allTransferOperations()
        return TransferAudit(runs: runs, operations: operations, deposited: try ledger.deposited(), totals: try ledger.totals())
    }

    /// One entry per workflow id: its newest run (a transfer id is started once, but a run
    /// could have been retried or continued by hand).
    static func latestRuns(_ executions: [Ballast_V1_WorkflowExecutionInfo]) -> [Ballast_V1_WorkflowExecutionInfo] {
        var newest: [String: Ballast_V1_WorkflowExecutionInfo] = [:]
        for execution in executions {
            let id = execution.execution.workflowID
            if let known = newest[id], known.startTimeUnixNanos >= execution.startTimeUnixNanos { continue }
            newest[id] = execution
        }
        return newest.keys.sorted().compactMap { newest[$0] }
    }

    static func run(_ info: Ballast_V1_WorkflowExecutionInfo) -> TransferAudit.Run {
        let state: TransferAudit.Run.State = switch info.status {
        case .running: .running
        case .completed: .completed
        default: .closedOtherwise("\(info.status)")
        }
        var outcome: String?
        if case .keywordValue(let word)? = info.searchAttributes.indexedFields[TransferDefaults.outcomeAttribute]?.value {
            outcome = word
        }
        return TransferAudit.Run(transferID: info.execution.workflowID, state: state, outcome: outcome)
    }
}
