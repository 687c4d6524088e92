import BallastProto
import BallastSDK
import Foundation
import Synchronization

/// What `transfers start` does: opens the plan's accounts, then runs the planned transfers
/// with at most `concurrency` in flight — each is started, approved by signal after its
/// seeded delay when it is large (unless approvals are off), and waited for until it closes.
/// Starts are idempotent (request id and workflow id derive from the transfer id, reuse policy
/// reject-duplicate), so running the same plan again only waits for the transfers; so are the
/// approvals (request id `approve-<transfer id>`), so a signal retried across a failover is
/// recorded once. With `startFor` it keeps starting the plan's transfers in order until that
/// long has passed (or the plan's `count` is used up), then waits for those it started.
public struct TransferRunner: Sendable {
    /// How to run.
    public struct Options: Sendable {
        /// Transfers in flight at once.
        public var concurrency = 32
        /// Whether large transfers are approved by signal.
        public var approve = true
        /// How long to wait for every transfer to close.
        public var timeout: Duration = .seconds(600)
        /// The task queue the workers serve.
        public var taskQueue = TransferDefaults.taskQueue
        /// Stop starting transfers once this long has passed since the run began (nil: start
        /// every planned one); `timeout` then counts from the end of this period.
        public var startFor: Duration?
        /// Called with each start and approval signal the cluster acknowledged (the ack log).
        public var onAcknowledged: (@Sendable (AckRecord) -> Void)?
        /// Hold further starts once this many transfers were taken from the plan, until `release`
        /// returns (nil: never hold). Transfers already started go on while the runner holds; the
        /// demo kills the leader there, so that the kill always falls between starts.
        public var hold: Hold?

        /// A point where the runner stops starting transfers until told to go on.
        public struct Hold: Sendable {
            /// How many transfers are started before the hold.
            public var after: Int
            /// Returns when the runner may start the rest.
            public var release: @Sendable () async -> Void

            /// A hold after `after` starts, lifted when `release` returns.
            public init(after: Int, release: @escaping @Sendable () async -> Void) {
                self.after = after
                self.release = release
            }
        }

        /// Default options.
        public init() {}
    }

    /// Counts so far (for the progress line) and at the end.
    public struct Progress: Sendable, Equatable {
        /// Transfers started (or found already started).
        public var started = 0
        /// Transfers whose workflow closed.
        public var closed = 0
        /// Closed with outcome completed.
        public var completed = 0
        /// Closed with outcome compensated.
        public var compensated = 0
        /// Closed otherwise (failed, terminated, …) or without a readable result.
        public var closedOtherwise = 0
        /// Approval signals sent.
        public var approvals = 0
        /// Transfers that could not be started or waited for (the error is logged).
        public var errors = 0
    }

    /// The end of a run.
    public struct Summary: Sendable {
        /// The final counts.
        public var progress: Progress
        /// How many transfers were taken from the plan (all of it unless `startFor` ended it).
        public var planned: Int
        /// Wall time from the first start to the last close.
        public var elapsed: Duration
        /// Start-to-close latency of each closed transfer, milliseconds, sorted.
        public var latenciesMilliseconds: [Double]
        /// Errors seen (at most 20).
        public var errorSamples: [String]

        /// Whether every planned transfer closed.
        public var allClosed: Bool { progress.closed == planned }

        /// The latency at quantile `q` (0…1), milliseconds; 0 with no samples.
        public func latency(quantile q: Double) -> Double {
            guard !latenciesMilliseconds.isEmpty else { return 0 }
            let index = min(latenciesMilliseconds.count - 1, max(0, Int((q * Double(latenciesMilliseconds.count)).rounded(.up)) - 1))
            return latenciesMilliseconds[index]
        }
    }

    let client: BallastClient
    let parameters: TransferPlan.Parameters
    let options: Options

    /// A runner of `plan` through `client`.
    public init(client: BallastClient, plan: TransferPlan, options: Options) {
        self.init(client: client, parameters: plan.parameters, options: options)
    }

    /// A runner of the plan drawn from `parameters`, drawn as it goes (for long `startFor` runs).
    public init(client: BallastClient, parameters: TransferPlan.Parameters, options: Options) {
        precondition(options.concurrency >= 1, "concurrency must be at least 1")
        precondition(parameters.problem == nil, parameters.problem ?? "")
        self.client = client
        self.parameters = parameters
        self.options = options
    }

    /// Runs every transfer; calls `onProgress` about once a second.
    public func run(onProgress: @escaping @Sendable (Progress) -> Void) async -> Summary {
        let shared = SharedCountsBox()
        let clock = ContinuousClock()
        let begin = clock.now
        let stopStarting = options.startFor.map { begin + $0 }
        let deadline = begin + (options.startFor ?? .zero) + options.timeout
        let ticker = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: .seconds(1))
                if Task.isCancelled { break }
                onProgress(shared.counts.withLock { $0.progress })
            }
        }
        var taken = 0
        var hold = options.hold
        await withTaskGroup(of: Void.self) { group in
            var pending = TransferPlan.Generator(parameters)
            func next() async -> TransferPlan.Item? {
                if let stopStarting, clock.now >= stopStarting { return nil }
                guard let item = pending.next() else { return nil }
                if let pause = hold, taken >= pause.after {
                    hold = nil
                    await pause.release()
                }
                taken += 1
                return item
            }
            for _ in 0 ..< options.concurrency {
                guard let item = await next() else { break }
                group.addTask { await self.runOne(item, deadline: deadline, shared: shared) }
            }
            while await group.next() != nil {
                guard let item = await next() else { continue }
                group.addTask { await self.runOne(item, deadline: deadline, shared: shared) }
            }
        }
        ticker.cancel()
        let counts = shared.counts.withLock { $0 }
        return Summary(progress: counts.progress, planned: taken, elapsed: clock.now - begin,
                       latenciesMilliseconds: counts.latencies.sorted(), errorSamples: counts.errors)
    }

    /// Starts one transfer, approves it if needed, waits for it to close and counts the outcome.
    func runOne(_ item: TransferPlan.Item, deadline: ContinuousClock.Instant, shared: SharedCountsBox) async {
        let id = item.input.transferID
        let began = ContinuousClock.now
        do {
            // Every call is idempotent (the start by its request id, a second approval changes
            // nothing, waiting is a read), so a call cut by a failover is simply made again.
            let handle = try await Self.retrying(until: deadline) { try await startOrAttach(item.input) }
            shared.counts.withLock { $0.progress.started += 1 }
            if item.input.needsApproval && options.approve {
                try await Task.sleep(for: .milliseconds(item.approvalDelayMilliseconds))
                if try await Self.retrying(until: deadline, { try await approve(handle) }) {
                    shared.counts.withLock { $0.progress.approvals += 1 }
                }
            }
            let closed = try await Self.retrying(until: deadline) {
                let left = deadline - ContinuousClock.now
                guard left > .zero else { throw TimedOut() }
                return try await handle.waitClosed(timeout: left)
            }
            let outcome = Self.outcome(closed)
            let latency = ContinuousClock.now - began
            shared.counts.withLock { counts in
                counts.progress.closed += 1
                switch outcome {
                case .completed?: counts.progress.completed += 1
                case .compensated?: counts.progress.compensated += 1
                case nil: counts.progress.closedOtherwise += 1
                }
                counts.latencies.append(Double(latency.components.seconds) * 1000 + Double(latency.components.attoseconds) / 1e15)
            }
        } catch {
            shared.counts.withLock { counts in
                counts.progress.errors += 1
                if counts.errors.count < 20 { counts.errors.append("\(id): \(error)") }
            }
        }
    }

    /// Runs `call` again (backoff 100 ms doubling to 1 s) while it fails the way a leader change
    /// or a lost connection explains — the client gives up on those at its call deadline, or
    /// reports a stream cut by a dying node as CANCELLED — until `deadline`.
    static func retrying<T>(until deadline: ContinuousClock.Instant, _ call: () async throws -> T) async throws -> T {
        var delay = Duration.milliseconds(100)
        while true {
            do {
                return try await call()
            } catch let error as BallastClientError {
                guard isTransient(error), ContinuousClock.now + delay < deadline else { throw error }
                try await Task.sleep(for: delay)
                delay = min(delay * 2, .seconds(1))
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

    /// Starts the transfer, or attaches to it when an earlier run of the plan started it.
    func startOrAttach(_ input: TransferInput) async throws -> WorkflowHandle {
        var start = WorkflowStartOptions()
        start.requestID = "start-\(input.transferID)"
        start.reusePolicy = .rejectDuplicate
        do {
            let handle = try await client.start(TransferDefaults.workflowType, id: input.transferID, taskQueue: options.taskQueue,
                                                input: input, options: start)
            if let onAcknowledged = options.onAcknowledged {
                var record = AckRecord(kind: .start, workflowID: input.transferID, runID: handle.runID)
                record.requestID = start.requestID
                record.started = handle.startedNow
                onAcknowledged(record)
            }
            return handle
        } catch {
            guard error.code == .alreadyExists else { throw error }
            return client.handle(workflowID: input.transferID)
        }
    }

    /// Sends `approve`; false when the run had already closed (compliance refused it, or an
    /// earlier run of the plan finished it): nothing to approve then.
    func approve(_ handle: WorkflowHandle) async throws -> Bool {
        let requestID = "approve-\(handle.workflowID)"
        do {
            try await client.signal(workflowID: handle.workflowID, runID: handle.runID, name: "approve", input: true, requestID: requestID)
            if let onAcknowledged = options.onAcknowledged {
                var record = AckRecord(kind: .signal, workflowID: handle.workflowID, runID: handle.runID)
                record.requestID = requestID
                record.signalName = "approve"
                onAcknowledged(record)
            }
            return true
        } catch {
            guard error.code == .notFound || error.code == .failedPrecondition else { throw error }
            return false
        }
    }

    /// The outcome of a closed transfer: nil unless it completed with a readable result.
    static func outcome(_ closed: Ballast_V1_WaitWorkflowExecutionClosedResponse) -> TransferOutcome? {
        guard closed.status == .completed,
              case .workflowExecutionCompleted(let completed)? = closed.closeEvent.attributes,
              let payload = completed.result.payloads.first,
              let result = try? JSONDecoder().decode(TransferResult.self, from: payload.data) else { return nil }
        return result.outcome
    }

    struct TimedOut: Error, CustomStringConvertible {
        var description: String { "the --timeout passed before the transfer closed" }
    }
}

/// The counts, shared by the transfer tasks and the progress ticker.
final class SharedCountsBox: Sendable {
    let counts = Mutex(SharedCounts())
}

/// Counts of a run.
struct SharedCounts: Sendable {
    var progress = TransferRunner.Progress()
    var latencies: [Double] = []
    var errors: [String] = []
}
