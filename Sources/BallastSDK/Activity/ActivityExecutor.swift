import BallastProto
import Logging

/// Runs activity attempts for the worker: decodes the input, runs the registered function with
/// an `ActivityContext`, and maps its outcome (result, error, cancellation) to the response.
public struct ActivityExecutor: ActivityTaskHandling {
    private let registry: ActivityRegistry
    private let converter: DataConverter
    private let logger: Logger

    /// Creates an executor for `activities`.
    public init(activities: ActivityRegistry, dataConverter: DataConverter = .default,
                logger: Logger = Logger(label: "ballast.sdk.activity")) {
        self.registry = activities
        self.converter = dataConverter
        self.logger = logger
    }

    /// Runs one attempt.
    public func handleActivityTask(_ task: Ballast_V1_ActivityTaskInfo, heartbeat: any ActivityHeartbeating) async -> ActivityTaskResult {
        let type = task.activityType.name
        guard let function = registry.functions[type] else {
            let error = ApplicationError("activity type '\(type)' is not registered on this worker; registered: \(registry.names.joined(separator: ", "))",
                                         type: "ActivityNotRegistered")
            return .failed(FailureConverter.failure(from: error), lastHeartbeatDetails: nil)
        }
        let flag = CancellationFlag()
        let context = ActivityContext(task: task, heartbeater: heartbeat, converter: converter, cancellation: flag)
        do {
            let result = try await function(task.input, context)
            return .completed(result)
        } catch {
            if context.isCancelled, error is CanceledError || error is CancellationError {
                return .canceled(details: nil)
            }
            logger.debug("activity attempt failed", metadata: [
                "activityType": "\(type)", "activityId": "\(task.activityID)", "attempt": "\(task.attempt)", "error": "\(error)",
            ])
            return .failed(FailureConverter.failure(from: error), lastHeartbeatDetails: nil)
        }
    }
}
