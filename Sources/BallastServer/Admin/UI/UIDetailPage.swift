import BallastEngine
import BallastProto

/// The workflow detail page: facts, input and result, pending work, signals, children, the
/// timeline (the same rows as `ballast workflow show`) and the operator actions.
struct UIDetailPage: Sendable {
    var description: Ballast_V1_DescribeWorkflowExecutionResponse
    /// The history's first events (all of them unless `eventsTruncated`).
    var events: [Ballast_V1_HistoryEvent]
    var eventsTruncated: Bool
    /// Why the history could not be read, if it could not.
    var historyError: String?
    /// The CSRF token the action forms carry.
    var csrfToken: String
    /// How the action forms authenticate (a token field, the certificate's identity, a typed
    /// name), or why actions are refused on this node (shown instead of the forms).
    var actionMode: UIActionMode

    var info: Ballast_V1_WorkflowExecutionInfo { description.info }
    var path: String { HTML.workflowPath(info.execution.workflowID, info.execution.runID) }

    func render() -> String {
        var html = "<h1 id=\"workflow-id\">\(HTML.escape(info.execution.workflowID))</h1>"
        html += facts()
        html += "<div class=\"grid2\"><div><h2>Input</h2>\(UIPages.payloadBlock(input, id: "input"))</div>"
            + "<div><h2>Result</h2>\(result())</div></div>"
        html += pendingWork() + signals() + children()
        if info.status == .running { html += actions() }
        html += timeline()
        return html
    }

    func facts() -> String {
        var rows: [(String, String)] = [
            ("Status", UIPages.status(info.status) + (description.cancelRequested ? " <span class=\"muted\">(cancel requested)</span>" : "")),
            ("Run id", "<span class=\"mono\" id=\"run-id\">\(HTML.escape(info.execution.runID))</span>"),
            ("Type", HTML.escape(info.type.name)),
            ("Task queue", HTML.escape(info.taskQueue)),
            ("Started", HistoryText.time(info.startTimeUnixNanos)),
            ("Closed", HistoryText.time(info.closeTimeUnixNanos)),
            ("History", "\(info.historyLength) events · <a id=\"download-history\" href=\"\(HTML.escape(path))/history.json\" download>"
                + "download as JSON (for WorkflowReplayer)</a>"),
        ]
        if info.hasParentExecution {
            let parent = info.parentExecution
            rows.append(("Parent", "<a href=\"\(HTML.escape(HTML.workflowPath(parent.workflowID, parent.runID)))\">\(HTML.escape(parent.workflowID))</a>"))
        }
        for key in info.searchAttributes.indexedFields.keys.sorted() {
            let value = info.searchAttributes.indexedFields[key].map(HistoryText.searchAttribute) ?? "-"
            rows.append(("Search attribute \(HTML.escape(key))", "<span class=\"mono\" data-attribute=\"\(HTML.escape(key))\">\(HTML.escape(value))</span>"))
        }
        for key in info.memo.fields.keys.sorted() {
            rows.append(("Memo \(HTML.escape(key))", "<span class=\"mono\">\(HTML.escape(info.memo.fields[key].map(HistoryText.payload) ?? "-"))</span>"))
        }
        return "<div class=\"card\"><dl class=\"facts\">" + rows.map { "<dt>\($0.0)</dt><dd>\($0.1)</dd>" }.joined() + "</dl></div>"
    }

    var input: Ballast_V1_Payloads? {
        guard case .workflowExecutionStarted(let started)? = events.first?.attributes, started.hasInput else { return nil }
        return started.input
    }

    func result() -> String {
        guard info.status != .running else { return "<p class=\"muted\" id=\"result\">Still running.</p>" }
        guard let last = events.last, !eventsTruncated else {
            return "<p class=\"muted\" id=\"result\">See the end of the downloaded history.</p>"
        }
        switch last.attributes {
        case .workflowExecutionCompleted(let completed)?: return UIPages.payloadBlock(completed.result, id: "result")
        case .workflowExecutionFailed(let failed)?:
            return "<pre class=\"json\" id=\"result\">failed: \(HTML.escape(HistoryText.failure(failed.failure)))</pre>"
        case .workflowExecutionTerminated(let terminated)?:
            return "<pre class=\"json\" id=\"result\">terminated by \(HTML.escape(terminated.identity)): \(HTML.escape(terminated.reason))</pre>"
        default:
            return "<pre class=\"json\" id=\"result\">\(HTML.escape(last.typeName)) \(HTML.escape(HistoryText.details(last)))</pre>"
        }
    }

    func pendingWork() -> String {
        var html = ""
        if description.hasPendingWorkflowTask {
            let task = description.pendingWorkflowTask
            html += "<p>Workflow task: \(HTML.escape(task.state)), attempt \(task.attempt)</p>"
        }
        if !description.pendingActivities.isEmpty {
            html += "<h2>Pending activities</h2><table id=\"pending-activities\"><thead><tr><th>Activity</th><th>Type</th><th>State</th>"
                + "<th>Attempt</th><th>Next retry</th><th>Last failure</th></tr></thead><tbody>"
            for activity in description.pendingActivities {
                let maximum = activity.maximumAttempts > 0 ? " of \(activity.maximumAttempts)" : ""
                html += "<tr><td class=\"mono\">\(HTML.escape(activity.activityID))</td><td>\(HTML.escape(activity.activityType.name))</td>"
                    + "<td>\(HTML.escape(activity.state))</td><td class=\"mono\">\(activity.attempt)\(maximum)</td>"
                    + "<td class=\"mono\">\(HistoryText.time(activity.nextAttemptScheduleTimeUnixNanos))</td>"
                    + "<td class=\"details mono\">\(activity.hasLastFailure ? HTML.escape(HistoryText.failure(activity.lastFailure)) : "-")</td></tr>"
            }
            html += "</tbody></table>"
        }
        if !description.pendingTimers.isEmpty {
            html += "<h2>Pending timers</h2><table id=\"pending-timers\"><thead><tr><th>Timer</th><th>Fires at</th></tr></thead><tbody>"
            for timer in description.pendingTimers {
                html += "<tr><td class=\"mono\">\(HTML.escape(timer.timerID))</td><td class=\"mono\">\(HistoryText.time(timer.fireTimeUnixNanos))</td></tr>"
            }
            html += "</tbody></table>"
        }
        return html
    }

    func signals() -> String {
        let received = events.compactMap { event -> (Ballast_V1_HistoryEvent, Ballast_V1_WorkflowExecutionSignaledEventAttributes)? in
            guard case .workflowExecutionSignaled(let signaled)? = event.attributes else { return nil }
            return (event, signaled)
        }
        guard !received.isEmpty else { return "" }
        var html = "<h2>Received signals</h2><table id=\"signals\"><thead><tr><th>Event</th><th>Time</th><th>Name</th><th>Input</th>"
            + "<th>From</th><th>Reason</th></tr></thead><tbody>"
        for (event, signal) in received {
            html += "<tr><td class=\"mono\">\(event.eventID)</td><td class=\"mono\">\(HistoryText.time(event.eventTimeUnixNanos))</td>"
                + "<td>\(HTML.escape(signal.signalName))</td><td class=\"details mono\">\(HTML.escape(HistoryText.payloads(signal.input)))</td>"
                + "<td class=\"mono\">\(HTML.escape(signal.identity))</td><td>\(HTML.escape(signal.reason))</td></tr>"
        }
        return html + "</tbody></table>"
    }

    /// Children initiated in the history (with their runs once started), plus pending ones the history page did not reach.
    func children() -> String {
        var order: [Int64] = []
        var known: [Int64: (id: String, type: String, runID: String, outcome: String)] = [:]
        for event in events {
            switch event.attributes {
            case .startChildWorkflowExecutionInitiated(let a)?:
                order.append(event.eventID)
                known[event.eventID] = (a.workflowID, a.workflowType.name, "", "initiated")
            case .childWorkflowExecutionStarted(let a)?:
                known[a.initiatedEventID]?.runID = a.workflowExecution.runID
                known[a.initiatedEventID]?.outcome = "running"
            case .startChildWorkflowExecutionFailed(let a)?: known[a.initiatedEventID]?.outcome = "start failed"
            case .childWorkflowExecutionCompleted(let a)?: known[a.initiatedEventID]?.outcome = "completed"
            case .childWorkflowExecutionFailed(let a)?: known[a.initiatedEventID]?.outcome = "failed"
            case .childWorkflowExecutionCanceled(let a)?: known[a.initiatedEventID]?.outcome = "canceled"
            case .childWorkflowExecutionTimedOut(let a)?: known[a.initiatedEventID]?.outcome = "timed out"
            case .childWorkflowExecutionTerminated(let a)?: known[a.initiatedEventID]?.outcome = "terminated"
            default: break
            }
        }
        for child in description.pendingChildren where known[child.initiatedEventID] == nil {
            order.append(child.initiatedEventID)
            known[child.initiatedEventID] = (child.workflowID, child.workflowType.name, child.runID, "running")
        }
        guard !order.isEmpty else { return "" }
        var html = "<h2>Child workflows</h2><table id=\"children\"><thead><tr><th>Workflow id</th><th>Type</th><th>Run</th><th>State</th></tr></thead><tbody>"
        for eventID in order {
            guard let child = known[eventID] else { continue }
            html += "<tr><td class=\"mono\"><a href=\"\(HTML.escape(HTML.workflowPath(child.id, child.runID)))\">\(HTML.escape(child.id))</a></td>"
                + "<td>\(HTML.escape(child.type))</td><td class=\"mono\">\(HTML.escape(child.runID))</td><td>\(HTML.escape(child.outcome))</td></tr>"
        }
        return html + "</tbody></table>"
    }

    func timeline() -> String {
        var html = "<h2>Timeline</h2>"
        if let historyError { return html + UIPages.notice(UINotice(kind: .error, text: historyError)) }
        html += "<table id=\"timeline\"><thead><tr><th>Id</th><th>Time</th><th>+</th><th>Event</th><th>Details</th></tr></thead><tbody>"
        for row in HistoryText.rows(events) {
            html += "<tr class=\"tone-\(row.tone.rawValue)\" data-event-type=\"\(HTML.escape(row.type))\"><td class=\"mono\">\(row.eventID)</td>"
                + "<td class=\"mono nowrap\">\(HTML.escape(row.time))</td><td class=\"mono nowrap\">\(HTML.escape(row.offset))</td>"
                + "<td class=\"type\">\(HTML.escape(row.type))</td><td class=\"details mono\">\(HTML.escape(row.details))</td></tr>"
        }
        html += "</tbody></table>"
        if eventsTruncated {
            html += "<p class=\"muted\">Showing the first \(events.count) of \(info.historyLength) events; download the history for all of them.</p>"
        }
        return html
    }

    // MARK: actions

    func actions() -> String {
        var who = ""
        switch actionMode {
        case .refused(let why):
            return "<h2>Actions</h2>" + UIPages.notice(UINotice(kind: .info, text: "Actions are off: " + why + "."))
        case .certificate(let identity):
            who = "<p class=\"muted\" id=\"acting-as\">Actions are recorded as <strong>\(HTML.escape(identity))</strong>, "
                + "the identity of your client certificate.</p>"
        case .token:
            who = "<p class=\"muted\" id=\"acting-as\">Actions are recorded as the identity your admin token is bound to.</p>"
        case .open:
            break
        }
        func form(_ action: String, title: String, button: String, danger: Bool, extra: String, confirm: String) -> String {
            var identityFields = ""
            switch actionMode {
            case .token:
                identityFields = "<label for=\"\(action)-token\">Admin token</label><input type=\"password\" id=\"\(action)-token\" "
                    + "name=\"admin_token\" required autocomplete=\"off\">"
            case .open:
                identityFields = "<label for=\"\(action)-operator\">Your name (optional, recorded with your address, unverified)</label>"
                    + "<input type=\"text\" id=\"\(action)-operator\" name=\"operator\" maxlength=\"\(UIRequests.maxOperatorBytes)\">"
            case .certificate, .refused:
                break
            }
            return """
                <form class="card" id="\(action)-form" method="post" action="\(HTML.escape(path))/\(action)">
                <h2 class="first">\(title)</h2>
                <input type="hidden" name="csrf" value="\(HTML.escape(csrfToken))">\(extra)
                <label for="\(action)-reason">Reason (recorded in the history)</label>
                <input type="text" id="\(action)-reason" name="reason" required maxlength="\(UIRequests.maxReasonBytes)">\(identityFields)
                <label class="confirm"><input type="checkbox" id="\(action)-confirm" name="confirm" value="yes" required> \(confirm)</label>
                <button type="submit" id="\(action)-submit"\(danger ? " class=\"danger\"" : "")>\(button)</button></form>
                """
        }
        let signalFields = """
            <label for="signal-name">Signal name</label><input type="text" id="signal-name" name="name" required maxlength="\(UIRequests.maxNameBytes)">
            <label for="signal-input">Input (JSON, optional)</label><textarea id="signal-input" name="input"></textarea>
            """
        return "<h2>Actions</h2>" + who + "<div class=\"actions\">"
            + form("signal", title: "Signal", button: "Send signal", danger: false, extra: signalFields,
                   confirm: "Yes, send this signal")
            + form("cancel", title: "Cancel", button: "Request cancel", danger: true, extra: "",
                   confirm: "Yes, ask this workflow to cancel (its code may compensate)")
            + form("terminate", title: "Terminate", button: "Terminate", danger: true, extra: "",
                   confirm: "Yes, end this run now without running its code")
            + "</div>"
    }
}
