import BallastProto
@testable import BallastSDK
import Foundation
import Synchronization

// Workflows exercising one feature each, used by FeatureTests.

/// Sleeps three days and reports how much workflow time passed.
struct SleepyWorkflow: Workflow {
    func run(context: WorkflowContext, input: Empty) async throws -> Int64 {
        let start = context.nowUnixNanos
        try await context.sleep(for: .seconds(3 * 86_400))
        return (context.nowUnixNanos - start) / 1_000_000_000
    }
}

/// Waits up to an hour for an approve signal; answers a status query.
struct ApprovalWorkflow: Workflow {
    func run(context: WorkflowContext, input: Empty) async throws -> String {
        var approver: String?
        var status = "waiting"
        context.setSignalHandler("approve", of: String.self) { approver = $0 }
        context.setQueryHandler("status") { status }
        let approved = try await context.condition(timeout: .seconds(3_600)) { approver != nil }
        status = approved ? "approved by \(approver ?? "")" : "timed out"
        return status
    }
}

/// Sums three numbers received on a signal channel, after a first sleep (so early signals are buffered).
struct ChannelWorkflow: Workflow {
    func run(context: WorkflowContext, input: Empty) async throws -> Int {
        try await context.sleep(for: .seconds(1))
        let numbers = context.signalChannel("number", of: Int.self)
        var sum = 0
        for _ in 0..<3 { sum += try await numbers.receive() }
        return sum
    }
}

/// Debits, registers a refund, sleeps 30 days, credits: a cancel during the sleep refunds.
struct CancellableTransferWorkflow: Workflow {
    func run(context: WorkflowContext, input: TransferInput) async throws -> String {
        try await context.withSaga { saga in
            _ = try await context.executeActivity(Debit.self, input: input, options: tenSeconds)
            saga.addCompensation(Refund.self, input: input, options: tenSeconds)
            try await context.sleep(for: .seconds(30 * 86_400))
            _ = try await context.executeActivity(Credit.self, input: input, options: tenSeconds)
            return "done"
        }
    }
}

/// Records an activity run; `Fail` fails non-retryably.
struct Step: ActivityDefinition {
    func run(_ input: String, context: ActivityContext) async throws -> String {
        if input == "Fail" { throw ApplicationError("step \(input) rejected", type: "Rejected", nonRetryable: true) }
        return input
    }
}

/// Three steps with compensations, then a failing step: compensations run in reverse.
struct SagaWorkflow: Workflow {
    func run(context: WorkflowContext, input: Empty) async throws -> String {
        try await context.withSaga { saga in
            for name in ["A", "B", "C"] {
                _ = try await context.executeActivity(named: "Step", input: name, returning: String.self, options: tenSeconds)
                saga.addCompensation {
                    _ = try await context.executeActivity(named: "Undo", input: "undo \(name)", returning: String.self, options: tenSeconds)
                }
            }
            _ = try await context.executeActivity(named: "Step", input: "Fail", returning: String.self, options: tenSeconds)
            return "unreachable"
        }
    }
}

/// Continues as new until the input reaches 3.
struct CounterWorkflow: Workflow {
    func run(context: WorkflowContext, input: Int) async throws -> Int {
        if input < 3 { try context.continueAsNew(input: input + 1) }
        return input
    }
}

/// Doubles its input after a short sleep.
struct DoublerWorkflow: Workflow {
    func run(context: WorkflowContext, input: Int) async throws -> Int {
        try await context.sleep(for: .seconds(5))
        return input * 2
    }
}

/// Runs two children in parallel in a task group and sums their results.
struct ParentWorkflow: Workflow {
    func run(context: WorkflowContext, input: Int) async throws -> Int {
        try await withThrowingTaskGroup(of: Int.self) { group in
            for value in [input, input + 1] {
                group.addTask { try await context.executeChildWorkflow(DoublerWorkflow.self, input: value) }
            }
            return try await group.reduce(0, +)
        }
    }
}

/// Version 1: debit then credit.
struct FeeV1Workflow: Workflow {
    static let name = "Fee"
    func run(context: WorkflowContext, input: TransferInput) async throws -> String {
        _ = try await context.executeActivity(Debit.self, input: input, options: tenSeconds)
        _ = try await context.executeActivity(Credit.self, input: input, options: tenSeconds)
        return "v1"
    }
}

/// Version 2: charges a fee first, behind a patch.
struct FeeV2Workflow: Workflow {
    static let name = "Fee"
    func run(context: WorkflowContext, input: TransferInput) async throws -> String {
        var version = "v1"
        if context.patched("charge-fee") {
            _ = try await context.executeActivity(named: "Step", input: "fee", returning: String.self, options: tenSeconds)
            version = "v2"
        }
        _ = try await context.executeActivity(Debit.self, input: input, options: tenSeconds)
        _ = try await context.executeActivity(Credit.self, input: input, options: tenSeconds)
        return version
    }
}

/// Counts how often the side-effect closure really ran (across replays).
let sideEffectRuns = Atomic<Int>(0)

struct DeterministicValues: Codable, Sendable, Equatable {
    var sideEffect: Int
    var random: Int
    var uuid: UUID
    var now: Int64
}

/// Reads a side effect, a random number, a UUID and the time, sleeps, and returns them.
struct ValuesWorkflow: Workflow {
    func run(context: WorkflowContext, input: Empty) async throws -> [DeterministicValues] {
        var values: [DeterministicValues] = []
        for _ in 0..<2 {
            let effect = try context.sideEffect { sideEffectRuns.add(1, ordering: .relaxed).newValue }
            values.append(DeterministicValues(sideEffect: effect, random: context.random(in: 0..<1_000_000),
                                              uuid: context.uuid(), now: context.nowUnixNanos))
            try await context.sleep(for: .seconds(60))
        }
        return values
    }
}

/// Schedules an activity and waits; a cancel request cancels it.
struct WaitForActivityWorkflow: Workflow {
    func run(context: WorkflowContext, input: TransferInput) async throws -> String {
        try await context.executeActivity(Debit.self, input: input, options: tenSeconds)
    }
}

/// Never blocks: must be stopped by the step limit.
struct RunawayWorkflow: Workflow {
    func run(context: WorkflowContext, input: Empty) async throws -> Empty {
        while true { await Task.yield() }
    }
}

/// Sets a search attribute, then completes.
struct TaggingWorkflow: Workflow {
    func run(context: WorkflowContext, input: String) async throws -> String {
        var value = Ballast_V1_SearchAttributeValue()
        value.keywordValue = input
        try context.upsertSearchAttributes(["TransferOutcome": value])
        return context.searchAttributes["TransferOutcome"]?.keywordValue ?? "missing"
    }
}

/// The activities used by the feature workflows.
func featureActivities() -> ActivityRegistry {
    var registry = ActivityRegistry()
    registry.register(Debit())
    registry.register(Credit())
    registry.register(Refund())
    registry.register(name: "Step") { (input: String, _: ActivityContext) in
        if input == "Fail" { throw ApplicationError("step \(input) rejected", type: "Rejected", nonRetryable: true) }
        return input
    }
    registry.register(name: "Undo") { (input: String, _: ActivityContext) in input }
    return registry
}

/// Two branches wait for the same child's result.
struct SharedChildWorkflow: Workflow {
    func run(context: WorkflowContext, input: Int) async throws -> Int {
        let child = try await context.startChildWorkflow(DoublerWorkflow.self, input: input)
        async let first = child.result()
        async let second = child.result()
        return try await first + second
    }
}

/// Races an activity against a timer; the loser is canceled.
struct RaceWorkflow: Workflow {
    func run(context: WorkflowContext, input: Empty) async throws -> String {
        try await withThrowingTaskGroup(of: String.self) { group in
            group.addTask { try await context.executeActivity(named: "Step", input: "fast", returning: String.self, options: tenSeconds) }
            group.addTask {
                try await context.sleep(for: .seconds(60))
                return "timeout"
            }
            let winner = try await group.next() ?? "none"
            group.cancelAll()
            return winner
        }
    }
}
