import BallastEngine
import BallastProto
import BallastRaft
import BallastStorage
import Foundation
import Logging
import Testing
@testable import BallastServer

private let second: Int64 = 1_000_000_000

/// Builds committed entries for a workflow scenario against a reference engine (with the
/// engine's own in-memory history store), keeping every entry so it can be replayed.
struct HistoryScenario {
    var reference = WorkflowEngine()
    var referenceHistories = InMemoryHistoryStore()
    var entries: [Entry] = []
    var now: Int64 = 1_700_000_000 * second
    var runs: [RunKey] = []

    /// Appends one entry (applied to the reference) at the current time plus `advance`.
    @discardableResult
    mutating func add(_ payload: Ballast_V1_EngineEntry.OneOf_Payload, advance: Int64 = 1_000_000) throws -> ApplyResult {
        now += advance
        var entry = Ballast_V1_EngineEntry()
        entry.formatVersion = engineFormatVersion
        entry.leaderTimeUnixNanos = now
        entry.payload = payload
        let index = UInt64(entries.count + 1)
        entries.append(Entry(term: Term(1), index: LogIndex(index), data: try entry.serializedBytes()))
        let result = try reference.apply(entry, index: index)
        try referenceHistories.record(result)
        return result
    }

    @discardableResult
    mutating func start(_ workflowId: String, executionTimeoutNanos: Int64 = 0) throws -> RunKey {
        var request = Ballast_V1_StartWorkflowRequest()
        request.workflowID = workflowId
        request.workflowType.name = "Transfer"
        request.taskQueue = "q"
        request.requestID = "start-\(workflowId)"
        request.workflowExecutionTimeoutNanos = executionTimeoutNanos
        guard case .started(let response) = try add(.startWorkflow(request)).response else {
            throw NodeSnapshotError.corrupt("start of \(workflowId) refused")
        }
        let key = RunKey(namespace: "default", workflowId: workflowId, runId: response.runID)
        runs.append(key)
        return key
    }

    mutating func workflowTask(_ run: RunKey, _ commands: [Ballast_V1_Command]) throws {
        guard let task = reference.readyTasks(taskQueue: "q").first(where: { $0.kind == .workflow && $0.run == run }) else {
            throw NodeSnapshotError.corrupt("no workflow task for \(run)")
        }
        var started = Ballast_V1_RecordWorkflowTaskStartedRequest()
        started.taskToken = Data(task.taskTokenBytes)
        started.identity = "worker"
        started.requestID = "poll-\(entries.count)"
        try add(.workflowTaskStarted(started))
        var completed = Ballast_V1_RespondWorkflowTaskCompletedRequest()
        completed.taskToken = Data(task.taskTokenBytes)
        completed.commands = commands
        completed.identity = "worker"
        try add(.workflowTaskCompleted(completed))
    }

    mutating func activity(_ run: RunKey, _ activityId: String) throws {
        guard let task = reference.readyTasks(taskQueue: "q").first(where: { $0.run == run && $0.activityId == activityId }) else {
            throw NodeSnapshotError.corrupt("no activity \(activityId) for \(run)")
        }
        var started = Ballast_V1_RecordActivityTaskStartedRequest()
        started.taskToken = Data(task.taskTokenBytes)
        started.identity = "worker"
        started.requestID = "poll-\(entries.count)"
        try add(.activityTaskStarted(started))
        var completed = Ballast_V1_RespondActivityTaskCompletedRequest()
        completed.taskToken = Data(task.taskTokenBytes)
        completed.result.payloads = [Ballast_V1_Payload.with { $0.data = Data("ok-\(activityId)".utf8) }]
        try add(.activityTaskCompleted(completed))
    }

    static func scheduleActivity(_ id: String) -> Ballast_V1_Command {
        var command = Ballast_V1_Command()
        command.scheduleActivityTask.activityID = id
        command.scheduleActivityTask.activityType.name = "Debit"
        command.scheduleActivityTask.startToCloseTimeoutNanos = 10 * second
        return command
    }

    static func complete() -> Ballast_V1_Command {
        var command = Ballast_V1_Command()
        command.completeWorkflowExecution.result.payloads = [Ballast_V1_Payload.with { $0.data = Data("done".utf8) }]
        return command
    }

    /// Entries `first...` of a workflow that completes after one activity, one left running,
    /// one terminated and deleted once its retention ended.
    static func make() throws -> HistoryScenario {
        var scenario = HistoryScenario()
        let finished = try scenario.start("transfer-1")
        let running = try scenario.start("transfer-2")
        let deleted = try scenario.start("transfer-3")
        try scenario.workflowTask(finished, [scheduleActivity("debit")])
        try scenario.workflowTask(running, [scheduleActivity("debit")])
        try scenario.activity(finished, "debit")
        try scenario.workflowTask(finished, [complete()])
        var terminate = Ballast_V1_TerminateWorkflowRequest()
        terminate.workflowExecution = deleted.execution
        terminate.reason = "test"
        try scenario.add(.terminate(terminate))
        var expired = Ballast_V1_RetentionExpiredRequest()
        expired.workflowExecution = deleted.execution
        let result = try scenario.add(.retentionExpired(expired), advance: WorkflowEngine.defaultRetentionNanos + second)
        guard result.deletedRuns == [deleted] else { throw NodeSnapshotError.corrupt("retention did not delete \(deleted)") }
        try scenario.activity(running, "debit")
        return scenario
    }
}

/// A state machine over a file history store in `directory`; fatal errors fail the test.
func makeMachine(_ directory: String) throws -> (EngineStateMachine, HistoryFileStore) {
    let store = try HistoryFileStore(directory: directory, options: .init(segmentSizeBytes: 8_192))
    let machine = EngineStateMachine(logger: Logger(label: "test.history"), history: store) { why in
        Issue.record("fatal: \(why)")
    }
    return (machine, store)
}

/// Every run the store holds with its events.
func allHistories(_ store: any HistoryBytesStore) throws -> [String: [[UInt8]]] {
    var histories: [String: [[UInt8]]] = [:]
    for runId in store.runIds() {
        histories[runId] = try store.read(runId: runId, fromEventId: 1, maxEvents: .max, maxBytes: .max)
    }
    return histories
}

func snapshot(of machine: EngineStateMachine, at index: Int) throws -> Snapshot {
    Snapshot(metadata: SnapshotMetadata(index: LogIndex(UInt64(index)), term: Term(1), membership: Membership(voters: [NodeID(1)])),
             data: try #require(machine.takeSnapshot(), "the snapshot is taken"))
}

func temporaryDirectory() throws -> String {
    let path = NSTemporaryDirectory() + "ballast-history-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

@Suite("Node history")
struct HistoryNodeTests {
    @Test func appliedEntriesLeaveTheEnginesEventsInTheStore() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let scenario = try HistoryScenario.make()
        let (machine, store) = try makeMachine(directory)
        for entry in scenario.entries { _ = machine.apply(entry) }
        let deleted = scenario.runs[2].runId
        #expect(store.runIds() == scenario.runs.map(\.runId).filter { $0 != deleted }.sorted())
        for run in scenario.runs where run.runId != deleted {
            let expected = scenario.referenceHistories.events(runId: run.runId)
            #expect(expected.count > 3)
            #expect(try machine.historyEvents(runId: run.runId, from: 1, max: .max) == expected)
            #expect(try machine.historyEvents(runId: run.runId, from: 2, max: 2) == Array(expected[1..<3]))
        }
        #expect(try machine.historyEvents(runId: deleted, from: 1, max: .max).isEmpty)
        // Another node applying the same entries stores the same bytes, and appending them
        // again (a replay after a crash) duplicates nothing.
        let before = try allHistories(store)
        let againDirectory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: againDirectory) }
        let (again, againStore) = try makeMachine(againDirectory)
        for entry in scenario.entries { _ = again.apply(entry) }
        for (runId, events) in before {
            #expect(try store.append(runId: runId, firstEventId: 1, events: events) == 0)
        }
        #expect(try allHistories(againStore) == before)
    }

    @Test("the events of an apply turn are staged in the store, readable at once, and written when the turn ends")
    func anApplyTurnsHistoryIsWrittenWhenItEnds() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let scenario = try HistoryScenario.make()
        let (machine, store) = try makeMachine(directory)
        defer { store.close() }
        func crashImage() throws -> [String: [[UInt8]]] {
            let image = try temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: image) }
            for name in try sizes(of: directory).keys {
                try FileManager.default.copyItem(atPath: directory + "/" + name, toPath: image + "/" + name)
            }
            let crashed = try HistoryFileStore(directory: image)
            defer { crashed.close() }
            return try allHistories(crashed)
        }
        let half = scenario.entries.count / 2
        for entry in scenario.entries[..<half] { _ = machine.apply(entry) }
        machine.finishApplying()
        let afterFirstTurn = try allHistories(store)
        #expect(!afterFirstTurn.isEmpty)
        #expect(try crashImage() == afterFirstTurn)
        for entry in scenario.entries[half...] { _ = machine.apply(entry) }
        let run = scenario.runs[1].runId
        #expect(try machine.historyEvents(runId: run, from: 1, max: .max) == scenario.referenceHistories.events(runId: run),
                "readable before the turn ends")
        #expect(try crashImage() == afterFirstTurn, "a crash mid-turn leaves the last turn's histories (the log replays the rest)")
        machine.finishApplying()
        let afterSecondTurn = try allHistories(store)
        #expect(try crashImage() == afterSecondTurn)
    }

    @Test("a restart without a snapshot empties the history store, so a snapshot taken partway through the replay is whole")
    func aRestartWithoutASnapshotReplaysIntoAnEmptyStore() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let scenario = try HistoryScenario.make()
        let (machine, store) = try makeMachine(directory)
        for entry in scenario.entries { _ = machine.apply(entry) }
        machine.finishApplying()
        let applied = try allHistories(store)
        store.close()
        // The process restarts with no snapshot in its log: it replays from the first entry,
        // and the first snapshot comes due partway (chaos seed 2828: "the history store holds
        // 36 of the 23 events", and the node stopped).
        let (restarted, restartedStore) = try makeMachine(directory)
        defer { restartedStore.close() }
        restarted.startWithoutSnapshot()
        #expect(restartedStore.runIds().isEmpty)
        let partway = scenario.entries.count - 3
        for entry in scenario.entries[..<partway] { _ = restarted.apply(entry) }
        restarted.finishApplying()
        let bytes = try #require(restarted.takeSnapshot(), "the snapshot partway through the replay is taken")
        let decoded = try NodeSnapshotCodec.decode(bytes)
        #expect(decoded.histories.allSatisfy { !$0.events.isEmpty })
        for entry in scenario.entries[partway...] { _ = restarted.apply(entry) }
        restarted.finishApplying()
        #expect(try allHistories(restartedStore) == applied, "the replay writes the same histories again")
    }

    @Test func aSnapshotRestoresIntoAFreshNodeWithIdenticalHistories() throws {
        let source = try temporaryDirectory(), target = try temporaryDirectory()
        defer { for path in [source, target] { try? FileManager.default.removeItem(atPath: path) } }
        let scenario = try HistoryScenario.make()
        let (machine, store) = try makeMachine(source)
        for entry in scenario.entries { _ = machine.apply(entry) }
        let taken = try snapshot(of: machine, at: scenario.entries.count)

        let (fresh, freshStore) = try makeMachine(target)
        // Stale content the snapshot does not hold, and a run stored differently: both must go.
        _ = try freshStore.append(runId: "stale-run", firstEventId: 1, events: [[1, 2, 3]])
        _ = try freshStore.append(runId: scenario.runs[0].runId, firstEventId: 1, events: [[9, 9]])
        fresh.restore(from: taken)
        #expect(try allHistories(freshStore) == allHistories(store))
        #expect(fresh.digest() == machine.digest())
        // Corrupt snapshot bytes are refused with a clear error, not applied.
        var damaged = taken
        damaged.data[damaged.data.count / 2] ^= 0xFF
        #expect(throws: NodeSnapshotError.self) { _ = try NodeSnapshotCodec.decode(damaged.data) }
    }

    @Test func aCapturedSnapshotIsOfItsMomentThoughLaterEntriesDeleteAndExtendHistories() throws {
        let source = try temporaryDirectory(), reference = try temporaryDirectory()
        defer { for path in [source, reference] { try? FileManager.default.removeItem(atPath: path) } }
        let scenario = try HistoryScenario.make()
        // Captured just before the entry that ends a run's retention and deletes its history.
        let capturedAt = try #require(scenario.entries.firstIndex { entry in
            guard case .retentionExpired? = try? Ballast_V1_EngineEntry(serializedBytes: entry.data).payload else { return false }
            return true
        })
        let (machine, store) = try makeMachine(source)
        for entry in scenario.entries[..<capturedAt] { _ = machine.apply(entry) }
        let deleted = scenario.runs[2].runId
        #expect(store.summary(runId: deleted) != nil)
        let serialize = machine.captureSnapshot()
        for entry in scenario.entries[capturedAt...] { _ = machine.apply(entry) }
        #expect(store.summary(runId: deleted) == nil, "the later entries deleted a history the snapshot holds")
        while try store.compactIfNeeded() {}

        let (expected, _) = try makeMachine(reference)
        for entry in scenario.entries[..<capturedAt] { _ = expected.apply(entry) }
        let bytes = try #require(serialize(), "the snapshot is serialized")
        #expect(bytes == expected.takeSnapshot(), "the same bytes as a snapshot taken at the moment of capture")
        let decoded = try NodeSnapshotCodec.decode(bytes)
        #expect(decoded.histories.contains { $0.runId == deleted && !$0.events.isEmpty })
    }

    @Test func restartIsSnapshotRestorePlusLogReplayAndEndsIdentical() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let scenario = try HistoryScenario.make()
        let snapshotAt = scenario.entries.count / 2
        let expected: [String: [[UInt8]]]
        let taken: Snapshot
        let segmentsAtSnapshot: [String: Int]
        do {
            let (machine, store) = try makeMachine(directory)
            for entry in scenario.entries[..<snapshotAt] { _ = machine.apply(entry) }
            taken = try snapshot(of: machine, at: snapshotAt)
            segmentsAtSnapshot = try sizes(of: directory)
            for entry in scenario.entries[snapshotAt...] { _ = machine.apply(entry) }
            expected = try allHistories(store)
            store.close()
        }
        // Restart with everything written still there, with the unsynced tail lost, and with the
        // whole store lost (an operator moved a damaged one away): the store is derived state.
        for (loseTail, loseStore) in [(false, false), (true, false), (false, true)] {
            let copyParent = try temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: copyParent) }
            let copy = copyParent + "/history"
            if !loseStore { try FileManager.default.copyItem(atPath: directory, toPath: copy) }
            if loseTail {
                for (name, size) in segmentsAtSnapshot {
                    let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: copy + "/" + name))
                    try handle.truncate(atOffset: UInt64(size))
                    try handle.close()
                }
            }
            let (restarted, store) = try makeMachine(copy)
            restarted.restore(from: taken)
            for entry in scenario.entries[snapshotAt...] { _ = restarted.apply(entry) }
            #expect(try allHistories(store) == expected, "tail lost: \(loseTail), store lost: \(loseStore)")
            store.close()
        }
    }

    @Test func theSnapshotCodecRoundTripsAndRefusesDamage() throws {
        let snapshot = NodeSnapshot(engine: Array("engine".utf8), histories: [
            SnapshotRunHistory(runId: "a", events: [[1], [2, 3]]), SnapshotRunHistory(runId: "b", events: []),
        ])
        for compress in [false, true] {
            let bytes = try NodeSnapshotCodec.encode(snapshot, compress: compress)
            #expect(try NodeSnapshotCodec.decode(bytes) == snapshot)
            for cut in stride(from: 0, to: bytes.count, by: 7) {
                #expect(throws: NodeSnapshotError.self) { _ = try NodeSnapshotCodec.decode(Array(bytes[..<cut])) }
            }
            for position in stride(from: 0, to: bytes.count, by: 5) {
                var damaged = bytes
                damaged[position] ^= 0x40
                #expect(throws: NodeSnapshotError.self) { _ = try NodeSnapshotCodec.decode(damaged) }
            }
        }
    }
}

/// The size of every segment file in `directory`.
func sizes(of directory: String) throws -> [String: Int] {
    var sizes: [String: Int] = [:]
    for name in try FileManager.default.contentsOfDirectory(atPath: directory) where name.hasSuffix(".seg") {
        let attributes = try FileManager.default.attributesOfItem(atPath: directory + "/" + name)
        sizes[name] = (attributes[.size] as? NSNumber)?.intValue ?? 0
    }
    return sizes
}
