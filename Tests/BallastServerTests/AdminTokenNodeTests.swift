import BallastEngine
import BallastProto
import BallastWire
import Foundation
import NIOHTTP1
import Testing
@testable import BallastServer

/// Web UI actions on a node that enforces authorization, authenticated by `--admin-tokens`
/// (docs/security.md, "Admin UI tokens"): the identity bound to the presented token is recorded
/// in history and in the audit log and goes through the API's role check; nothing typed in the
/// form overrides it. The requests go to the node's own admin router, as the admin server
/// hands them over.
@Suite("Admin UI tokens bound to identities, on a node", .serialized)
struct AdminTokenNodeTests {
    static let aliceToken = "alice-0123456789abcdef0123456789abcdef"
    static let readerToken = "reader-0123456789abcdef0123456789abcdef"
    static let nobodyToken = "nobody-0123456789abcdef0123456789abcdef"
    static let tokens = """
        # identity  token
        alice       \(aliceToken)
        reader-1    \(readerToken)
        nobody      \(nobodyToken)

        """

    /// POSTs a UI form to the node's admin router.
    func post(_ cluster: AuthorizedNode, _ path: String, _ form: String, bearer: String? = nil,
              peer: PeerIdentity? = nil) async -> AdminResponse {
        var headers = HTTPHeaders([("content-type", "application/x-www-form-urlencoded"), ("host", "127.0.0.1:8233")])
        if let bearer { headers.add(name: "authorization", value: "Bearer \(bearer)") }
        let request = AdminRequest(method: .POST, path: path, query: [:], body: Array(form.utf8), headers: headers,
                                   remoteAddress: "10.1.2.3", peer: peer)
        return await cluster.node.route(request)
    }

    func start(_ cluster: AuthorizedNode, _ workflowId: String) async throws -> String {
        let started: Ballast_V1_StartWorkflowResponse = try await cluster.call(BallastMethod.Workflow.start, startRequest(workflowId), as: "alice")
        return started.runID
    }

    func status(_ cluster: AuthorizedNode, _ workflowId: String) async throws -> Ballast_V1_WorkflowExecutionStatus {
        var describe = Ballast_V1_DescribeWorkflowExecutionRequest()
        describe.execution.workflowID = workflowId
        let described: Ballast_V1_DescribeWorkflowExecutionResponse = try await cluster.call(BallastMethod.Workflow.describe, describe, as: "ops")
        return described.info.status
    }

    @Test("an action with alice's token is recorded as alice in history and audit; the typed name is ignored")
    func tokenNamesTheActor() async throws {
        let cluster = try await AuthorizedNode(adminTokens: Self.tokens)
        defer { Task { await cluster.stop() } }
        let runID = try await start(cluster, "wf-ui-1")
        let signal = await post(cluster, "/workflows/wf-ui-1/\(runID)/signal",
                                "name=approve&input=true&reason=approved+by+phone&confirm=yes&operator=mallory", bearer: Self.aliceToken)
        #expect(signal.status == .seeOther, "\(String(decoding: signal.body, as: UTF8.self).suffix(600))")
        let terminate = await post(cluster, "/workflows/wf-ui-1/\(runID)/terminate",
                                   "reason=duplicate&confirm=yes&operator=mallory&admin_token=\(Self.aliceToken)")
        #expect(terminate.status == .forbidden, "a form post (a browser's) needs the page's CSRF token")
        let terminated = await post(cluster, "/workflows/wf-ui-1/\(runID)/terminate",
                                    "reason=duplicate&confirm=yes&operator=mallory&admin_token=\(Self.aliceToken)&csrf=\(UIRequests.csrfToken)")
        #expect(terminated.status == .seeOther, "the form field works like the header")
        let events = try cluster.history(runID)
        let signaled = try #require(events.first { if case .workflowExecutionSignaled? = $0.attributes { true } else { false } })
        #expect(signaled.workflowExecutionSignaled.identity == "alice")
        #expect(signaled.workflowExecutionSignaled.reason == "approved by phone")
        let last = try #require(events.last)
        #expect(last.workflowExecutionTerminated.identity == "alice" && last.workflowExecutionTerminated.reason == "duplicate")
        #expect(!events.contains { "\($0)".contains("mallory") }, "a typed name never reaches the history")
        let audit = try await cluster.waitForAudit { records in records.filter { $0.detail.hasPrefix("web UI ") }.count >= 2 }
        let actions = audit.filter { $0.detail.hasPrefix("web UI ") }
        #expect(actions.map(\.identity) == ["alice", "alice"] && actions.allSatisfy(\.identityVerified))
        #expect(actions.last?.detail.contains("web UI terminate of workflow wf-ui-1 run \(runID) (admin token, node 1); reason: duplicate") == true,
                "\(actions.map(\.detail))")
    }

    @Test("a reader-bound token is refused naming the missing role; a wrong token is unauthorized; the run stays open")
    func readerTokenRefused() async throws {
        let cluster = try await AuthorizedNode(adminTokens: Self.tokens)
        defer { Task { await cluster.stop() } }
        let runID = try await start(cluster, "wf-ui-2")
        let refused = await post(cluster, "/workflows/wf-ui-2/\(runID)/terminate", "reason=nope&confirm=yes", bearer: Self.readerToken)
        let page = String(decoding: refused.body, as: UTF8.self)
        #expect(refused.status == .forbidden)
        #expect(page.contains("identity reader-1 lacks role writer in namespace default, needed by TerminateWorkflowExecution"), "\(page.suffix(800))")
        let wrong = await post(cluster, "/workflows/wf-ui-2/\(runID)/terminate", "reason=nope&confirm=yes", bearer: Self.aliceToken + "x")
        #expect(wrong.status == .unauthorized)
        let none = await post(cluster, "/workflows/wf-ui-2/\(runID)/cancel",
                              "reason=nope&confirm=yes&operator=alice&csrf=\(UIRequests.csrfToken)")
        #expect(none.status == .unauthorized, "a typed name is no credential")
        #expect(try await status(cluster, "wf-ui-2") == .running)
        let audit = try await cluster.waitForAudit { $0.contains { $0.kind == .accessDenied && $0.identity == "reader-1" } }
        let denial = try #require(audit.first { $0.kind == .accessDenied && $0.identity == "reader-1" })
        #expect(denial.method == BallastMethod.Workflow.terminate && denial.role == .writer && denial.namespace == "default")
    }

    /// GETs a UI page from the node's admin router as `peer`.
    func get(_ cluster: AuthorizedNode, _ path: String, peer: String?) async -> AdminResponse {
        let request = AdminRequest(method: .GET, path: path, query: [:], body: [], headers: HTTPHeaders([("host", "127.0.0.1:8233")]),
                                   remoteAddress: "10.1.2.3",
                                   peer: peer.map { PeerIdentity(name: $0, subject: "CN=\($0)", alternativeNames: ["ballast://\($0)"]) })
        return await cluster.node.route(request)
    }

    @Test("the workflow pages need the reader role like the API; a refused action shows the refusal, not the run")
    func pagesNeedReader() async throws {
        let cluster = try await AuthorizedNode(adminTokens: Self.tokens)
        defer { Task { await cluster.stop() } }
        let runID = try await start(cluster, "wf-ui-4")
        let detail = "/workflows/wf-ui-4/\(runID)"
        for path in [detail, "/workflows", "/failing", detail + "/history.json"] {
            let reader = await get(cluster, path, peer: "reader-1")
            #expect(reader.status == .ok, "\(path) for a reader")
            let worker = await get(cluster, path, peer: "worker-1")
            let page = String(decoding: worker.body, as: UTF8.self)
            #expect(worker.status == .forbidden && page.contains("identity worker-1 lacks role reader"), "\(path): \(page.suffix(400))")
            #expect(!page.contains("wf-ui-4") || path != "/workflows", "the list does not leak to a worker")
            let anonymous = await get(cluster, path, peer: nil)
            #expect(anonymous.status == .forbidden, "\(path) without a certificate")
        }
        let detailPage = String(decoding: (await get(cluster, detail, peer: "reader-1")).body, as: UTF8.self)
        #expect(detailPage.contains("id=\"timeline\""))
        let refused = await post(cluster, detail + "/terminate", "reason=x&confirm=yes", bearer: Self.nobodyToken)
        let refusal = String(decoding: refused.body, as: UTF8.self)
        #expect(refused.status == .forbidden && refusal.contains("identity nobody lacks role writer"), "\(refusal.suffix(400))")
        #expect(!refusal.contains("id=\"timeline\""), "a caller without a role sees no history")
        #expect(try await status(cluster, "wf-ui-4") == .running)
    }

    @Test("a verified client certificate on the admin port names the actor; a reload swaps the tokens")
    func certificateAndReload() async throws {
        let cluster = try await AuthorizedNode(adminTokens: Self.tokens)
        defer { Task { await cluster.stop() } }
        let runID = try await start(cluster, "wf-ui-3")
        let alice = PeerIdentity(name: "alice", subject: "CN=alice", alternativeNames: ["ballast://alice"])
        // A browser with a client certificate still needs the page's CSRF token; the certificate
        // wins over the reader's token it also sends.
        let cancel = await post(cluster, "/workflows/wf-ui-3/\(runID)/cancel",
                                "reason=customer+asked&confirm=yes&csrf=\(UIRequests.csrfToken)&admin_token=\(Self.readerToken)", peer: alice)
        #expect(cancel.status == .seeOther, "\(String(decoding: cancel.body, as: UTF8.self).suffix(600))")
        let events = try cluster.history(runID)
        let requested = try #require(events.last { if case .workflowExecutionCancelRequested? = $0.attributes { true } else { false } })
        #expect(requested.workflowExecutionCancelRequested.identity == "alice")

        let next = "alice-next-0123456789abcdef0123456789abcdef"
        let path = try #require(cluster.node.configuration.adminTokensPath)
        try "alice \(next)\n".write(toFile: path, atomically: true, encoding: .utf8)
        #expect(cluster.node.reloadAdminTokens(reason: "SIGHUP"))
        let old = await post(cluster, "/workflows/wf-ui-3/\(runID)/terminate", "reason=x&confirm=yes", bearer: Self.aliceToken)
        #expect(old.status == .unauthorized, "the removed token no longer works")
        try "alice short\n".write(toFile: path, atomically: true, encoding: .utf8)
        #expect(!cluster.node.reloadAdminTokens(reason: "SIGHUP"), "a broken file is refused")
        let fresh = await post(cluster, "/workflows/wf-ui-3/\(runID)/terminate", "reason=done&confirm=yes", bearer: next)
        #expect(fresh.status == .seeOther, "the last good tokens stay in use")
        let audit = try await cluster.waitForAudit { $0.contains { $0.detail.contains("admin tokens reload refused") } }
        #expect(audit.contains { $0.detail.hasPrefix("admin tokens reloaded (SIGHUP): 1 tokens") })
    }
}
