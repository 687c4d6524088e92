import ArgumentParser
import BallastSDK
import Foundation
import TransfersKit

/// `transfers start`: opens the accounts, runs N transfers, waits for every one to close.
struct StartCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "start",
        abstract: "Open the accounts if needed, start N transfers and wait until every one has closed.",
        discussion: """
            Amounts, accounts and approval delays are drawn from --seed; about 10% of the amounts are at \
            or above the approval threshold and are approved by an `approve` signal after a short seeded \
            delay (unless --no-approve: then they are refunded when --approval-timeout expires). Prints a \
            progress line every second and a summary; exits 0 only when every transfer closed. With --for it \
            keeps starting transfers until that long has passed (--count then caps how many, default 1000000), \
            then waits for those it started (--timeout counts from there). --ack-log FILE appends one JSON \
            line per start and approval signal the cluster acknowledged (docs/reliability.md). With \
            --hold-after N --hold-file FILE it starts N transfers, then starts no more while FILE exists \
            (those started go on); cluster/demo kills the leader there.
            """)

    @OptionGroup var common: CommonOptions
    @Option(help: "How many transfers (default 300; with --for the most that are started, default 1000000).") var count: Int?
    @Option(name: .customLong("for"), help: "Keep starting transfers until this long has passed (e.g. 60s, 30m).") var duration: String?
    @Option(help: "Append one JSON line per acknowledged start and approval signal to this file.") var ackLog: String?
    @Option(help: "Transfers in flight at once.") var concurrency = 32
    @Option(help: "Fraction (0-1) of transfers the correspondent bank rejects for good (they are compensated).") var failRate = 0.0
    @Option(help: "Fraction (0-1) of bank calls that fail transiently (retried).") var transientRate = 0.2
    @Option(help: "Seeds amounts, accounts, delays and the bank's decisions.") var seed: UInt64 = 1
    @Flag(help: "Do not approve large transfers (they are refunded when the approval timer expires).") var noApprove = false
    @Option(help: "How long a large transfer waits for its approval (e.g. 30s).") var approvalTimeout = "30s"
    @Option(help: "Amounts at or above this many minor units wait for an approval.") var approvalThreshold: Int64 = TransferDefaults.approvalThreshold
    @Option(help: "Fraction (0-1) of transfers at or above the approval threshold.") var largeFraction = 0.1
    @Option(help: "The simulated bank's mean latency, milliseconds.") var bankLatency = 5
    @Option(help: "How many accounts the money moves between.") var accounts = 20
    @Option(help: "How long to wait for every transfer to close (e.g. 10m).") var timeout = "10m"
    @Option(help: "Task queue the workers serve.") var taskQueue = TransferDefaults.taskQueue
    @Flag(help: "Print the summary as one JSON line.") var json = false
    @Option(help: "After this many starts, start no more while --hold-file exists.") var holdAfter: Int?
    @Option(help: "The file whose existence holds the starts (see --hold-after).") var holdFile: String?

    func validate() throws {
        guard (1 ... 10_000).contains(concurrency) else { throw ValidationError("--concurrency must be 1...10000") }
        _ = try parseDuration(approvalTimeout, flag: "--approval-timeout")
        _ = try parseDuration(timeout, flag: "--timeout")
        if let duration { _ = try parseDuration(duration, flag: "--for") }
        if let ackLog, ackLog.isEmpty { throw ValidationError("--ack-log must name a file") }
        guard (holdAfter == nil) == (holdFile == nil) else { throw ValidationError("--hold-after and --hold-file go together") }
        if let holdAfter, holdAfter < 1 { throw ValidationError("--hold-after must be at least 1") }
        if let holdFile, holdFile.isEmpty { throw ValidationError("--hold-file must name a file") }
        if let problem = try parameters().problem { throw ValidationError(problem) }
    }

    /// How many transfers the plan has: --count, else 300, or 1,000,000 with --for.
    var plannedCount: Int { count ?? (duration == nil ? 300 : 1_000_000) }

    func parameters() throws -> TransferPlan.Parameters {
        TransferPlan.Parameters(count: plannedCount, seed: seed, failRate: failRate, transientRate: transientRate,
                                bankLatencyMilliseconds: bankLatency, approvalThreshold: approvalThreshold,
                                approvalTimeoutMilliseconds: try parseDuration(approvalTimeout, flag: "--approval-timeout").wholeMilliseconds,
                                largeFraction: largeFraction, accounts: accounts)
    }

    func run() async throws {
        try await reportingFailures {
            let parameters = try parameters()
            let startFor = try duration.map { try parseDuration($0, flag: "--for") }
            let ledger = try common.openLedger()
            let opened = try TransferServices.openAccounts(TransferPlan.accounts(parameters), balance: TransferPlan.openingBalance(parameters),
                                                           in: ledger)
            let ackWriter = try openAckLog(ackLog)
            let client = try common.makeClient(identity: "transfers-start-\(ProcessInfo.processInfo.processIdentifier)")
            try await TransferServices.registerSearchAttributes(client)
            var options = TransferRunner.Options()
            options.concurrency = concurrency
            options.approve = !noApprove
            options.timeout = try parseDuration(timeout, flag: "--timeout")
            options.taskQueue = taskQueue
            options.startFor = startFor
            if let ackWriter { options.onAcknowledged = { record in ackWriter.append(record) } }
            if let holdAfter, let holdFile {
                options.hold = .init(after: holdAfter) {
                    say("holding after \(holdAfter) starts while \(holdFile) exists")
                    while FileManager.default.fileExists(atPath: holdFile), !Task.isCancelled {
                        try? await Task.sleep(for: .milliseconds(50))
                    }
                    say("hold lifted: starting the rest")
                }
            }
            let what: String
            if let duration {
                what = "transfers for \(duration) (at most \(plannedCount)"
            } else {
                let large = TransferPlan(parameters).items.filter { $0.input.needsApproval }.count
                what = "\(plannedCount) transfers (\(large) above the approval threshold"
            }
            say("starting \(what), seed \(seed), fail rate \(failRate), transient rate \(transientRate), "
                + "large fraction \(largeFraction)\(noApprove ? " not approved" : ""), concurrency \(concurrency); "
                + "\(opened) accounts opened)")
            let runner = TransferRunner(client: client, parameters: parameters, options: options)
            let total = duration == nil ? plannedCount : nil
            let summary = await runner.run { progress in say(Self.progressLine(progress, of: total)) }
            await client.close()
            if let ackWriter {
                ackWriter.close()
                if ackWriter.failedWrites > 0 {
                    FileHandle.standardError.write(Data("warning: \(ackWriter.failedWrites) lines could not be written to \(ackWriter.path)\n".utf8))
                }
            }
            report(summary)
            guard summary.allClosed else { throw ExitCode(1) }
        }
    }

    static func progressLine(_ progress: TransferRunner.Progress, of total: Int?) -> String {
        "progress: started \(progress.started)\(total.map { "/\($0)" } ?? ""), closed \(progress.closed) (completed \(progress.completed), "
            + "compensated \(progress.compensated), other \(progress.closedOtherwise)), approvals \(progress.approvals), errors \(progress.errors)"
    }

    func report(_ summary: TransferRunner.Summary) {
        let progress = summary.progress
        let seconds = summary.elapsed.secondsValue
        let rate = seconds > 0 ? Double(progress.closed) / seconds : 0
        if json {
            let fields: [String] = [
                "\"planned\":\(summary.planned)", "\"closed\":\(progress.closed)", "\"completed\":\(progress.completed)",
                "\"compensated\":\(progress.compensated)", "\"other\":\(progress.closedOtherwise)", "\"errors\":\(progress.errors)",
                "\"seconds\":\(Self.rounded(seconds))", "\"per_second\":\(Self.rounded(rate))",
                "\"p50_ms\":\(Self.rounded(summary.latency(quantile: 0.5)))", "\"p99_ms\":\(Self.rounded(summary.latency(quantile: 0.99)))",
            ]
            print("{" + fields.joined(separator: ",") + "}")
        } else {
            print("summary: \(progress.closed)/\(summary.planned) closed in \(Self.rounded(seconds)) s (\(Self.rounded(rate))/s): "
                  + "\(progress.completed) completed, \(progress.compensated) compensated, \(progress.closedOtherwise) other, "
                  + "\(summary.planned - progress.closed) not closed; start-to-close p50 \(Self.rounded(summary.latency(quantile: 0.5))) ms, "
                  + "p99 \(Self.rounded(summary.latency(quantile: 0.99))) ms")
        }
        for sample in summary.errorSamples { FileHandle.standardError.write(Data("error: \(sample)\n".utf8)) }
    }

    static func rounded(_ value: Double) -> Double { (value * 10).rounded() / 10 }
}

/// A line on stdout, flushed at once (progress must show up in pipes and logs).
func say(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}
