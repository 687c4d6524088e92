import BallastProto

/// The engine format that carries `EngineEntry.eager_dispatch` (eager dispatch). A version-1 entry is
/// applied as before (its `eager_dispatch`, if any, ignored); a build that knows only version 1
/// stops at a version-2 entry instead of applying it without the eager starts.
public let eagerDispatchFormatVersion: UInt32 = 2

/// A task an entry started for the worker its `eager_dispatch` named.
public struct EagerStart: Sendable {
    /// The task, as it would have been dispatched.
    public var task: ReadyTask
    /// What a started entry would have answered: `.workflowTaskStarted` or `.activityTaskStarted`.
    public var response: EngineResponse
}

extension Ballast_V1_EngineEntry {
    /// The entry's eager dispatch (`eager_dispatch`, a serialized `EagerDispatch`); nil when it
    /// has none. Bytes that do not decode count as none — the same on every node, since every
    /// node applies the same bytes.
    public var eager: Ballast_V1_EagerDispatch? {
        get {
            guard !eagerDispatch.isEmpty else { return nil }
            return try? Ballast_V1_EagerDispatch(serializedBytes: eagerDispatch)
        }
        set {
            eagerDispatch = newValue.flatMap { try? $0.serializedData() } ?? .init()
        }
    }
}

extension WorkflowEngine {
    /// Starts, for `eager.identity`, the first-attempt tasks of `eager`'s queue that this entry
    /// made ready — through the same handlers a RecordWorkflowTaskStarted /
    /// RecordActivityTaskStarted entry uses, so events, deadlines and attempts are the same as
    /// with a started entry right after this one. Started tasks leave `newTasks` (they are not
    /// ready any more) and go to `eagerStarts`; the entry's own response is kept.
    mutating func startEagerly(_ eager: Ballast_V1_EagerDispatch, _ context: inout ApplyContext) {
        guard eager.workflowTasks > 0 || eager.activityTasks > 0, !context.result.newTasks.isEmpty else { return }
        let namespace = eager.namespace.isEmpty ? Self.defaultNamespace : eager.namespace
        var workflowLeft = eager.workflowTasks, activityLeft = eager.activityTasks
        let response = context.result.response
        var stillReady: [ReadyTask] = []
        var started = 0
        for task in context.result.newTasks {
            let wanted = task.kind == .workflow ? workflowLeft > 0 : activityLeft > 0
            guard wanted, task.attempt == 1, task.run.namespace == namespace, task.taskQueue == eager.taskQueue else {
                stillReady.append(task)
                continue
            }
            let requestID = "eager-\(context.index)-\(started)"
            do {
                if task.kind == .workflow {
                    var request = Ballast_V1_RecordWorkflowTaskStartedRequest()
                    (request.taskToken, request.identity, request.requestID) = (task.taskTokenData, eager.identity, requestID)
                    try workflowTaskStarted(request, &context)
                    workflowLeft -= 1
                } else {
                    var request = Ballast_V1_RecordActivityTaskStartedRequest()
                    (request.taskToken, request.identity, request.requestID) = (task.taskTokenData, eager.identity, requestID)
                    try activityTaskStarted(request, &context)
                    activityLeft -= 1
                }
                context.result.eagerStarts.append(EagerStart(task: task, response: context.result.response))
                started += 1
            } catch {
                // No longer startable (a later part of the entry moved it on): the rejection
                // changed nothing; it stays with the ordinary dispatch, which will find it stale.
                stillReady.append(task)
            }
        }
        context.result.newTasks = stillReady
        context.result.response = response
    }
}
