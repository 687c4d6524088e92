import BallastProto
import Foundation

/// What workflow code uses to act on the world deterministically: activities, timers,
/// signals, queries, children, markers, time and randomness.
///
/// Every method must be called from the workflow's own code (its root task, `async let`
/// branches, task-group children or `nonCancellable` scopes), never from another thread.
public final class WorkflowContext: @unchecked Sendable {
    // Strong: the run's tasks may outlive a torn-down run's bookkeeping; the cycle with
    // `WorkflowRun.context` is broken by `tearDown`.
    private let run: WorkflowRun

    init(run: WorkflowRun) { self.run = run }

    /// The run's identity and start parameters.
    public var info: WorkflowInfo { run.info }
    /// The converter for inputs and results.
    public var dataConverter: DataConverter { run.converter }
    /// True while the code re-executes a task already recorded in history (for logging only:
    /// never branch on it).
    public var isReplaying: Bool { run.isReplaying }
    /// Whether a cancel of the workflow was requested.
    public var isCancelRequested: Bool { run.cancelRequested }

    // MARK: Time and randomness

    /// The workflow's current time: the start time of the current workflow task (leader time).
    public var nowUnixNanos: Int64 { run.currentTimeNanos }
    /// `nowUnixNanos` as a `Date`.
    public var now: Date { Date(timeIntervalSince1970: Double(run.currentTimeNanos) / 1e9) }

    /// A deterministic random 64-bit value (seeded from the run id).
    public func randomUInt64() -> UInt64 { run.random.next() }
    /// A deterministic random integer in `range`.
    public func random(in range: Range<Int>) -> Int { Int.random(in: range, using: &run.random) }
    /// A deterministic random integer in `range`.
    public func random(in range: ClosedRange<Int>) -> Int { Int.random(in: range, using: &run.random) }
    /// A deterministic random double in `range`.
    public func random(in range: Range<Double>) -> Double { Double.random(in: range, using: &run.random) }
    /// A deterministic random (version 4) UUID.
    public func uuid() -> UUID {
        var bytes = [UInt8](repeating: 0, count: 16)
        let high = run.random.next(), low = run.random.next()
        for index in 0..<8 {
            bytes[index] = UInt8(truncatingIfNeeded: high >> (8 * index))
            bytes[8 + index] = UInt8(truncatingIfNeeded: low >> (8 * index))
        }
        bytes[6] = (bytes[6] & 0x0F) | 0x40
        bytes[8] = (bytes[8] & 0x3F) | 0x80
        return UUID(uuid: (bytes[0], bytes[1], bytes[2], bytes[3], bytes[4], bytes[5], bytes[6], bytes[7],
                           bytes[8], bytes[9], bytes[10], bytes[11], bytes[12], bytes[13], bytes[14], bytes[15]))
    }

    // MARK: Activities

    /// Runs an activity and returns its result; throws `ActivityError` when it failed for good
    /// and `CanceledError` when the calling scope was canceled.
    public func executeActivity<A: ActivityDefinition>(_ activity: A.Type, input: A.Input,
                                                       options: ActivityOptions = ActivityOptions()) async throws -> A.Output {
        try await executeActivity(named: A.name, input: input, returning: A.Output.self, options: options)
    }

    /// Runs the activity registered as `name`.
    public func executeActivity<Input: Encodable & Sendable, Output: Decodable & Sendable>(
        named name: String, input: Input, returning: Output.Type = Output.self, options: ActivityOptions = ActivityOptions()
    ) async throws -> Output {
        let payloads = try run.converter.toPayloads(input)
        let result = try await run.executeActivity(type: name, input: payloads, options: options)
        if Output.self == Empty.self, result.payloads.isEmpty, let empty = Empty() as? Output { return empty }
        return try run.converter.fromPayloads(result, as: Output.self)
    }

    // MARK: Timers and waiting

    /// Sleeps durably: a timer in the cluster, so it survives restarts and can last days.
    public func sleep(for duration: Duration) async throws {
        try await run.sleep(for: duration)
    }

    /// Waits until `predicate` holds; re-checked after every step of the workflow (signals,
    /// activity results…). Returns false if `timeout` passed first.
    @discardableResult
    public func condition(timeout: Duration? = nil, _ predicate: @escaping () -> Bool) async throws -> Bool {
        try await run.condition(timeout: timeout, predicate)
    }

    // MARK: Signals and queries

    /// A channel of the signals named `name`, decoded as `T` (signals that arrived before the
    /// channel was asked for are buffered).
    public func signalChannel<T: Decodable & Sendable>(_ name: String, of type: T.Type = T.self) -> SignalChannel<T> {
        SignalChannel(name: name, context: self)
    }

    /// Calls `handler` for every signal named `name`, buffered ones first. A signal whose input
    /// does not decode as `T` is dropped with a warning.
    public func setSignalHandler<T: Decodable & Sendable>(_ name: String, of type: T.Type = T.self,
                                                          _ handler: @escaping (T) -> Void) {
        let run = self.run
        run.setSignalHandler(name) { payloads in
            do {
                handler(try run.converter.fromPayloads(payloads, as: T.self))
            } catch {
                run.logger.warning("dropping a signal whose input does not decode", metadata: ["signal": "\(name)", "error": "\(error)"])
            }
        }
    }

    /// Answers queries named `name` from the workflow's current state.
    public func setQueryHandler<Result: Encodable & Sendable>(_ name: String, _ handler: @escaping () throws -> Result) {
        let converter = run.converter
        run.queryHandlers[name] = { _ in try converter.toPayloads(try handler()) }
    }

    /// Answers queries named `name` that take arguments of type `Args`.
    public func setQueryHandler<Args: Decodable & Sendable, Result: Encodable & Sendable>(
        _ name: String, argumentType: Args.Type, _ handler: @escaping (Args) throws -> Result
    ) {
        let converter = run.converter
        run.queryHandlers[name] = { payloads in try converter.toPayloads(try handler(try converter.fromPayloads(payloads, as: Args.self))) }
    }

    /// Signals another workflow and waits until the cluster delivered it.
    public func signalWorkflow<T: Encodable & Sendable>(workflowId: String, runId: String = "", signal: String, input: T) async throws {
        try await run.signalExternal(workflowId: workflowId, runId: runId, signal: signal, input: try run.converter.toPayloads(input))
    }

    // MARK: Children

    /// Starts a child workflow and waits until it started.
    public func startChildWorkflow<W: Workflow>(_ type: W.Type, input: W.Input,
                                                options: ChildWorkflowOptions = ChildWorkflowOptions()) async throws -> ChildWorkflowHandle<W> {
        let call = try run.startChild(type: W.name, input: try run.converter.toPayloads(input), options: options)
        let execution = try await run.awaitChild(call, call.started)
        return ChildWorkflowHandle(run: run, call: call, execution: execution)
    }

    /// Runs a child workflow and returns its result.
    public func executeChildWorkflow<W: Workflow>(_ type: W.Type, input: W.Input,
                                                  options: ChildWorkflowOptions = ChildWorkflowOptions()) async throws -> W.Output {
        let call = try run.startChild(type: W.name, input: try run.converter.toPayloads(input), options: options)
        let payloads = try await run.awaitChild(call, call.result)
        return try run.converter.fromPayloads(payloads, as: W.Output.self)
    }

    // MARK: Markers, versions, search attributes

    /// Runs `body` once, records its value in history, and returns the recorded value on
    /// replay: for small non-deterministic things (an id from a local generator).
    public func sideEffect<T: Codable & Sendable>(_ body: () throws -> T) throws -> T {
        let converter = run.converter
        let payloads = try run.sideEffect { try converter.toPayloads(try body()) }
        return try converter.fromPayloads(payloads, as: T.self)
    }

    /// Whether this run takes the new code path of patch `id`: true for runs that reach this
    /// point with code that has the patch (a marker is recorded), false for runs whose history
    /// was written before the patch existed. The answer is fixed for the run after the first call.
    public func patched(_ id: String) -> Bool { run.patched(id) }

    /// Sets or removes (unset value) search attributes of this run.
    public func upsertSearchAttributes(_ attributes: [String: Ballast_V1_SearchAttributeValue]) throws {
        try run.upsertSearchAttributes(attributes)
    }

    /// The run's current search attributes.
    public var searchAttributes: [String: Ballast_V1_SearchAttributeValue] { run.searchAttributes }

    // MARK: Continue-as-new and cancellation scopes

    /// Ends this run and starts a new run of the same workflow with `input` (throws; let the
    /// error propagate out of `run`).
    public func continueAsNew<Input: Encodable & Sendable>(input: Input, options: ContinueAsNewOptions = ContinueAsNewOptions()) throws -> Never {
        throw ContinueAsNewRequest(workflowType: "", input: try run.converter.toPayloads(input), options: options)
    }

    /// Ends this run and starts a run of workflow type `W` with `input`.
    public func continueAsNew<W: Workflow>(as type: W.Type, input: W.Input, options: ContinueAsNewOptions = ContinueAsNewOptions()) throws -> Never {
        throw ContinueAsNewRequest(workflowType: W.name, input: try run.converter.toPayloads(input), options: options)
    }

    /// Runs `body` in a scope that the workflow's cancellation does not reach: for cleanup and
    /// compensation after a cancel request.
    public func nonCancellable<T: Sendable>(_ body: sending @escaping () async throws -> T) async throws -> T {
        try run.checkEvicted()
        let task = Task(executorPreference: run.executor, operation: body)
        run.detachedTaskCancels.append { task.cancel() }
        return try await task.value
    }
}

/// A started child workflow.
public struct ChildWorkflowHandle<W: Workflow>: Sendable {
    fileprivate let run: WorkflowRun
    fileprivate let call: ChildCall
    /// The child's workflow id and run id.
    public let execution: Ballast_V1_WorkflowExecution

    init(run: WorkflowRun, call: ChildCall, execution: Ballast_V1_WorkflowExecution) {
        self.run = run
        self.call = call
        self.execution = execution
    }

    /// Waits for the child's result.
    public func result() async throws -> W.Output {
        let payloads = try await run.awaitChild(call, call.result)
        return try run.converter.fromPayloads(payloads, as: W.Output.self)
    }
}

/// The signals of one name, in arrival order.
public struct SignalChannel<T: Decodable & Sendable>: Sendable {
    /// The signal name.
    public let name: String
    let context: WorkflowContext

    /// Waits for the next signal; throws if its input does not decode as `T`.
    public func receive() async throws -> T {
        let payloads = try await context.runForChannel.receiveSignal(name)
        return try context.dataConverter.fromPayloads(payloads, as: T.self)
    }

    /// The next buffered signal, if one is waiting.
    public func tryReceive() throws -> T? {
        guard let payloads = context.runForChannel.takeBufferedSignal(name) else { return nil }
        return try context.dataConverter.fromPayloads(payloads, as: T.self)
    }
}

extension WorkflowContext {
    var runForChannel: WorkflowRun { run }
}

extension WorkflowRun {
    /// Throws if the run is being torn down.
    func checkEvicted() throws {
        if isTearingDown { throw WorkflowEvictedError() }
    }
}
