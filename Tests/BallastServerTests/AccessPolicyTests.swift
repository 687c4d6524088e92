import BallastEngine
import BallastProto
import BallastWire
import Foundation
import Logging
import Testing
@testable import BallastServer

@Suite("Roles file")
struct RolesFileTests {
    @Test("parses bindings, comments and blank lines")
    func parses() throws {
        let grants = try RolesFile.parse("""
            # identity role namespace queue
            ops   admin  *

            w\tworker default payments   # a worker
            r reader default
            """, path: "roles.txt")
        #expect(grants == [
            RoleGrant(identity: "ops", role: .admin, namespace: "*"),
            RoleGrant(identity: "w", role: .worker, namespace: "default", taskQueue: "payments"),
            RoleGrant(identity: "r", role: .reader, namespace: "default"),
        ])
    }

    @Test("errors name the file and the line")
    func errorsNameTheLine() {
        let cases: [(String, String)] = [
            ("ops admin *\nbob wrtier default", "roles.txt:2: unknown role 'wrtier'"),
            ("ops admin", "roles.txt:1: expected `IDENTITY ROLE NAMESPACE [TASK_QUEUE]`"),
            ("\n\nbob writer default payments", "roles.txt:3: invalid argument: a task queue can only be given for the worker role"),
            ("a reader default\na reader default", "roles.txt:2: duplicate binding"),
            ("a reader default x y", "roles.txt:1: expected"),
        ]
        for (text, expected) in cases {
            #expect(throws: RolesFileError.self) { try RolesFile.parse(text, path: "roles.txt") }
            do {
                _ = try RolesFile.parse(text, path: "roles.txt")
            } catch {
                #expect(error.description.hasPrefix(expected), "\(error.description)")
            }
        }
    }

    @Test("a missing file is a clear error")
    func missingFile() {
        #expect(throws: RolesFileError.self) { try RolesFile.load(path: "/nonexistent/roles.txt") }
    }
}

@Suite("Access policy")
struct AccessPolicyTests {
    private func context(_ peer: String?) -> GRPCServerContext {
        GRPCServerContext(path: "", metadata: GRPCMetadata(), deadline: nil,
                          peer: peer.map { PeerIdentity(name: $0, subject: "CN=\($0)", alternativeNames: []) })
    }

    private func authorizer(_ grants: [RoleGrant], enforce: Bool = true) -> Authorizer {
        var engine = WorkflowEngine()
        var request = Ballast_V1_BootstrapRolesRequest()
        request.bindings = grants.map(\.proto)
        var entry = Ballast_V1_EngineEntry()
        entry.formatVersion = engineFormatVersion
        entry.bootstrapRoles = request
        _ = try? engine.apply(entry, index: 1)
        let publisher = RoleTablePublisher()
        publisher.publish(engine)
        return Authorizer(enforce: enforce, publisher: publisher, nodeID: 1, logger: Logger(label: "test"))
    }

    @Test("the table names the brief's role for each kind of method")
    func tableRoles() {
        let table = AccessPolicy.table
        #expect(table[BallastMethod.Workflow.describe]?.requirement == .role(.reader))
        #expect(table[BallastMethod.Workflow.list]?.requirement == .role(.reader))
        #expect(table[BallastMethod.Workflow.count]?.requirement == .role(.reader))
        #expect(table[BallastMethod.Workflow.query]?.requirement == .role(.reader))
        #expect(table[BallastMethod.Workflow.getHistory]?.requirement == .role(.reader, alsoWorker: true))
        for path in [BallastMethod.Workflow.start, BallastMethod.Workflow.signal, BallastMethod.Workflow.signalWithStart,
                     BallastMethod.Workflow.requestCancel, BallastMethod.Workflow.terminate] {
            #expect(table[path]?.requirement == .role(.writer), "\(path)")
            #expect(table[path]?.carriesIdentity == true, "\(path)")
        }
        for path in [BallastMethod.Worker.pollWorkflowTask, BallastMethod.Worker.streamTasks,
                     BallastMethod.Worker.respondActivityTaskCompleted, BallastMethod.Worker.recordActivityTaskHeartbeat] {
            #expect(table[path]?.requirement == .role(.worker), "\(path)")
        }
        for path in [BallastMethod.Cluster.addMember, BallastMethod.Cluster.removeMember, BallastMethod.Admin.grantRole,
                     BallastMethod.Admin.readAuditLog, BallastMethod.Workflow.addSearchAttributes] {
            #expect(table[path]?.requirement == .role(.admin), "\(path)")
        }
    }

    @Test("a completion is checked against the queue its task token names")
    func completionUsesTokenQueue() throws {
        let authorizer = authorizer([RoleGrant(identity: "w", role: .worker, namespace: "default", taskQueue: "payments")])
        var token = Ballast_V1_TaskToken()
        (token.namespace, token.workflowID, token.runID, token.taskQueue) = ("default", "wf", "r", "payments")
        var request = Ballast_V1_RespondActivityTaskCompletedRequest()
        request.taskToken = try token.serializedData()
        request.identity = "someone-else"
        let path = BallastMethod.Worker.respondActivityTaskCompleted
        let allowed = authorizer.decide(path: path, access: AccessPolicy.table[path], request: try request.serializedBytes(),
                                        context: context("w"))
        guard case .proceed(let bytes) = allowed else { Issue.record("refused: \(allowed)"); return }
        #expect(try Ballast_V1_RespondActivityTaskCompletedRequest(serializedBytes: bytes).identity == "w")
        token.taskQueue = "payroll"
        request.taskToken = try token.serializedData()
        let refused = authorizer.decide(path: path, access: AccessPolicy.table[path], request: try request.serializedBytes(),
                                        context: context("w"))
        #expect(refused == .refuse(GRPCStatus(.permissionDenied,
            "identity w lacks role worker in namespace default on task queue payroll, needed by RespondActivityTaskCompleted")))
        request.taskToken = Data([0xff, 0xff])
        let garbage = authorizer.decide(path: path, access: AccessPolicy.table[path], request: try request.serializedBytes(),
                                        context: context("w"))
        guard case .refuse(let status) = garbage else { Issue.record("a bad token was let through"); return }
        #expect(status.code == .invalidArgument)
    }

    @Test("enforcement off: no role needed, identity marked unverified; a method outside the table is refused when on")
    func modes() throws {
        let open = authorizer([], enforce: false)
        var start = Ballast_V1_StartWorkflowRequest()
        start.identity = "alice"
        let path = BallastMethod.Workflow.start
        let decision = open.decide(path: path, access: AccessPolicy.table[path], request: try start.serializedBytes(), context: context(nil))
        guard case .proceed(let bytes) = decision else { Issue.record("refused: \(decision)"); return }
        #expect(try Ballast_V1_StartWorkflowRequest(serializedBytes: bytes).identity == "alice (unverified)")
        let closed = authorizer([RoleGrant(identity: "root", role: .admin, namespace: "*")])
        let unknown = closed.decide(path: "/x.Y/Z", access: nil, request: [], context: context("root"))
        guard case .refuse(let status) = unknown else { Issue.record("an unknown method was let through"); return }
        #expect(status.code == .permissionDenied)
    }

    @Test("enforcement off: a claimed identity of up to 1,000 bytes is marked; a longer one is refused, however the request is walked")
    func claimedIdentityLength() throws {
        let open = authorizer([], enforce: false)
        func decide(_ path: String, _ bytes: [UInt8]) -> Authorizer.Decision {
            open.decide(path: path, access: AccessPolicy.table[path], request: bytes, context: context(nil))
        }
        var start = Ballast_V1_StartWorkflowRequest()
        start.identity = String(repeating: "a", count: Authorizer.maxClaimedIdentityBytes)
        guard case .proceed(let bytes) = decide(BallastMethod.Workflow.start, try start.serializedBytes()) else {
            Issue.record("a 1,000-byte identity was refused"); return
        }
        #expect(try Ballast_V1_StartWorkflowRequest(serializedBytes: bytes).identity == start.identity + CallerIdentity.unverifiedSuffix)
        start.identity += "é"
        let tooLong = GRPCStatus(.invalidArgument, "identity is 1002 bytes; at most 1000 are accepted")
        #expect(decide(BallastMethod.Workflow.start, try start.serializedBytes()) == .refuse(tooLong))
        // An unknown group field: `IdentityField` does not walk it, the request is decoded instead.
        let withGroup = try start.serializedBytes() + [0xa3, 0x06, 0xa4, 0x06]  // field 100, start and end group
        #expect(decide(BallastMethod.Workflow.start, withGroup) == .refuse(tooLong))
        // A nested identity (signal-with-start's start.identity) and a worker's stream.
        var signalWithStart = Ballast_V1_SignalWithStartWorkflowRequest()
        signalWithStart.start.identity = start.identity
        #expect(decide(BallastMethod.Workflow.signalWithStart, try signalWithStart.serializedBytes()) == .refuse(tooLong))
        var stream = Ballast_V1_StreamTasksRequest()
        stream.identity = String(repeating: "w", count: 4_096)
        guard case .refuse(let status) = decide(BallastMethod.Worker.streamTasks, try stream.serializedBytes()) else {
            Issue.record("a 4,096-byte worker identity was accepted"); return
        }
        #expect(status.code == .invalidArgument)
    }

    @Test("denials are aggregated per caller and method, bounded per flush")
    func aggregation() {
        var aggregator = DenialAggregator()
        let key = DenialAggregator.Key(identity: "eve", verified: true, method: "/m", namespace: "default", role: .writer, taskQueue: "")
        let first = aggregator.record(key, detail: "d", nowNanos: 1)
        let second = aggregator.record(key, detail: "d", nowNanos: 2)
        #expect(first && !second, "only the first call of a key is logged")
        for number in 0 ..< 2_000 {
            var other = key
            other.identity = "bot-\(number)"
            _ = aggregator.record(other, detail: "d", nowNanos: 3)
        }
        let records = aggregator.drain(nodeID: 1, nowNanos: 4)
        #expect(records.count == DenialAggregator.maxRecordsPerFlush + 1)
        let busiest = records[0], suppressed = records[records.count - 1]
        #expect(busiest.identity == "eve" && busiest.count == 2, "the busiest key first")
        #expect(suppressed.kind == .denialsSuppressed)
        let total = records.map(\.count).reduce(0, +)
        #expect(total == 2_002, "every call is counted")
        #expect(aggregator.isEmpty)
    }
}

@Suite("Calls from member nodes")
struct MemberNodeCallTests {
    private func context(_ peer: String) -> GRPCServerContext {
        GRPCServerContext(path: "", metadata: GRPCMetadata(), deadline: nil,
                          peer: PeerIdentity(name: peer, subject: "CN=\(peer)", alternativeNames: []))
    }

    @Test("a member node's forwarded call passes and keeps its identity; a non-member node id and RecordAuditEvents from a person do not")
    func memberNodes() throws {
        var engine = WorkflowEngine()
        var bootstrap = Ballast_V1_BootstrapRolesRequest()
        bootstrap.bindings = [RoleGrant(identity: "root", role: .admin, namespace: "*").proto]
        var entry = Ballast_V1_EngineEntry()
        entry.formatVersion = engineFormatVersion
        entry.bootstrapRoles = bootstrap
        _ = try engine.apply(entry, index: 1)
        let publisher = RoleTablePublisher()
        publisher.publish(engine)
        let authorizer = Authorizer(enforce: true, publisher: publisher, nodeID: 1, logger: Logger(label: "test"),
                                    isMemberNode: { $0 == 2 })
        var terminate = Ballast_V1_TerminateWorkflowRequest()
        terminate.identity = "web-ui:ops@10.0.0.7"
        let bytes: [UInt8] = try terminate.serializedBytes()
        let path = BallastMethod.Workflow.terminate
        #expect(authorizer.decide(path: path, access: AccessPolicy.table[path], request: bytes, context: context("node/2")) == .proceed(bytes))
        guard case .refuse(let status) = authorizer.decide(path: path, access: AccessPolicy.table[path], request: bytes,
                                                           context: context("node/9")) else {
            Issue.record("a non-member node id was let through")
            return
        }
        #expect(status.code == .permissionDenied)
        let record = BallastMethod.Admin.recordAuditEvents
        let request: [UInt8] = try Ballast_V1_RecordAuditEventsRequest().serializedBytes()
        guard case .refuse(let refused) = authorizer.decide(path: record, access: AccessPolicy.table[record], request: request,
                                                            context: context("root")) else {
            Issue.record("an admin person may not inject audit records")
            return
        }
        #expect(refused.message.contains("only a member node"))
        #expect(authorizer.decide(path: record, access: AccessPolicy.table[record], request: request, context: context("node/2"))
            == .proceed(request))
    }
}
