import ArgumentParser
import BallastSDK
import Foundation
import Synchronization
import TransfersKit

/// `transfers bench`: completed workflows per second and start-to-close latency, closed loop.
struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure completed Transfer (or one-activity) workflows per second against a running cluster.",
        discussion: """
            Runs --workers workers in this process (each its own connection), then --count workflows with \
            --concurrency in flight (each started, then waited for until it closes); the first --warmup are \
            not measured. Transfers run with fail rate 0, no transient failures, no bank latency and no \
            approvals. --json prints {"bench","ops_per_s","p50_ms","p99_ms","concurrency",…}. With --tls the \
            measurement runs twice in this run, in cleartext and then over mutual TLS (--tls-ca/--tls-cert/--tls-key \
            or $BALLAST_TLS_*), against a cluster that serves both (`ballast server --tls-allow-cleartext`), and \
            the cost of TLS is reported.
            """)

    enum Kind: String, ExpressibleByArgument, CaseIterable {
        case transfer
        case oneActivity = "one-activity"
    }

    @OptionGroup var common: CommonOptions
    @Option(help: "transfer or one-activity.") var workflow: Kind = .transfer
    @Option(help: "Workflows to run (warm-up included).") var count = 2_000
    @Option(help: "Workflows not measured at the start.") var warmup = 200
    @Option(help: "Workflows in flight at once.") var concurrency = 64
    @Option(help: "Workers in this process.") var workers = 2
    @Option(help: "Task queue (a fresh one per run by default, so old tasks do not interfere).") var taskQueue: String?
    @Flag(help: "Print one JSON line.") var json = false
    @Flag(help: "Measure cleartext, then mutual TLS, in this run (the cluster must serve both) and report the cost.") var tls = false

    func validate() throws {
        guard count > warmup, warmup >= 0, count <= 1_000_000 else { throw ValidationError("need 0 <= --warmup < --count <= 1000000") }
        guard (1 ... 10_000).contains(concurrency) else { throw ValidationError("--concurrency must be 1...10000") }
        guard (1 ... 16).contains(workers) else { throw ValidationError("--workers must be 1...16") }
    }

    func run() async throws {
        try await reportingFailures {
            guard tls else {
                let figures = try await measure(cleartext: false)
                report(figures)
                guard figures.failures == 0 else { throw ExitCode(1) }
                return
            }
            guard try common.makeClient(identity: "transfers-bench").options.tls != nil else {
                throw ValidationError("--tls needs --tls-ca, --tls-cert and --tls-key (or $BALLAST_TLS_CA, _CERT, _KEY)")
            }
            let off = try await measure(cleartext: true)
            report(off, label: "tls-off")
            let on = try await measure(cleartext: false)
            report(on, label: "tls-on")
            let cost = off.perSecond > 0 ? (1 - on.perSecond / off.perSecond) * 100 : 0
            say(json ? "{\"bench\":\"workflow-tls-cost\",\"tls_off_ops_per_s\":\(StartCommand.rounded(off.perSecond)),"
                    + "\"tls_on_ops_per_s\":\(StartCommand.rounded(on.perSecond)),\"tls_cost_percent\":\(StartCommand.rounded(cost))}"
                     : "TLS cost: \(StartCommand.rounded(cost))% of throughput (\(StartCommand.rounded(off.perSecond)) → "
                    + "\(StartCommand.rounded(on.perSecond)) completed/s)")
            guard off.failures == 0, on.failures == 0 else { throw ExitCode(1) }
        }
    }

    /// One measurement: workers in this process, `count` workflows; `cleartext` drops the TLS options.
    func measure(cleartext: Bool) async throws -> WorkflowLoad.Figures {
        let tag = String(UInt64(Date().timeIntervalSince1970 * 1000), radix: 36) + (cleartext ? "c" : "")
        let queue = taskQueue.map { tls ? "\($0)-\(tag)" : $0 } ?? "bench-\(tag)"
        let ledger = try common.openLedger()
        let parameters = TransferPlan.Parameters(count: count, seed: UInt64(Date().timeIntervalSince1970), transientRate: 0,
                                                 bankLatencyMilliseconds: 0, largeFraction: 0)
        let plan = TransferPlan(parameters)
        try TransferServices.openAccounts(plan.accounts, balance: TransferPlan.openingBalance(parameters), in: ledger)
        let client = try common.makeClient(identity: "transfers-bench", cleartext: cleartext)
        try await TransferServices.registerSearchAttributes(client)
        let running = try (1 ... workers).map { number in try startWorker(number, queue: queue, ledger: ledger, cleartext: cleartext) }
        let load = WorkflowLoad(count: count, warmup: warmup, concurrency: concurrency)
        let kind = workflow
        let loadTask = Task { await load.run { index in
            switch kind {
            case .transfer:
                var input = plan.items[index].input
                input.transferID = "bench-\(tag)-\(index)"
                return try await client.start(TransferDefaults.workflowType, id: input.transferID, taskQueue: queue, input: input)
            case .oneActivity:
                return try await client.start(OneActivityWorkflow.name, id: "bench-\(tag)-\(index)", taskQueue: queue, input: "x")
            }
        } }
        // A worker that stops (its task stream refused: a missing role, a wrong namespace) would
        // leave every run waiting for a task that never comes: stop the measurement with its error.
        let figures = try await BenchRace.figures(of: loadTask, unlessOneOf: running.map(\.1))
        for (worker, task, workerClient) in running {
            await worker.shutdown(gracePeriod: .seconds(2))
            _ = await task.result
            await workerClient.close()
        }
        await client.close()
        return figures
    }

    func startWorker(_ number: Int, queue: String, ledger: Ledger, cleartext: Bool) throws -> (Worker, Task<Void, any Error>, BallastClient) {
        let client = try common.makeClient(identity: "transfers-bench-worker-\(number)", cleartext: cleartext)
        var options = WorkerOptions(taskQueue: queue)
        options.identity = "bench-worker-\(number)"
        options.maxConcurrentActivities = 200
        options.maxConcurrentWorkflowTasks = 200
        var registry = TransferActivities.registry(ledger: ledger)
        registry.register(EchoActivity())
        let logger = common.makeLogger("transfers.bench")
        let runtime = WorkflowRuntime(workflows: [TransferWorkflow.self, OneActivityWorkflow.self], logger: logger)
        let worker = try Worker(client: client, options: options, workflows: runtime,
                                activities: ActivityExecutor(activities: registry, logger: logger), logger: logger)
        return (worker, Task { try await worker.run() }, client)
    }

    func report(_ figures: WorkflowLoad.Figures, label: String? = nil) {
        let name = (workflow == .transfer ? "workflow-transfer" : "workflow-one-activity") + (label.map { "-\($0)" } ?? "")
        if json {
            say("{\"bench\":\"\(name)\",\"ops_per_s\":\(StartCommand.rounded(figures.perSecond)),"
                + "\"p50_ms\":\(StartCommand.rounded(figures.p50Milliseconds)),\"p99_ms\":\(StartCommand.rounded(figures.p99Milliseconds)),"
                + "\"concurrency\":\(concurrency),\"workers\":\(workers),\"measured\":\(figures.measured),\"failures\":\(figures.failures)}")
        } else {
            say("\(name): \(figures.measured) measured, \(StartCommand.rounded(figures.perSecond)) completed/s, "
                + "p50 \(StartCommand.rounded(figures.p50Milliseconds)) ms, p99 \(StartCommand.rounded(figures.p99Milliseconds)) ms, "
                + "\(figures.failures) failures (concurrency \(concurrency), \(workers) workers)")
        }
        for sample in figures.errorSamples { FileHandle.standardError.write(Data("error: \(sample)\n".utf8)) }
    }
}

/// Waits for a load, or for the first of its workers to fail, whichever comes first.
enum BenchRace {
    private final class Outcome: Sendable {
        let continuation: CheckedContinuation<WorkflowLoad.Figures, any Error>
        let finished = Mutex(false)

        init(_ continuation: CheckedContinuation<WorkflowLoad.Figures, any Error>) { self.continuation = continuation }

        func finish(_ result: Result<WorkflowLoad.Figures, any Error>) {
            guard finished.withLock({ done in defer { done = true }; return !done }) else { return }
            continuation.resume(with: result)
        }
    }

    static func figures(of load: Task<WorkflowLoad.Figures, Never>, unlessOneOf workers: [Task<Void, any Error>]) async throws -> WorkflowLoad.Figures {
        try await withCheckedThrowingContinuation { continuation in
            let outcome = Outcome(continuation)
            Task { outcome.finish(.success(await load.value)) }
            for worker in workers {
                Task {
                    if case .failure(let error) = await worker.result { outcome.finish(.failure(BenchWorkerStopped(reason: "\(error)"))) }
                }
            }
        }
    }
}

/// A benchmark's worker stopped before the load finished.
struct BenchWorkerStopped: Error, CustomStringConvertible {
    let reason: String
    var description: String { "a benchmark worker stopped: \(reason)" }
}
