import BallastProto
import SwiftProtobuf

/// A task a worker can be given now: a workflow task or an activity attempt.
public struct ReadyTask: Sendable, Equatable {
    /// Workflow task or activity task.
    public enum Kind: Sendable, Equatable { case workflow, activity }

    /// What kind of task.
    public var kind: Kind
    /// The queue workers poll.
    public var taskQueue: String
    /// The run it belongs to.
    public var run: RunKey
    /// The scheduled event id (reserved but unwritten for transient workflow task attempts).
    public var scheduledEventId: Int64
    /// The attempt, from 1.
    public var attempt: Int32
    /// The activity id (empty for workflow tasks).
    public var activityId: String
    /// Dispatch order: lower first.
    public var sequence: UInt64

    /// The token naming this attempt, for the RecordXTaskStarted entry.
    public var taskToken: Ballast_V1_TaskToken {
        var token = Ballast_V1_TaskToken()
        token.namespace = run.namespace
        token.workflowID = run.workflowId
        token.runID = run.runId
        token.scheduledEventID = scheduledEventId
        token.attempt = attempt
        token.activityID = activityId
        token.isActivity = kind == .activity
        token.taskQueue = taskQueue
        return token
    }

    /// The serialized task token.
    public var taskTokenBytes: [UInt8] { Array(taskTokenData) }

    /// The serialized task token as protobuf bytes (the same bytes as `taskToken.serializedBytes()`).
    var taskTokenData: ProtoBytes {
        TaskTokenCodec.encode(
            namespace: run.namespace, workflowId: run.workflowId, runId: run.runId, scheduledEventId: scheduledEventId,
            attempt: attempt, activityId: activityId, isActivity: kind == .activity, taskQueue: taskQueue)
    }
}

/// A deadline the leader must turn into an entry when it passes.
public struct DueTimer: Sendable, Equatable {
    /// When the entry may be proposed (UTC nanoseconds, leader clock).
    public var dueTimeUnixNanos: Int64
    /// The run concerned.
    public var run: RunKey
    /// The entry payload to propose.
    public var payload: Ballast_V1_EngineEntry.OneOf_Payload

    /// The complete entry to propose at `leaderTimeUnixNanos` (≥ the due time), in
    /// `formatVersion` (the one the cluster agreed on).
    public func makeEntry(leaderTimeUnixNanos: Int64, formatVersion: UInt32 = engineFormatVersion) -> Ballast_V1_EngineEntry {
        var entry = Ballast_V1_EngineEntry()
        entry.formatVersion = formatVersion
        entry.leaderTimeUnixNanos = leaderTimeUnixNanos
        entry.payload = payload
        return entry
    }

    /// A total order: due time, run, then payload bytes (deterministic across processes).
    static func sortKey(_ lhs: DueTimer, _ rhs: DueTimer) -> Bool {
        if lhs.dueTimeUnixNanos != rhs.dueTimeUnixNanos { return lhs.dueTimeUnixNanos < rhs.dueTimeUnixNanos }
        if lhs.run != rhs.run { return lhs.run < rhs.run }
        let left = lhs.makeEntry(leaderTimeUnixNanos: 0), right = rhs.makeEntry(leaderTimeUnixNanos: 0)
        let leftBytes: [UInt8] = (try? left.serializedBytes()) ?? []
        let rightBytes: [UInt8] = (try? right.serializedBytes()) ?? []
        return leftBytes.lexicographicallyPrecedes(rightBytes)
    }
}

/// Decodes a task token from request bytes.
func decodeTaskToken<Bytes: SwiftProtobufContiguousBytes>(_ bytes: Bytes) throws(EngineRejection) -> Ballast_V1_TaskToken {
    try TaskTokenCodec.decode(bytes)
}
