import BallastEngine
import BallastProto
import BallastWire
import Foundation
import SwiftProtobuf
import Testing
@testable import BallastServer

/// The cleartext identity rewrite (`IdentityField`) against swift-protobuf: appending the new
/// identity must decode exactly as setting it on the decoded request and encoding it again.
@Suite("Identity field rewrite")
struct IdentityFieldTests {
    /// Requests of one method's type: built with an identity, checked through the table's row.
    private struct Method<Request: SwiftProtobuf.Message & Equatable> {
        let path: String
        let identity: WritableKeyPath<Request, String>
        let samples: [Request]
    }

    private static func payloads(_ texts: String...) -> Ballast_V1_Payloads {
        var payloads = Ballast_V1_Payloads()
        payloads.payloads = texts.map { text in
            var payload = Ballast_V1_Payload()
            payload.metadata = ["encoding": Data("json/plain".utf8)]
            payload.data = Data(text.utf8)
            return payload
        }
        return payloads
    }

    private static func start(identity: String) -> Ballast_V1_StartWorkflowRequest {
        var request = Ballast_V1_StartWorkflowRequest()
        request.namespace = "default"
        request.workflowID = "transfer-1"
        request.workflowType.name = "Transfer"
        request.taskQueue = "payments"
        request.input = payloads(#"{"amount":100}"#)
        request.identity = identity
        request.requestID = "r-1"
        request.searchAttributes.indexedFields["TransferOutcome"] = Ballast_V1_SearchAttributeValue()
        return request
    }

    private static let identities = ["", "alice", "bob (unverified)", "Zoë 🙂", String(repeating: "x", count: 300)]

    /// Checks every sample with every claimed identity, the sample's bytes followed by a second
    /// identity occurrence, and every proper prefix of the bytes (which must never decode as
    /// something else than swift-protobuf makes of them).
    private func check<Request: SwiftProtobuf.Message & Equatable>(_ method: Method<Request>) throws {
        let access = try #require(AccessPolicy.table[method.path], "\(method.path)")
        let field = try #require(access.identityField, "\(method.path) carries an identity")
        for sample in method.samples {
            for claimed in Self.identities {
                var request = sample
                request[keyPath: method.identity] = claimed
                let bytes: [UInt8] = try request.serializedBytes()
                let rewritten = try #require(field.rewrite(bytes, CallerIdentity.unverified), "\(method.path)")
                var expected = request
                expected[keyPath: method.identity] = CallerIdentity.unverified(claimed)
                #expect(try Request(serializedBytes: rewritten) == expected, "\(method.path) claimed \(claimed)")
                // The full decode path gives the same request.
                let (_, decoded) = try access.inspect(bytes, CallerIdentity.unverified)
                #expect(try Request(serializedBytes: try #require(decoded)) == expected)

                // A request naming its identity twice: the last one is the claim.
                var second = Request()
                second[keyPath: method.identity] = "mallory"
                let twice = bytes + (try second.serializedBytes() as [UInt8])
                var lastWins = try Request(serializedBytes: twice)
                #expect(lastWins[keyPath: method.identity] == "mallory")
                lastWins[keyPath: method.identity] = CallerIdentity.unverified("mallory")
                #expect(try Request(serializedBytes: try #require(field.rewrite(twice, CallerIdentity.unverified))) == lastWins)

                // Cut anywhere: either not walkable (nil: the caller decodes in full, as before),
                // or it decodes exactly when the cut request does, to the same request.
                for cut in stride(from: 0, to: bytes.count, by: max(1, bytes.count / 40)) {
                    let prefix = Array(bytes[..<cut])
                    guard let spliced = field.rewrite(prefix, CallerIdentity.unverified) else { continue }
                    let original = try? Request(serializedBytes: prefix)
                    let after = try? Request(serializedBytes: spliced)
                    #expect((original == nil) == (after == nil), "\(method.path) cut at \(cut)")
                    if var original {
                        original[keyPath: method.identity] = CallerIdentity.unverified(original[keyPath: method.identity])
                        #expect(after == original)
                    }
                }
            }
        }
    }

    @Test("every method that carries an identity: the rewrite decodes as the full decode path's request")
    func everyMethod() throws {
        let workflow = BallastMethod.Workflow.self, worker = BallastMethod.Worker.self, admin = BallastMethod.Admin.self
        var token = Ballast_V1_TaskToken()
        (token.namespace, token.workflowID, token.runID, token.taskQueue) = ("default", "wf", "run", "payments")
        let tokenBytes: Data = try token.serializedBytes()

        try check(Method(path: workflow.start, identity: \Ballast_V1_StartWorkflowRequest.identity,
                         samples: [Ballast_V1_StartWorkflowRequest(), Self.start(identity: "")]))
        var signal = Ballast_V1_SignalWorkflowRequest()
        (signal.namespace, signal.signalName, signal.input) = ("default", "approve", Self.payloads("true"))
        try check(Method(path: workflow.signal, identity: \Ballast_V1_SignalWorkflowRequest.identity, samples: [signal]))
        var signalWithStart = Ballast_V1_SignalWithStartWorkflowRequest()
        (signalWithStart.signalName, signalWithStart.signalInput) = ("approve", Self.payloads("1", "2"))
        var withStart = signalWithStart
        withStart.start = Self.start(identity: "carol")
        try check(Method(path: workflow.signalWithStart, identity: \Ballast_V1_SignalWithStartWorkflowRequest.start.identity,
                         samples: [Ballast_V1_SignalWithStartWorkflowRequest(), signalWithStart, withStart]))
        try check(Method(path: workflow.requestCancel, identity: \Ballast_V1_RequestCancelWorkflowRequest.identity,
                         samples: [Ballast_V1_RequestCancelWorkflowRequest()]))
        try check(Method(path: workflow.terminate, identity: \Ballast_V1_TerminateWorkflowRequest.identity,
                         samples: [Ballast_V1_TerminateWorkflowRequest()]))
        var stream = Ballast_V1_StreamTasksRequest()
        (stream.namespace, stream.taskQueue, stream.partialHistory) = ("default", "payments", true)
        try check(Method(path: worker.streamTasks, identity: \Ballast_V1_StreamTasksRequest.identity, samples: [stream]))
        try check(Method(path: worker.pollWorkflowTask, identity: \Ballast_V1_PollWorkflowTaskRequest.identity,
                         samples: [Ballast_V1_PollWorkflowTaskRequest()]))
        try check(Method(path: worker.pollActivityTask, identity: \Ballast_V1_PollActivityTaskRequest.identity,
                         samples: [Ballast_V1_PollActivityTaskRequest()]))
        var completed = Ballast_V1_RespondWorkflowTaskCompletedRequest()
        completed.taskToken = tokenBytes
        var command = Ballast_V1_Command()
        command.completeWorkflowExecution.result = Self.payloads(#"{"outcome":"completed"}"#)
        completed.commands = [command, command]
        completed.binaryChecksum = "build-7"
        try check(Method(path: worker.respondWorkflowTaskCompleted, identity: \Ballast_V1_RespondWorkflowTaskCompletedRequest.identity,
                         samples: [completed]))
        var failed = Ballast_V1_RespondWorkflowTaskFailedRequest()
        failed.taskToken = tokenBytes
        failed.failure.message = "boom"
        try check(Method(path: worker.respondWorkflowTaskFailed, identity: \Ballast_V1_RespondWorkflowTaskFailedRequest.identity,
                         samples: [failed]))
        var activityCompleted = Ballast_V1_RespondActivityTaskCompletedRequest()
        activityCompleted.taskToken = tokenBytes
        activityCompleted.result = Self.payloads("42")
        try check(Method(path: worker.respondActivityTaskCompleted, identity: \Ballast_V1_RespondActivityTaskCompletedRequest.identity,
                         samples: [activityCompleted]))
        try check(Method(path: worker.respondActivityTaskFailed, identity: \Ballast_V1_RespondActivityTaskFailedRequest.identity,
                         samples: [Ballast_V1_RespondActivityTaskFailedRequest()]))
        try check(Method(path: worker.respondActivityTaskCanceled, identity: \Ballast_V1_RespondActivityTaskCanceledRequest.identity,
                         samples: [Ballast_V1_RespondActivityTaskCanceledRequest()]))
        try check(Method(path: worker.recordActivityTaskHeartbeat, identity: \Ballast_V1_RecordActivityTaskHeartbeatRequest.identity,
                         samples: [Ballast_V1_RecordActivityTaskHeartbeatRequest()]))
        try check(Method(path: worker.respondQueryTaskCompleted, identity: \Ballast_V1_RespondQueryTaskCompletedRequest.identity,
                         samples: [Ballast_V1_RespondQueryTaskCompletedRequest()]))
        try check(Method(path: admin.grantRole, identity: \Ballast_V1_GrantRoleRequest.actor, samples: [Ballast_V1_GrantRoleRequest()]))
        try check(Method(path: admin.revokeRole, identity: \Ballast_V1_RevokeRoleRequest.actor, samples: [Ballast_V1_RevokeRoleRequest()]))

        let covered = 17
        #expect(AccessPolicy.table.values.filter(\.carriesIdentity).count == covered, "a new method with an identity needs a check here")
    }

    @Test("bytes this reader does not walk give nil, so the caller decodes in full")
    func notWalkable() {
        let field = IdentityField(3)
        let cases: [(String, [UInt8])] = [
            ("a varint that never ends", [0x08, 0xFF, 0xFF]),
            ("a length past the end", [0x0A, 0x05, 0x61]),
            ("field number 0", [0x02, 0x00]),
            ("a group", [0x0B, 0x0C]),
            ("wire type 6", [0x0E]),
            ("the identity as a varint", [0x18, 0x01]),
            ("an identity that is not UTF-8", [0x1A, 0x02, 0xC3, 0x28]),
            ("a fixed64 cut short", [0x09, 0x01, 0x02]),
        ]
        for (name, bytes) in cases {
            #expect(field.rewrite(bytes, CallerIdentity.unverified) == nil, "\(name)")
        }
        let marked = Array(CallerIdentity.unverified("").utf8)
        #expect(field.rewrite([], CallerIdentity.unverified) == [0x1A, UInt8(marked.count)] + marked, "an empty request")
    }
}
