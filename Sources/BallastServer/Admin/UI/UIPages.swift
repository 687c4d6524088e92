import BallastEngine
import BallastProto
import Foundation

/// Who answered a page: the node, its role, and whether reads came from its own applied state.
struct UIBanner: Sendable {
    var nodeID: String
    var role: String
    var leaderID: String?
    /// The leader's admin address, for a link from a follower's pages.
    var leaderAdmin: String?
    /// True when reads were answered from this follower's applied state (possibly a little behind).
    var localReads: Bool
}

/// A message shown at the top of a page.
struct UINotice: Sendable, Equatable {
    enum Kind: String, Sendable { case error, info, ok }
    var kind: Kind
    var text: String
}

/// The web UI's pages, rendered from plain values: no I/O here, every dynamic value escaped.
enum UIPages {
    // MARK: layout

    static func layout(title: String, active: String, banner: UIBanner, notices: [UINotice] = [], body: String) -> String {
        func nav(_ path: String, _ label: String) -> String {
            "<a href=\"\(path)\"\(active == path ? " class=\"active\"" : "")>\(label)</a>"
        }
        var who = "node \(HTML.escape(banner.nodeID)) · \(HTML.escape(banner.role))"
        if banner.localReads {
            who += " · reads from this node's applied state"
        }
        var allNotices = notices
        if banner.localReads, banner.role != "leader" {
            var text = "This node is a \(banner.role): the pages show its applied state, which may lag the leader by a moment."
            if let leader = banner.leaderID { text += " The leader is node \(leader)" + (banner.leaderAdmin.map { " (admin \($0))" } ?? "") + "." }
            allNotices.insert(UINotice(kind: .info, text: text), at: 0)
        }
        return """
            <!doctype html>
            <html lang="en"><head><meta charset="utf-8">
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <title>\(HTML.escape(title)) · Ballast</title>
            <link rel="stylesheet" href="/ui/style.css"></head>
            <body><header><a class="brand" href="/">Ballast</a><nav>\(nav("/workflows", "Workflows"))\(nav("/failing", "Failing now"))\(nav("/cluster", "Cluster"))</nav>
            <span class="node" id="node-banner">\(who)</span></header>
            <main>\(allNotices.map(notice).joined())\(body)</main>
            <script src="/ui/app.js"></script></body></html>
            """
    }

    static func notice(_ notice: UINotice) -> String {
        "<div class=\"notice \(notice.kind.rawValue)\" role=\"status\">\(HTML.escape(notice.text))</div>"
    }

    static func status(_ status: Ballast_V1_WorkflowExecutionStatus) -> String {
        let name = HistoryText.statusName(status)
        return "<span class=\"status status-\(name)\">\(name)</span>"
    }

    // MARK: workflows

    /// The list page's content.
    struct WorkflowList: Sendable {
        var query: String
        var runs: [Ballast_V1_WorkflowExecutionInfo]
        /// Matching runs in total, and per status (only statuses with runs).
        var total: Int64?
        var counts: [(status: Ballast_V1_WorkflowExecutionStatus, count: Int64)]
        /// The next page's token, URL-safe base64 (empty on the last page).
        var nextPage: String
        /// Whether this is a later page (a link back to the first).
        var isLaterPage: Bool
    }

    static func workflows(_ list: WorkflowList) -> String {
        var html = "<h1>Workflows</h1>"
        html += """
            <form class="filter" method="get" action="/workflows">
            <input type="text" name="query" id="query" value="\(HTML.escape(list.query))" maxlength="\(UIRequests.maxQueryBytes)" \
            placeholder="WorkflowType = 'Transfer' AND ExecutionStatus = 'Running'" aria-label="Visibility query">
            <button type="submit" id="apply-filter">Filter</button></form>
            """
        if let total = list.total {
            html += "<div class=\"counts\" id=\"counts\"><span>matching: <strong id=\"total-count\">\(total)</strong></span>"
            for (status, count) in list.counts {
                let name = HistoryText.statusName(status)
                html += "<span class=\"status status-\(name)\" data-status=\"\(name)\">\(name): <strong>\(count)</strong></span>"
            }
            html += "</div>"
        }
        guard !list.runs.isEmpty else { return html + "<p class=\"muted\" id=\"no-workflows\">No workflows match.</p>" }
        html += "<table id=\"workflows\"><thead><tr><th>Status</th><th>Workflow id</th><th>Run id</th><th>Type</th><th>Task queue</th>"
            + "<th>Started</th><th>Closed</th></tr></thead><tbody>"
        for run in list.runs {
            let id = run.execution.workflowID, runID = run.execution.runID
            html += "<tr><td>\(status(run.status))</td>"
                + "<td class=\"mono\"><a class=\"workflow-link\" href=\"\(HTML.escape(HTML.workflowPath(id, runID)))\">\(HTML.escape(id))</a></td>"
                + "<td class=\"mono\">\(HTML.escape(runID))</td><td>\(HTML.escape(run.type.name))</td><td>\(HTML.escape(run.taskQueue))</td>"
                + "<td class=\"mono nowrap\">\(HistoryText.time(run.startTimeUnixNanos))</td><td class=\"mono nowrap\">\(HistoryText.time(run.closeTimeUnixNanos))</td></tr>"
        }
        html += "</tbody></table><div class=\"pager\">"
        if list.isLaterPage { html += "<a href=\"/workflows?query=\(HTML.urlComponent(list.query))\">First page</a>" }
        if !list.nextPage.isEmpty {
            html += "<a id=\"next-page\" class=\"button\" href=\"/workflows?query=\(HTML.urlComponent(list.query))&amp;next=\(HTML.urlComponent(list.nextPage))\">Next page</a>"
        }
        return html + "</div>"
    }

    // MARK: cluster

    static func cluster(_ view: ClusterView) -> String {
        let top = view.members.filter(\.reachable).map(\.commit).max() ?? 0
        var html = """
            <h1>Cluster</h1>
            <div class="card"><dl class="facts"><dt>Leader</dt><dd id="leader">\(HTML.escape(view.leader ?? "none"))</dd>
            <dt>Updated</dt><dd id="updated" class="mono">rendered by the server; refreshes every second</dd></dl></div>
            <table id="members"><thead><tr><th>Id</th><th>Role</th><th>Term</th><th>Commit</th><th>Applied</th><th>Lag</th>\
            <th>Reachable</th><th>API</th><th>Admin</th></tr></thead><tbody>
            """
        for member in view.members {
            html += "<tr data-member=\"\(HTML.escape(member.id))\" data-role=\"\(HTML.escape(member.role))\">"
                + "<td class=\"mono\">\(HTML.escape(member.id))</td>"
                + "<td\(member.role == "leader" ? " class=\"role-leader\"" : "")>\(HTML.escape(member.role))</td>"
                + "<td class=\"mono\">\(member.term)</td><td class=\"mono\">\(member.commit)</td><td class=\"mono\">\(member.applied)</td>"
                + "<td class=\"mono\">\(top > member.applied ? top - member.applied : 0)</td>"
                + "<td\(member.reachable ? "" : " class=\"unreachable\"")>\(member.reachable ? "yes" : "no")</td>"
                + "<td class=\"mono\">\(HTML.escape(member.api))</td><td class=\"mono\">\(HTML.escape(member.admin))</td></tr>"
        }
        return html + "</tbody></table><p class=\"muted\">Lag: the highest commit index among reachable members minus the member's applied index.</p>"
    }

    // MARK: failing

    static func failing(_ runs: [FailingRun], moreThan: Int32, truncated: Bool, workflowTaskErrors: [String: String]) -> String {
        var html = """
            <h1>Failing now</h1>
            <form class="filter inline" method="get" action="/failing"><label for="n">Open runs whose workflow task or an activity \
            failed more than</label> <input type="text" name="n" id="n" value="\(moreThan)" size="4" class="narrow"> \
            <span>times in a row</span> <button type="submit">Show</button></form>
            """
        guard !runs.isEmpty else { return html + "<p class=\"muted\" id=\"no-failing\">Nothing is failing more than \(moreThan) times in a row.</p>" }
        html += "<table id=\"failing\"><thead><tr><th>Workflow id</th><th>Type</th><th>What fails</th><th>Failures in a row</th>"
            + "<th>Next attempt</th><th>Last error</th></tr></thead><tbody>"
        for run in runs {
            let id = run.info.execution.workflowID, runID = run.info.execution.runID
            let what = run.kind == .activity ? "activity \(run.activityType) (\(run.activityID))" : "workflow task"
            let error = run.lastFailure.map(HistoryText.failure) ?? workflowTaskErrors[runID] ?? "-"
            html += "<tr class=\"tone-bad\"><td class=\"mono\"><a href=\"\(HTML.escape(HTML.workflowPath(id, runID)))\">\(HTML.escape(id))</a></td>"
                + "<td>\(HTML.escape(run.info.type.name))</td><td>\(HTML.escape(what))</td><td class=\"mono\">\(run.consecutiveFailures)</td>"
                + "<td class=\"mono\">\(HistoryText.time(run.nextAttemptTimeUnixNanos))</td><td class=\"details mono\">\(HTML.escape(error))</td></tr>"
        }
        html += "</tbody></table>"
        if truncated { html += "<p class=\"muted\">Showing the \(runs.count) worst; more runs are failing.</p>" }
        return html
    }

    // MARK: helpers shared with the detail page

    /// A payload as pretty JSON, or a note that it is encoded (a codec is in use).
    static func payloadBlock(_ payloads: Ballast_V1_Payloads?, id: String) -> String {
        guard let payloads, !payloads.payloads.isEmpty else { return "<pre class=\"json\" id=\"\(id)\">null</pre>" }
        return payloads.payloads.map { payload in
            guard HistoryText.isPlainJSON(payload) else {
                let encoding = payload.metadata["encoding"].map { String(decoding: $0, as: UTF8.self) } ?? "binary"
                return "<pre class=\"json\" id=\"\(id)\">encoded (\(HTML.escape(encoding)), \(payload.data.count) bytes): "
                    + "a payload codec is in use; decode it with the codec's tooling</pre>"
            }
            return "<pre class=\"json\" id=\"\(id)\">\(HTML.escape(prettyJSON(payload.data)))</pre>"
        }.joined()
    }

    /// Pretty-printed JSON with sorted keys, or the text itself when it does not parse.
    static func prettyJSON(_ data: Data) -> String {
        guard !data.isEmpty else { return "null" }
        guard let object = try? JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed]),
              let pretty = try? JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .fragmentsAllowed, .withoutEscapingSlashes])
        else { return String(decoding: data, as: UTF8.self) }
        return String(decoding: pretty, as: UTF8.self)
    }

    static func errorPage(_ message: String) -> String {
        "<h1>Something went wrong</h1>" + notice(UINotice(kind: .error, text: message))
    }
}
