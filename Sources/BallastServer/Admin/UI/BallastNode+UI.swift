import BallastEngine
import BallastProto
import BallastRaft
import BallastWire
import Foundation
import NIOHTTP1
import SwiftProtobuf

/// The web UI on the admin port. Reads use the node's own read paths: on the leader a
/// linearizable ReadIndex read, on a follower the follower's applied state (the API's "stale"
/// read), so every node's UI shows the list even when the leader is unreachable. Actions are
/// proposed by the leader directly, or forwarded by a follower to the leader's API port.
extension BallastNode {
    /// Events the detail page shows; longer histories are cut (the download has all of them).
    static let uiTimelineEvents = 2_000
    /// Rows per list page.
    static let uiListPageSize: Int32 = 50
    /// Rows on the failing page.
    static let uiFailingRows = 200

    /// Answers a UI path, or nil when `request` is not for the UI.
    func uiRoute(_ request: AdminRequest) async -> AdminResponse? {
        let path = request.path
        let wantsHTML = request.headers.first(name: "accept")?.contains("text/html") ?? false
        switch path {
        case "/ui/style.css":
            return AdminResponse(contentType: "text/css; charset=utf-8", body: Array(UIAssets.css.utf8))
        case "/ui/app.js":
            return AdminResponse(contentType: "text/javascript; charset=utf-8", body: Array(UIAssets.javaScript.utf8))
        case "/cluster" where wantsHTML:
            guard request.method == .GET || request.method == .HEAD else { return Self.uiMethodNotAllowed() }
            let view = await clusterView()
            return uiPage(title: "Cluster", active: "/cluster", banner: await uiBanner(), body: UIPages.cluster(view))
        case "/", "/workflows":
            guard request.method == .GET || request.method == .HEAD else { return Self.uiMethodNotAllowed() }
            if let refusal = await uiReadRefusal(request, BallastMethod.Workflow.list) { return refusal }
            return await uiWorkflowList(request)
        case "/failing":
            guard request.method == .GET || request.method == .HEAD else { return Self.uiMethodNotAllowed() }
            if let refusal = await uiReadRefusal(request, BallastMethod.Workflow.list) { return refusal }
            return await uiFailing(request)
        default:
            guard path.hasPrefix("/workflows/") else { return nil }
            if let refusal = await uiReadRefusal(request, BallastMethod.Workflow.describe) { return refusal }
            return await uiWorkflowRoute(request)
        }
    }

    /// The workflow pages show what the API's reader role shows, so on a node that enforces
    /// authorization they need it too (in the UI's namespace, `default`), for the identity of the
    /// caller's client certificate: a worker's or a stranger's certificate of the same CA reads
    /// no history here either. Refused: 403 naming the missing role, audited like a refused call.
    /// An action (POST) needs writer, which implies reader, so it is checked here first as well.
    private func uiReadRefusal(_ request: AdminRequest, _ method: String) async -> AdminResponse? {
        guard security.authorizer.enforce else { return nil }
        let message: String
        if let peer = request.peer {
            guard let refusal = security.authorizer.check(identity: peer.name, path: method, scope: .namespace("")) else { return nil }
            message = refusal.message
        } else if request.method == .POST, adminCredentials.requiresToken {
            return nil  // a token holder acting: the action's own check (writer) decides
        } else {
            message = "this node enforces authorization: the workflow pages need a client certificate with the reader role"
        }
        return uiPage(title: "Not allowed", active: "/workflows", banner: await uiBanner(), body: UIPages.errorPage(message),
                      status: .forbidden)
    }

    static func uiMethodNotAllowed() -> AdminResponse {
        AdminResponse(status: .methodNotAllowed, contentType: "text/plain; charset=utf-8", body: Array("method not allowed\n".utf8),
                      headers: [("allow", "GET, HEAD")])
    }

    /// `/workflows/<id>[/<run>]`, `/workflows/<id>/<run>/history.json`, POST `/workflows/<id>/<run>/<action>`.
    private func uiWorkflowRoute(_ request: AdminRequest) async -> AdminResponse {
        let banner = await uiBanner()
        do {
            let segments = try UIRequests.segments(request.path)
            guard segments.count >= 2, segments.count <= 4, segments[0] == "workflows" else {
                throw UIRequestError(status: .notFound, message: "no such page")
            }
            try UIRequests.validateID(segments[1], "workflow id")
            if segments.count >= 3 { try UIRequests.validateID(segments[2], "run id") }
            var execution = Ballast_V1_WorkflowExecution()
            execution.workflowID = segments[1]
            execution.runID = segments.count >= 3 ? segments[2] : ""
            if request.method == .POST {
                guard segments.count == 4 else { throw UIRequestError(status: .methodNotAllowed, message: "POST goes to an action") }
                return await uiAction(request, execution: execution, name: segments[3], banner: banner)
            }
            guard request.method == .GET || request.method == .HEAD else { return Self.uiMethodNotAllowed() }
            if segments.count == 4 {
                guard segments[3] == "history.json" else { throw UIRequestError(status: .notFound, message: "no such page") }
                return try await uiHistoryDownload(execution, stale: banner.localReads)
            }
            var notices: [UINotice] = []
            if let done = request.query["done"], ["signal", "cancel", "terminate"].contains(done) {
                notices.append(UINotice(kind: .ok, text: "\(done) recorded in the history with your identity and reason."))
            }
            return try await uiDetail(execution, banner: banner, notices: notices, peer: request.peer)
        } catch let error as UIRequestError {
            return uiPage(title: "Error", active: "/workflows", banner: banner, body: UIPages.errorPage(error.message), status: error.status)
        } catch {
            return uiPage(title: "Error", active: "/workflows", banner: banner, body: UIPages.errorPage(Self.uiMessage(error)),
                          status: Self.uiHTTPStatus(error))
        }
    }

    // MARK: pages

    private func uiWorkflowList(_ request: AdminRequest) async -> AdminResponse {
        let banner = await uiBanner()
        let query = request.query["query"] ?? ""
        let next = request.query["next"] ?? ""
        guard query.utf8.count <= UIRequests.maxQueryBytes else {
            return uiPage(title: "Workflows", active: "/workflows", banner: banner,
                          body: UIPages.errorPage("the query is over \(UIRequests.maxQueryBytes) bytes"), status: .badRequest)
        }
        var list = UIPages.WorkflowList(query: query, runs: [], total: nil, counts: [], nextPage: "", isLaterPage: !next.isEmpty)
        var notices: [UINotice] = []
        do {
            var listRequest = Ballast_V1_ListWorkflowExecutionsRequest()
            listRequest.query = query
            listRequest.pageSize = Self.uiListPageSize
            if !next.isEmpty {
                guard let token = Data(uiBase64URL: next) else { throw UIRequestError.bad("the page token does not decode; start from the first page") }
                listRequest.nextPageToken = token
            }
            let page = try await listWorkflows(listRequest, stale: banner.localReads)
            list.runs = page.executions
            list.nextPage = page.nextPageToken.isEmpty ? "" : page.nextPageToken.uiBase64URL
            var countRequest = Ballast_V1_CountWorkflowExecutionsRequest()
            countRequest.query = query
            // One count answers the total and every status (one read round instead of eight).
            let counted = try await countWorkflows(countRequest, stale: banner.localReads)
            list.total = counted.count
            list.counts = counted.statusCounts.filter { $0.count > 0 }.map { ($0.status, $0.count) }
        } catch {
            notices.append(UINotice(kind: .error, text: Self.uiMessage(error)))
        }
        return uiPage(title: "Workflows", active: "/workflows", banner: banner, notices: notices, body: UIPages.workflows(list),
                      status: notices.isEmpty ? .ok : .badRequest)
    }

    private func uiFailing(_ request: AdminRequest) async -> AdminResponse {
        let banner = await uiBanner()
        let text = request.query["n"] ?? "3"
        guard let moreThan = Int32(text), (0 ... 1_000_000).contains(moreThan) else {
            return uiPage(title: "Failing now", active: "/failing", banner: banner,
                          body: UIPages.errorPage("n must be a whole number from 0 to 1000000"), status: .badRequest)
        }
        let limit = Self.uiFailingRows
        do {
            // Off the loop: it walks every open run.
            let (runs, truncated) = try await readOnCopy(stale: banner.localReads) { engine throws(EngineRejection) in
                engine.failingRuns(namespace: "", moreThan: moreThan, limit: limit)
            }
            var taskErrors: [String: String] = [:]
            for run in runs where run.kind == .workflowTask {
                taskErrors[run.info.execution.runID] = lastWorkflowTaskFailure(runId: run.info.execution.runID, length: run.info.historyLength)
            }
            return uiPage(title: "Failing now", active: "/failing", banner: banner,
                          body: UIPages.failing(runs, moreThan: moreThan, truncated: truncated, workflowTaskErrors: taskErrors))
        } catch {
            return uiPage(title: "Failing now", active: "/failing", banner: banner, body: UIPages.errorPage(Self.uiMessage(error)),
                          status: Self.uiHTTPStatus(error))
        }
    }

    /// The failure of the last written WorkflowTaskFailed event among the run's last 200 events
    /// (later attempts of a failing workflow task are transient: not written).
    private func lastWorkflowTaskFailure(runId: String, length: Int64) -> String? {
        let from = max(1, length - 199)
        guard let tail = try? readHistory(runId: runId, from: from, max: 200, maxBytes: 4 << 20) else { return nil }
        for bytes in tail.reversed() {
            if let event = try? HistoryEventCoding.decode(bytes), case .workflowTaskFailed(let failed)? = event.attributes {
                return "\(failed.cause): \(HistoryText.failure(failed.failure))"
            }
        }
        return nil
    }

    private func uiDetail(_ execution: Ballast_V1_WorkflowExecution, banner: UIBanner, notices: [UINotice], peer: PeerIdentity?,
                          status: HTTPResponseStatus = .ok) async throws -> AdminResponse {
        let stale = banner.localReads
        let description = try await read(stale: stale) { engine throws(EngineRejection) in
            try engine.describe(namespace: "", execution: execution)
        }
        var page = UIDetailPage(description: description, events: [], eventsTruncated: false, historyError: nil,
                                csrfToken: UIRequests.csrfToken,
                                actionMode: AdminAuthorization.actionMode(peer: peer, credentials: adminCredentials))
        do {
            let target = RunProgress(execution: description.info.execution, status: description.info.status,
                                     historyLength: description.info.historyLength)
            page.events = try uiEvents(target, limit: Self.uiTimelineEvents)
            page.eventsTruncated = Int64(page.events.count) < target.historyLength
        } catch {
            page.historyError = "the history could not be read: \(Self.uiMessage(error))"
        }
        return uiPage(title: execution.workflowID, active: "/workflows", banner: banner, notices: notices, body: page.render(),
                      status: status)
    }

    /// Up to `limit` events of the run from the history store.
    func uiEvents(_ target: RunProgress, limit: Int) throws -> [Ballast_V1_HistoryEvent] {
        var events: [Ballast_V1_HistoryEvent] = []
        var from: Int64 = 1
        while from <= target.historyLength, events.count < limit {
            let wanted = min(1_000, limit - events.count)
            let chunk = try readHistory(runId: target.execution.runID, from: from, max: wanted, maxBytes: HistoryPages.maxPageBytes)
            guard !chunk.isEmpty else {
                throw GRPCStatus(.notFound, "the history of run \(target.execution.runID) was deleted (retention ended)")
            }
            for bytes in chunk { events.append(try HistoryEventCoding.decode(bytes)) }
            from += Int64(chunk.count)
        }
        return events
    }

    /// The whole history as the protobuf JSON of `ballast.v1.History` (what `WorkflowReplayer` and `workflow show --json` use).
    private func uiHistoryDownload(_ execution: Ballast_V1_WorkflowExecution, stale: Bool) async throws -> AdminResponse {
        let target = try await historyTarget(namespace: "", execution: execution, stale: stale)
        var history = Ballast_V1_History()
        history.events = try uiEvents(target, limit: Int(target.historyLength))
        let json = Array(try history.jsonUTF8Data())
        let fileName = "history-" + HTML.urlComponent(target.execution.workflowID).prefix(100) + "-" + target.execution.runID.prefix(40) + ".json"
        return AdminResponse(contentType: "application/json", body: json,
                             headers: [("content-disposition", "attachment; filename=\"\(fileName.replacingOccurrences(of: "\"", with: ""))\"")])
    }

    // MARK: actions

    private func uiAction(_ request: AdminRequest, execution: Ballast_V1_WorkflowExecution, name: String,
                          banner: UIBanner) async -> AdminResponse {
        do {
            let credentials = adminCredentials
            if case .refused(let why) = AdminAuthorization.actionMode(peer: request.peer, credentials: credentials) {
                throw UIRequestError(status: .forbidden, message: why)
            }
            let form = try UIRequests.form(request.body, contentType: request.headers.first(name: "content-type"))
            if !AdminAuthorization.usesBearer(headers: request.headers, credentials: credentials) {
                try UIRequests.checkSameOrigin(headers: request.headers, form: form)
            }
            let actor = try AdminAuthorization.actor(peer: request.peer, headers: request.headers, form: form, credentials: credentials,
                                                     typedName: (form["operator"] ?? "").trimmingCharacters(in: .whitespaces),
                                                     remoteAddress: request.remoteAddress)
            guard !execution.runID.isEmpty else { throw UIRequestError.bad("an action names the run id") }
            let action = try UIRequests.action(name, form: form)
            try uiAuthorize(action, actor: actor)
            try await uiPerform(action, on: execution, identity: actor.identity)
            logger.notice("operator action from the web UI", metadata: [
                "action": "\(action.name)", "workflowId": "\(execution.workflowID)", "runId": "\(execution.runID)",
                "identity": "\(actor.identity)", "by": "\(actor.source.rawValue)", "reason": "\(action.reason)",
            ])
            security.record(.operatorAction, identity: actor.identity,
                            detail: "web UI \(action.name) of workflow \(execution.workflowID) run \(execution.runID) "
                                + "(\(actor.source.rawValue), node \(configuration.id.rawValue)); reason: \(action.reason)")
            let location = HTML.workflowPath(execution.workflowID, execution.runID) + "?done=" + action.name
            return AdminResponse(status: .seeOther, contentType: "text/plain; charset=utf-8", body: Array("done\n".utf8),
                                 headers: [("location", location)])
        } catch {
            let status = (error as? UIRequestError)?.status ?? Self.uiHTTPStatus(error)
            let notice = UINotice(kind: .error, text: "\(name) not done: " + Self.uiMessage(error))
            // A caller refused for who they are sees the refusal only, not the run (its reads
            // need a role this caller may lack).
            let refusedCaller = status == .forbidden || status == .unauthorized
            if refusedCaller && security.authorizer.enforce {
                return uiPage(title: "Error", active: "/workflows", banner: banner, body: UIPages.errorPage(notice.text), status: status)
            }
            if let page = try? await uiDetail(execution, banner: banner, notices: [notice], peer: request.peer, status: status) { return page }
            return uiPage(title: "Error", active: "/workflows", banner: banner, body: UIPages.errorPage(notice.text), status: status)
        }
    }

    /// What authenticates UI actions on this node: the shared token, the bound tokens as last
    /// (re)loaded, and whether the node enforces authorization.
    var adminCredentials: AdminCredentials {
        AdminCredentials(sharedToken: configuration.adminToken, tokens: adminTokens?.tokens ?? AdminTokens(),
                         enforceAuthorization: security.authorizer.enforce)
    }

    /// The API's role check for a UI action (writer in the run's namespace), with the actor's
    /// identity: on a node that enforces authorization, and for any caller with a verified
    /// certificate (as on the API port). A token holder on a node that does not enforce is not
    /// checked: there, the API lets anyone act too.
    private func uiAuthorize(_ action: UIAction, actor: UIActor) throws {
        guard security.authorizer.enforce || actor.source == .certificate else { return }
        let path = switch action.kind {
        case .signal: BallastMethod.Workflow.signal
        case .cancel: BallastMethod.Workflow.requestCancel
        case .terminate: BallastMethod.Workflow.terminate
        }
        if let refusal = security.authorizer.check(identity: actor.identity, path: path, scope: .namespace("")) { throw refusal }
    }

    /// Proposes the action on the leader, or forwards it to the leader's API when this node follows.
    private func uiPerform(_ action: UIAction, on execution: Ballast_V1_WorkflowExecution, identity: String) async throws {
        let requestID = UUID().uuidString
        switch action.kind {
        case .signal(let name, let input):
            var request = Ballast_V1_SignalWorkflowRequest()
            request.workflowExecution = execution
            request.signalName = name
            if let payloads = UIRequests.jsonPayloads(input) { request.input = payloads }
            (request.identity, request.reason, request.requestID) = (identity, action.reason, requestID)
            try await uiWrite(.signalWorkflow(request), requestID: requestID, path: BallastMethod.Workflow.signal, request,
                              as: Ballast_V1_SignalWorkflowResponse.self)
        case .cancel:
            var request = Ballast_V1_RequestCancelWorkflowRequest()
            request.workflowExecution = execution
            (request.identity, request.reason, request.requestID) = (identity, action.reason, requestID)
            try await uiWrite(.requestCancel(request), requestID: requestID, path: BallastMethod.Workflow.requestCancel, request,
                              as: Ballast_V1_RequestCancelWorkflowResponse.self)
        case .terminate:
            var request = Ballast_V1_TerminateWorkflowRequest()
            request.workflowExecution = execution
            (request.identity, request.reason) = (identity, action.reason)
            try await uiWrite(.terminate(request), requestID: "", path: BallastMethod.Workflow.terminate, request,
                              as: Ballast_V1_TerminateWorkflowResponse.self)
        }
    }

    private func uiWrite<Request: SwiftProtobuf.Message, Response: SwiftProtobuf.Message>(
        _ payload: Ballast_V1_EngineEntry.OneOf_Payload, requestID: String, path: String, _ request: Request, as: Response.Type
    ) async throws {
        let status = await raftStatus()
        if status.role == .leader {
            _ = try await submit(payload, requestID: requestID)
            return
        }
        guard let leader = status.leader, let info = transport.knownNodes[leader.rawValue], let api = try? HostPort(parsing: info.api) else {
            throw GRPCStatus(.unavailable, "no leader is known right now; try again in a moment")
        }
        var clientConfiguration = GRPCClientConfiguration()
        clientConfiguration.tls = clientTLS
        let client = try await GRPCClient.connect(host: api.host, port: api.port, configuration: clientConfiguration,
                                                  group: group, logger: logger)
        defer { Task { await client.close() } }
        _ = try await client.unary(path, request: request, responseType: Response.self, timeout: .seconds(10))
    }

    // MARK: helpers

    /// Whether this node reads locally (not the leader), with what the pages say about it.
    func uiBanner() async -> UIBanner {
        let status = await raftStatus()
        let leaderAdmin = status.leader.flatMap { transport.knownNodes[$0.rawValue]?.admin }
        let role = NodeStatus(raft: status, info: info).role
        return UIBanner(nodeID: String(configuration.id.rawValue), role: role, leaderID: status.leader.map { String($0.rawValue) },
                        leaderAdmin: leaderAdmin, localReads: status.role != .leader)
    }

    func uiPage(title: String, active: String, banner: UIBanner, notices: [UINotice] = [], body: String,
                status: HTTPResponseStatus = .ok) -> AdminResponse {
        let html = UIPages.layout(title: title, active: active, banner: banner, notices: notices, body: body)
        return AdminResponse(status: status, contentType: "text/html; charset=utf-8", body: Array(html.utf8), headers: Self.uiSecurityHeaders)
    }

    /// Scripts, styles and forms from this node only; no framing (clickjacking), no referrer leaks.
    static let uiSecurityHeaders: [(name: String, value: String)] = [
        ("content-security-policy",
         "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; "
            + "frame-ancestors 'none'; base-uri 'none'"),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "same-origin"),
    ]

    static func uiMessage(_ error: any Error) -> String {
        switch error {
        case let status as GRPCStatus: "\(status.code): \(status.message)"
        case let request as UIRequestError: request.message
        default: "\(error)"
        }
    }

    static func uiHTTPStatus(_ error: any Error) -> HTTPResponseStatus {
        guard let status = error as? GRPCStatus else { return .internalServerError }
        switch status.code {
        case .invalidArgument: return .badRequest
        case .notFound: return .notFound
        case .failedPrecondition, .alreadyExists: return .conflict
        case .permissionDenied: return .forbidden
        case .unavailable, .deadlineExceeded, .resourceExhausted: return .serviceUnavailable
        default: return .internalServerError
        }
    }
}

extension Data {
    /// Decodes URL-safe base64 without padding (page tokens in links).
    init?(uiBase64URL text: String) {
        guard text.utf8.count <= 4_096 else { return nil }
        var base64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        base64 += String(repeating: "=", count: (4 - base64.count % 4) % 4)
        self.init(base64Encoded: base64)
    }

    /// URL-safe base64 without padding.
    var uiBase64URL: String {
        base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }
}
