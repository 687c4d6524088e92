import BallastEngine
import BallastFuzzSupport
import BallastProto
import Foundation
import SwiftProtobuf
import Testing

/// Every entry a client, a worker, an administrator or the leader's timers can have committed is
/// applied with extreme numbers in its fields: the largest and smallest 64-bit integers, -1, and
/// infinite, NaN and huge doubles, at every field of the request and of every message inside it
/// (commands, retry policies, task tokens, failures...). A committed entry is applied by every
/// node, and again on every restart: an entry that makes the engine trap (an arithmetic overflow,
/// a conversion out of range) stops the whole cluster for good. So each variant must apply
/// without trapping — a trap ends this test process — and one the engine rejects must change
/// nothing. What an accepted variant left behind is then driven on (tasks started, activities
/// failed and retried, heartbeats, deadlines fired) to reach the arithmetic done later. (Found
/// this way: a start, child or continue-as-new with an execution, run or backoff duration near
/// `Int64.max`, an activity timeout, timer or retry cap as large, a namespace retention as large.)
@Suite struct ExtremeValueTests {
    @Test func clientRequestsWithExtremeNumbers() async throws {
        let scene = Scene()
        var checked = 0
        checked += try await scene.check(.startWorkflow(scene.fullStart(workflowId: "fresh")))
        checked += try await scene.check(.signalWithStart(scene.fullSignalWithStart()))
        checked += try await scene.check(signal(scene.activityRun, "s"))
        checked += try await scene.check(cancelRequest(scene.activityRun))
        checked += try await scene.check(terminate(scene.activityRun))
        // A namespace's retention is used when one of its runs closes.
        checked += try await scene.check(.registerNamespace(scene.registerNamespace())) { harness in
            harness.start("in-payments") { $0.namespace = "payments" }
            harness.apply(terminate(RunKey(namespace: "payments", workflowId: "in-payments", runId: "")))
        }
        #expect(checked > 1_000, "only \(checked) variants decoded")
    }

    @Test func workerRequestsWithExtremeNumbers() async throws {
        let scene = Scene()
        var checked = 0
        checked += try await scene.check(.workflowTaskStarted(scene.recordWorkflowTaskStarted()))
        checked += try await scene.check(.workflowTaskFailed(scene.failWorkflowTask()))
        checked += try await scene.check(.activityTaskStarted(scene.recordActivityStarted()))
        checked += try await scene.check(.activityTaskCompleted(scene.completeActivity()))
        checked += try await scene.check(.activityTaskFailed(scene.failActivity()))
        checked += try await scene.check(.activityTaskHeartbeat(scene.heartbeat()))
        checked += try await scene.check(.activityTaskCanceled(scene.cancelActivity()))
        #expect(checked > 1_000, "only \(checked) variants decoded")
    }

    @Test func commandsWithExtremeNumbers() async throws {
        let scene = Scene()
        var checked = 0
        for command in Scene.fullCommands() {
            checked += try await scene.check(.workflowTaskCompleted(scene.completeWorkflowTask(with: [command])))
        }
        #expect(checked > 2_000, "only \(checked) variants decoded")
    }

    @Test func deadlineEntriesWithExtremeNumbers() async throws {
        let scene = Scene()
        let deadlines = scene.harness.engine.dueTimers()
        #expect(deadlines.count >= 4, "the scene arms several kinds of deadline")
        var checked = 0
        for deadline in deadlines { checked += try await scene.check(deadline.payload) }
        #expect(checked > 500, "only \(checked) variants decoded")
    }
}

/// An engine holding runs in the states the requests act on, and requests with every optional
/// field set (so that each nested message exists to be varied).
struct Scene {
    var harness = Harness()
    /// A run whose workflow task is started (for completions and failures).
    var taskRun: RunKey
    var workflowTaskToken: [UInt8]
    /// A run whose workflow task is ready, not started.
    var readyRun: RunKey
    var readyWorkflowTaskToken: [UInt8]
    /// A run with one started activity (retry policy, every timeout) and one only scheduled, and a timer.
    var activityRun: RunKey
    var activityToken: [UInt8]
    var scheduledActivityToken: [UInt8]

    init() {
        taskRun = harness.start("task-run") { $0.workflowTaskTimeoutNanos = 5 * second }
        workflowTaskToken = harness.startWorkflowTask(taskRun)
        readyRun = harness.start("ready-run") { $0.workflowExecutionTimeoutNanos = 3_600 * second }
        readyWorkflowTaskToken = harness.readyWorkflowTask(readyRun)?.taskTokenBytes ?? []
        activityRun = harness.start("activity-run") { $0.workflowRunTimeoutNanos = 3_600 * second }
        harness.workflowTask(activityRun, [Scene.fullScheduleActivity("started"), Scene.fullScheduleActivity("waiting"),
                                           Commands.startTimer("timer", after: 60 * second)])
        activityToken = harness.startActivity(activityRun, "started")
        scheduledActivityToken = harness.readyActivity(activityRun, "waiting")?.taskTokenBytes ?? []
    }

    static func retryPolicy() -> Ballast_V1_RetryPolicy {
        var policy = Ballast_V1_RetryPolicy()
        policy.initialIntervalNanos = second
        policy.backoffCoefficient = 2
        policy.maximumIntervalNanos = 10 * second
        policy.maximumAttempts = 5
        policy.nonRetryableErrorTypes = ["Fatal"]
        return policy
    }

    static func header() -> Ballast_V1_Header {
        var header = Ballast_V1_Header()
        header.fields["trace"] = payloads("t").payloads[0]
        return header
    }

    static func memo() -> Ballast_V1_Memo {
        var memo = Ballast_V1_Memo()
        memo.fields["note"] = payloads("n").payloads[0]
        return memo
    }

    static func searchAttributes() -> Ballast_V1_SearchAttributes {
        var value = Ballast_V1_SearchAttributeValue()
        value.keywordValue = "k"
        var attributes = Ballast_V1_SearchAttributes()
        attributes.indexedFields["CustomKeywordField"] = value
        return attributes
    }

    static func failure() -> Ballast_V1_Failure {
        var failure = Ballast_V1_Failure()
        failure.message = "boom"
        failure.type = "Flaky"
        return failure
    }

    static func fullScheduleActivity(_ id: String) -> Ballast_V1_Command {
        Commands.scheduleActivity(id) {
            $0.taskQueue = "q"
            $0.header = header()
            $0.scheduleToCloseTimeoutNanos = 600 * second
            $0.scheduleToStartTimeoutNanos = 60 * second
            $0.startToCloseTimeoutNanos = 30 * second
            $0.heartbeatTimeoutNanos = 5 * second
            $0.retryPolicy = retryPolicy()
        }
    }

    func fullStart(workflowId: String) -> Ballast_V1_StartWorkflowRequest {
        var request = Ballast_V1_StartWorkflowRequest()
        request.namespace = "default"
        request.workflowID = workflowId
        request.workflowType.name = "Transfer"
        request.taskQueue = "q"
        request.input = payloads("in")
        request.workflowExecutionTimeoutNanos = 7_200 * second
        request.workflowRunTimeoutNanos = 3_600 * second
        request.workflowTaskTimeoutNanos = 10 * second
        request.identity = "client"
        request.requestID = "start-\(workflowId)"
        request.workflowIDReusePolicy = .allowDuplicate
        request.retryPolicy = Self.retryPolicy()
        request.memo = Self.memo()
        request.searchAttributes = Self.searchAttributes()
        request.header = Self.header()
        return request
    }

    func fullSignalWithStart() -> Ballast_V1_SignalWithStartWorkflowRequest {
        var request = Ballast_V1_SignalWithStartWorkflowRequest()
        request.start = fullStart(workflowId: "signal-with-start")
        request.signalName = "s"
        request.signalInput = payloads("s")
        return request
    }

    func registerNamespace() -> Ballast_V1_RegisterNamespaceRequest {
        var request = Ballast_V1_RegisterNamespaceRequest()
        request.name = "payments"
        request.description_p = "d"
        request.workflowExecutionRetentionNanos = 86_400 * second
        return request
    }

    func recordWorkflowTaskStarted() -> Ballast_V1_RecordWorkflowTaskStartedRequest {
        var request = Ballast_V1_RecordWorkflowTaskStartedRequest()
        request.taskToken = Data(readyWorkflowTaskToken)
        request.identity = "worker"
        request.requestID = "poll"
        return request
    }

    func failWorkflowTask() -> Ballast_V1_RespondWorkflowTaskFailedRequest {
        var request = Ballast_V1_RespondWorkflowTaskFailedRequest()
        request.taskToken = Data(workflowTaskToken)
        request.cause = .unhandledCommand
        request.failure = Self.failure()
        request.identity = "worker"
        return request
    }

    func completeWorkflowTask(with commands: [Ballast_V1_Command]) -> Ballast_V1_RespondWorkflowTaskCompletedRequest {
        var request = Ballast_V1_RespondWorkflowTaskCompletedRequest()
        request.taskToken = Data(workflowTaskToken)
        request.commands = commands
        request.identity = "worker"
        return request
    }

    func recordActivityStarted() -> Ballast_V1_RecordActivityTaskStartedRequest {
        var request = Ballast_V1_RecordActivityTaskStartedRequest()
        request.taskToken = Data(scheduledActivityToken)
        request.identity = "worker"
        request.requestID = "poll"
        return request
    }

    func completeActivity() -> Ballast_V1_RespondActivityTaskCompletedRequest {
        var request = Ballast_V1_RespondActivityTaskCompletedRequest()
        request.taskToken = Data(activityToken)
        request.result = payloads("ok")
        request.identity = "worker"
        return request
    }

    func failActivity() -> Ballast_V1_RespondActivityTaskFailedRequest {
        var request = Ballast_V1_RespondActivityTaskFailedRequest()
        request.taskToken = Data(activityToken)
        request.failure = Self.failure()
        request.identity = "worker"
        request.lastHeartbeatDetails = payloads("h")
        return request
    }

    func heartbeat() -> Ballast_V1_RecordActivityTaskHeartbeatRequest {
        var request = Ballast_V1_RecordActivityTaskHeartbeatRequest()
        request.taskToken = Data(activityToken)
        request.details = payloads("h")
        request.identity = "worker"
        return request
    }

    func cancelActivity() -> Ballast_V1_RespondActivityTaskCanceledRequest {
        var request = Ballast_V1_RespondActivityTaskCanceledRequest()
        request.taskToken = Data(activityToken)
        request.details = payloads("c")
        request.identity = "worker"
        return request
    }

    /// One of every command, with every optional field set.
    static func fullCommands() -> [Ballast_V1_Command] {
        var continueAsNew = Commands.continueAsNew()
        continueAsNew.continueAsNewWorkflowExecution.workflowType.name = "Transfer"
        continueAsNew.continueAsNewWorkflowExecution.taskQueue = "q"
        continueAsNew.continueAsNewWorkflowExecution.workflowRunTimeoutNanos = 3_600 * second
        continueAsNew.continueAsNewWorkflowExecution.workflowTaskTimeoutNanos = 10 * second
        continueAsNew.continueAsNewWorkflowExecution.backoffStartIntervalNanos = second
        continueAsNew.continueAsNewWorkflowExecution.header = header()
        continueAsNew.continueAsNewWorkflowExecution.memo = memo()
        continueAsNew.continueAsNewWorkflowExecution.searchAttributes = searchAttributes()
        continueAsNew.continueAsNewWorkflowExecution.lastCompletionResult = payloads("last")
        var child = Commands.startChild("child")
        child.startChildWorkflowExecution.namespace = "default"
        child.startChildWorkflowExecution.taskQueue = "q"
        child.startChildWorkflowExecution.input = payloads("in")
        child.startChildWorkflowExecution.workflowExecutionTimeoutNanos = 7_200 * second
        child.startChildWorkflowExecution.workflowRunTimeoutNanos = 3_600 * second
        child.startChildWorkflowExecution.workflowTaskTimeoutNanos = 10 * second
        child.startChildWorkflowExecution.workflowIDReusePolicy = .allowDuplicate
        child.startChildWorkflowExecution.retryPolicy = retryPolicy()
        child.startChildWorkflowExecution.header = header()
        child.startChildWorkflowExecution.memo = memo()
        child.startChildWorkflowExecution.searchAttributes = searchAttributes()
        child.startChildWorkflowExecution.control = Data("c".utf8)
        var signalExternal = Commands.signalExternal("activity-run", signal: "x")
        signalExternal.signalExternalWorkflowExecution.namespace = "default"
        signalExternal.signalExternalWorkflowExecution.header = header()
        signalExternal.signalExternalWorkflowExecution.control = Data("c".utf8)
        var marker = Commands.marker("m")
        marker.recordMarker.header = header()
        marker.recordMarker.failure = failure()
        var fail = Commands.fail("f")
        fail.failWorkflowExecution.failure = failure()
        var cancel = Commands.cancelWorkflow()
        cancel.cancelWorkflowExecution.details = payloads("d")
        // The largest timeouts and retry cap there are: every deadline of the activity, and a
        // variant's first retry with an initial interval as large, is at the end of time.
        var patient = fullScheduleActivity("patient")
        patient.scheduleActivityTask.scheduleToCloseTimeoutNanos = 0
        patient.scheduleActivityTask.scheduleToStartTimeoutNanos = .max
        patient.scheduleActivityTask.startToCloseTimeoutNanos = .max
        patient.scheduleActivityTask.heartbeatTimeoutNanos = .max
        patient.scheduleActivityTask.retryPolicy.maximumIntervalNanos = .max
        return [
            fullScheduleActivity("new"), patient, Commands.startTimer("t", after: 10 * second), Commands.cancelTimer("timer"),
            Commands.cancelActivity(5), Commands.complete(), fail, cancel, marker, continueAsNew, child, signalExternal,
            Commands.upsert("CustomKeywordField", keyword: "k"),
        ]
    }

    /// Applies every variant of `payload`'s request to a copy of the scene, then `followUp` and
    /// `driveOn` to an accepted one; returns how many variants decoded (the others are malformed
    /// for their message type and never reach a log).
    func check(_ payload: Payload, then followUp: (inout Harness) -> Void = { _ in }) async throws -> Int {
        var base = Ballast_V1_EngineEntry()
        base.payload = payload
        let baseBytes: [UInt8] = try base.serializedBytes()
        // The entry's one field is the payload's request: vary inside it, not the entry's own fields.
        guard let entryFields = WireFormat.parse(baseBytes), entryFields.count == 1,
              case let .bytes(requestBytes) = entryFields[0].value else {
            Issue.record("unexpected entry encoding for \(payload)")
            return 0
        }
        let digestBefore = harness.engine.stateDigest()
        var decoded = 0
        // Seconds of work in a debug build: give the pool's threads back to the other tests.
        var yielder = PoolYielder()
        for variant in WireFormat.variants(of: requestBytes, depth: 4) {
            await yielder.yieldIfDue()
            var fields = entryFields
            fields[0].value = .bytes(variant)
            guard let entry = try? Ballast_V1_EngineEntry(serializedBytes: WireFormat.encode(fields)), let varied = entry.payload
            else { continue }
            decoded += 1
            var copy = harness
            let result = copy.apply(varied)
            if result.response.rejection != nil {
                #expect(copy.engine.stateDigest() == digestBefore, "a rejected entry changed the state: \(varied)")
                continue
            }
            followUp(&copy)
            copy.driveOn()
        }
        return decoded
    }
}

extension Harness {
    /// Carries an engine on from where an entry left it, through what comes later for its runs:
    /// starts every ready task, heartbeats, fails (and so retries) or completes the started
    /// activities, completes workflow tasks, and fires every deadline due within ten years.
    mutating func driveOn() {
        for round in 0..<3 {
            for task in engine.readyTasks(taskQueue: "q") {
                guard let started = startTask(task) else { continue }
                switch (task.kind, round) {
                case (.activity, 0):
                    var heartbeat = Ballast_V1_RecordActivityTaskHeartbeatRequest()
                    heartbeat.taskToken = Data(started)
                    apply(.activityTaskHeartbeat(heartbeat))
                    _ = failActivity(started)
                case (.activity, _): _ = completeActivity(started)
                case (.workflow, _): completeWorkflowTask(started, [Commands.marker("driven")])
                }
            }
            fireDeadlines(within: 10 * 365 * 86_400 * second)
        }
    }

    /// Fires, in order, the deadlines due within `horizon` of now, each at its due time; at most
    /// 200 (a deadline listed again after it fired would otherwise loop for ever).
    private mutating func fireDeadlines(within horizon: Int64) {
        let end = now + horizon
        for _ in 0..<200 {
            guard let due = engine.dueTimers().first(where: { $0.dueTimeUnixNanos <= end }) else { return }
            apply(due.payload, advance: max(0, due.dueTimeUnixNanos - now))
        }
        Issue.record("deadlines kept coming due: \(engine.dueTimers().prefix(3).map(\.dueTimeUnixNanos))")
    }

    /// Records a ready task as started; its token, or nil if the engine refused.
    private mutating func startTask(_ task: ReadyTask) -> [UInt8]? {
        let result: ApplyResult
        switch task.kind {
        case .workflow:
            var request = Ballast_V1_RecordWorkflowTaskStartedRequest()
            request.taskToken = Data(task.taskTokenBytes)
            request.identity = "driver"
            request.requestID = "drive-\(index)"
            result = apply(.workflowTaskStarted(request))
        case .activity:
            var request = Ballast_V1_RecordActivityTaskStartedRequest()
            request.taskToken = Data(task.taskTokenBytes)
            request.identity = "driver"
            request.requestID = "drive-\(index)"
            result = apply(.activityTaskStarted(request))
        }
        return result.response.rejection == nil ? task.taskTokenBytes : nil
    }
}
