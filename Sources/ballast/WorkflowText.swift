import BallastEngine
import BallastProto
import BallastSDK
import Foundation
import SwiftProtobuf

/// A tiny JSON writer for the CLI's one-line answers (keys sorted, values escaped).
enum JSONLine {
    enum Value {
        case string(String)
        case int(Int64)
        case bool(Bool)
        case raw(String)
    }

    static func object(_ fields: [String: Value]) -> String {
        "{" + fields.keys.sorted().map { key in "\(quote(key)):\(render(fields[key]!))" }.joined(separator: ",") + "}"
    }

    static func render(_ value: Value) -> String {
        switch value {
        case .string(let text): quote(text)
        case .int(let number): String(number)
        case .bool(let flag): flag ? "true" : "false"
        case .raw(let json): json
        }
    }

    static func quote(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 { out += String(format: "\\u%04x", scalar.value) } else { out.unicodeScalars.append(scalar) }
            }
        }
        return out + "\""
    }
}

/// Human-readable renderings of workflow data.
enum WorkflowText {
    static func time(_ nanos: Int64) -> String {
        guard nanos > 0 else { return "-" }
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.string(from: Date(timeIntervalSince1970: Double(nanos) / 1e9))
    }

    static func duration(_ nanos: Int64) -> String {
        if nanos <= 0 { return "-" }
        if nanos < 1_000_000_000 { return "\(nanos / 1_000_000)ms" }
        return String(format: "%.1fs", Double(nanos) / 1e9)
    }

    /// One payload as text: JSON as is, anything else as base64 with its encoding.
    static func payload(_ payload: Ballast_V1_Payload) -> String {
        let encoding = payload.metadata["encoding"].map { String(decoding: $0, as: UTF8.self) } ?? ""
        if encoding == "json/plain" || encoding.isEmpty, let text = String(data: payload.data, encoding: .utf8) {
            return text.isEmpty ? "null" : text
        }
        return "<\(encoding): \(payload.data.base64EncodedString())>"
    }

    static func payloads(_ payloads: Ballast_V1_Payloads) -> String {
        switch payloads.payloads.count {
        case 0: "null"
        case 1: payload(payloads.payloads[0])
        default: "[" + payloads.payloads.map(payload).joined(separator: ", ") + "]"
        }
    }

    static func failure(_ failure: Ballast_V1_Failure) -> String {
        var parts = [failure.type, failure.message].filter { !$0.isEmpty }
        if failure.nonRetryable { parts.append("(non-retryable)") }
        if failure.hasCause { parts.append("caused by: " + self.failure(failure.cause)) }
        return parts.joined(separator: ": ")
    }

    static func describe(_ response: Ballast_V1_DescribeWorkflowExecutionResponse, json: Bool) throws -> String {
        if json { return try response.jsonString() }
        let info = response.info
        var lines = [
            "workflow id:  \(info.execution.workflowID)",
            "run id:       \(info.execution.runID)",
            "type:         \(info.type.name)",
            "task queue:   \(info.taskQueue)",
            "status:       \(WorkflowStatusName.text(info.status))\(response.cancelRequested ? " (cancel requested)" : "")",
            "started:      \(time(info.startTimeUnixNanos))",
            "closed:       \(time(info.closeTimeUnixNanos))",
            "history:      \(info.historyLength) events",
        ]
        for (key, value) in info.searchAttributes.indexedFields.sorted(by: { $0.key < $1.key }) {
            lines.append("search attr:  \(key) = \(searchAttribute(value))")
        }
        for (key, value) in info.memo.fields.sorted(by: { $0.key < $1.key }) {
            lines.append("memo:         \(key) = \(payload(value))")
        }
        if response.hasPendingWorkflowTask {
            let task = response.pendingWorkflowTask
            lines.append("workflow task: \(task.state), attempt \(task.attempt)")
        }
        for activity in response.pendingActivities {
            var line = "activity:     \(activity.activityID) \(activity.activityType.name) \(activity.state), attempt \(activity.attempt)"
            if activity.hasLastFailure { line += ", last failure: \(failure(activity.lastFailure))" }
            lines.append(line)
        }
        for timer in response.pendingTimers {
            lines.append("timer:        \(timer.timerID) fires \(time(timer.fireTimeUnixNanos))")
        }
        for child in response.pendingChildren {
            lines.append("child:        \(child.workflowID) \(child.workflowType.name) run \(child.runID)")
        }
        return lines.joined(separator: "\n")
    }

    static func searchAttribute(_ value: Ballast_V1_SearchAttributeValue) -> String {
        switch value.value {
        case .textValue(let text)?: text
        case .keywordValue(let keyword)?: keyword
        case .intValue(let number)?: String(number)
        case .doubleValue(let number)?: String(number)
        case .boolValue(let flag)?: String(flag)
        case .datetimeUnixNanos(let nanos)?: time(nanos)
        case .keywordListValue(let list)?: list.values.joined(separator: ",")
        case nil: "-"
        }
    }

    static func list(_ runs: [Ballast_V1_WorkflowExecutionInfo], json: Bool) throws -> String {
        if json { return "[" + (try runs.map { try $0.jsonString() }).joined(separator: ",") + "]" }
        guard !runs.isEmpty else { return "no workflows" }
        var lines = ["STATUS            WORKFLOW ID                           TYPE                  START"]
        for run in runs {
            lines.append([WorkflowStatusName.text(run.status).padding(toLength: 17, withPad: " ", startingAt: 0),
                          run.execution.workflowID.padding(toLength: 37, withPad: " ", startingAt: 0),
                          run.type.name.padding(toLength: 21, withPad: " ", startingAt: 0),
                          time(run.startTimeUnixNanos)].joined(separator: " "))
        }
        return lines.joined(separator: "\n")
    }

    static func result(_ closed: Ballast_V1_WaitWorkflowExecutionClosedResponse, json: Bool) -> String {
        let status = WorkflowStatusName.text(closed.status)
        var value = ""
        var failureText = ""
        switch closed.closeEvent.attributes {
        case .workflowExecutionCompleted(let completed)?: value = payloads(completed.result)
        case .workflowExecutionFailed(let failed)?: failureText = failure(failed.failure)
        case .workflowExecutionTerminated(let terminated)?: failureText = terminated.reason
        default: break
        }
        if json {
            var fields: [String: JSONLine.Value] = ["status": .string(status), "workflow_id": .string(closed.execution.workflowID),
                                                    "run_id": .string(closed.execution.runID)]
            if !value.isEmpty {
                let valid = (try? JSONSerialization.jsonObject(with: Data(value.utf8), options: [.fragmentsAllowed])) != nil
                fields["result"] = valid ? .raw(value) : .string(value)
            }
            if !failureText.isEmpty { fields["failure"] = .string(failureText) }
            return JSONLine.object(fields)
        }
        if closed.status == .completed { return value }
        return "\(status)\(failureText.isEmpty ? "" : ": \(failureText)")"
    }

    /// The history as a readable timeline, one event per line.
    static func timeline(_ events: [Ballast_V1_HistoryEvent]) -> String {
        guard let first = events.first else { return "no events" }
        let start = first.eventTimeUnixNanos
        return events.map { event in
            let offset = "+" + duration(event.eventTimeUnixNanos - start)
            return [String(event.eventID).leftPadded(5), time(event.eventTimeUnixNanos), offset.leftPadded(8),
                    event.typeName.padding(toLength: 36, withPad: " ", startingAt: 0), details(event)].joined(separator: "  ")
        }.joined(separator: "\n")
    }

    static func details(_ event: Ballast_V1_HistoryEvent) -> String {
        switch event.attributes {
        case .workflowExecutionStarted(let a)?: "type=\(a.workflowType.name) queue=\(a.taskQueue) input=\(payloads(a.input))"
        case .workflowExecutionCompleted(let a)?: "result=\(payloads(a.result))"
        case .workflowExecutionFailed(let a)?: "failure=\(failure(a.failure))"
        case .workflowExecutionTerminated(let a)?: "reason=\(a.reason)"
        case .workflowExecutionContinuedAsNew(let a)?: "new run=\(a.newExecutionRunID)"
        case .workflowTaskScheduled(let a)?: "queue=\(a.taskQueue) attempt=\(a.attempt)"
        case .workflowTaskStarted(let a)?: "identity=\(a.identity)"
        case .workflowTaskFailed(let a)?: "cause=\(a.cause) failure=\(failure(a.failure))"
        case .activityTaskScheduled(let a)?: "id=\(a.activityID) type=\(a.activityType.name) input=\(payloads(a.input))"
        case .activityTaskStarted(let a)?: "scheduled=\(a.scheduledEventID) attempt=\(a.attempt) identity=\(a.identity)"
        case .activityTaskCompleted(let a)?: "scheduled=\(a.scheduledEventID) result=\(payloads(a.result))"
        case .activityTaskFailed(let a)?: "scheduled=\(a.scheduledEventID) failure=\(failure(a.failure))"
        case .activityTaskTimedOut(let a)?: "scheduled=\(a.scheduledEventID) failure=\(failure(a.failure))"
        case .timerStarted(let a)?: "id=\(a.timerID) fires in \(duration(a.startToFireTimeoutNanos))"
        case .timerFired(let a)?: "id=\(a.timerID)"
        case .workflowExecutionSignaled(let a)?: "name=\(a.signalName) input=\(payloads(a.input))"
        case .workflowExecutionCancelRequested(let a)?: "cause=\(a.cause)"
        case .markerRecorded(let a)?: "name=\(a.markerName)"
        case .startChildWorkflowExecutionInitiated(let a)?: "id=\(a.workflowID) type=\(a.workflowType.name)"
        case .childWorkflowExecutionCompleted(let a)?: "id=\(a.workflowExecution.workflowID) result=\(payloads(a.result))"
        case .childWorkflowExecutionFailed(let a)?: "id=\(a.workflowExecution.workflowID) failure=\(failure(a.failure))"
        default: ""
        }
    }
}

extension String {
    func leftPadded(_ width: Int) -> String {
        count >= width ? self : String(repeating: " ", count: width - count) + self
    }
}
