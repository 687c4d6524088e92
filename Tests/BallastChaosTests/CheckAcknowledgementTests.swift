import BallastChaos
import Foundation
import Testing
import TransfersKit

@Suite("Chaos check: acknowledged calls are in history")
struct CheckAcknowledgementTests {
    /// Run `run-1` of `wf`: a workflow task (started 3), activity 5 completed on attempt 2,
    /// activity 6 failed for good on attempt 1, activity 7 timed out while backing off, one
    /// `approve` signal, completed.
    func summaries(signals: Int = 1) -> [String: [RunHistorySummary]] {
        var history = TestHistory()
        history.workflowTask()
        let completed = history.scheduleActivity("1")
        let failed = history.scheduleActivity("2")
        let timedOut = history.scheduleActivity("3")
        history.completeActivity(completed, attempt: 2)
        history.failActivity(failed, attempt: 1)
        history.timeOutActivity(timedOut, startedAttempt: nil)
        for _ in 0 ..< signals { history.signal("approve") }
        history.workflowTask()
        history.complete()
        let summary = HistoryInvariants.analyze(workflowID: "wf", runID: "run-1", events: history.events).summary
        return ["wf": [summary]]
    }

    func record(_ kind: AckRecord.Kind, run: String = "run-1", scheduled: Int64? = nil, started: Int64? = nil,
                attempt: Int32? = nil, request: String? = nil) -> AckRecord {
        var record = AckRecord(kind: kind, workflowID: "wf", runID: run, time: Date(timeIntervalSince1970: 0))
        record.scheduledEventID = scheduled
        record.startedEventID = started
        record.attempt = attempt
        record.requestID = request
        if kind == .signal { record.signalName = "approve" }
        return record
    }

    func check(_ records: [AckRecord], _ runs: [String: [RunHistorySummary]]? = nil) -> (checked: Int, violations: [ChaosViolation]) {
        AcknowledgementInvariant.check(records, runs: runs ?? summaries())
    }

    @Test("acknowledgements the history shows pass and are counted")
    func presentAcknowledgementsPass() {
        let records = [
            record(.start, request: "start-wf"),
            record(.signal, run: "run-1", request: "approve-wf"),
            record(.signal, run: "run-1", request: "approve-wf"),  // the same request retried: one signal
            record(.workflowTaskCompleted, started: 3, attempt: 1),
            record(.activityCompleted, scheduled: 5, attempt: 2),
            record(.activityFailed, scheduled: 5, attempt: 1),  // retried: attempt 2 closed it
            record(.activityFailed, scheduled: 6, attempt: 1),  // the final failure
            record(.activityFailed, scheduled: 7, attempt: 1),  // then timed out while backing off
            record(.workflowTaskFailed, started: 40, attempt: 2),  // transient: not checkable
        ]
        let (checked, found) = check(records)
        #expect(found.isEmpty, "\(found)")
        #expect(checked == 8)
    }

    @Test("a start of a run the cluster does not have")
    func lostStart() {
        let found = check([record(.start, run: "run-9", request: "start-wf")]).violations
        #expect(found.map(\.invariant) == [ChaosInvariant.acknowledgedPresent] && found[0].detail.contains("run-9"), "\(found)")
        #expect(check([record(.start, run: "run-1")], ["other": []]).violations.count == 1)
    }

    @Test("two acknowledged signals with distinct request ids need two signal events")
    func lostSignal() {
        let records = [record(.signal, request: "a"), record(.signal, request: "b")]
        let found = check(records).violations
        #expect(found.count == 1 && found[0].detail.contains("history has 1 WorkflowExecutionSignaled"), "\(found)")
        #expect(check(records, summaries(signals: 2)).violations.isEmpty)
        #expect(check([record(.signal, request: "a")], summaries(signals: 0)).violations.count == 1)
    }

    @Test("a signal to a run that continued as new may be in the next run")
    func signalFollowsContinueAsNew() {
        var first = TestHistory()
        first.workflowTask()
        first.continueAsNew("run-2")
        var second = TestHistory()
        second.signal("approve")
        let runs = ["wf": [HistoryInvariants.analyze(workflowID: "wf", runID: "run-1", events: first.events).summary,
                           HistoryInvariants.analyze(workflowID: "wf", runID: "run-2", events: second.events).summary]]
        #expect(check([record(.signal, run: "run-1", request: "a")], runs).violations.isEmpty)
        #expect(check([record(.signal, run: "run-2", request: "a"), record(.signal, run: "run-2", request: "b")], runs).violations.count == 1)
    }

    @Test("an activity completion the history closes otherwise, or from another attempt")
    func lostActivityCompletion() {
        #expect(check([record(.activityCompleted, scheduled: 6, attempt: 1)]).violations.first?.detail.contains("closes it failed") == true)
        #expect(check([record(.activityCompleted, scheduled: 5, attempt: 1)]).violations.count == 1)
        #expect(check([record(.activityCompleted, scheduled: 7, attempt: 1)]).violations.count == 1)
        #expect(check([record(.activityCompleted, scheduled: 99, attempt: 1)]).violations.first?.detail.contains("never scheduled") == true)
        #expect(check([record(.activityCanceled, scheduled: 5, attempt: 2)]).violations.count == 1)
    }

    @Test("an acknowledged failure of the attempt that closed the activity must be its failure")
    func lostActivityFailure() {
        // Attempt 2 completed activity 5: an acknowledged failure of attempt 2 contradicts it.
        #expect(check([record(.activityFailed, scheduled: 5, attempt: 2)]).violations.count == 1)
        // Attempt 3 failing an activity closed by attempt 2: the attempt went backwards.
        #expect(check([record(.activityFailed, scheduled: 5, attempt: 3)]).violations.count == 1)
    }

    @Test("a workflow task completion without its close event, unless transient")
    func lostWorkflowTaskCompletion() {
        #expect(check([record(.workflowTaskCompleted, started: 30, attempt: 1)]).violations.count == 1)
        #expect(check([record(.workflowTaskCompleted, started: 30, attempt: 2)]).violations.isEmpty)
        #expect(check([record(.workflowTaskFailed, started: 3, attempt: 1)]).violations.count == 1)
    }
}

@Suite("Ack logs: written a line at a time, read back tolerating a torn line")
struct CheckAckLogTests {
    func temporaryPath() -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("ack-\(UUID().uuidString).jsonl").path
    }

    @Test("records round-trip; a torn last line is skipped and the next writer starts a new line")
    func tornLastLine() throws {
        let path = temporaryPath()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let writer = try AckLogWriter(path: path)
        var start = AckRecord(kind: .start, workflowID: "transfer-1-0", runID: "r1")
        start.requestID = "start-transfer-1-0"
        start.started = true
        #expect(writer.append(start))
        writer.close()
        #expect(!writer.append(start))
        // A writer SIGKILLed mid-line.
        let handle = try #require(FileHandle(forWritingAtPath: path))
        handle.seekToEndOfFile()
        handle.write(Data("{\"kind\":\"activity-comp".utf8))
        try handle.close()

        let second = try AckLogWriter(path: path)
        var completed = AckRecord(kind: .activityCompleted, workflowID: "transfer-1-0", runID: "r1")
        completed.scheduledEventID = 5
        completed.attempt = 1
        #expect(second.append(completed))
        second.close()

        let contents = try AckLogReader.read([path])
        #expect(contents.records == [start, completed])
        #expect(contents.unreadableLines == ["\(path):2"])
        let text = try String(contentsOfFile: path, encoding: .utf8)
        #expect(text.contains("\"workflow_id\":\"transfer-1-0\"") && text.contains("\"scheduled_event_id\":5"))
    }

    @Test("a missing file is listed, a directory is an error naming it, an unwritable path cannot be opened")
    func missingFile() throws {
        #expect(try AckLogReader.read(["/nonexistent/ack.jsonl"]).missingFiles == ["/nonexistent/ack.jsonl"])
        #expect(throws: AckLogReader.ReadError.self) { try AckLogReader.read([FileManager.default.temporaryDirectory.path]) }
        #expect(throws: AckLogWriter.OpenError.self) { try AckLogWriter(path: "/nonexistent/ack.jsonl") }
    }
}
