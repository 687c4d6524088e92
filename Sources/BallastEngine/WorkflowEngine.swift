import BallastProto

/// The workflow state machine: applies committed log entries, deterministically, with no I/O.
public struct WorkflowEngine: Sendable {
    /// The name of the namespace that always exists.
    public static let defaultNamespace = "default"
    /// Retention of closed runs (their visibility rows and histories) when a namespace does not set one (7 days).
    public static let defaultRetentionNanos: Int64 = 7 * 24 * 3_600 * 1_000_000_000
    /// Workflow task start-to-close when the start request does not set one (10 seconds).
    public static let defaultWorkflowTaskTimeoutNanos: Int64 = 10 * 1_000_000_000
    /// Upper bound of a workflow task timeout (120 seconds, as Temporal).
    public static let maxWorkflowTaskTimeoutNanos: Int64 = 120 * 1_000_000_000

    /// The limits this engine enforces.
    public let limits: EngineLimits
    var namespaces: [String: NamespaceState] = [:]
    var runs = BoxedTable<RunState>()
    var currentRuns: ShardedDictionary<WorkflowKey, String> = [:]
    var closed = BoxedTable<ClosedRun>()
    /// Closed run ids, oldest first from `closedOrderHead`, to bound the summaries kept.
    var closedOrder: [String] = []
    var closedOrderHead = 0
    /// The index of the last applied entry.
    public internal(set) var lastAppliedIndex: UInt64 = 0
    /// Engine time: the latest leader time applied (UTC nanoseconds).
    public internal(set) var clock: Int64 = 0
    var nextTaskSequence: UInt64 = 1
    /// Role bindings and the audit log (Security/).
    var security = SecurityState()
    var securityRevision: UInt64 = 0
    /// List/Count indexes over open and remembered closed runs (Visibility/).
    var visibility = VisibilityIndex()
    /// Remembered closed runs by retention expiry (RetentionOrder.swift): derived from `closed`.
    var retentionOrder = SortedChunks<RetentionKey>()

    /// Creates an empty engine holding only the `default` namespace.
    /// The newest entry format this engine applies: `newestEngineFormatVersion`, or lower on a
    /// node told to act as an older build (`--max-engine-format`, to rehearse upgrades). Not
    /// part of the state, its snapshot or its digest.
    public var newestFormatVersion: UInt32 = newestEngineFormatVersion

    public init(limits: EngineLimits = EngineLimits()) {
        self.limits = limits
        namespaces[Self.defaultNamespace] = NamespaceState(
            name: Self.defaultNamespace, retentionNanos: Self.defaultRetentionNanos)
    }

    /// Applies one committed entry; rejections are in the response and change nothing.
    public mutating func apply(_ entry: Ballast_V1_EngineEntry, index: UInt64) throws(EngineError) -> ApplyResult {
        guard entry.formatVersion >= engineFormatVersion, entry.formatVersion <= newestFormatVersion else {
            throw .unsupportedFormatVersion(found: entry.formatVersion, supported: newestFormatVersion, index: index)
        }
        guard index > lastAppliedIndex else {
            throw .indexNotIncreasing(index: index, lastApplied: lastAppliedIndex)
        }
        lastAppliedIndex = index
        var context = ApplyContext(now: max(clock, entry.leaderTimeUnixNanos), index: index,
                                   formatVersion: entry.formatVersion)
        do {
            try dispatch(entry, &context)
            runFollowUps(&context)
            if entry.formatVersion >= eagerDispatchFormatVersion, let eager = entry.eager { startEagerly(eager, &context) }
        } catch {
            var rejected = ApplyResult()
            rejected.response = .rejected(error)
            return rejected
        }
        clock = context.now
        return context.takeResult()
    }

    private mutating func dispatch(_ entry: Ballast_V1_EngineEntry, _ context: inout ApplyContext) throws(EngineRejection) {
        // Matched in place: binding the optional first copied the whole `oneof` enum (≈ 350 instructions).
        switch entry.payload {
        case nil: throw .emptyEntry
        case let .startWorkflow(request)?: try startWorkflow(request, &context)
        case let .signalWorkflow(request)?: try signalWorkflow(request, &context)
        case let .signalWithStart(request)?: try signalWithStart(request, &context)
        case let .requestCancel(request)?: try requestCancel(request, &context)
        case let .terminate(request)?: try terminate(request, &context)
        case let .workflowTaskStarted(request)?: try workflowTaskStarted(request, &context)
        case let .workflowTaskCompleted(request)?: try workflowTaskCompleted(request, &context)
        case let .workflowTaskFailed(request)?: try workflowTaskFailed(request, &context)
        case let .activityTaskStarted(request)?: try activityTaskStarted(request, &context)
        case let .activityTaskCompleted(request)?: try activityTaskCompleted(request, &context)
        case let .activityTaskFailed(request)?: try activityTaskFailed(request, &context)
        case let .activityTaskHeartbeat(request)?: try activityTaskHeartbeat(request, &context)
        case let .activityTaskCanceled(request)?: try activityTaskCanceled(request, &context)
        case let .timerFired(request)?: try timerFired(request, &context)
        case let .workflowTaskTimedOut(request)?: try workflowTaskTimedOut(request, &context)
        case let .activityTimedOut(request)?: try activityTimedOut(request, &context)
        case let .activityRetryDue(request)?: try activityRetryDue(request, &context)
        case let .workflowExecutionTimedOut(request)?: try workflowExecutionTimedOut(request, &context)
        case let .retentionExpired(request)?: try retentionExpired(request, &context)
        case let .workflowBackoffDue(request)?: try workflowBackoffDue(request, &context)
        case let .registerNamespace(request)?: try registerNamespace(request, &context)
        case let .addSearchAttributes(request)?: try addSearchAttributes(request, &context)
        case let .grantRole(request)?: try grantRole(request, &context)
        case let .revokeRole(request)?: try revokeRole(request, &context)
        case let .bootstrapRoles(request)?: try bootstrapRoles(request, &context)
        case let .recordAuditEvents(request)?: try recordAuditEvents(request, &context)
        }
    }

    /// Number of open runs held in memory.
    public var openRunCount: Int { runs.count }
    /// Number of closed-run summaries held in memory.
    public var closedRunCount: Int { closed.count }

    // MARK: Lookups shared by the handlers

    /// The namespace name a request means ("" is `default`), which must exist.
    func resolveNamespace(_ name: String) throws(EngineRejection) -> NamespaceState {
        let resolved = name.isEmpty ? Self.defaultNamespace : name
        guard let namespace = namespaces[resolved] else { throw .namespaceNotFound(resolved) }
        return namespace
    }

    /// The run id an execution names: its run id, or the workflow id's current run.
    func resolveRunId(namespace requested: String, execution: Ballast_V1_WorkflowExecution) throws(EngineRejection) -> String {
        let namespace = requested.isEmpty ? Self.defaultNamespace : requested
        if !execution.runID.isEmpty {
            let key = runs[execution.runID]?.key ?? closed[execution.runID]?.key
            guard let key, key.namespace == namespace, key.workflowId == execution.workflowID else {
                throw .workflowNotFound(namespace: namespace, workflowId: execution.workflowID, runId: execution.runID)
            }
            return execution.runID
        }
        guard let runId = currentRuns[WorkflowKey(namespace: namespace, workflowId: execution.workflowID)] else {
            throw .workflowNotFound(namespace: namespace, workflowId: execution.workflowID, runId: "")
        }
        return runId
    }

    /// The open run an execution names; closed runs are rejected as not running.
    func openRunId(namespace requested: String, execution: Ballast_V1_WorkflowExecution) throws(EngineRejection) -> String {
        let namespace = requested.isEmpty ? Self.defaultNamespace : requested
        let runId = try resolveRunId(namespace: namespace, execution: execution)
        guard runs[runId] != nil else {
            let key = closed[runId]?.key ?? RunKey(namespace: namespace, workflowId: execution.workflowID, runId: runId)
            throw .workflowNotRunning(key)
        }
        return runId
    }

    /// Takes the next dispatch sequence number.
    mutating func takeSequence() -> UInt64 {
        defer { nextTaskSequence += 1 }
        return nextTaskSequence
    }

    /// A run id derived from the entry index and a per-entry salt: unique (one entry, one index)
    /// and identical on every node. Laid out like a UUID: 64 bits of index, then 48 bits of the
    /// workflow's name hash and a 16-bit per-entry counter.
    func makeRunId(namespace: String, workflowId: String, context: inout ApplyContext) -> String {
        var nameHash = RollingHash.combine(RollingHash.empty, namespace.utf8)
        nameHash = RollingHash.combine(nameHash, workflowId.utf8)
        let high = context.index
        let low = (nameHash & 0xffff_ffff_ffff_0000) | (context.nextRunSalt & 0xffff)
        context.nextRunSalt += 1
        return String(unsafeUninitializedCapacity: 36) { text in
            let digits: StaticString = "0123456789abcdef"
            var written = 0
            for position in 0..<16 {
                if position == 4 || position == 6 || position == 8 || position == 10 {
                    text[written] = UInt8(ascii: "-")
                    written += 1
                }
                let word = position < 8 ? high : low
                let byte = UInt8(truncatingIfNeeded: word >> (56 - 8 * UInt64(position % 8)))
                text[written] = digits.utf8Start[Int(byte >> 4)]
                text[written + 1] = digits.utf8Start[Int(byte & 0x0f)]
                written += 2
            }
            return written
        }
    }
}

/// Approximate serialized size of payloads (data plus metadata), for the size limit.
func payloadBytes(_ payloads: Ballast_V1_Payloads) -> Int {
    var total = 0
    for payload in payloads.payloads { total += payloadBytes(payload) }
    return total
}

/// Size of one payload: its data and its metadata's keys and values.
func payloadBytes(_ payload: Ballast_V1_Payload) -> Int {
    var total = payload.data.count
    for (key, value) in payload.metadata { total += key.utf8.count + value.count }
    return total
}

/// Size of a memo: every field's name and payload (`payloadBytes`). Its field names are kept
/// with the run and its closed-run summary as much as its payloads are.
func memoBytes(_ memo: Ballast_V1_Memo) -> Int {
    var total = 0
    for (name, payload) in memo.fields { total += name.utf8.count + payloadBytes(payload) }
    return total
}

/// Approximate size of a failure and its causes: its strings' bytes plus its details'
/// (`payloadBytes`), for what a pending activity keeps (`PendingActivity.keptBytes`).
func failureBytes(_ failure: Ballast_V1_Failure) -> Int {
    var total = 0
    var current = failure
    while true {
        total += current.message.utf8.count + current.type.utf8.count + current.source.utf8.count
            + current.stackTrace.utf8.count + payloadBytes(current.details)
        guard current.hasCause else { return total }
        current = current.cause
    }
}

/// `failure` cut down to what is kept when keeping it whole would take a run past
/// `EngineLimits.maxKeptActivityBytes`: its type, source, timeout type and retryability, and at
/// most the first `trimmedMessageBytes` of its message, type and source; no details, stack trace
/// or cause.
func trimmedFailure(_ failure: Ballast_V1_Failure) -> Ballast_V1_Failure {
    var trimmed = Ballast_V1_Failure()
    trimmed.message = utf8Prefix(failure.message, trimmedMessageBytes)
    if trimmed.message.utf8.count < failure.message.utf8.count { trimmed.message += " [trimmed]" }
    trimmed.type = utf8Prefix(failure.type, trimmedMessageBytes)
    trimmed.source = utf8Prefix(failure.source, trimmedMessageBytes)
    trimmed.nonRetryable = failure.nonRetryable
    trimmed.timeoutType = failure.timeoutType
    return trimmed
}

/// The bytes of message, type and source a trimmed failure keeps, each.
let trimmedMessageBytes = 1_024

/// The longest prefix of `text` of at most `limit` UTF-8 bytes, cut between Unicode scalars
/// (not characters: grapheme rules change with Unicode versions, and every node must cut alike).
func utf8Prefix(_ text: String, _ limit: Int) -> String {
    guard text.utf8.count > limit else { return text }
    var scalars = String.UnicodeScalarView()
    var count = 0
    for scalar in text.unicodeScalars {
        count += UTF8.width(scalar)
        guard count <= limit else { break }
        scalars.append(scalar)
    }
    return String(scalars)
}

extension WorkflowEngine {
    /// Rejects payloads over the size limit.
    func checkPayload(_ payloads: Ballast_V1_Payloads, field: String) throws(EngineRejection) {
        let size = payloadBytes(payloads)
        guard size <= limits.maxPayloadBytes else {
            throw .payloadTooLarge(field: field, bytes: size, limit: limits.maxPayloadBytes)
        }
    }

    /// The field `name` of value `value` as a message when the value is longer than
    /// `limits.maxIdentifierBytes`; nil when it fits (checked for entries of format 6 on).
    /// Chain several with `??`: no array is built on the hot paths that call it.
    func identifierProblem(_ name: String, _ value: String) -> String? {
        guard value.utf8.count > limits.maxIdentifierBytes else { return nil }
        return "\(name) is \(value.utf8.count) bytes; at most \(limits.maxIdentifierBytes) are accepted"
    }
}
