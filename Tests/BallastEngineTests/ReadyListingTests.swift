@testable import BallastEngine
import BallastProto
import Testing

/// What the leader's dispatcher reads to fill a queue: the first ready tasks of each kind of one
/// namespace's queue (listed from a copy of the engine), and whether each is still ready.
@Suite("Ready tasks: a queue's first tasks per kind, and whether one is still ready")
struct ReadyListingTests {
    @Test("the listing keeps one namespace, the earliest tasks of each kind up to the limit, and says whether more are ready")
    func limitedListing() {
        var h = Harness()
        var namespace = Ballast_V1_RegisterNamespaceRequest()
        namespace.name = "finance"
        #expect(h.apply(.registerNamespace(namespace)).response.rejection == nil)
        let runs = (1 ... 5).map { h.start("w\($0)") }
        _ = h.start("f1") { $0.namespace = "finance" }
        // Run 1's workflow task schedules two activities: its workflow task is no longer ready.
        h.workflowTask(runs[0], [Commands.scheduleActivity("a"), Commands.scheduleActivity("b")])
        let everything = h.engine.readyTasks(taskQueue: "q")
        #expect(everything.count == 7, "4 workflow tasks and 2 activities of default, 1 workflow task of finance")

        let listed = h.engine.readyTasks(namespace: "default", taskQueue: "q", limitPerKind: 3)
        let defaults = everything.filter { $0.run.namespace == "default" }
        let expected = Array(defaults.filter { $0.kind == .workflow }.prefix(3)) + defaults.filter { $0.kind == .activity }
        #expect(listed.tasks == expected.sorted { $0.sequence < $1.sequence })
        #expect(listed.moreWorkflowTasks && !listed.moreActivityTasks)
        let all = h.engine.readyTasks(namespace: "default", taskQueue: "q", limitPerKind: 4)
        #expect(all.tasks == defaults && !all.moreWorkflowTasks && !all.moreActivityTasks)
        #expect(h.engine.readyTasks(namespace: "finance", taskQueue: "q", limitPerKind: 10).tasks.map(\.run.workflowId) == ["f1"])
    }

    @Test("a listed task stops being ready once started, and a task naming another attempt, queue or run never is")
    func stillReady() throws {
        var h = Harness()
        let run = h.start("w1")
        let other = h.start("w2")
        let workflowTask = try #require(h.readyWorkflowTask(run))
        #expect(h.engine.isReady(workflowTask))
        var changed = workflowTask
        changed.attempt = 2
        #expect(!h.engine.isReady(changed))
        changed = workflowTask
        changed.taskQueue = "elsewhere"
        #expect(!h.engine.isReady(changed))
        changed = workflowTask
        changed.run.runId = "no-such-run"
        #expect(!h.engine.isReady(changed))
        h.workflowTask(run, [Commands.scheduleActivity("a")])
        #expect(!h.engine.isReady(workflowTask), "started and completed")
        let activity = try #require(h.readyActivity(run, "a"))
        #expect(h.engine.isReady(activity))
        _ = h.startActivity(run, "a")
        #expect(!h.engine.isReady(activity), "started")
        #expect(try h.engine.isReady(#require(h.readyWorkflowTask(other))))
    }

    @Test("over random entries, the listing is what a plain walk over every open run finds, earliest first, cut per kind",
          arguments: [UInt64(31), 32, 33])
    func listingMatchesAPlainWalk(seed: UInt64) {
        var h = Harness()
        var generator = EntryGenerator(seed: seed)
        var listedAny = false
        for step in 0..<400 {
            let (payload, advance) = generator.next(h.engine)
            _ = h.apply(payload, advance: advance)
            guard step % 10 == 9 else { continue }
            // The reference: copy every run out and look at all of it.
            var expected: [ReadyTask] = []
            for run in h.engine.runs.values {
                if let task = run.workflowTask, !task.isStarted, run.taskQueue == "q" {
                    expected.append(ReadyTask(kind: .workflow, taskQueue: "q", run: run.key, scheduledEventId: task.scheduledEventId,
                                              attempt: task.attempt, activityId: "", sequence: task.sequence))
                }
                for activity in run.activities.values where activity.phase == .scheduled && activity.attributes.taskQueue == "q" {
                    expected.append(h.engine.readyTask(run.key, activity))
                }
            }
            expected.sort { $0.sequence < $1.sequence }
            listedAny = listedAny || !expected.isEmpty
            let all = h.engine.readyTasks(namespace: nil, taskQueue: "q", limitPerKind: .max)
            #expect(all.tasks == expected && !all.moreWorkflowTasks && !all.moreActivityTasks, "seed \(seed) step \(step)")
            #expect(h.engine.readyTasks(namespace: "default", taskQueue: "q", limitPerKind: .max).tasks == expected)
            #expect(h.engine.readyTasks(namespace: "elsewhere", taskQueue: "q", limitPerKind: .max).tasks.isEmpty)
            let cut = h.engine.readyTasks(namespace: nil, taskQueue: "q", limitPerKind: 1)
            let firstOfEach = [ReadyTask.Kind.workflow, .activity].compactMap { kind in expected.first { $0.kind == kind } }
            #expect(cut.tasks == firstOfEach.sorted { $0.sequence < $1.sequence }, "seed \(seed) step \(step)")
            #expect(cut.moreWorkflowTasks == (expected.filter { $0.kind == .workflow }.count > 1))
            #expect(cut.moreActivityTasks == (expected.filter { $0.kind == .activity }.count > 1))
        }
        #expect(listedAny, "the entries made some task ready")
    }
}
