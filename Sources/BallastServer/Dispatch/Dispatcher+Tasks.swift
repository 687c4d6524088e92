import BallastEngine
import BallastProto
import BallastWire
import Foundation

extension Dispatcher {
    // MARK: streams and grants (API port threads)

    /// Registers a stream (or a long poll) with its initial credit; refused unless leading.
    func openStream(queue: TaskQueueKey, workflowSlots: UInt32, activitySlots: UInt32, acceptsQueries: Bool,
                    oneShot: Bool, sink: TaskSink, onOpen: (TaskStreamID) -> Void) throws(DispatchRefusal) -> TaskStreamID {
        // Opened without credit, so nothing can be matched to it before its `started` event
        // went out (pushes to one call are sent in the order they are made); then credited.
        let id = try state.withLock { state throws(DispatchRefusal) -> TaskStreamID in
            let id = try state.core.openStream(queue: queue, workflowSlots: 0, activitySlots: 0,
                                               acceptsQueries: acceptsQueries, oneShot: oneShot)
            state.sinks[id] = sink
            return id
        }
        onOpen(id)
        state.withLock { _ = $0.core.grant(id, workflowSlots: workflowSlots, activitySlots: activitySlots) }
        rematch()
        return id
    }

    /// Whether this node leads (and has applied its own term's no-op).
    var isLeading: Bool { state.withLock { $0.core.isLeading } }

    /// Ends a long poll unless a task is on its way to it; true when it ended.
    func endPoll(_ id: TaskStreamID) -> Bool {
        let ended = state.withLock { state -> Bool in
            if let stream = state.core.streams[id], stream.startsInFlight > 0 || stream.delivering { return false }
            state.sinks[id] = nil
            _ = state.core.closeStream(id)
            return true
        }
        return ended
    }

    /// Forgets a stream (the worker went away, or a poll ended). Tasks pushed to it and not
    /// completed time out in the engine and become ready again; queries it held fail.
    func closeStream(_ id: TaskStreamID) {
        let orphaned = state.withLock { state -> [QueryWaiter] in
            state.sinks[id] = nil
            return state.core.closeStream(id).compactMap { state.queryWaiters.removeValue(forKey: $0) }
        }
        for waiter in orphaned {
            waiter.fail(GRPCStatus(.unavailable, "the worker holding the query disconnected; retry the query"))
        }
        if !orphaned.isEmpty { rematch() }
    }

    /// Returns slots to a stream named by its token; nil when no such stream is open here. A long
    /// poll is not such a stream: its token is never handed out (and its nonce is as secret as a
    /// stream's), so a grant naming one is a guess, and credit it gave would push tasks the poll
    /// cannot answer with.
    func grant(token: [UInt8], workflowSlots: UInt32, activitySlots: UInt32) -> (workflow: UInt32, activity: UInt32)? {
        guard let (id, nonce) = Self.decodeIdToken(token) else { return nil }
        let credit = state.withLock { state -> (UInt32, UInt32)? in
            guard state.sinks[id]?.nonce == nonce, state.core.streams[id]?.oneShot == false else { return nil }
            return state.core.grant(id, workflowSlots: workflowSlots, activitySlots: activitySlots)
        }
        if credit != nil { rematch() }
        return credit
    }

    /// The token naming a stream or a query: its id and its secret nonce, 16 bytes little-endian.
    static func idToken(id: TaskStreamID, nonce: UInt64) -> [UInt8] {
        var bytes: [UInt8] = []
        withUnsafeBytes(of: id.littleEndian) { bytes.append(contentsOf: $0) }
        withUnsafeBytes(of: nonce.littleEndian) { bytes.append(contentsOf: $0) }
        return bytes
    }

    static func decodeIdToken(_ bytes: [UInt8]) -> (TaskStreamID, UInt64)? {
        guard bytes.count == 16 else { return nil }
        var id: UInt64 = 0, nonce: UInt64 = 0
        for index in (0 ..< 8).reversed() {
            id = id << 8 | UInt64(bytes[index])
            nonce = nonce << 8 | UInt64(bytes[8 + index])
        }
        return (id, nonce)
    }

    // MARK: started entries

    /// Proposes the started entry of a matched task; on apply, pushes the task to the stream.
    func proposeStart(_ task: ReadyTask, stream: TaskStreamID, identity: String, readyAtNanos: Int64, epoch: UInt64) {
        let requestNumber = state.withLock { state -> UInt64 in
            state.nextRequestNumber += 1
            return state.nextRequestNumber
        }
        var entry = Ballast_V1_EngineEntry()
        entry.formatVersion = entryFormat
        entry.leaderTimeUnixNanos = Self.wallNanos()
        entry.requestID = "dispatch-\(epoch)-\(stream)-\(requestNumber)"
        if task.kind == .workflow {
            var request = Ballast_V1_RecordWorkflowTaskStartedRequest()
            (request.taskToken, request.identity, request.requestID) = (Data(task.taskTokenBytes), identity, entry.requestID)
            entry.payload = .workflowTaskStarted(request)
        } else {
            var request = Ballast_V1_RecordActivityTaskStartedRequest()
            (request.taskToken, request.identity, request.requestID) = (Data(task.taskTokenBytes), identity, entry.requestID)
            entry.payload = .activityTaskStarted(request)
        }
        propose(entry) { [self] result in
            let outcome: StartOutcome
            var response: EngineResponse?
            switch result {
            case .success(let applied):
                outcome = applied.response.rejection == nil ? .started : .rejected
                response = applied.response
            case .failure:
                outcome = .notApplied
            }
            let now = monotonicNanos()
            let (sink, work) = state.withLock { state -> (TaskSink?, Work?) in
                guard state.epoch == epoch else { return (nil, nil) }
                let push = state.core.startFinished(task, stream: stream, outcome: outcome, nowNanos: now)
                return (push ? state.sinks[stream] : nil, collectWork(&state))
            }
            if let sink, let response { deliver(response, to: sink, readyAtNanos: readyAtNanos) }
            if let work { perform(work) }
        }
    }

    /// Pushes a started task to its stream; workflow tasks carry their first history page,
    /// read and compressed off the Raft loop thread.
    func deliver(_ response: EngineResponse, to sink: TaskSink, readyAtNanos: Int64) {
        switch response {
        case .activityTaskStarted(let info):
            var event = Ballast_V1_TaskStreamEvent()
            event.activityTask = info
            sink.push(event)
            metrics.recordDispatch(latencyNanos: monotonicNanos() - readyAtNanos)
        case .workflowTaskStarted(let info):
            let firstEventId = sink.sticky?.push(runId: info.workflowExecution.runID,
                                                 previousStartedEventId: info.previousStartedEventID,
                                                 startedEventId: info.startedEventID) ?? 1
            Task { [self] in
                var task = Ballast_V1_WorkflowTask()
                task.info = info
                (task.history, task.nextPageToken) = firstHistoryPage(runId: info.workflowExecution.runID,
                                                                     from: firstEventId, endEventId: info.nextEventID)
                if firstEventId > 1 {
                    task.firstEventID = firstEventId
                    metrics.recordPartialHistory()
                }
                var event = Ballast_V1_TaskStreamEvent()
                event.workflowTask = task
                sink.push(event)
                metrics.recordDispatch(latencyNanos: monotonicNanos() - readyAtNanos)
            }
        default:
            logger.error("a started entry answered something else", metadata: ["response": "\(response)"])
        }
    }

    /// The first page of events `from ..< endEventId` as LZ4 batches, and the token of the rest
    /// (a `HistoryPageToken`, as GetWorkflowExecutionHistory takes it) when the page is not all.
    func firstHistoryPage(runId: String, from firstEventId: Int64 = 1, endEventId: Int64) -> ([Ballast_V1_HistoryEventBatch], Data) {
        guard endEventId > firstEventId else { return ([], Data()) }
        let page = history.eventBytes(runId: runId, fromEventId: firstEventId,
                                      maxEvents: min(firstPageMaxEvents, Int(endEventId - firstEventId)), maxBytes: firstPageMaxBytes)
        let batches = (try? LZ4EventBatchCodec.makeBatches(serializedEvents: page, firstEventID: UInt64(firstEventId))) ?? []
        let lastId = firstEventId - 1 + Int64(page.count)
        guard lastId < endEventId - 1 else { return (batches.map(\.message), Data()) }
        var token = Ballast_V1_HistoryPageToken()
        token.nextEventID = lastId + 1
        return (batches.map(\.message), (try? token.serializedData()) ?? Data())
    }
}
