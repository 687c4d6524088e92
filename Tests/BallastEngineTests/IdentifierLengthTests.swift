import BallastEngine
import BallastProto
import Foundation
import Testing

/// From engine format 6 every name and id a run keeps is at most `maxIdentifierBytes` (1,000),
/// and a memo's field names count toward its size: open runs, pending activities and timers,
/// closed-run summaries and the visibility index keep them in memory.
@Suite("Name and id lengths (engine format 6)")
struct IdentifierLengthTests {
    static let fits = String(repeating: "i", count: 1_000)
    static let tooLong = String(repeating: "i", count: 999) + "é"  // 1,001 bytes

    /// Applies a start changed by `configure`; the rejection, if any.
    static func start(_ h: inout Harness, _ id: String, _ configure: (inout Ballast_V1_StartWorkflowRequest) -> Void) -> EngineRejection? {
        var request = Ballast_V1_StartWorkflowRequest()
        request.workflowID = id
        request.workflowType.name = "Transfer"
        request.taskQueue = "q"
        request.requestID = "start-\(id)"
        configure(&request)
        return h.apply(.startWorkflow(request)).response.rejection
    }

    @Test("a start's workflow type, task queue and request id of 1,000 bytes are accepted; 1,001 bytes are refused and change nothing")
    func start() {
        var h = Harness()
        #expect(Self.start(&h, "fits") { $0.workflowType.name = Self.fits; $0.taskQueue = Self.fits; $0.requestID = Self.fits } == nil)
        let digest = h.engine.stateDigest()
        let fields: [(String, WritableKeyPath<Ballast_V1_StartWorkflowRequest, String>)] =
            [("workflow_type.name", \.workflowType.name), ("task_queue", \.taskQueue), ("request_id", \.requestID)]
        for (name, path) in fields {
            let refused = Self.start(&h, "long-\(name)") { $0[keyPath: path] = Self.tooLong }
            #expect(refused?.code == .invalidArgument, "\(name)")
            #expect("\(refused.map { "\($0)" } ?? "")".contains("\(name) is 1001 bytes; at most 1000 are accepted"))
        }
        #expect(h.engine.stateDigest() == digest)
    }

    @Test("a signal or a signal-with-start with a signal name or request id over the limit is refused before anything changes")
    func signals() {
        var h = Harness()
        let run = h.start("w")
        let digest = h.engine.stateDigest()
        #expect(h.apply(signal(run, Self.tooLong)).response.rejection?.code == .invalidArgument)
        #expect(h.apply(signal(run, "ok", requestId: Self.tooLong)).response.rejection?.code == .invalidArgument)
        var withStart = Ballast_V1_SignalWithStartWorkflowRequest()
        withStart.start.workflowID = "new"
        withStart.start.workflowType.name = "Transfer"
        withStart.start.taskQueue = "q"
        withStart.signalName = Self.tooLong
        #expect(h.apply(.signalWithStart(withStart)).response.rejection?.code == .invalidArgument, "no run is started for it")
        #expect(h.engine.stateDigest() == digest)
        #expect(h.apply(signal(run, Self.fits, requestId: Self.fits)).response.rejection == nil)
        withStart.signalName = Self.fits
        #expect(h.apply(.signalWithStart(withStart)).response.rejection == nil)
    }

    /// Every command field that is limited, with a command carrying `value` in it and the cause
    /// its workflow task fails with.
    static func commands(_ value: String) -> [(String, Ballast_V1_Command, Ballast_V1_WorkflowTaskFailedCause)] {
        let activity = Ballast_V1_WorkflowTaskFailedCause.badScheduleActivityAttributes
        var childQueue = Commands.startChild("child-q")
        childQueue.startChildWorkflowExecution.taskQueue = value
        var signalRun = Commands.signalExternal("other", signal: "s")
        signalRun.signalExternalWorkflowExecution.execution.runID = value
        var continueType = Commands.continueAsNew()
        continueType.continueAsNewWorkflowExecution.workflowType.name = value
        var continueQueue = Commands.continueAsNew()
        continueQueue.continueAsNewWorkflowExecution.taskQueue = value
        return [
            ("activity_id", Commands.scheduleActivity(value), activity),
            ("activity_type.name", Commands.scheduleActivity("a", type: value), activity),
            ("task_queue", Commands.scheduleActivity("a") { $0.taskQueue = value }, activity),
            ("timer_id", Commands.startTimer(value, after: second), .badStartTimerAttributes),
            ("marker_name", Commands.marker(value), .badRecordMarkerAttributes),
            ("workflow_id", Commands.startChild(value), .badStartChildExecutionAttributes),
            ("workflow_type.name", Commands.startChild("child-t", type: value), .badStartChildExecutionAttributes),
            ("task_queue", childQueue, .badStartChildExecutionAttributes),
            ("execution.workflow_id", Commands.signalExternal(value, signal: "s"), .badSignalWorkflowExecutionAttributes),
            ("execution.run_id", signalRun, .badSignalWorkflowExecutionAttributes),
            ("signal_name", Commands.signalExternal("other", signal: value), .badSignalWorkflowExecutionAttributes),
            ("workflow_type.name", continueType, .badContinueAsNewAttributes),
            ("task_queue", continueQueue, .badContinueAsNewAttributes),
        ]
    }

    @Test("a command with a name or id over the limit fails its workflow task with the command's cause, naming the field")
    func commandsOverTheLimit() throws {
        for (field, command, cause) in Self.commands(Self.tooLong) {
            var h = Harness()
            let run = h.start("w")
            h.workflowTask(run, [command])
            let failed = try #require(h.events(run).last { $0.typeName == "WorkflowTaskFailed" }, "\(field)")
            #expect(failed.workflowTaskFailed.cause == cause, "\(field)")
            #expect(failed.workflowTaskFailed.failure.message.contains("\(field) is 1001 bytes"), "\(failed.workflowTaskFailed.failure.message)")
            let written = Set(h.eventNames(run))
            #expect(written.isSubset(of: ["WorkflowExecutionStarted", "WorkflowTaskScheduled", "WorkflowTaskStarted", "WorkflowTaskFailed"]),
                    "\(field): nothing of the command was written: \(written.sorted())")
        }
    }

    @Test("the same commands with 1,000 bytes complete their workflow task")
    func commandsAtTheLimit() throws {
        for (field, command, _) in Self.commands(Self.fits) {
            var h = Harness()
            let run = h.start("w")
            h.workflowTask(run, [command])
            #expect(h.events(run).contains { $0.typeName == "WorkflowTaskCompleted" }, "\(field)")
            #expect(!h.events(run).contains { $0.typeName == "WorkflowTaskFailed" }, "\(field)")
        }
    }

    /// A memo whose field names alone pass the payload limit (2 MiB), its payloads empty.
    static var memoOfNames: Ballast_V1_Memo {
        var memo = Ballast_V1_Memo()
        for letter in ["a", "b", "c"] { memo.fields[String(repeating: letter, count: 700 * 1024)] = Ballast_V1_Payload() }
        return memo
    }

    @Test("a memo's field names count toward its size: a start is refused, a child start or continue-as-new fails its task with PAYLOAD_TOO_LARGE")
    func memoNames() throws {
        var h = Harness()
        let digest = h.engine.stateDigest()
        let refused = Self.start(&h, "memo") { $0.memo = Self.memoOfNames }
        #expect(refused?.code == .resourceExhausted && "\(refused.map { "\($0)" } ?? "")".contains("memo"), "\(refused.map { "\($0)" } ?? "accepted")")
        #expect(h.engine.stateDigest() == digest)
        var child = Commands.startChild("child")
        child.startChildWorkflowExecution.memo = Self.memoOfNames
        var continued = Commands.continueAsNew()
        continued.continueAsNewWorkflowExecution.memo = Self.memoOfNames
        for (name, command) in [("child", child), ("continue-as-new", continued)] {
            let run = h.start("w-\(name)")
            h.workflowTask(run, [command])
            let failed = try #require(h.events(run).last { $0.typeName == "WorkflowTaskFailed" }, "\(name)")
            #expect(failed.workflowTaskFailed.cause == .payloadTooLarge, "\(name)")
        }
        var old = Harness()
        old.formatVersion = keptActivityBytesFormatVersion
        #expect(Self.start(&old, "memo") { $0.memo = Self.memoOfNames } == nil, "format 5 counted the payloads only")
    }

    @Test("entries of format 5 accept any length, as every earlier build applied them")
    func olderFormatsAcceptAnyLength() throws {
        var h = Harness()
        h.formatVersion = keptActivityBytesFormatVersion
        #expect(Self.start(&h, "old") { $0.workflowType.name = Self.tooLong; $0.taskQueue = Self.tooLong } == nil)
        let run = h.start("w")
        h.workflowTask(run, [Commands.scheduleActivity(Self.tooLong)])
        #expect(h.events(run).last?.typeName == "ActivityTaskScheduled")
    }
}
