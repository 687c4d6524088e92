import BallastProto
import BallastSDK
import Foundation
import Synchronization

/// The simplest useful workflow: one activity, then done. The benchmark's baseline against
/// `Transfer` (five activities) — what one scheduled activity costs end to end.
public struct OneActivityWorkflow: Workflow {
    /// The workflow type on the wire.
    public static let name = "OneActivity"

    /// Creates the workflow.
    public init() {}

    /// Runs the `Echo` activity once.
    public func run(context: WorkflowContext, input: String) async throws -> String {
        try await context.executeActivity(EchoActivity.self, input: input,
                                          options: ActivityOptions(startToCloseTimeout: .seconds(10)))
    }
}

/// Returns its input.
public struct EchoActivity: ActivityDefinition {
    /// The wire name.
    public static let name = "Echo"
    /// Creates the activity.
    public init() {}
    /// Runs one attempt.
    public func run(_ input: String, context: ActivityContext) async throws -> String { input }
}

/// A closed loop of workflow runs: `concurrency` callers each start a workflow, wait for it to
/// close, and start the next, until `count` closed. Latency is start call to close seen by the
/// caller; the first `warmup` runs are left out of the figures.
public struct WorkflowLoad: Sendable {
    /// The figures of a run.
    public struct Figures: Sendable {
        /// Runs measured (after the warm-up).
        public var measured: Int
        /// Runs that did not complete (any other close, or an error).
        public var failures: Int
        /// Measured runs per second.
        public var perSecond: Double
        /// Latency quantiles, milliseconds.
        public var p50Milliseconds: Double, p99Milliseconds: Double
        /// The first errors seen.
        public var errorSamples: [String]
    }

    /// Starts run `index` and returns its handle.
    public typealias Starter = @Sendable (Int) async throws -> WorkflowHandle

    let count: Int
    let warmup: Int
    let concurrency: Int

    /// A load of `count` runs (the first `warmup` not measured) with `concurrency` in flight.
    public init(count: Int, warmup: Int, concurrency: Int) {
        precondition(count > warmup && warmup >= 0 && concurrency >= 1, "count > warmup >= 0, concurrency >= 1")
        self.count = count
        self.warmup = warmup
        self.concurrency = concurrency
    }

    /// Runs the load.
    public func run(_ start: @escaping Starter) async -> Figures {
        let state = LoadState()
        await withTaskGroup(of: Void.self) { group in
            for _ in 0 ..< concurrency {
                group.addTask {
                    while let index = state.claim(below: count) {
                        await Self.one(index, start: start, measured: index >= warmup, state: state)
                    }
                }
            }
        }
        return state.figures(measured: count - warmup)
    }

    static func one(_ index: Int, start: Starter, measured: Bool, state: LoadState) async {
        let began = ContinuousClock.now
        do {
            let closed = try await start(index).waitClosed(timeout: .seconds(120))
            guard closed.status == .completed else { throw UnexpectedClose(status: "\(closed.status)") }
            state.record(began: began, ended: ContinuousClock.now, measured: measured)
        } catch {
            state.fail("\(error)", measured: measured)
        }
    }

    struct UnexpectedClose: Error, CustomStringConvertible {
        let status: String
        var description: String { "the run closed as \(status)" }
    }
}

/// Shared state of a load.
final class LoadState: Sendable {
    struct Counts {
        var next = 0
        var latencies: [Double] = []
        var failures = 0
        var errors: [String] = []
        var firstMeasured: ContinuousClock.Instant?
        var lastMeasured: ContinuousClock.Instant?
    }

    let counts = Mutex(Counts())

    func claim(below limit: Int) -> Int? {
        counts.withLock { counts in
            guard counts.next < limit else { return nil }
            defer { counts.next += 1 }
            return counts.next
        }
    }

    func record(began: ContinuousClock.Instant, ended: ContinuousClock.Instant, measured: Bool) {
        guard measured else { return }
        let latency = ended - began
        counts.withLock { counts in
            counts.latencies.append(Double(latency.components.seconds) * 1000 + Double(latency.components.attoseconds) / 1e15)
            counts.firstMeasured = min(counts.firstMeasured ?? began, began)
            counts.lastMeasured = max(counts.lastMeasured ?? ended, ended)
        }
    }

    func fail(_ error: String, measured: Bool) {
        counts.withLock { counts in
            if measured { counts.failures += 1 }
            if counts.errors.count < 10 { counts.errors.append(error) }
        }
    }

    func figures(measured: Int) -> WorkflowLoad.Figures {
        counts.withLock { counts in
            let sorted = counts.latencies.sorted()
            func quantile(_ q: Double) -> Double {
                guard !sorted.isEmpty else { return 0 }
                return sorted[min(sorted.count - 1, max(0, Int((q * Double(sorted.count)).rounded(.up)) - 1))]
            }
            var seconds = 0.0
            if let first = counts.firstMeasured, let last = counts.lastMeasured {
                let span = last - first
                seconds = Double(span.components.seconds) + Double(span.components.attoseconds) / 1e18
            }
            return WorkflowLoad.Figures(measured: sorted.count, failures: counts.failures,
                                        perSecond: seconds > 0 ? Double(sorted.count) / seconds : 0,
                                        p50Milliseconds: quantile(0.5), p99Milliseconds: quantile(0.99), errorSamples: counts.errors)
        }
    }
}
