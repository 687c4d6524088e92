import BallastProto

/// An error thrown by application code (workflow or activity), carried across the wire.
///
/// `type` is matched against a retry policy's non-retryable error types; `nonRetryable` stops
/// retries whatever the policy says.
public struct ApplicationError: Error, Sendable, CustomStringConvertible {
    /// A human-readable message.
    public var message: String
    /// The error's type name, e.g. "InsufficientFunds".
    public var type: String
    /// When true the activity or workflow is never retried after this error.
    public var nonRetryable: Bool
    /// Encoded details (decode with `details(as:)`).
    public var details: Ballast_V1_Payloads

    /// Creates an application error.
    public init(_ message: String, type: String = "ApplicationError", nonRetryable: Bool = false,
                details: Ballast_V1_Payloads = Ballast_V1_Payloads()) {
        self.message = message
        self.type = type
        self.nonRetryable = nonRetryable
        self.details = details
    }

    /// Creates an application error whose details are a Codable value.
    public init<D: Encodable>(_ message: String, type: String = "ApplicationError", nonRetryable: Bool = false,
                              detail: D, converter: DataConverter = .default) throws {
        self.init(message, type: type, nonRetryable: nonRetryable, details: try converter.toPayloads(detail))
    }

    /// Decodes the first detail.
    public func details<D: Decodable>(as type: D.Type, converter: DataConverter = .default) throws -> D {
        try converter.fromPayloads(details, as: type)
    }

    /// "type: message".
    public var description: String { "\(type): \(message)" }
}

/// The operation was canceled (the workflow was asked to cancel, or a scope was canceled).
public struct CanceledError: Error, Sendable, CustomStringConvertible {
    /// Why.
    public var message: String
    /// Creates a cancellation error.
    public init(_ message: String = "canceled") { self.message = message }
    /// The message.
    public var description: String { "canceled: \(message)" }
}

/// A timeout fired (activity schedule-to-close, start-to-close, heartbeat…).
public struct TimeoutError: Error, Sendable, CustomStringConvertible {
    /// Which timeout.
    public var timeoutType: Ballast_V1_TimeoutType
    /// The message from the server.
    public var message: String
    /// The last attempt's failure, if any.
    public var lastFailure: Ballast_V1_Failure?
    /// Describes the timeout.
    public var description: String { "timeout (\(timeoutType)): \(message)" }
}

/// An activity called from a workflow failed for good (after its retries); `cause` says why.
public struct ActivityError: Error, Sendable, CustomStringConvertible {
    /// The activity type.
    public var activityType: String
    /// The activity id (a sequence number within the run).
    public var activityId: String
    /// Why retrying stopped.
    public var retryState: Ballast_V1_RetryState
    /// The underlying error: `ApplicationError`, `TimeoutError` or `CanceledError`.
    public var cause: any Error & Sendable
    /// Describes the failure.
    public var description: String { "activity \(activityType) (id \(activityId)) failed: \(cause)" }
}

/// A child workflow failed, was canceled, timed out, was terminated or could not start.
public struct ChildWorkflowError: Error, Sendable, CustomStringConvertible {
    /// The child's workflow type.
    public var workflowType: String
    /// The child's workflow id.
    public var workflowId: String
    /// What happened, e.g. "failed", "timed out", "terminated", "could not start (already exists)".
    public var outcome: String
    /// The underlying error, when the child reported one.
    public var cause: (any Error & Sendable)?
    /// Describes the failure.
    public var description: String {
        "child workflow \(workflowType) (id \(workflowId)) \(outcome)" + (cause.map { ": \($0)" } ?? "")
    }
}

/// Signaling another workflow failed.
public struct SignalExternalError: Error, Sendable, CustomStringConvertible {
    /// The target workflow id.
    public var workflowId: String
    /// Why (not found, namespace not found, signal limit).
    public var cause: Ballast_V1_SignalExternalWorkflowExecutionFailedCause
    /// Describes the failure.
    public var description: String { "signal to workflow \(workflowId) failed: \(cause)" }
}

/// Converts errors to wire failures and back.
public enum FailureConverter {
    /// The failure source written by this SDK.
    public static let source = "SwiftSDK"
    /// The failure type used for cancellations.
    public static let canceledType = "Canceled"

    /// The wire failure for a thrown error.
    public static func failure(from error: any Error) -> Ballast_V1_Failure {
        var failure = Ballast_V1_Failure()
        failure.source = source
        switch error {
        case let error as ApplicationError:
            failure.message = error.message
            failure.type = error.type
            failure.nonRetryable = error.nonRetryable
            failure.details = error.details
        case let error as CanceledError:
            failure.message = error.message
            failure.type = canceledType
        case is CancellationError:
            failure.message = "canceled"
            failure.type = canceledType
        case let error as TimeoutError:
            failure.message = error.message
            failure.timeoutType = error.timeoutType
            if let last = error.lastFailure { failure.cause = last }
        case let error as ActivityError:
            failure.message = error.description
            failure.type = "ActivityFailure"
            failure.cause = Self.failure(from: error.cause)
        case let error as ChildWorkflowError:
            failure.message = error.description
            failure.type = "ChildWorkflowFailure"
            if let cause = error.cause { failure.cause = Self.failure(from: cause) }
        default:
            failure.message = String(describing: error)
            failure.type = String(describing: Swift.type(of: error))
        }
        return failure
    }

    /// The Swift error for a wire failure.
    public static func error(from failure: Ballast_V1_Failure) -> any Error & Sendable {
        if failure.timeoutType != .unspecified {
            return TimeoutError(timeoutType: failure.timeoutType, message: failure.message,
                                lastFailure: failure.hasCause ? failure.cause : nil)
        }
        if failure.type == canceledType { return CanceledError(failure.message) }
        return ApplicationError(failure.message, type: failure.type, nonRetryable: failure.nonRetryable,
                                details: failure.details)
    }
}
