import BallastProto
import Foundation
import Logging
import SwiftProtobuf

/// Replays recorded histories through workflow code, to check in a unit test that a code
/// change is compatible with runs already in flight.
///
/// A history file is the protobuf JSON of `ballast.v1.History` (`{"events": [...]}`), as
/// `ballast workflow show --json` exports it; see docs/sdk.md.
public struct WorkflowReplayer: Sendable {
    private let registry: WorkflowRegistry
    private let converter: DataConverter

    /// Creates a replayer for `workflows`.
    public init(workflows: [any Workflow.Type], dataConverter: DataConverter = .default) {
        self.registry = WorkflowRegistry(workflows)
        self.converter = dataConverter
    }

    /// Replays `events` as a run of `workflowType` (default: the only registered type); throws
    /// `NonDeterminismError` on a mismatch and `WorkflowTaskError` on a malformed history.
    public func replay(_ events: [Ballast_V1_HistoryEvent], workflowType: String? = nil, workflowId: String = "replay",
                       runId: String = "replay") throws {
        guard let type = workflowType ?? (registry.names.count == 1 ? registry.names[0] : nil) else {
            throw WorkflowTaskError(message: "replayer: name the workflow type (registered: \(registry.names.joined(separator: ", ")))")
        }
        guard let definition = registry.definitions[type] else {
            throw WorkflowTaskError(message: "replayer: workflow type \(type) is not registered (registered: \(registry.names.joined(separator: ", ")))")
        }
        guard case .workflowExecutionStarted? = events.first?.attributes else {
            throw WorkflowTaskError(message: "replayer: a history must begin with WorkflowExecutionStarted")
        }
        let info = WorkflowInfo(namespace: "default", workflowId: workflowId, runId: runId, workflowType: type, taskQueue: "",
                                attempt: 1, continuedRunId: nil, parent: nil, startTimeUnixNanos: 0)
        let run = WorkflowRun(definition: definition, info: info, converter: converter,
                              logger: Logger(label: "ballast.sdk.replayer"))
        defer { run.tearDown() }
        do {
            _ = try run.process(events, liveStartedEventId: nil)
        } catch {
            throw error.publicError
        }
    }

    /// Replays a history given as the protobuf JSON of `ballast.v1.History`.
    public func replay(historyJSON: Data, workflowType: String? = nil, workflowId: String = "replay") throws {
        let history: Ballast_V1_History
        do {
            var options = JSONDecodingOptions()
            options.ignoreUnknownFields = true
            history = try Ballast_V1_History(jsonUTF8Data: historyJSON, options: options)
        } catch {
            throw WorkflowTaskError(message: "replayer: the history is not the JSON of ballast.v1.History: \(error)")
        }
        try replay(history.events, workflowType: workflowType, workflowId: workflowId)
    }

    /// Replays the history in the JSON file at `path`.
    public func replay(historyFile path: String, workflowType: String? = nil, workflowId: String = "replay") throws {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw WorkflowTaskError(message: "replayer: cannot read history file \(path): \(error)")
        }
        try replay(historyJSON: data, workflowType: workflowType, workflowId: workflowId)
    }
}

extension WorkflowReplayer {
    /// Fetches a run's history from the cluster and replays it (its workflow type is read from
    /// the history's first event).
    public func replay(from client: BallastClient, workflowId: String, runId: String = "") async throws {
        let events = try await client.history(workflowID: workflowId, runID: runId)
        let type = events.first?.workflowExecutionStarted.workflowType.name
        try replay(events, workflowType: type?.isEmpty == false ? type : nil, workflowId: workflowId,
                   runId: runId.isEmpty ? "replay" : runId)
    }
}
