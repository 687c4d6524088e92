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
    // The renderings shared with the web UI live in BallastEngine's HistoryText.
    static func time(_ nanos: Int64) -> String { HistoryText.time(nanos) }
    static func duration(_ nanos: Int64) -> String { HistoryText.duration(nanos) }
    static func payload(_ payload: Ballast_V1_Payload) -> String { HistoryText.payload(payload) }
    static func payloads(_ payloads: Ballast_V1_Payloads) -> String { HistoryText.payloads(payloads) }
    static func failure(_ failure: Ballast_V1_Failure) -> String { HistoryText.failure(failure) }

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

    static func searchAttribute(_ value: Ballast_V1_SearchAttributeValue) -> String { HistoryText.searchAttribute(value) }

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

    /// Count's answer: the number (and each status on its own line with `byStatus`); JSON
    /// `{"count": N, "statuses": {"running": n, …}}`.
    static func count(_ response: Ballast_V1_CountWorkflowExecutionsResponse, json: Bool, byStatus: Bool) -> String {
        let groups = response.statusCounts.map { (WorkflowStatusName.text($0.status), $0.count) }
        if json {
            let statuses = JSONLine.object(Dictionary(groups.map { ($0.0, JSONLine.Value.int($0.1)) }, uniquingKeysWith: { first, _ in first }))
            return JSONLine.object(["count": .int(response.count), "statuses": .raw(statuses)])
        }
        guard byStatus else { return "\(response.count)" }
        return (["\(response.count)"] + groups.map { "\($0.0.padding(toLength: 17, withPad: " ", startingAt: 0)) \($0.1)" }).joined(separator: "\n")
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

    /// The history as a readable timeline, one event per line (the same renderer as the web UI's).
    static func timeline(_ events: [Ballast_V1_HistoryEvent]) -> String { HistoryText.timeline(events) }
}
