import BallastProto
import SwiftProtobuf

extension WorkflowEngine {
    /// The whole engine state as a protobuf message, every collection in a fixed order.
    public func snapshotMessage() -> Ballast_V1_EngineSnapshot {
        var snapshot = Ballast_V1_EngineSnapshot()
        snapshot.formatVersion = engineFormatVersion
        snapshot.lastAppliedIndex = lastAppliedIndex
        snapshot.clockUnixNanos = clock
        snapshot.nextTaskSequence = nextTaskSequence
        snapshot.namespaces = namespaces.keys.sorted().compactMap { namespaces[$0].map(SnapshotCodec.encode) }
        snapshot.runs = runs.keys.sorted().compactMap { runs[$0].map(SnapshotCodec.encode) }
        snapshot.closedRuns = closedOrder[closedOrderHead...].compactMap { closed[$0].map(SnapshotCodec.encode) }
        snapshot.currentRuns = currentRuns.keys.sorted().map { key in
            var current = Ballast_V1_SnapshotCurrentRun()
            current.namespace = key.namespace
            current.workflowID = key.workflowId
            current.runID = currentRuns[key] ?? ""
            return current
        }
        snapshot.security = security.snapshot
        snapshot.visibilityIndexHash = visibility.digest()
        return snapshot
    }

    /// The deterministic snapshot bytes (identical on every node at the same index).
    public func snapshot() -> [UInt8] {
        (try? DeterministicBinaryEncoder.encode(snapshotMessage())) ?? []
    }

    /// SHA-256 of the canonical state (the applied index excluded), including every run's history hash.
    public func stateDigest() -> String {
        var message = snapshotMessage()
        message.lastAppliedIndex = 0
        let bytes = (try? DeterministicBinaryEncoder.encode(message)) ?? []
        return hexString(SHA256Hasher.hash(bytes))
    }

    /// Rebuilds an engine from snapshot bytes.
    public static func restore(_ bytes: [UInt8], limits: EngineLimits = EngineLimits()) throws(EngineError) -> WorkflowEngine {
        let message: Ballast_V1_EngineSnapshot
        do {
            message = try Ballast_V1_EngineSnapshot(serializedBytes: bytes)
        } catch {
            throw .corruptSnapshot("the snapshot does not decode: \(error)")
        }
        guard message.formatVersion == engineFormatVersion else {
            throw .corruptSnapshot("snapshot format version \(message.formatVersion), this build reads \(engineFormatVersion)")
        }
        var engine = WorkflowEngine(limits: limits)
        engine.lastAppliedIndex = message.lastAppliedIndex
        engine.clock = message.clockUnixNanos
        engine.nextTaskSequence = message.nextTaskSequence
        engine.namespaces = [:]
        for namespace in message.namespaces { engine.namespaces[namespace.name] = SnapshotCodec.decode(namespace) }
        for run in message.runs { engine.runs[run.runID] = SnapshotCodec.decode(run) }
        for summary in message.closedRuns {
            engine.closed[summary.runID] = SnapshotCodec.decode(summary)
            engine.closedOrder.append(summary.runID)
        }
        for current in message.currentRuns {
            engine.currentRuns[WorkflowKey(namespace: current.namespace, workflowId: current.workflowID)] = current.runID
        }
        if message.hasSecurity { engine.security = try SecurityState(snapshot: message.security) }
        guard engine.namespaces[defaultNamespace] != nil else { throw .corruptSnapshot("the default namespace is missing") }
        engine.rebuildVisibilityIndex()
        engine.rebuildRetentionOrder()
        let indexHash = engine.visibility.digest()
        guard message.visibilityIndexHash == 0 || message.visibilityIndexHash == indexHash else {
            throw .corruptSnapshot("the visibility index rebuilt from the snapshot hashes to \(indexHash), the snapshot says \(message.visibilityIndexHash)")
        }
        return engine
    }
}

/// Conversions between the engine's state structs and their snapshot messages.
enum SnapshotCodec {
    static func encode(_ namespace: NamespaceState) -> Ballast_V1_SnapshotNamespace {
        var message = Ballast_V1_SnapshotNamespace()
        message.name = namespace.name
        message.description_p = namespace.description
        message.retentionNanos = namespace.retentionNanos
        message.searchAttributes = namespace.searchAttributes
        return message
    }

    static func decode(_ message: Ballast_V1_SnapshotNamespace) -> NamespaceState {
        NamespaceState(name: message.name, description: message.description_p, retentionNanos: message.retentionNanos,
                       searchAttributes: message.searchAttributes)
    }

    static func encode(_ parent: ParentLink) -> Ballast_V1_SnapshotParent {
        var message = Ballast_V1_SnapshotParent()
        message.namespace = parent.namespace
        message.workflowID = parent.workflowId
        message.runID = parent.runId
        message.initiatedEventID = parent.initiatedEventId
        return message
    }

    static func decode(_ message: Ballast_V1_SnapshotParent) -> ParentLink {
        ParentLink(namespace: message.namespace, workflowId: message.workflowID, runId: message.runID,
                   initiatedEventId: message.initiatedEventID)
    }

    static func encode(_ task: WorkflowTaskState) -> Ballast_V1_SnapshotWorkflowTask {
        var message = Ballast_V1_SnapshotWorkflowTask()
        message.scheduledEventID = task.scheduledEventId
        message.attempt = task.attempt
        message.scheduledTimeUnixNanos = task.scheduledTime
        message.sequence = task.sequence
        message.startedEventID = task.startedEventId
        message.startedTimeUnixNanos = task.startedTime
        message.identity = task.identity
        message.requestID = task.requestId
        return message
    }

    static func decode(_ message: Ballast_V1_SnapshotWorkflowTask) -> WorkflowTaskState {
        WorkflowTaskState(scheduledEventId: message.scheduledEventID, attempt: message.attempt,
                          scheduledTime: message.scheduledTimeUnixNanos, sequence: message.sequence,
                          startedEventId: message.startedEventID, startedTime: message.startedTimeUnixNanos,
                          identity: message.identity, requestId: message.requestID)
    }

    static func encode(_ activity: PendingActivity) -> Ballast_V1_SnapshotActivity {
        var message = Ballast_V1_SnapshotActivity()
        message.scheduledEventID = activity.scheduledEventId
        message.attributes = activity.attributes
        message.firstScheduledTimeUnixNanos = activity.firstScheduledTime
        message.attempt = activity.attempt
        message.attemptScheduledTimeUnixNanos = activity.attemptScheduledTime
        message.phase = Int32(activity.phase.rawValue)
        message.sequence = activity.sequence
        message.startedTimeUnixNanos = activity.startedTime
        message.identity = activity.identity
        message.requestID = activity.requestId
        message.lastHeartbeatTimeUnixNanos = activity.lastHeartbeatTime
        if let details = activity.heartbeatDetails { message.heartbeatDetails = details }
        if let failure = activity.lastFailure { message.lastFailure = failure }
        message.retryTimeUnixNanos = activity.retryTime
        message.cancelRequestedEventID = activity.cancelRequestedEventId
        return message
    }

    static func decode(_ message: Ballast_V1_SnapshotActivity) -> PendingActivity {
        PendingActivity(
            scheduledEventId: message.scheduledEventID, attributes: message.attributes,
            firstScheduledTime: message.firstScheduledTimeUnixNanos, attempt: message.attempt,
            attemptScheduledTime: message.attemptScheduledTimeUnixNanos,
            phase: ActivityPhase(rawValue: Int(message.phase)) ?? .scheduled, sequence: message.sequence,
            startedTime: message.startedTimeUnixNanos, identity: message.identity, requestId: message.requestID,
            lastHeartbeatTime: message.lastHeartbeatTimeUnixNanos,
            heartbeatDetails: message.hasHeartbeatDetails ? message.heartbeatDetails : nil,
            lastFailure: message.hasLastFailure ? message.lastFailure : nil,
            retryTime: message.retryTimeUnixNanos, cancelRequestedEventId: message.cancelRequestedEventID)
    }

    static func encode(_ child: PendingChild) -> Ballast_V1_SnapshotChild {
        var message = Ballast_V1_SnapshotChild()
        message.initiatedEventID = child.initiatedEventId
        message.namespace = child.namespace
        message.workflowID = child.workflowId
        message.runID = child.runId
        message.workflowType = child.workflowType
        message.parentClosePolicy = child.parentClosePolicy
        message.startedEventID = child.startedEventId
        return message
    }

    static func decode(_ message: Ballast_V1_SnapshotChild) -> PendingChild {
        PendingChild(initiatedEventId: message.initiatedEventID, namespace: message.namespace,
                     workflowId: message.workflowID, runId: message.runID, workflowType: message.workflowType,
                     parentClosePolicy: message.parentClosePolicy, startedEventId: message.startedEventID)
    }
}
