import BallastEngine
import BallastProto
import BallastRaft
import BallastWire
import Foundation

extension BallastNode {
    /// Registers the client operations that exist so far: the writes go through Raft and answer
    /// once their entry is committed and applied; Describe is a linearizable ReadIndex read.
    func registerWorkflowService(_ registry: inout GRPCMethodRegistry) {
        // Writes answer from the Raft loop thread once applied (`unaryCompleting`): no Swift task per call.
        registry.unaryCompleting(BallastMethod.Workflow.start) { [self] (request: Ballast_V1_StartWorkflowRequest, _, respond) in
            let queue = TaskQueueKey(namespace: request.namespace.isEmpty ? WorkflowEngine.defaultNamespace : request.namespace,
                                     taskQueue: request.taskQueue)
            submit(.startWorkflow(request), requestID: request.requestID, eager: .firstWorkflowTask(queue)) { result in
                respond(result.flatMap { response -> Result<Ballast_V1_StartWorkflowResponse, any Error> in
                    guard case .started(let started) = response else {
                        return .failure(GRPCStatus(.internal, "the engine answered a start without a run"))
                    }
                    return .success(started)
                })
            }
        }
        registry.unaryCompleting(BallastMethod.Workflow.signal) { [self] (request: Ballast_V1_SignalWorkflowRequest, _, respond) in
            submit(.signalWorkflow(request), requestID: request.requestID) { result in
                respond(result.map { _ in Ballast_V1_SignalWorkflowResponse() })
            }
        }
        registry.unaryCompleting(BallastMethod.Workflow.signalWithStart) { [self] (request: Ballast_V1_SignalWithStartWorkflowRequest, _, respond) in
            submit(.signalWithStart(request), requestID: request.start.requestID) { result in
                respond(result.map { answer in
                    var response = Ballast_V1_SignalWithStartWorkflowResponse()
                    if case .started(let started) = answer {
                        response.runID = started.runID
                        response.started = started.started
                    }
                    return response
                })
            }
        }
        registry.unaryCompleting(BallastMethod.Workflow.requestCancel) { [self] (request: Ballast_V1_RequestCancelWorkflowRequest, _, respond) in
            submit(.requestCancel(request), requestID: request.requestID) { result in
                respond(result.map { _ in Ballast_V1_RequestCancelWorkflowResponse() })
            }
        }
        registry.unaryCompleting(BallastMethod.Workflow.terminate) { [self] (request: Ballast_V1_TerminateWorkflowRequest, _, respond) in
            submit(.terminate(request), requestID: "") { result in
                respond(result.map { _ in Ballast_V1_TerminateWorkflowResponse() })
            }
        }
        registry.unary(BallastMethod.Workflow.addSearchAttributes) { [self] (request: Ballast_V1_AddSearchAttributesRequest, _) in
            let reserved = request.searchAttributes.keys.filter(WorkflowEngine.reservedSearchAttributeNames.contains).sorted()
            guard reserved.isEmpty else {
                throw GRPCStatus(.invalidArgument, "search attribute name\(reserved.count == 1 ? "" : "s") "
                                 + "\(reserved.joined(separator: ", ")) \(reserved.count == 1 ? "is" : "are") reserved for the built-in "
                                 + "visibility field\(reserved.count == 1 ? "" : "s"); choose another name")
            }
            _ = try await submit(.addSearchAttributes(request), requestID: "")
            return Ballast_V1_AddSearchAttributesResponse()
        }
        registry.unary(BallastMethod.Workflow.describe) { [self] (request: Ballast_V1_DescribeWorkflowExecutionRequest, context) in
            try await read(stale: Self.wantsStaleRead(context)) { engine throws(EngineRejection) in
                try engine.describe(namespace: request.namespace, execution: request.execution)
            }
        }
    }

    /// Proposes `payload` as an engine entry stamped with this leader's clock; returns the
    /// engine's response to exactly this entry, or throws the gRPC status the caller should see.
    /// With `eager`, slots a worker has free are reserved first and the entry starts the tasks
    /// it makes ready for that worker (`Dispatcher+Eager.swift`).
    func submit(_ payload: Ballast_V1_EngineEntry.OneOf_Payload, requestID: String,
                eager: Dispatcher.EagerWant? = nil) async throws -> EngineResponse {
        try await withCheckedThrowingContinuation { continuation in
            submit(payload, requestID: requestID, eager: eager) { continuation.resume(with: $0) }
        }
    }

    /// The longest request id accepted (Temporal's limit for ids): the engine keeps request ids
    /// for idempotency as long as a run's summary lives, and one of megabytes would be kept so.
    static let maxRequestIDBytes = 1_000

    /// `submit` for handlers that answer from a callback (`GRPCMethodRegistry.unaryCompleting`):
    /// `completion` runs once, on the Raft loop thread right after the entry is applied (or on
    /// the calling thread if it could not be proposed).
    func submit(_ payload: Ballast_V1_EngineEntry.OneOf_Payload, requestID: String, eager: Dispatcher.EagerWant? = nil,
                completion: @escaping @Sendable (Result<EngineResponse, any Error>) -> Void) {
        guard requestID.utf8.count <= Self.maxRequestIDBytes else {
            return completion(.failure(GRPCStatus(
                .invalidArgument, "request_id is \(requestID.utf8.count) bytes; at most \(Self.maxRequestIDBytes) are accepted")))
        }
        var entry = Ballast_V1_EngineEntry()
        entry.formatVersion = dispatcher.entryFormat
        entry.leaderTimeUnixNanos = Int64(Date().timeIntervalSince1970 * 1_000_000_000)
        entry.requestID = requestID
        entry.payload = payload
        let dispatcher = self.dispatcher
        let ticket = eager.flatMap { dispatcher.reserveEager($0) }
        if let ticket {
            entry.formatVersion = max(entry.formatVersion, eagerDispatchFormatVersion)
            entry.eager = ticket.message
        }
        let bytes: [UInt8]
        do { bytes = try DeterministicBinaryEncoder.encode(entry) } catch {
            if let ticket { dispatcher.eagerFinished(ticket, started: []) }
            return completion(.failure(error))
        }
        // A follower refuses an entry larger than this: proposed, it would stay in the leader's
        // log unreplicated, and every entry after it with it (reliability.md, bug 37).
        guard bytes.count <= RaftMessageCodec.defaultMaxBlobBytes else {
            if let ticket { dispatcher.eagerFinished(ticket, started: []) }
            return completion(.failure(GRPCStatus(
                .resourceExhausted, "the request makes a log entry of \(bytes.count) bytes; "
                    + "a log entry carries at most \(RaftMessageCodec.defaultMaxBlobBytes) bytes")))
        }
        let started = ContinuousClock.now
        driver.propose(bytes, message: entry) { [self] outcome in
            // On the loop thread, right after the apply: push what the entry started, refund the rest.
            if let ticket {
                let eagerStarts = (try? outcome.get()).flatMap { $0.output as? ApplyResult }?.eagerStarts ?? []
                dispatcher.eagerFinished(ticket, started: eagerStarts)
            }
            completion(answer(to: outcome, latency: ContinuousClock.now - started))
        }
    }

    /// The engine's response to a proposed entry, or the gRPC status its caller should see.
    private func answer(to outcome: Result<AppliedEntry, RaftDriverError>, latency: Duration) -> Result<EngineResponse, any Error> {
        switch outcome {
        case .success(let applied):
            guard let result = applied.output as? ApplyResult else {
                metrics.recordProposal(latency: latency, outcome: .failed)
                return .failure(GRPCStatus(.internal, "entry \(applied.index) produced no result"))
            }
            if let rejection = result.response.rejection {
                metrics.recordProposal(latency: latency, outcome: .rejected)
                return .failure(Self.status(for: rejection))
            }
            metrics.recordProposal(latency: latency, outcome: .applied)
            return .success(result.response)
        case .failure(let error):
            metrics.recordProposal(latency: latency, outcome: .failed)
            return .failure(status(for: error))
        }
    }

    /// Whether the caller accepts a possibly stale answer (`ballast-read-consistency: stale`).
    static func wantsStaleRead(_ context: GRPCServerContext) -> Bool {
        context.metadata.first(GRPCHeaderName.ballastReadConsistency) == "stale"
    }

    /// A read: linearizable through ReadIndex on the leader (followers redirect), or, when the
    /// caller accepts staleness, answered by any node from what it has applied so far.
    func read<T: Sendable>(stale: Bool, _ body: @escaping @Sendable (WorkflowEngine) throws(EngineRejection) -> T) async throws -> T {
        guard stale else { return try await linearizableRead(body) }
        let machine = self.stateMachine
        let outcome: Result<T, GRPCStatus> = await withCheckedContinuation { continuation in
            // On the driver's loop thread: the engine is not being changed right now.
            driver.inspect { _ in
                continuation.resume(returning: Result { () throws(GRPCStatus) -> T in
                    do { return try machine.read(body) } catch let rejection as EngineRejection {
                        throw Self.status(for: rejection)
                    } catch {
                        throw GRPCStatus(.internal, "\(error)")
                    }
                })
            }
        }
        return try outcome.get()
    }

    /// Where reads that walk many runs run, one at a time per process (`readOnCopy`).
    static let walkingReads = DispatchQueue(label: "ballast-walking-reads", qos: .utility)
    /// Reads that may wait for their turn to run on a copy (`readOnCopy`); more are refused
    /// with RESOURCE_EXHAUSTED.
    static let maxWaitingOffLoopReads = 32

    /// Enters `gate`, or throws RESOURCE_EXHAUSTED naming `waiting` (what waits there).
    func admit(_ gate: AdmissionGate, _ waiting: String) async throws {
        do {
            try await gate.enter()
        } catch AdmissionGate.Refusal.tooManyWaiting(let limit) {
            metrics.recordReadRefused()
            throw GRPCStatus(.resourceExhausted, "\(limit) \(waiting) are already waiting on this node; retry later")
        }
    }

    /// Like `read`, for a read that walks many runs or rows (a Count, a List page that reads
    /// many rows, the web UI's failing runs): the engine is captured at the read point on the
    /// loop thread (a copy-on-write copy, microseconds) and `body` runs on that copy off it.
    /// On the loop, a walk over a large state held heartbeats for as long as it took (the
    /// election timeout is 150–300 ms), and any client could ask for one.
    ///
    /// Such reads run one at a time per node, and each takes its read point (and its copy) only
    /// when its turn comes: a copy held while waiting would make the loop copy again each shard
    /// of the engine it changes, once for every waiting read. Still linearizable: the read
    /// point comes after the call began. At most `maxWaitingOffLoopReads` wait; one more is
    /// refused with RESOURCE_EXHAUSTED.
    func readOnCopy<T: Sendable>(stale: Bool, _ body: @escaping @Sendable (WorkflowEngine) throws(EngineRejection) -> T) async throws -> T {
        try await admit(offLoopReads, "reads that walk many runs (counts, long list pages)")
        defer { offLoopReads.leave() }
        metrics.recordReadOffLoop()
        let engine = try await read(stale: stale) { engine throws(EngineRejection) in engine }
        let outcome: Result<T, GRPCStatus> = await withCheckedContinuation { continuation in
            Self.walkingReads.async {
                continuation.resume(returning: Result { () throws(GRPCStatus) -> T in
                    do throws(EngineRejection) { return try body(engine) } catch { throw Self.status(for: error) }
                })
            }
        }
        return try outcome.get()
    }

    /// Runs `body` against the engine once this node has applied everything the leader had
    /// committed when the read started (ReadIndex); followers redirect to the leader.
    func linearizableRead<T: Sendable>(_ body: @escaping @Sendable (WorkflowEngine) throws(EngineRejection) -> T) async throws -> T {
        let machine = self.stateMachine
        let driver = self.driver
        let started = ContinuousClock.now
        defer { metrics.recordRead(latency: ContinuousClock.now - started) }
        let outcome: Result<T, any Error> = await withCheckedContinuation { continuation in
            driver.read { result in
                switch result {
                case .success:
                    // On the driver's loop thread: the engine is not being changed right now.
                    continuation.resume(returning: Result { () throws -> T in
                        do { return try machine.read(body) } catch let rejection as EngineRejection { throw Self.status(for: rejection) }
                    })
                case .failure(let error):
                    continuation.resume(returning: .failure(error))
                }
            }
        }
        switch outcome {
        case .success(let value): return value
        case .failure(let error as RaftDriverError): throw status(for: error)
        case .failure(let error): throw error
        }
    }

    /// The gRPC status for an engine rejection: the same category, and the engine's words.
    static func status(for rejection: EngineRejection) -> GRPCStatus {
        let code: GRPCStatusCode = switch rejection.code {
        case .invalidArgument: .invalidArgument
        case .notFound: .notFound
        case .alreadyExists: .alreadyExists
        case .failedPrecondition: .failedPrecondition
        case .resourceExhausted: .resourceExhausted
        }
        return GRPCStatus(code, rejection.description)
    }

    /// The gRPC status for a driver failure; not-leader carries the leader's API address.
    func status(for error: RaftDriverError) -> GRPCStatus {
        switch error {
        case .refused(.notLeader(let hint)):
            return GRPCStatus.notLeader(leaderAddress: hint.flatMap { transport.knownNodes[$0.rawValue]?.api })
        case .refused(.proposalBacklogFull), .refused(.leadershipTransferInProgress):
            return GRPCStatus(.unavailable, "\(error); retry with the same request id")
        case .superseded, .readDropped:
            return GRPCStatus(.unavailable, "\(error); retry with the same request id")
        case .stopped:
            return GRPCStatus(.unavailable, "this node is stopping; retry on another node")
        case .storageFailed:
            return GRPCStatus(.unavailable, "\(error); this node refuses writes until restarted")
        case .diskFull(let why):
            return GRPCStatus(.resourceExhausted, diskGuard.clientMessage(why))
        case .refused:
            return GRPCStatus(.failedPrecondition, "\(error)")
        }
    }
}
