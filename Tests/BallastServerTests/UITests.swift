import BallastEngine
import BallastProto
import BallastWire
@testable import BallastServer
import Foundation
import NIOHTTP1
import Testing

@Suite("Web UI: escaping, forms, CSRF, the admin token, page rendering")
struct UITests {
    static let hostile = "<script>alert(1)</script>\"'><img src=x onerror=alert(2)>&amp;\u{0}"

    @Test("escaping leaves no markup-significant character and replaces control characters")
    func escaping() {
        let escaped = HTML.escape(Self.hostile)
        for character in ["<", ">", "\"", "'", "\u{0}"] { #expect(!escaped.contains(character), "\(character) survived") }
        #expect(escaped.hasPrefix("&lt;script&gt;alert(1)&lt;/script&gt;&quot;&#39;&gt;"))
        #expect(escaped.contains("&amp;amp;"))
        #expect(HTML.urlComponent("a/b?c#d&e f+é") == "a%2Fb%3Fc%23d%26e%20f%2B%C3%A9")
        #expect(HTML.workflowPath("x/y", "r") == "/workflows/x%2Fy/r")
    }

    @Test("path segments are percent-decoded one by one, so an id with a slash or a plus round-trips")
    func segments() throws {
        let id = "transfer/1+2 <x>"
        let path = HTML.workflowPath(id, "run-1") + "/cancel"
        #expect(try UIRequests.segments(path) == ["workflows", id, "run-1", "cancel"])
        #expect(throws: UIRequestError.self) { try UIRequests.segments("/a/b/c/d/e/f/g") }
        #expect(throws: UIRequestError.self) { try UIRequests.validateID("bad\u{1}id", "workflow id") }
        #expect(throws: UIRequestError.self) { try UIRequests.validateID(String(repeating: "x", count: 1001), "workflow id") }
    }

    @Test("the list page escapes a hostile workflow id in text and link, and encodes it in the URL")
    func listEscapes() {
        var run = Ballast_V1_WorkflowExecutionInfo()
        run.execution.workflowID = Self.hostile
        run.execution.runID = "r1"
        run.type.name = "<b>T</b>"
        run.status = .running
        let html = UIPages.workflows(UIPages.WorkflowList(query: "x' onfocus='alert(3)", runs: [run], total: 1,
                                                          counts: [(.running, 1)], nextPage: "abc_-", isLaterPage: false))
        #expect(!html.contains("<script>"))
        #expect(!html.contains("<img"))
        #expect(!html.contains("<b>T</b>"))
        #expect(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"))
        #expect(html.contains("value=\"x&#39; onfocus=&#39;alert(3)\""))
        #expect(html.contains("href=\"/workflows/%3Cscript%3E"))
        #expect(html.contains("next=abc_-"))
    }

    @Test("the detail page renders a hostile id, payloads, signal and reason inert, pretty-prints JSON and flags encoded payloads")
    func detailEscapes() throws {
        var description = Ballast_V1_DescribeWorkflowExecutionResponse()
        description.info.execution.workflowID = Self.hostile
        description.info.execution.runID = "run-1"
        description.info.status = .running
        var started = Ballast_V1_HistoryEvent()
        started.eventID = 1
        started.eventTimeUnixNanos = 1_700_000_000_000_000_000
        var startedAttributes = Ballast_V1_WorkflowExecutionStartedEventAttributes()
        startedAttributes.input = try #require(UIRequests.jsonPayloads(#"{"b":"<img src=x onerror=alert(4)>","a":[1,2]}"#))
        started.workflowExecutionStarted = startedAttributes
        var signaled = Ballast_V1_HistoryEvent()
        signaled.eventID = 2
        signaled.eventTimeUnixNanos = started.eventTimeUnixNanos + 1
        var signal = Ballast_V1_WorkflowExecutionSignaledEventAttributes()
        signal.signalName = "<svg onload=alert(5)>"
        signal.reason = "<i>why</i>"
        signal.identity = "web-ui@127.0.0.1"
        var encrypted = Ballast_V1_Payload()
        encrypted.metadata["encoding"] = Data("binary/encrypted".utf8)
        encrypted.data = Data([1, 2, 3])
        signal.input.payloads = [encrypted]
        signaled.workflowExecutionSignaled = signal
        let page = UIDetailPage(description: description, events: [started, signaled], eventsTruncated: false, historyError: nil,
                                csrfToken: "tok\"en", actionMode: .token)
        let html = page.render()
        for markup in ["<script>", "<img", "<svg", "<i>"] { #expect(!html.contains(markup), "\(markup) rendered") }
        #expect(html.contains("&quot;a&quot; : [\n    1,\n    2\n  ],"), "pretty JSON with sorted keys")
        #expect(html.contains("&lt;i&gt;why&lt;/i&gt;"))
        #expect(html.contains("<binary/encrypted: AQID>") == false && html.contains("&lt;binary/encrypted: AQID&gt;"))
        #expect(html.contains("value=\"tok&quot;en\""))
        #expect(html.contains("name=\"admin_token\""), "the token field shows when a token is configured")
        #expect(!html.contains("name=\"operator\""), "no typed name when a token says who acts")
        #expect(html.contains("action=\"/workflows/%3Cscript%3Ealert%281%29%3C%2Fscript%3E%22%27%3E%3Cimg%20src%3Dx%20onerror%3Dalert%282%29%3E%26amp%3B%00/run-1/cancel\""))
        var refused = page
        refused.actionMode = .refused("this node enforces authorization")
        #expect(!refused.render().contains("<form class=\"card\"") && refused.render().contains("Actions are off"))
        var certified = page
        certified.actionMode = .certificate("<b>ops</b>")
        let certifiedHTML = certified.render()
        #expect(certifiedHTML.contains("recorded as <strong>&lt;b&gt;ops&lt;/b&gt;</strong>"))
        #expect(!certifiedHTML.contains("name=\"admin_token\"") && !certifiedHTML.contains("name=\"operator\""))
        var open = page
        open.actionMode = .open
        #expect(open.render().contains("name=\"operator\"") && !open.render().contains("name=\"admin_token\""))
        var input = Ballast_V1_Payloads()
        input.payloads = [encrypted]
        #expect(UIPages.payloadBlock(input, id: "x").contains("encoded (binary/encrypted, 3 bytes)"))
    }

    @Test("forms: urlencoded only, bounded, no repeated fields")
    func forms() throws {
        let form = try UIRequests.form(Array("reason=a+b%26c&confirm=yes&empty=".utf8), contentType: "application/x-www-form-urlencoded; charset=utf-8")
        #expect(form == ["reason": "a b&c", "confirm": "yes", "empty": ""])
        #expect(throws: UIRequestError.self) { try UIRequests.form(Array("a=1&a=2".utf8), contentType: "application/x-www-form-urlencoded") }
        #expect(throws: UIRequestError.self) { try UIRequests.form(Array("{}".utf8), contentType: "application/json") }
        let big = Array(repeating: UInt8(ascii: "a"), count: UIRequests.maxFormBytes + 1)
        #expect(throws: UIRequestError.self) { try UIRequests.form(big, contentType: "application/x-www-form-urlencoded") }
    }

    @Test("actions need a confirmation, a reason, bounded text without control characters, and JSON signal input")
    func actions() throws {
        let base = ["confirm": "yes", "reason": " customer asked ", "operator": "ann"]
        let cancel = try UIRequests.action("cancel", form: base)
        #expect(cancel == UIAction(kind: .cancel, reason: "customer asked", operatorName: "ann"))
        var noConfirm = base
        noConfirm["confirm"] = nil
        #expect(throws: UIRequestError.self) { try UIRequests.action("terminate", form: noConfirm) }
        #expect(throws: UIRequestError.self) { try UIRequests.action("cancel", form: base.merging(["reason": "  "]) { $1 }) }
        #expect(throws: UIRequestError.self) { try UIRequests.action("cancel", form: base.merging(["reason": "a\u{7}b"]) { $1 }) }
        #expect(throws: UIRequestError.self) {
            try UIRequests.action("cancel", form: base.merging(["reason": String(repeating: "r", count: 1001)]) { $1 })
        }
        #expect(throws: UIRequestError.self) { try UIRequests.action("signal", form: base.merging(["name": "go", "input": "{nope"]) { $1 }) }
        #expect(throws: UIRequestError.self) { try UIRequests.action("signal", form: base) }
        #expect(throws: UIRequestError.self) { try UIRequests.action("reset", form: base) }
        let signal = try UIRequests.action("signal", form: base.merging(["name": "approve", "input": "true"]) { $1 })
        #expect(signal.kind == .signal(name: "approve", input: "true"))
        #expect(UIRequests.operatorIdentity(name: "ann", remoteAddress: "10.0.0.9") == "web-ui:ann@10.0.0.9 (unverified)")
        #expect(UIRequests.operatorIdentity(name: "", remoteAddress: nil) == "web-ui@unknown (unverified)")
    }

    @Test("CSRF: the page's token and a same-origin Origin or Referer are required; another origin is refused")
    func csrf() throws {
        let good = ["csrf": UIRequests.csrfToken]
        var headers = HTTPHeaders([("host", "127.0.0.1:8233")])
        try UIRequests.checkSameOrigin(headers: headers, form: good)
        headers.add(name: "origin", value: "http://127.0.0.1:8233")
        try UIRequests.checkSameOrigin(headers: headers, form: good)
        #expect(throws: UIRequestError.self) { try UIRequests.checkSameOrigin(headers: headers, form: ["csrf": "guess"]) }
        #expect(throws: UIRequestError.self) { try UIRequests.checkSameOrigin(headers: headers, form: [:]) }
        let evil = HTTPHeaders([("host", "127.0.0.1:8233"), ("origin", "http://evil.example")])
        #expect(throws: UIRequestError.self) { try UIRequests.checkSameOrigin(headers: evil, form: good) }
        let evilReferer = HTTPHeaders([("host", "127.0.0.1:8233"), ("referer", "http://127.0.0.1:8233.evil.example/x")])
        #expect(throws: UIRequestError.self) { try UIRequests.checkSameOrigin(headers: evilReferer, form: good) }
        let referer = HTTPHeaders([("host", "127.0.0.1:8233"), ("referer", "http://127.0.0.1:8233/workflows/x")])
        try UIRequests.checkSameOrigin(headers: referer, form: good)
    }

    @Test("who acts: the certificate, else the token's identity (bound or shared), else a typed name marked unverified; never a claim over a credential")
    func actorIdentity() throws {
        let shared = "s3cret-token-0123456789"
        let aliceToken = String(repeating: "a", count: 32), bobToken = String(repeating: "b", count: 40)
        let tokens = try AdminTokens.parse("alice \(aliceToken)\nbob \(bobToken)\n", path: "t")
        func actor(_ credentials: AdminCredentials, peer: PeerIdentity? = nil, bearer: String? = nil, form: [String: String] = [:],
                   typed: String = "mallory") throws -> UIActor {
            let headers = HTTPHeaders(bearer.map { [("authorization", "Bearer \($0)")] } ?? [])
            return try AdminAuthorization.actor(peer: peer, headers: headers, form: form, credentials: credentials,
                                                typedName: typed, remoteAddress: "10.0.0.9")
        }
        // Nothing configured, authorization off: anyone, as what they typed, marked.
        #expect(try actor(AdminCredentials()) == UIActor(identity: "web-ui:mallory@10.0.0.9 (unverified)", source: .claim))
        // Bound tokens: the header or the form field names the identity; the typed name is ignored.
        let bound = AdminCredentials(sharedToken: shared, tokens: tokens)
        #expect(try actor(bound, bearer: aliceToken) == UIActor(identity: "alice", source: .token))
        #expect(try actor(bound, form: ["admin_token": bobToken]) == UIActor(identity: "bob", source: .token))
        #expect(try actor(bound, bearer: shared) == UIActor(identity: "admin-token", source: .sharedToken))
        for wrong in [nil, "", aliceToken + "x", String(aliceToken.dropLast())] {
            #expect(throws: UIRequestError.self) { try actor(bound, bearer: wrong) }
        }
        #expect((try? actor(bound, bearer: "nope"))?.identity == nil)
        // A verified client certificate wins over any token or typed name.
        let peer = PeerIdentity(name: "ops", subject: "CN=ops", alternativeNames: ["ballast://ops"])
        #expect(try actor(bound, peer: peer, bearer: bobToken) == UIActor(identity: "ops", source: .certificate))
        #expect(AdminAuthorization.actionMode(peer: peer, credentials: bound) == .certificate("ops"))
        // Enforcing authorization without a certificate or any token: actions are refused.
        let enforcing = AdminCredentials(enforceAuthorization: true)
        #expect(throws: UIRequestError.self) { try actor(enforcing) }
        if case .refused = AdminAuthorization.actionMode(peer: nil, credentials: enforcing) {} else { Issue.record("not refused") }
        #expect(try actor(AdminCredentials(tokens: tokens, enforceAuthorization: true), bearer: aliceToken).identity == "alice")
        // Scripts sending a bearer header skip the CSRF check (and are then judged by the token);
        // form posts, and any request to a node without tokens, do not.
        #expect(AdminAuthorization.usesBearer(headers: HTTPHeaders([("authorization", "bearer \(aliceToken)")]), credentials: bound))
        #expect(!AdminAuthorization.usesBearer(headers: HTTPHeaders(), credentials: bound))
        #expect(!AdminAuthorization.usesBearer(headers: HTTPHeaders([("authorization", "Basic eDp5")]), credentials: bound))
        #expect(!AdminAuthorization.usesBearer(headers: HTTPHeaders([("authorization", "Bearer \(shared)")]), credentials: AdminCredentials()))
        #expect(AdminAuthorization.constantTimeEquals([], []))
        #expect(!AdminAuthorization.constantTimeEquals([1], [1, 0]))
        #expect(!AdminAuthorization.constantTimeEquals([1, 2], [1, 3]))
    }

    @Test("the cluster page marks the leader, computes lag from the highest reachable commit, and escapes addresses")
    func clusterPage() {
        let view = ClusterView(leader: "2", members: [
            .init(id: "1", role: "follower", term: 3, commit: 90, applied: 88, api: "127.0.0.1:1", raft: "r", admin: "<a>",
                  reachable: true, leader: "2"),
            .init(id: "2", role: "leader", term: 3, commit: 100, applied: 100, api: "127.0.0.1:2", raft: "r", admin: "a",
                  reachable: true, leader: "2"),
            .init(id: "3", role: "follower", term: 0, commit: 500, applied: 0, api: "", raft: "r", admin: "", reachable: false,
                  leader: nil),
        ])
        let html = UIPages.cluster(view)
        #expect(html.components(separatedBy: "data-role=\"leader\"").count == 2)
        #expect(html.contains("<td class=\"mono\">12</td>"), "lag of node 1: 100 − 88")
        #expect(html.contains("&lt;a&gt;"))
        #expect(html.contains("class=\"unreachable\""))
    }

    @Test("pages need nothing the content security policy forbids: no inline style or script, no event handler attributes")
    func contentSecurityPolicyCompliance() {
        var description = Ballast_V1_DescribeWorkflowExecutionResponse()
        description.info.execution.workflowID = "w"
        description.info.execution.runID = "r"
        description.info.status = .running
        let banner = UIBanner(nodeID: "2", role: "follower", leaderID: "1", leaderAdmin: "127.0.0.1:1", localReads: true)
        let bodies = [
            UIDetailPage(description: description, events: [], eventsTruncated: false, historyError: nil, csrfToken: "t",
                         actionMode: .open).render(),
            UIPages.workflows(UIPages.WorkflowList(query: "", runs: [], total: 0, counts: [], nextPage: "", isLaterPage: false)),
            UIPages.failing([], moreThan: 3, truncated: false, workflowTaskErrors: [:]),
            UIPages.cluster(ClusterView(leader: nil, members: [])),
        ]
        for body in bodies {
            let page = UIPages.layout(title: "t", active: "/workflows", banner: banner, body: body)
            #expect(!page.contains("style="))
            #expect(page.components(separatedBy: "<script").count == 2 && page.contains("<script src=\"/ui/app.js\"></script>"))
            #expect(page.range(of: #" on[a-z]+="#, options: .regularExpression) == nil)
            #expect(page.contains("This node is a follower"))
        }
        let policy = BallastNode.uiSecurityHeaders.first { $0.name == "content-security-policy" }?.value ?? ""
        #expect(policy.contains("script-src 'self'") && policy.contains("frame-ancestors 'none'") && !policy.contains("unsafe-inline"))
    }

    @Test("child workflows from the history link to their runs, with their outcome")
    func children() {
        var description = Ballast_V1_DescribeWorkflowExecutionResponse()
        description.info.execution.workflowID = "parent"
        description.info.execution.runID = "p1"
        description.info.status = .running
        var started = Ballast_V1_HistoryEvent()
        started.eventID = 1
        started.workflowExecutionStarted = Ballast_V1_WorkflowExecutionStartedEventAttributes()
        var initiated = Ballast_V1_HistoryEvent()
        initiated.eventID = 5
        var initiatedAttributes = Ballast_V1_StartChildWorkflowExecutionInitiatedEventAttributes()
        initiatedAttributes.workflowID = "child/1"
        initiatedAttributes.workflowType.name = "Child"
        initiated.startChildWorkflowExecutionInitiated = initiatedAttributes
        var childStarted = Ballast_V1_HistoryEvent()
        childStarted.eventID = 6
        var childStartedAttributes = Ballast_V1_ChildWorkflowExecutionStartedEventAttributes()
        childStartedAttributes.initiatedEventID = 5
        childStartedAttributes.workflowExecution.workflowID = "child/1"
        childStartedAttributes.workflowExecution.runID = "c1"
        childStarted.childWorkflowExecutionStarted = childStartedAttributes
        var completed = Ballast_V1_HistoryEvent()
        completed.eventID = 9
        var completedAttributes = Ballast_V1_ChildWorkflowExecutionCompletedEventAttributes()
        completedAttributes.initiatedEventID = 5
        completed.childWorkflowExecutionCompleted = completedAttributes
        var pending = Ballast_V1_PendingChildInfo()
        pending.workflowID = "child-2"
        pending.runID = "c2"
        pending.initiatedEventID = 12
        description.pendingChildren = [pending]
        let html = UIDetailPage(description: description, events: [started, initiated, childStarted, completed], eventsTruncated: false,
                                historyError: nil, csrfToken: "t", actionMode: .open).children()
        #expect(html.contains("<a href=\"/workflows/child%2F1/c1\">child/1</a>"))
        #expect(html.contains("<td>completed</td>"))
        #expect(html.contains("<a href=\"/workflows/child-2/c2\">child-2</a>"))
        #expect(html.contains("<td>running</td>"))
    }
}
