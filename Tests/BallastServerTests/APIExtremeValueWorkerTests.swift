import BallastEngine
import BallastFuzzSupport
import BallastProto
import BallastWire
import Foundation
import SwiftProtobuf
import Synchronization
import Testing
@testable import BallastServer

/// The calls `APIExtremeValueTests` leaves out — long polls, task streams, queries, the worker's
/// completions, the remaining workflow calls, roles and the audit log, DescribeCluster and
/// PromoteMember — sent to a running node with an extreme number at every field of the request
/// and of the messages inside it (`WireFormat`). Task tokens, stream tokens and query ids come
/// from real polls, streams and queries, a fresh one for each variant, so the variants reach
/// past the token checks. Every call must end by its deadline with a status, and the node must
/// keep serving: still the leader, answering describe, a start and a poll.
@Suite("Worker, stream and admin calls with extreme numbers", .serialized)
struct APIExtremeValueWorkerTests {
    @Test func longPollsTaskStreamsAndGrantsEndByTheirDeadline() async throws {
        let single = try await SingleNode()
        let client = try await single.client()
        // Nothing is ever ready on "idle": a poll that decodes waits, then answers empty 0.5 s
        // before its deadline (docs/protocol.md); it must never run past it.
        var workflowPoll = Ballast_V1_PollWorkflowTaskRequest()
        (workflowPoll.namespace, workflowPoll.taskQueue, workflowPoll.identity) = ("default", "idle", "poller")
        var activityPoll = Ballast_V1_PollActivityTaskRequest()
        (activityPoll.namespace, activityPoll.taskQueue, activityPoll.identity) = ("default", "idle", "poller")
        var sent = 0
        for (path, request) in [(BallastMethod.Worker.pollWorkflowTask, workflowPoll as any SwiftProtobuf.Message),
                                (BallastMethod.Worker.pollActivityTask, activityPoll)] {
            let variants = WireFormat.variants(of: try request.serializedBytes(), depth: 3)
            let answers = await Self.sendAll(client, path, variants, timeout: .seconds(3), parallel: variants.count)
            for answer in answers {
                #expect(answer.status.code != .deadlineExceeded, "\(path): a long poll ran to its deadline: \(answer.status)")
            }
            sent += answers.count
        }
        sent += try await streamTasksVariants(single, client)
        sent += try await grantVariants(single, client)
        #expect(sent >= 4 * 140, "only \(sent) variants sent")
        try await Self.expectStillServingThenStop(single, client)
    }

    /// StreamTasks opened with each variant: it answers `started` (then stays open until the
    /// caller's deadline) or ends with a status; either way the node forgets it when it ends.
    private func streamTasksVariants(_ single: SingleNode, _ client: GRPCClient) async throws -> Int {
        var open = Ballast_V1_StreamTasksRequest()
        (open.namespace, open.taskQueue, open.identity, open.buildID) = ("default", "idle", "streamer", "build")
        (open.workflowTaskSlots, open.activityTaskSlots, open.acceptQueries, open.partialHistory) = (4, 4, true, true)
        let variants = WireFormat.variants(of: try open.serializedBytes(), depth: 3)
        let answers = await Self.sendAll(client, BallastMethod.Worker.streamTasks, variants, timeout: .seconds(2),
                                         parallel: variants.count)
        var started = 0
        for answer in answers {
            if let first = answer.messages.first {
                let event = try Ballast_V1_TaskStreamEvent(serializedBytes: first)
                #expect(event.started.streamToken.count == 16, "the first message of a task stream is started")
                started += 1
            } else {
                #expect(answer.status.code != .deadlineExceeded, "a task stream neither started nor ended: \(answer.status)")
            }
        }
        #expect(started > 0)
        try await waitUntil("every task stream is forgotten") { single.node.dispatcher.metricsSnapshot().streams == 0 }
        return answers.count
    }

    /// GrantTaskSlots naming a stream that is open, so extreme slot counts reach the dispatcher.
    private func grantVariants(_ single: SingleNode, _ client: GRPCClient) async throws -> Int {
        var open = Ballast_V1_StreamTasksRequest()
        (open.taskQueue, open.workflowTaskSlots, open.activityTaskSlots) = ("idle", 1, 1)
        var events = try client.serverStreaming(BallastMethod.Worker.streamTasks, request: open,
                                                responseType: Ballast_V1_TaskStreamEvent.self).makeAsyncIterator()
        let token = try #require(try await events.next()).started.streamToken
        var grant = Ballast_V1_GrantTaskSlotsRequest()
        (grant.streamToken, grant.workflowTaskSlots, grant.activityTaskSlots) = (Self.placeholder, 3, 3)
        let variants = WireFormat.variants(of: try grant.serializedBytes(), depth: 3).map {
            Self.substitute($0, field: 1, template: [UInt8](Self.placeholder), fresh: [UInt8](token))
        }
        let answers = await Self.sendAll(client, BallastMethod.Worker.grantTaskSlots, variants, timeout: .seconds(5), parallel: 16)
        for answer in answers {
            #expect(answer.status.code != .deadlineExceeded, "GrantTaskSlots did not answer: \(answer.status)")
        }
        #expect(answers.contains { $0.status.code == .ok }, "no grant reached the open stream")
        // Credit is capped per kind (docs/protocol.md), whatever was granted.
        (grant.streamToken, grant.workflowTaskSlots, grant.activityTaskSlots) = (token, 0, 0)
        let credit: Ballast_V1_GrantTaskSlotsResponse = try await client.unary(BallastMethod.Worker.grantTaskSlots, request: grant)
        #expect(credit.workflowTaskSlots <= 10_000 && credit.activityTaskSlots <= 10_000)
        return answers.count
    }

    /// RespondWorkflowTaskCompleted and RespondWorkflowTaskFailed, each variant with the token of
    /// a workflow task started for it, then completed cleanly in case the variant left it open.
    /// Depth 2 (the request, the token, the commands or failure, and what is inside those): one
    /// level deeper is four times the variants, each needing a start, a poll and a completion.
    @Test func workflowTaskCompletionsWithALiveTokenAreAnswered() async throws {
        let single = try await SingleNode()
        let client = try await single.client()
        var schedule = Ballast_V1_Command()
        schedule.scheduleActivityTask.activityID = "debit"
        schedule.scheduleActivityTask.activityType.name = "Debit"
        schedule.scheduleActivityTask.taskQueue = "nobody-polls"
        schedule.scheduleActivityTask.input = APIExtremeValueTests.payloads("in")
        schedule.scheduleActivityTask.scheduleToCloseTimeoutNanos = 60_000_000_000
        schedule.scheduleActivityTask.startToCloseTimeoutNanos = 60_000_000_000
        schedule.scheduleActivityTask.retryPolicy = Self.retryPolicy
        var timer = Ballast_V1_Command()
        timer.startTimer.timerID = "tick"
        timer.startTimer.startToFireTimeoutNanos = 3_600_000_000_000
        var completed = Ballast_V1_RespondWorkflowTaskCompletedRequest()
        (completed.taskToken, completed.commands, completed.identity, completed.binaryChecksum) =
            (Self.templateToken, [schedule, timer], "worker", "sum")
        var failed = Ballast_V1_RespondWorkflowTaskFailedRequest()
        (failed.taskToken, failed.cause, failed.identity) = (Self.templateToken, .badScheduleActivityAttributes, "worker")
        failed.failure = Self.failure
        var sent = 0
        for (kind, (path, request)) in [(BallastMethod.Worker.respondWorkflowTaskCompleted, completed as any SwiftProtobuf.Message),
                                         (BallastMethod.Worker.respondWorkflowTaskFailed, failed)].enumerated() {
            let variants = WireFormat.variants(of: try request.serializedBytes(), depth: 2)
            let statuses = try await Self.inLanes(variants) { lane, index, variant in
                let token = try await Self.freshWorkflowTask(client, queue: "wt-\(lane)", workflowId: "wt-\(kind)-\(index)")
                let live = Self.substitute(variant, field: 1, template: [UInt8](Self.templateToken), fresh: [UInt8](token))
                let (status, _, _) = await client.rawUnary(path, payload: live, timeout: .seconds(5))
                #expect(status.code != .deadlineExceeded, "\(path) did not answer a variant")
                var clean = Ballast_V1_RespondWorkflowTaskCompletedRequest()
                clean.taskToken = token
                _ = await client.rawUnary(BallastMethod.Worker.respondWorkflowTaskCompleted,
                                          payload: try clean.serializedBytes(), timeout: .seconds(5))
                return status
            }
            #expect(statuses.contains { $0.code == .ok }, "no variant of \(path) got past the token checks")
            sent += statuses.count
        }
        #expect(sent > 1_000, "only \(sent) variants sent")
        try await Self.expectStillServingThenStop(single, client)
    }

    /// The activity calls, each variant with the token of an activity started for it (from runs
    /// that schedule 50 at a time), then completed cleanly in case the variant left it open; the
    /// heartbeats share one activity (a heartbeat does not end it). Depth 2, as above.
    @Test func activityCallsWithALiveTokenAreAnswered() async throws {
        let single = try await SingleNode()
        let client = try await single.client()
        var completed = Ballast_V1_RespondActivityTaskCompletedRequest()
        (completed.taskToken, completed.result, completed.identity) = (Self.templateToken, Self.payloadsWithMetadata, "worker")
        var failed = Ballast_V1_RespondActivityTaskFailedRequest()
        (failed.taskToken, failed.failure, failed.identity) = (Self.templateToken, Self.failure, "worker")
        failed.lastHeartbeatDetails = APIExtremeValueTests.payloads("beat")
        var canceled = Ballast_V1_RespondActivityTaskCanceledRequest()
        (canceled.taskToken, canceled.details, canceled.identity) = (Self.templateToken, Self.payloadsWithMetadata, "worker")
        var sent = 0
        for (kind, (path, request)) in [(BallastMethod.Worker.respondActivityTaskCompleted, completed as any SwiftProtobuf.Message),
                                         (BallastMethod.Worker.respondActivityTaskFailed, failed),
                                         (BallastMethod.Worker.respondActivityTaskCanceled, canceled)].enumerated() {
            let variants = WireFormat.variants(of: try request.serializedBytes(), depth: 2)
            let supplies = (0 ..< Self.lanes).map { ActivitySupply(queue: "act-\(kind)-\($0)") }
            let statuses = try await Self.inLanes(variants) { lane, _, variant in
                let token = try await supplies[lane].next(client)
                let live = Self.substitute(variant, field: 1, template: [UInt8](Self.templateToken), fresh: [UInt8](token))
                let (status, _, _) = await client.rawUnary(path, payload: live, timeout: .seconds(5))
                #expect(status.code != .deadlineExceeded, "\(path) did not answer a variant")
                var clean = Ballast_V1_RespondActivityTaskCompletedRequest()
                clean.taskToken = token
                _ = await client.rawUnary(BallastMethod.Worker.respondActivityTaskCompleted,
                                          payload: try clean.serializedBytes(), timeout: .seconds(5))
                return status
            }
            #expect(statuses.contains { $0.code == .ok }, "no variant of \(path) got past the token checks")
            sent += statuses.count
        }
        var heartbeat = Ballast_V1_RecordActivityTaskHeartbeatRequest()
        (heartbeat.taskToken, heartbeat.details, heartbeat.identity) = (Self.templateToken, Self.payloadsWithMetadata, "worker")
        let token = try await ActivitySupply(queue: "act-heartbeat").next(client)
        let variants = WireFormat.variants(of: try heartbeat.serializedBytes(), depth: 2).map {
            Self.substitute($0, field: 1, template: [UInt8](Self.templateToken), fresh: [UInt8](token))
        }
        let answers = await Self.sendAll(client, BallastMethod.Worker.recordActivityTaskHeartbeat, variants, timeout: .seconds(5), parallel: 8)
        for answer in answers {
            #expect(answer.status.code != .deadlineExceeded, "RecordActivityTaskHeartbeat did not answer a variant")
        }
        #expect(answers.contains { $0.status.code == .ok }, "no heartbeat reached the activity")
        sent += answers.count
        #expect(sent > 1_500, "only \(sent) variants sent")
        try await Self.expectStillServingThenStop(single, client)
    }

    /// QueryWorkflow with no worker for the run's queue ends at once with FAILED_PRECONDITION
    /// (or another refusal), never at its deadline; RespondQueryTaskCompleted gets, for each
    /// variant, the id of a query pushed to a real task stream, and every such query is answered.
    /// Depth 2: a third level adds only the map entries inside payloads and headers.
    @Test func queriesAndTheirAnswersWithExtremeNumbersAreAnswered() async throws {
        let single = try await SingleNode()
        let client = try await single.client()
        let target: Ballast_V1_StartWorkflowResponse = try await client.unary(BallastMethod.Workflow.start, request: startRequest("target"))
        var query = Ballast_V1_QueryWorkflowRequest()
        (query.namespace, query.queryType) = ("default", "state")
        query.execution = APIExtremeValueTests.execution("target", runId: target.runID)
        query.queryArgs = Self.payloadsWithMetadata
        query.header.fields["trace"] = APIExtremeValueTests.payloads("t").payloads[0]
        let refused = await client.rawUnary(BallastMethod.Workflow.query, payload: try query.serializedBytes(), timeout: .seconds(5)).0
        #expect(refused.code == .failedPrecondition, "a query with no worker: \(refused)")
        let variants = WireFormat.variants(of: try query.serializedBytes(), depth: 2)
        let answers = await Self.sendAll(client, BallastMethod.Workflow.query, variants, timeout: .seconds(5), parallel: 8)
        for answer in answers {
            #expect(answer.status.code != .deadlineExceeded && answer.status.code != .ok, "a query with no worker: \(answer.status)")
        }
        let answered = try await queryAnswerVariants(client)
        #expect(answers.count + answered > 1_000, "only \(answers.count + answered) variants sent")
        try await Self.expectStillServingThenStop(single, client)
    }

    /// Each variant answers a query asked for it and pushed to a stream that accepts queries;
    /// a clean answer follows in case the variant's did not reach the query.
    private func queryAnswerVariants(_ client: GRPCClient) async throws -> Int {
        var start = startRequest("queried")
        start.taskQueue = "queries"
        let queried: Ballast_V1_StartWorkflowResponse = try await client.unary(BallastMethod.Workflow.start, request: start)
        var open = Ballast_V1_StreamTasksRequest()
        (open.taskQueue, open.workflowTaskSlots, open.acceptQueries) = ("queries", 10_000, true)
        var events = try client.serverStreaming(BallastMethod.Worker.streamTasks, request: open,
                                                responseType: Ballast_V1_TaskStreamEvent.self).makeAsyncIterator()
        var query = Ballast_V1_QueryWorkflowRequest()
        query.queryType = "state"
        query.execution = APIExtremeValueTests.execution("queried", runId: queried.runID)
        var answer = Ballast_V1_RespondQueryTaskCompletedRequest()
        (answer.queryID, answer.result, answer.identity) = (Self.placeholder, Self.payloadsWithMetadata, "worker")
        let variants = WireFormat.variants(of: try answer.serializedBytes(), depth: 2)
        var statuses: [GRPCStatus] = []
        for variant in variants {
            let asked = Task { () async -> GRPCStatus in
                do {
                    let _: Ballast_V1_QueryWorkflowResponse = try await client.unary(BallastMethod.Workflow.query, request: query,
                                                                                     timeout: .seconds(10))
                    return GRPCStatus(.ok, "")
                } catch {
                    return error as? GRPCStatus ?? GRPCStatus(.unknown, "\(error)")
                }
            }
            var pushed: Ballast_V1_QueryTask?
            while pushed == nil, let event = try await events.next() {
                if case .queryTask(let task)? = event.event { pushed = task }
            }
            let id = try #require(pushed).queryID
            let live = Self.substitute(variant, field: 1, template: [UInt8](Self.placeholder), fresh: [UInt8](id))
            let status = await client.rawUnary(BallastMethod.Worker.respondQueryTaskCompleted, payload: live, timeout: .seconds(5)).0
            #expect(status.code != .deadlineExceeded, "RespondQueryTaskCompleted did not answer a variant")
            statuses.append(status)
            var clean = Ballast_V1_RespondQueryTaskCompletedRequest()
            clean.queryID = id
            _ = await client.rawUnary(BallastMethod.Worker.respondQueryTaskCompleted, payload: try clean.serializedBytes(), timeout: .seconds(5))
            let outcome = await asked.value
            #expect(outcome.code == .ok, "a query answered by its worker: \(outcome)")
        }
        #expect(statuses.contains { $0.code == .ok }, "no answer reached its query")
        return statuses.count
    }

    /// SignalWithStart, RequestCancel, Terminate (each variant on a run that is open: a run a
    /// variant terminated is started again), StreamWorkflowExecutionHistory and
    /// AddSearchAttributes. Depth 2 but for the history stream: the start inside SignalWithStart
    /// holds a dozen messages (a third level would double its 1,540 writes), and the others'
    /// third level holds only map entries.
    @Test func theOtherWorkflowCallsAreAnswered() async throws {
        let single = try await SingleNode()
        let client = try await single.client()
        var start = startRequest("sws")
        start.input = APIExtremeValueTests.payloads("in")
        (start.workflowExecutionTimeoutNanos, start.workflowRunTimeoutNanos, start.workflowTaskTimeoutNanos) =
            (3_600_000_000_000, 3_600_000_000_000, 10_000_000_000)
        start.retryPolicy = Self.retryPolicy
        start.memo.fields["note"] = APIExtremeValueTests.payloads("n").payloads[0]
        start.header.fields["trace"] = APIExtremeValueTests.payloads("t").payloads[0]
        var signalWithStart = Ballast_V1_SignalWithStartWorkflowRequest()
        (signalWithStart.start, signalWithStart.signalName) = (start, "approve")
        signalWithStart.signalInput = Self.payloadsWithMetadata
        signalWithStart.signalHeader.fields["trace"] = APIExtremeValueTests.payloads("t").payloads[0]
        var cancel = Ballast_V1_RequestCancelWorkflowRequest()
        (cancel.namespace, cancel.identity, cancel.requestID, cancel.reason) = ("default", "operator", "cancel", "why")
        cancel.workflowExecution.workflowID = "sws"
        var attributes = Ballast_V1_AddSearchAttributesRequest()
        attributes.namespace = "default"
        attributes.searchAttributes = ["CustomerId": .keyword, "Amount": .int]
        var sent = 0
        for (path, request) in [(BallastMethod.Workflow.signalWithStart, signalWithStart as any SwiftProtobuf.Message),
                                (BallastMethod.Workflow.requestCancel, cancel),
                                (BallastMethod.Workflow.addSearchAttributes, attributes)] {
            let variants = WireFormat.variants(of: try request.serializedBytes(), depth: 2)
            let answers = await Self.sendAll(client, path, variants, timeout: .seconds(5), parallel: 8)
            for answer in answers {
                #expect(answer.status.code != .deadlineExceeded, "\(path) did not answer a variant")
            }
            sent += answers.count
        }
        sent += try await terminateVariants(client)
        var history = historyRequest("sws", pageSize: 2)
        history.namespace = "default"
        let variants = WireFormat.variants(of: try history.serializedBytes(), depth: 3)
        let answers = await Self.sendAll(client, BallastMethod.Workflow.streamHistory, variants, timeout: .seconds(5), parallel: 8)
        for answer in answers {
            #expect(answer.status.code != .deadlineExceeded, "StreamWorkflowExecutionHistory did not end")
        }
        #expect(answers.contains { $0.status.code == .ok && !$0.messages.isEmpty })
        sent += answers.count
        #expect(sent > 2_000, "only \(sent) variants sent")
        try await Self.expectStillServingThenStop(single, client)
    }

    /// Terminate variants, one lane per run; a run a variant terminated is started again first.
    private func terminateVariants(_ client: GRPCClient) async throws -> Int {
        var terminate = Ballast_V1_TerminateWorkflowRequest()
        (terminate.namespace, terminate.reason, terminate.identity) = ("default", "done", "operator")
        terminate.workflowExecution.workflowID = Self.placeholderWorkflowId
        terminate.details = Self.payloadsWithMetadata
        let variants = WireFormat.variants(of: try terminate.serializedBytes(), depth: 2)
        let restarts = Mutex(0)
        let statuses = try await Self.inLanes(variants) { lane, index, variant in
            let workflowId = "term-\(lane)"
            let live = Self.replacing(Array(Self.placeholderWorkflowId.utf8), with: Array(workflowId.utf8), in: variant)
            let (status, _, _) = await client.rawUnary(BallastMethod.Workflow.terminate, payload: live, timeout: .seconds(5))
            #expect(status.code != .deadlineExceeded, "TerminateWorkflowExecution did not answer a variant")
            if status.code == .ok || index < Self.lanes {
                var start = startRequest(workflowId)
                start.requestID = "\(workflowId)-\(index)"
                let _: Ballast_V1_StartWorkflowResponse = try await client.unary(BallastMethod.Workflow.start, request: start)
                restarts.withLock { $0 += 1 }
            }
            return status
        }
        #expect(statuses.contains { $0.code == .ok })
        return statuses.count
    }

    /// ListRoleBindings, GrantRole, RevokeRole, RecordAuditEvents, DescribeCluster and
    /// PromoteMember (of a member that does not exist, and of the node itself).
    @Test func adminAndClusterCallsAreAnswered() async throws {
        let single = try await SingleNode()
        let client = try await single.client()
        var list = Ballast_V1_ListRoleBindingsRequest()
        (list.identity, list.namespace) = ("alice", "default")
        var binding = Ballast_V1_RoleBinding()
        (binding.identity, binding.role, binding.namespace, binding.taskQueue) = ("alice", .worker, "default", "payments")
        var grant = Ballast_V1_GrantRoleRequest()
        (grant.binding, grant.actor, grant.reason) = (binding, "admin", "on call")
        var revoke = Ballast_V1_RevokeRoleRequest()
        (revoke.binding, revoke.actor, revoke.reason) = (binding, "admin", "off call")
        var record = Ballast_V1_AuditRecord()
        (record.sequence, record.timeUnixNanos, record.kind, record.identity, record.identityVerified) = (1, 1, .accessDenied, "bob", true)
        (record.nodeID, record.method, record.namespace, record.role, record.taskQueue) = (1, BallastMethod.Workflow.start, "default", .writer, "q")
        (record.detail, record.count, record.firstSeenUnixNanos, record.lastSeenUnixNanos) = ("denied", 3, 1, 2)
        var audit = Ballast_V1_RecordAuditEventsRequest()
        audit.records = [record]
        var promoteOther = Ballast_V1_PromoteMemberRequest()
        promoteOther.id = 7
        var promoteSelf = Ballast_V1_PromoteMemberRequest()
        promoteSelf.id = 1
        var sent = 0
        for (path, request) in [(BallastMethod.Admin.listRoleBindings, list as any SwiftProtobuf.Message),
                                (BallastMethod.Admin.grantRole, grant), (BallastMethod.Admin.revokeRole, revoke),
                                (BallastMethod.Admin.recordAuditEvents, audit),
                                (BallastMethod.Cluster.describeCluster, Ballast_V1_DescribeClusterRequest()),
                                (BallastMethod.Cluster.promoteMember, promoteOther), (BallastMethod.Cluster.promoteMember, promoteSelf)] {
            let variants = WireFormat.variants(of: try request.serializedBytes(), depth: 3)
            let answers = await Self.sendAll(client, path, variants, timeout: .seconds(5), parallel: 8)
            for answer in answers {
                #expect(answer.status.code != .deadlineExceeded, "\(path) did not answer a variant")
            }
            sent += answers.count
        }
        #expect(sent > 1_000, "only \(sent) variants sent")
        try await Self.expectStillServingThenStop(single, client)
    }

    /// A long poll is a one-slot stream whose token is never handed out, and its secret was 0:
    /// GrantTaskSlots with a token of a small stream id and nonce 0 (the extreme value of the
    /// token's second half) added credit to whichever poll had that id. A workflow poll given
    /// activity slots then took an activity, answered its caller empty, and left the activity
    /// started with no one to run it until its start-to-close timeout. Such a token is refused now.
    @Test func aGrantCannotNameALongPoll() async throws {
        let single = try await SingleNode()
        let client = try await single.client()
        var poll = Ballast_V1_PollWorkflowTaskRequest()
        poll.taskQueue = "guarded"
        let pollBytes: [UInt8] = try poll.serializedBytes()
        let waiting = Task { () async -> GRPCStatus in
            await client.rawUnary(BallastMethod.Worker.pollWorkflowTask, payload: pollBytes, timeout: .seconds(30)).0
        }
        try await waitUntil("the workflow poll waits") { single.node.dispatcher.metricsSnapshot().streams == 1 }
        for id in TaskStreamID(0) ..< 64 {
            var grant = Ballast_V1_GrantTaskSlotsRequest()
            (grant.streamToken, grant.workflowTaskSlots, grant.activityTaskSlots) = (Data(Dispatcher.idToken(id: id, nonce: 0)), 1, 1)
            let status = await client.rawUnary(BallastMethod.Worker.grantTaskSlots, payload: try grant.serializedBytes()).0
            #expect(status.code == .notFound, "a grant naming stream \(id) with nonce 0: \(status)")
        }
        // The poll's nonce is random now; a grant that knew it is refused all the same.
        let (pollId, pollNonce) = try #require(single.node.dispatcher.state.withLock { state in
            state.sinks.first.map { ($0.key, $0.value.nonce) }
        })
        #expect(pollNonce != 0)
        var knowing = Ballast_V1_GrantTaskSlotsRequest()
        (knowing.streamToken, knowing.workflowTaskSlots, knowing.activityTaskSlots) = (Data(Dispatcher.idToken(id: pollId, nonce: pollNonce)), 1, 1)
        let knowingStatus = await client.rawUnary(BallastMethod.Worker.grantTaskSlots, payload: try knowing.serializedBytes()).0
        #expect(knowingStatus.code == .notFound, "a grant with the poll's own token: \(knowingStatus)")
        // An activity made ready on the poll's queue goes to an activity poll.
        let token = try await Self.freshWorkflowTask(client, queue: "elsewhere", workflowId: "victim")
        var schedule = Ballast_V1_Command()
        schedule.scheduleActivityTask.activityID = "debit"
        schedule.scheduleActivityTask.activityType.name = "Debit"
        schedule.scheduleActivityTask.taskQueue = "guarded"
        schedule.scheduleActivityTask.startToCloseTimeoutNanos = 3_600_000_000_000
        var completed = Ballast_V1_RespondWorkflowTaskCompletedRequest()
        (completed.taskToken, completed.commands) = (token, [schedule])
        let _: Ballast_V1_RespondWorkflowTaskCompletedResponse = try await client.unary(BallastMethod.Worker.respondWorkflowTaskCompleted,
                                                                                        request: completed)
        var activityPoll = Ballast_V1_PollActivityTaskRequest()
        activityPoll.taskQueue = "guarded"
        let activity: Ballast_V1_PollActivityTaskResponse = try await client.unary(BallastMethod.Worker.pollActivityTask, request: activityPoll,
                                                                                   timeout: .seconds(3))
        #expect(activity.task.activityID == "debit", "the activity went to the workflow poll")
        waiting.cancel()
        #expect(await waiting.value.code == .cancelled, "the workflow poll waited for a workflow task")
        await client.close()
        await single.stop()
    }

    /// A timer as long as a workflow can ask for — the Swift SDK saturates any sleep past 292
    /// years to `Int64.max` nanoseconds — made the web UI's page of its run trap: the timeline's
    /// `HistoryText.duration` rounded with an addition that overflowed there, and the admin
    /// port's handler runs in the node, so opening the page stopped the node (`ballast workflow
    /// show` trapped the same way in the CLI). Found by sending this file's variants, then
    /// opening each run's page; `HistoryText.duration` now rounds without the addition.
    @Test func theWebPageOfARunWithTheLongestTimerIsServed() async throws {
        let single = try await SingleNode()
        let client = try await single.client()
        let token = try await Self.freshWorkflowTask(client, queue: "forever", workflowId: "forever")
        var timer = Ballast_V1_Command()
        timer.startTimer.timerID = "forever"
        timer.startTimer.startToFireTimeoutNanos = .max
        var completed = Ballast_V1_RespondWorkflowTaskCompletedRequest()
        (completed.taskToken, completed.commands) = (token, [timer])
        let _: Ballast_V1_RespondWorkflowTaskCompletedResponse = try await client.unary(BallastMethod.Worker.respondWorkflowTaskCompleted,
                                                                                        request: completed)
        let admin = try HostPort(parsing: single.node.info.admin)
        let (code, _) = try await AdminHTTPClient.get(host: admin.host, port: admin.port, path: "/workflows/forever",
                                                      timeout: .seconds(5), group: single.group)
        #expect(code == 200)
        try await Self.expectStillServingThenStop(single, client)
    }

    // MARK: helpers

    /// How many workers send variants at once, each on task queues of its own.
    static let lanes = 4

    /// Runs `body` for every variant, `lanes` at a time (lane `k` takes every `lanes`-th variant
    /// from `k`); returns the statuses `body` returned, in no particular order.
    static func inLanes(_ variants: [[UInt8]],
                        _ body: @escaping @Sendable (Int, Int, [UInt8]) async throws -> GRPCStatus) async throws -> [GRPCStatus] {
        try await withThrowingTaskGroup(of: [GRPCStatus].self) { group in
            for lane in 0 ..< lanes {
                group.addTask {
                    var statuses: [GRPCStatus] = []
                    for index in stride(from: lane, to: variants.count, by: lanes) {
                        statuses.append(try await body(lane, index, variants[index]))
                    }
                    return statuses
                }
            }
            return try await group.reduce([], +)
        }
    }

    /// A task token shaped like the engine's, standing for the live one each variant gets.
    static let templateToken: Data = {
        var token = Ballast_V1_TaskToken()
        (token.namespace, token.workflowID, token.runID, token.scheduledEventID, token.attempt, token.taskQueue) =
            ("default", "wt", "run", 2, 1, "wt")
        return (try? token.serializedData()) ?? Data()
    }()

    static let retryPolicy: Ballast_V1_RetryPolicy = {
        var policy = Ballast_V1_RetryPolicy()
        (policy.initialIntervalNanos, policy.backoffCoefficient, policy.maximumIntervalNanos, policy.maximumAttempts) =
            (1_000_000_000, 2, 10_000_000_000, 1)
        policy.nonRetryableErrorTypes = ["Fatal"]
        return policy
    }()

    static let failure: Ballast_V1_Failure = {
        var failure = Ballast_V1_Failure()
        (failure.message, failure.type, failure.source, failure.stackTrace) = ("boom", "Boom", "sdk", "trace")
        failure.details = APIExtremeValueTests.payloads("why")
        failure.cause.message = "inner"
        return failure
    }()

    static let payloadsWithMetadata: Ballast_V1_Payloads = {
        var payloads = APIExtremeValueTests.payloads("data")
        payloads.payloads[0].metadata["encoding"] = Data("json".utf8)
        return payloads
    }()

    /// Starts a run on `queue` and polls its first workflow task (or an older one still ready there).
    static func freshWorkflowTask(_ client: GRPCClient, queue: String, workflowId: String) async throws -> Data {
        var start = startRequest(workflowId)
        start.taskQueue = queue
        let _: Ballast_V1_StartWorkflowResponse = try await client.unary(BallastMethod.Workflow.start, request: start)
        var poll = Ballast_V1_PollWorkflowTaskRequest()
        poll.taskQueue = queue
        let polled: Ballast_V1_PollWorkflowTaskResponse = try await client.unary(BallastMethod.Worker.pollWorkflowTask, request: poll,
                                                                                 timeout: .seconds(10))
        return try #require(polled.task.info.taskToken.isEmpty ? nil : polled.task.info.taskToken, "no workflow task on \(queue)")
    }

    /// Sixteen bytes that do not parse as a message, standing for a token or id obtained later.
    static let placeholder = Data(repeating: 0xFF, count: 16)

    /// One call's outcome.
    struct Answer: Sendable {
        var status: GRPCStatus
        var messages: [[UInt8]]
    }

    /// Sends every variant to `path`, at most `parallel` calls at once; answers in variant order.
    static func sendAll(_ client: GRPCClient, _ path: String, _ variants: [[UInt8]], timeout: Duration,
                        parallel: Int) async -> [Answer] {
        var answers = [Answer?](repeating: nil, count: variants.count)
        await withTaskGroup(of: (Int, Answer).self) { group in
            var next = 0
            func launch() {
                let index = next
                next += 1
                group.addTask {
                    let (status, messages, _) = await client.rawUnary(path, payload: variants[index], timeout: timeout)
                    return (index, Answer(status: status, messages: messages))
                }
            }
            while next < min(parallel, variants.count) { launch() }
            for await (index, answer) in group {
                answers[index] = answer
                if next < variants.count { launch() }
            }
        }
        return answers.compactMap { $0 }
    }

    /// `variant` with the bytes `template` at top-level field `field` replaced by `fresh`; a
    /// variant that appended a field inside the template keeps that field after `fresh`.
    static func substitute(_ variant: [UInt8], field: UInt64, template: [UInt8], fresh: [UInt8]) -> [UInt8] {
        guard var fields = WireFormat.parse(variant) else { return variant }
        for index in fields.indices where fields[index].number == field {
            guard case let .bytes(content) = fields[index].value, content.starts(with: template) else { continue }
            fields[index].value = .bytes(fresh + content.dropFirst(template.count))
        }
        return WireFormat.encode(fields)
    }

    /// A workflow id as long as the ids each lane puts in its place ("term-0").
    static let placeholderWorkflowId = "zzzzzz"

    /// `bytes` with the first occurrence of `old` replaced by `new` (of the same length).
    static func replacing(_ old: [UInt8], with new: [UInt8], in bytes: [UInt8]) -> [UInt8] {
        precondition(old.count == new.count, "a replacement keeps every length prefix valid")
        guard let start = (0 ... bytes.count - old.count).first(where: { bytes[$0 ..< $0 + old.count].elementsEqual(old) }) else { return bytes }
        var replaced = bytes
        replaced.replaceSubrange(start ..< start + old.count, with: new)
        return replaced
    }

    /// The node still leads its one-node cluster, describes a run, starts one and hands out its
    /// task; then the client and the node are closed (every test ends with this).
    static func expectStillServingThenStop(_ single: SingleNode, _ client: GRPCClient) async throws {
        #expect(await single.node.raftStatus().role == .leader)
        var start = startRequest("still-serving")
        start.taskQueue = "still-serving"
        let started: Ballast_V1_StartWorkflowResponse = try await client.unary(BallastMethod.Workflow.start, request: start)
        #expect(started.started)
        var describe = Ballast_V1_DescribeWorkflowExecutionRequest()
        describe.execution = APIExtremeValueTests.execution("still-serving", runId: started.runID)
        let described: Ballast_V1_DescribeWorkflowExecutionResponse = try await client.unary(BallastMethod.Workflow.describe, request: describe)
        #expect(described.info.execution.runID == started.runID)
        var poll = Ballast_V1_PollWorkflowTaskRequest()
        poll.taskQueue = "still-serving"
        let polled: Ballast_V1_PollWorkflowTaskResponse = try await client.unary(BallastMethod.Worker.pollWorkflowTask, request: poll,
                                                                                 timeout: .seconds(10))
        #expect(polled.task.info.workflowExecution.runID == started.runID)
        await client.close()
        await single.stop()
    }
}

/// Started activities for one lane: a run on the lane's queue schedules 50 activities there
/// (one attempt each, long timeouts), which are then polled one at a time.
final class ActivitySupply: Sendable {
    let queue: String
    private let state = Mutex<(batch: Int, left: Int)>((0, 0))

    init(queue: String) { self.queue = queue }

    /// The token of a newly started activity.
    func next(_ client: GRPCClient) async throws -> Data {
        let batch = state.withLock { state -> Int? in
            if state.left > 0 { state.left -= 1; return nil }
            state.batch += 1
            state.left = Self.batchSize - 1
            return state.batch
        }
        if let batch { try await schedule(client, batch: batch) }
        var poll = Ballast_V1_PollActivityTaskRequest()
        poll.taskQueue = queue
        let polled: Ballast_V1_PollActivityTaskResponse = try await client.unary(BallastMethod.Worker.pollActivityTask, request: poll,
                                                                                 timeout: .seconds(10))
        return try #require(polled.task.taskToken.isEmpty ? nil : polled.task.taskToken, "no activity task on \(queue)")
    }

    static let batchSize = 50

    private func schedule(_ client: GRPCClient, batch: Int) async throws {
        let token = try await APIExtremeValueWorkerTests.freshWorkflowTask(client, queue: queue, workflowId: "\(queue)-\(batch)")
        var completed = Ballast_V1_RespondWorkflowTaskCompletedRequest()
        completed.taskToken = token
        completed.commands = (0 ..< Self.batchSize).map { number in
            var command = Ballast_V1_Command()
            command.scheduleActivityTask.activityID = "a\(number)"
            command.scheduleActivityTask.activityType.name = "Debit"
            command.scheduleActivityTask.taskQueue = queue
            command.scheduleActivityTask.scheduleToCloseTimeoutNanos = 600_000_000_000
            command.scheduleActivityTask.startToCloseTimeoutNanos = 600_000_000_000
            command.scheduleActivityTask.retryPolicy.maximumAttempts = 1
            return command
        }
        let _: Ballast_V1_RespondWorkflowTaskCompletedResponse = try await client.unary(
            BallastMethod.Worker.respondWorkflowTaskCompleted, request: completed)
    }
}
