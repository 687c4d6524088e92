import BallastProto
@testable import BallastSDK
import Testing

/// Fans out three activities and a timer, counts signals, and loops a second round.
struct FanOutWorkflow: Workflow {
    func run(context: WorkflowContext, input: Int) async throws -> [String] {
        var signals = 0
        context.setSignalHandler("tick", of: Int.self) { signals += $0 }
        var log: [String] = []
        for round in 0..<2 {
            let results = try await withThrowingTaskGroup(of: String.self) { group in
                for index in 0..<3 {
                    group.addTask {
                        try await context.executeActivity(named: "Step", input: "r\(round)a\(index)", returning: String.self, options: tenSeconds)
                    }
                }
                group.addTask {
                    try await context.sleep(for: .seconds(30))
                    return "r\(round)timer"
                }
                var order: [String] = []
                for try await result in group { order.append(result) }
                return order
            }
            log.append(contentsOf: results)
            log.append("signals=\(signals) random=\(context.random(in: 0..<100))")
            _ = try await context.condition(timeout: .seconds(5)) { signals >= 3 * (round + 1) }
        }
        return log
    }
}

@Suite("Determinism: a cached run and a full replay agree on every task")
struct DeterminismPropertyTests {
    /// A small seeded generator for the test's choices (printed seed reproduces a failure).
    struct Generator: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    @Test("random orders of activity results, timers and signals", arguments: 1...25)
    func randomInterleavings(seed: UInt64) async throws {
        var random = Generator(state: seed)
        let cached = WorkflowRuntime(workflows: [FanOutWorkflow.self])
        let replaying = WorkflowRuntime(workflows: [FanOutWorkflow.self], maxCachedRuns: 0)
        var history = HistoryBuilder(workflowType: "FanOutWorkflow", input: payloads(1), workflowId: "fan-\(seed)")
        var activities: [Int64] = []
        var timers: [(id: String, startedEventId: Int64)] = []
        for step in 0..<60 {
            let task = history.startWorkflowTask()
            let fromCache = commands(await cached.handleWorkflowTask(task, history: history.events))
            let fromReplay = commands(await replaying.handleWorkflowTask(task, history: history.events))
            #expect(fromCache == fromReplay, "seed \(seed), step \(step): \(summary(fromCache)) vs \(summary(fromReplay))")
            let eventIds = history.completeWorkflowTask(with: fromCache)
            if fromCache.contains(where: { $0.completionResult != nil }) {
                #expect(cached.statistics.fullReplays == 1 && cached.statistics.cacheHits == step, "seed \(seed): the cached runtime must not replay")
                #expect(replaying.statistics.fullReplays == step + 1)
                return
            }
            for (command, eventId) in zip(fromCache, eventIds) {
                switch command.attributes {
                case .scheduleActivityTask: activities.append(eventId)
                case .startTimer(let timer): timers.append((timer.timerID, eventId))
                case .cancelTimer(let timer): timers.removeAll { $0.id == timer.timerID }
                default: break
                }
            }
            // Deliver one to three inputs, chosen by the seed.
            for _ in 0..<Int.random(in: 1...3, using: &random) {
                let choice = Int.random(in: 0..<3, using: &random)
                if choice == 0, !activities.isEmpty {
                    let id = activities.remove(at: Int.random(in: 0..<activities.count, using: &random))
                    history.activityCompleted(id, result: payloads("done@\(id)"))
                } else if choice == 1, !timers.isEmpty {
                    let timer = timers.remove(at: Int.random(in: 0..<timers.count, using: &random))
                    history.advance(.seconds(30))
                    history.timerFired(timer.id, startedEventId: timer.startedEventId)
                } else {
                    history.signal("tick", input: payloads(1))
                }
            }
        }
        Issue.record("seed \(seed): the workflow did not finish in 60 tasks")
    }
}
