import BallastProto
import SwiftProtobuf

/// A single-threaded workload of the most common path, for `ballast bench engine`.
/// The caller times `run` (the core has no clock) and divides `entries` by the elapsed time.
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
    }

    /// Applies `workflows` workflows of 7 entries each — start, workflow task started, completed with
    /// ScheduleActivityTask, activity started, completed, workflow task started, completed with
    /// CompleteWorkflowExecution — `concurrency` workflows at a time, interleaved step by step.
    public static func run(workflows: Int, concurrency: Int = 1_000) -> Report {
        var engine = WorkflowEngine()
        var driver = Driver()
        var report = Report()
        var started = 0
        while started < workflows {
            let wave = min(concurrency, workflows - started)
            var tasks: [ReadyTask] = []
            for offset in 0..<wave {
                tasks += driver.apply(&engine, .startWorkflow(startRequest(started + offset)), &report).newTasks
            }
            report.peakOpenRuns = max(report.peakOpenRuns, engine.openRunCount)
            tasks = driver.startTasks(&engine, tasks, &report)
            tasks = driver.completeWorkflowTasks(&engine, tasks, command: scheduleActivity, &report)
            tasks = driver.startTasks(&engine, tasks, &report)
            tasks = driver.completeActivities(&engine, tasks, &report)
            tasks = driver.startTasks(&engine, tasks, &report)
            _ = driver.completeWorkflowTasks(&engine, tasks, command: completeWorkflow, &report)
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
        tasks = driver.startTasks(&engine, tasks, &report)
        tasks = driver.completeWorkflowTasks(&engine, tasks, command: scheduleActivity, &report)
        _ = driver.startTasks(&engine, tasks, &report)
        return engine
    }

    static func startRequest(_ index: Int) -> Ballast_V1_StartWorkflowRequest {
        var request = Ballast_V1_StartWorkflowRequest()
        request.workflowID = "transfer-\(index)"
        request.workflowType.name = "MoneyTransfer"
        request.taskQueue = "transfers"
        request.requestID = "request-\(index)"
        request.input.payloads = [payload("{\"amount\":100,\"from\":\"alice\",\"to\":\"bob\"}")]
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

    static func payload(_ json: String) -> Ballast_V1_Payload {
        var payload = Ballast_V1_Payload()
        var encoding = Ballast_V1_Payload().data // an empty Data without naming Foundation
        encoding.append(contentsOf: Array("json/plain".utf8))
        payload.metadata["encoding"] = encoding
        payload.data.append(contentsOf: Array(json.utf8))
        return payload
    }

    /// Stamps entries the way a leader would: increasing index, time advancing 1 µs per entry.
    struct Driver {
        var index: UInt64 = 0
        var time: Int64 = 1_700_000_000_000_000_000

        mutating func apply(_ engine: inout WorkflowEngine, _ payload: Ballast_V1_EngineEntry.OneOf_Payload,
                            _ report: inout Report) -> ApplyResult {
            index += 1
            time += 1_000
            var entry = Ballast_V1_EngineEntry()
            entry.formatVersion = engineFormatVersion
            entry.leaderTimeUnixNanos = time
            entry.payload = payload
            let result = (try? engine.apply(entry, index: index)) ?? ApplyResult()
            report.entries += 1
            for batch in result.events { report.events += batch.events.count }
            if result.response.rejection != nil { report.rejected += 1 }
            return result
        }

        mutating func startTasks(_ engine: inout WorkflowEngine, _ tasks: [ReadyTask], _ report: inout Report) -> [ReadyTask] {
            for task in tasks {
                if task.kind == .workflow {
                    var request = Ballast_V1_RecordWorkflowTaskStartedRequest()
                    request.taskToken = task.taskTokenData
                    request.identity = "bench-worker"
                    _ = apply(&engine, .workflowTaskStarted(request), &report)
                } else {
                    var request = Ballast_V1_RecordActivityTaskStartedRequest()
                    request.taskToken = task.taskTokenData
                    request.identity = "bench-worker"
                    _ = apply(&engine, .activityTaskStarted(request), &report)
                }
            }
            return tasks
        }

        mutating func completeWorkflowTasks(_ engine: inout WorkflowEngine, _ tasks: [ReadyTask],
                                            command: Ballast_V1_Command, _ report: inout Report) -> [ReadyTask] {
            var next: [ReadyTask] = []
            for task in tasks {
                var request = Ballast_V1_RespondWorkflowTaskCompletedRequest()
                request.taskToken = task.taskTokenData
                request.commands = [command]
                request.identity = "bench-worker"
                next += apply(&engine, .workflowTaskCompleted(request), &report).newTasks
            }
            return next
        }

        mutating func completeActivities(_ engine: inout WorkflowEngine, _ tasks: [ReadyTask], _ report: inout Report) -> [ReadyTask] {
            var next: [ReadyTask] = []
            for task in tasks {
                var request = Ballast_V1_RespondActivityTaskCompletedRequest()
                request.taskToken = task.taskTokenData
                request.result.payloads = [EngineBenchmark.payload("{\"ok\":true}")]
                next += apply(&engine, .activityTaskCompleted(request), &report).newTasks
            }
            return next
        }
    }
}
