import BallastProto
@testable import BallastSDK
import Testing

// Workflows and activities shared by the runtime tests.

struct TransferInput: Codable, Sendable, Equatable {
    var from: String
    var to: String
    var amount: Int
}

struct Debit: ActivityDefinition {
    func run(_ input: TransferInput, context: ActivityContext) async throws -> String { "debited \(input.amount)" }
}

struct Credit: ActivityDefinition {
    func run(_ input: TransferInput, context: ActivityContext) async throws -> String { "credited \(input.amount)" }
}

struct Refund: ActivityDefinition {
    func run(_ input: TransferInput, context: ActivityContext) async throws -> String { "refunded \(input.amount)" }
}

let tenSeconds = ActivityOptions(startToCloseTimeout: .seconds(10))

/// Debit, then credit.
struct TransferWorkflow: Workflow {
    static let name = "Transfer"
    func run(context: WorkflowContext, input: TransferInput) async throws -> String {
        let debit = try await context.executeActivity(Debit.self, input: input, options: tenSeconds)
        let credit = try await context.executeActivity(Credit.self, input: input, options: tenSeconds)
        return "\(debit), \(credit)"
    }
}

/// A changed Transfer that credits first: incompatible with histories of `TransferWorkflow`.
struct ReorderedTransferWorkflow: Workflow {
    static let name = "Transfer"
    func run(context: WorkflowContext, input: TransferInput) async throws -> String {
        let credit = try await context.executeActivity(Credit.self, input: input, options: tenSeconds)
        let debit = try await context.executeActivity(Debit.self, input: input, options: tenSeconds)
        return "\(debit), \(credit)"
    }
}

/// Debit and credit in parallel (`async let`).
struct ParallelWorkflow: Workflow {
    func run(context: WorkflowContext, input: TransferInput) async throws -> String {
        async let debit = context.executeActivity(Debit.self, input: input, options: tenSeconds)
        async let credit = context.executeActivity(Credit.self, input: input, options: tenSeconds)
        return try await "\(debit) & \(credit)"
    }
}

let converter = DataConverter.default

func payloads<T: Encodable>(_ value: T) -> Ballast_V1_Payloads {
    do { return try converter.toPayloads(value) } catch { fatalError("test value does not encode: \(error)") }
}

func decode<T: Decodable>(_ payloads: Ballast_V1_Payloads, as type: T.Type = T.self) throws -> T {
    try converter.fromPayloads(payloads, as: type)
}

/// The commands of a completed task, or a test failure.
func commands(_ result: WorkflowTaskResult, sourceLocation: SourceLocation = #_sourceLocation) -> [Ballast_V1_Command] {
    switch result {
    case .completed(let commands): return commands
    case .failed(let cause, let failure):
        Issue.record("task failed (\(cause)): \(failure.message)", sourceLocation: sourceLocation)
        return []
    case .needsWholeHistory:
        Issue.record("the task asked for the whole history", sourceLocation: sourceLocation)
        return []
    }
}

/// A short, comparable description of commands.
func summary(_ commands: [Ballast_V1_Command]) -> [String] {
    commands.map { command in
        switch command.attributes {
        case .scheduleActivityTask(let a): return "schedule \(a.activityType.name) #\(a.activityID)"
        case .startTimer(let a): return "timer #\(a.timerID) \(a.startToFireTimeoutNanos / 1_000_000_000)s"
        case .cancelTimer(let a): return "cancel timer #\(a.timerID)"
        case .requestCancelActivityTask(let a): return "cancel activity @\(a.scheduledEventID)"
        case .completeWorkflowExecution: return "complete"
        case .failWorkflowExecution(let a): return "fail: \(a.failure.message)"
        case .cancelWorkflowExecution: return "cancel workflow"
        case .continueAsNewWorkflowExecution: return "continue as new"
        case .recordMarker(let a): return "marker \(a.markerName)"
        case .startChildWorkflowExecution(let a): return "start child \(a.workflowType.name) \(a.workflowID)"
        case .signalExternalWorkflowExecution(let a): return "signal \(a.execution.workflowID) \(a.signalName)"
        case .upsertWorkflowSearchAttributes: return "upsert"
        case .none: return "?"
        }
    }
}

extension Ballast_V1_Command {
    /// The result of a complete command.
    var completionResult: Ballast_V1_Payloads? {
        if case .completeWorkflowExecution(let a) = attributes { return a.result }
        return nil
    }
}
