import BallastProto
import SwiftProtobuf

/// A single-threaded workload of the most common path, for `ballast bench engine`.
///
/// A driver plays the leader's callers: it builds each request afresh (new buffers, strings and
/// dictionaries, as decoding one from the wire gives), applies it and reads the answer to build
/// the next request. Two figures come out of one run. The caller's time for the whole `run`
/// covers the driver and the engine. With a clock, the driver also times each `apply` call on
/// its own, up to and including dropping what the node would hand on (the result's events,
/// timers, closed runs): the engine's own cost per entry. The core has no clock: the caller
/// passes one.
public enum EngineBenchmark {
    /// What one benchmark run applied.
    public struct Report: Sendable, Equatable {
        /// Entries applied.
        public var entries = 0
        /// History events produced.
        public var events = 0
        /// Entries the engine rejected (must be 0).
        public var rejected = 0
        /// Workflows that reached Completed.
        public var workflowsCompleted = 0
        /// Most runs open at the same time.
        public var peakOpenRuns = 0
        /// Nanoseconds, by the caller's clock, spent inside `apply` and dropping its result (0 without a clock).
        public var applyNanos: UInt64 = 0
    }

    /// Applies `workflows` workflows of 7 entries each — start, workflow task started, completed with
    /// ScheduleActivityTask, activity started, completed, workflow task started, completed with
    /// CompleteWorkflowExecution — `concurrency` workflows at a time, interleaved step by step.
    ///
    /// With `applyClock` (a monotonic clock in nanoseconds), each `apply` is timed into `Report.applyNanos`.
    /// Entries are written in `formatVersion`: the newest by default, as a cluster of this build writes.
    public static func run(workflows: Int, concurrency: Int = 1_000, applyClock: (() -> UInt64)? = nil,
                           formatVersion: UInt32 = newestEngineFormatVersion) -> Report {
        var engine = WorkflowEngine()
        var driver = Driver()
        driver.clock = applyClock
        driver.formatVersion = formatVersion
        var report = Report()
        var started = 0
        while started < workflows {
            let wave = min(concurrency, workflows - started)
            var tasks: [ReadyTask] = []
            for offset in 0..<wave {
                tasks += driver.apply(&engine, .startWorkflow(startRequest(started + offset)), &report).newTasks
            }
            report.peakOpenRuns = max(report.peakOpenRuns, engine.openRunCount)
            tasks = driver.completeWorkflowTasks(&engine, driver.startTasks(&engine, tasks, &report), command: scheduleActivity, &report)
            tasks = driver.completeActivities(&engine, driver.startTasks(&engine, tasks, &report), &report)
            _ = driver.completeWorkflowTasks(&engine, driver.startTasks(&engine, tasks, &report), command: completeWorkflow, &report)
            started += wave
        }
        report.workflowsCompleted = engine.closedRunCount
        return report
    }

    /// An engine holding `count` open runs, each waiting on one started activity (for memory per open run).
    public static func openRuns(_ count: Int) -> WorkflowEngine {
        var engine = WorkflowEngine()
        var driver = Driver()
        var report = Report()
        var tasks: [ReadyTask] = []
        for index in 0..<count { tasks += driver.apply(&engine, .startWorkflow(startRequest(index)), &report).newTasks }
        tasks = driver.completeWorkflowTasks(&engine, driver.startTasks(&engine, tasks, &report), command: scheduleActivity, &report)
        _ = driver.startTasks(&engine, tasks, &report)
        return engine
    }

    static func startRequest(_ index: Int) -> Ballast_V1_StartWorkflowRequest {
        var request = Ballast_V1_StartWorkflowRequest()
        let number = String(index) // concatenated rather than interpolated: the same strings, cheaper
        request.workflowID = "transfer-" + number
        request.workflowType.name = "MoneyTransfer"
        request.taskQueue = "transfers"
        request.requestID = "request-" + number
        request.input.payloads = [payload(json: startInput)]
        return request
    }

    static let scheduleActivity: Ballast_V1_Command = {
        var command = Ballast_V1_Command()
        command.scheduleActivityTask.activityID = "debit"
        command.scheduleActivityTask.activityType.name = "Debit"
        command.scheduleActivityTask.startToCloseTimeoutNanos = 10_000_000_000
        command.scheduleActivityTask.input.payloads = [payload("{\"account\":\"alice\",\"amount\":100}")]
        return command
    }()

    static let completeWorkflow: Ballast_V1_Command = {
        var command = Ballast_V1_Command()
        command.completeWorkflowExecution.result.payloads = [payload("{\"status\":\"done\"}")]
        return command
    }()

    /// A JSON payload, built afresh (its own buffers, as one decoded from a request would have).
    static func payload(_ json: String) -> Ballast_V1_Payload {
        payload(json: Array(json.utf8))
    }

    private static let jsonEncoding = Array("json/plain".utf8)
    private static let activityResult = Array("{\"ok\":true}".utf8)
    private static let startInput = Array("{\"amount\":100,\"from\":\"alice\",\"to\":\"bob\"}".utf8)

    /// A JSON payload from its bytes, built afresh: new `Data` buffers and metadata dictionary.
    static func payload(json: [UInt8]) -> Ballast_V1_Payload {
        var payload = Ballast_V1_Payload()
        payload.metadata = ["encoding": ProtoBytes(jsonEncoding)]
        payload.data = ProtoBytes(json)
        return payload
    }

    /// Stamps entries the way a leader would: increasing index, time advancing 1 µs per entry.
    struct Driver {
        var index: UInt64 = 0
        var time: Int64 = 1_700_000_000_000_000_000
        var clock: (() -> UInt64)?
        var formatVersion = newestEngineFormatVersion

        /// What the driver reads of a result to go on.
        struct Outcome {
            var response: EngineResponse
            var newTasks: [ReadyTask]
        }

        mutating func apply(_ engine: inout WorkflowEngine, _ payload: consuming Ballast_V1_EngineEntry.OneOf_Payload,
                            _ report: inout Report) -> Outcome {
            index += 1
            time += 1_000
            var entry = Ballast_V1_EngineEntry()
            entry.formatVersion = formatVersion
            entry.leaderTimeUnixNanos = time
            entry.payload = consume payload // moved into the entry, not copied
            let start = clock?() ?? 0
            let result = (try? engine.apply(entry, index: index)) ?? ApplyResult()
            var events = 0
            for batch in result.events { events += batch.events.count }
            let outcome = Outcome(response: result.response, newTasks: result.newTasks)
            // The rest is what a node hands to the history store and its timer queue and then
            // drops: dropped here, inside the timing.
            _ = consume result
            if let clock { report.applyNanos += clock() - start }
            report.entries += 1
            report.events += events
            if outcome.response.rejection != nil { report.rejected += 1 }
            return outcome
        }

        /// Starts each task as a worker's poll would; returns the tokens the started responses
        /// carry, which the worker sends back with its completion (as a real worker does).
        mutating func startTasks(_ engine: inout WorkflowEngine, _ tasks: [ReadyTask], _ report: inout Report) -> [ProtoBytes] {
            var tokens: [ProtoBytes] = []
            tokens.reserveCapacity(tasks.count)
            for task in tasks {
                if task.kind == .workflow {
                    var request = Ballast_V1_RecordWorkflowTaskStartedRequest()
                    request.taskToken = task.taskTokenData
                    request.identity = "bench-worker"
                    if case let .workflowTaskStarted(info) = apply(&engine, .workflowTaskStarted(request), &report).response {
                        tokens.append(info.taskToken)
                    }
                } else {
                    var request = Ballast_V1_RecordActivityTaskStartedRequest()
                    request.taskToken = task.taskTokenData
                    request.identity = "bench-worker"
                    if case let .activityTaskStarted(info) = apply(&engine, .activityTaskStarted(request), &report).response {
                        tokens.append(info.taskToken)
                    }
                }
            }
            return tokens
        }

        mutating func completeWorkflowTasks(_ engine: inout WorkflowEngine, _ tokens: [ProtoBytes],
                                            command: Ballast_V1_Command, _ report: inout Report) -> [ReadyTask] {
            var next: [ReadyTask] = []
            for token in tokens {
                var request = Ballast_V1_RespondWorkflowTaskCompletedRequest()
                request.taskToken = token
                request.commands = [command]
                request.identity = "bench-worker"
                next += apply(&engine, .workflowTaskCompleted(request), &report).newTasks
            }
            return next
        }

        mutating func completeActivities(_ engine: inout WorkflowEngine, _ tokens: [ProtoBytes], _ report: inout Report) -> [ReadyTask] {
            var next: [ReadyTask] = []
            for token in tokens {
                var request = Ballast_V1_RespondActivityTaskCompletedRequest()
                request.taskToken = token
                request.result.payloads = [EngineBenchmark.payload(json: EngineBenchmark.activityResult)]
                next += apply(&engine, .activityTaskCompleted(request), &report).newTasks
            }
            return next
        }
    }
}
