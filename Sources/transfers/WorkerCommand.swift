import ArgumentParser
import BallastSDK
import Foundation
import Logging
import TransfersKit

/// `transfers worker`: serves the Transfer workflow and its activities until SIGTERM/SIGINT.
struct WorkerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "worker",
        abstract: "Run the Transfer workflow and its activities against the ledger until SIGTERM or SIGINT.")

    @OptionGroup var common: CommonOptions
    @Option(help: "Worker identity shown in history (default: transfers-worker-PID).") var identity: String?
    @Option(help: "Task queue to serve.") var taskQueue = TransferDefaults.taskQueue
    @Option(help: "Activities run at once.") var maxConcurrentActivities = 100
    @Option(help: "Append one JSON line per task response the cluster acknowledged to this file.") var ackLog: String?

    func validate() throws {
        guard (1 ... 10_000).contains(maxConcurrentActivities) else { throw ValidationError("--max-concurrent-activities must be 1...10000") }
        guard !taskQueue.isEmpty else { throw ValidationError("--task-queue must not be empty") }
        if let ackLog, ackLog.isEmpty { throw ValidationError("--ack-log must name a file") }
    }

    func run() async throws {
        try await reportingFailures {
            let name = identity ?? "transfers-worker-\(ProcessInfo.processInfo.processIdentifier)"
            let logger = common.makeLogger("transfers.worker")
            let ledger = try common.openLedger()
            // Before the first call: a worker killed while it still waits for the cluster leaves
            // an empty ack log rather than none.
            let ackWriter = try openAckLog(ackLog)
            let client = try common.makeClient(identity: name)
            // The engine refuses upserts of unregistered attributes: make sure it is registered.
            // A worker outlives cluster outages: while no leader answers (a restart, an election
            // on a starved machine) it keeps trying rather than exiting.
            try await TransferServices.retryingWhileUnavailable(logger: logger) { () async throws(BallastClientError) in
                try await TransferServices.registerSearchAttributes(client)
            }
            let onAcknowledged = ackWriter.map { Self.acknowledgementHandler($0, logger: logger) }
            let worker = try TransferServices.makeWorker(client: client, ledger: ledger, taskQueue: taskQueue, identity: name,
                                                         maxConcurrentActivities: maxConcurrentActivities, logger: logger,
                                                         onAcknowledged: onAcknowledged)
            Signals.onTermination { Task { await worker.shutdown() } }
            FileHandle.standardError.write(Data("worker \(name) serving task queue \(taskQueue), ledger \(common.ledger)\n".utf8))
            try await worker.run()
            await client.close()
            ackWriter?.close()
        }
    }

    /// Appends each acknowledged response to `writer`; a line that cannot be written is logged.
    static func acknowledgementHandler(_ writer: AckLogWriter, logger: Logger) -> @Sendable (WorkerAcknowledgement) -> Void {
        { acknowledgement in
            if !writer.append(AckRecord(acknowledgement)) {
                logger.error("cannot write to the ack log", metadata: ["path": "\(writer.path)"])
            }
        }
    }
}
