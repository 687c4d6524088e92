import BallastProto
import Foundation

/// An activity: a named, side-effecting operation with typed input and output, run by a
/// worker and retried by the cluster according to its retry policy.
public protocol ActivityDefinition: Sendable {
    /// The activity's input.
    associatedtype Input: Codable & Sendable
    /// The activity's result.
    associatedtype Output: Codable & Sendable
    /// The activity type name on the wire (default: the Swift type's name).
    static var name: String { get }
    /// Runs one attempt.
    func run(_ input: Input, context: ActivityContext) async throws -> Output
}

extension ActivityDefinition {
    /// The Swift type's name.
    public static var name: String { String(describing: Self.self) }
}

/// What an activity attempt knows and can do: its identity, attempt number, idempotency key,
/// heartbeats and cancellation.
public struct ActivityContext: Sendable {
    /// The task as the cluster sent it.
    public let task: Ballast_V1_ActivityTaskInfo
    let heartbeater: any ActivityHeartbeating
    let converter: DataConverter
    let cancellation: CancellationFlag

    /// The attempt number, 1-based.
    public var attempt: Int { Int(task.attempt) }
    /// The activity type.
    public var activityType: String { task.activityType.name }
    /// The activity id (unique within the run).
    public var activityId: String { task.activityID }
    /// The calling workflow.
    public var workflowExecution: Ballast_V1_WorkflowExecution { task.workflowExecution }
    /// The namespace.
    public var namespace: String { task.namespace }

    /// "namespace/workflowId/runId/activityId": the same for every attempt of this activity
    /// and different for every other activity, so external systems can deduplicate retries.
    public var idempotencyKey: String {
        "\(task.namespace)/\(task.workflowExecution.workflowID)/\(task.workflowExecution.runID)/\(task.activityID)"
    }

    /// Whether the workflow asked to cancel this activity (learned from a heartbeat) or the
    /// worker is shutting down.
    public var isCancelled: Bool { cancellation.isSet || Task.isCancelled }

    /// Throws `CanceledError` if the activity was asked to cancel.
    public func checkCancellation() throws {
        if isCancelled { throw CanceledError("activity \(activityType) (id \(activityId)) canceled") }
    }

    /// Reports progress; the details reach the next attempt if this one fails. Learns about a
    /// cancel request (then `isCancelled` becomes true).
    public func heartbeat<D: Encodable & Sendable>(_ details: D) async throws {
        let payloads = try converter.toPayloads(details)
        if await heartbeater.heartbeat(payloads) { cancellation.set() }
    }

    /// Reports liveness without details.
    public func heartbeat() async {
        if await heartbeater.heartbeat(Ballast_V1_Payloads()) { cancellation.set() }
    }

    /// The details of the last heartbeat of a previous attempt, decoded as `D`.
    public func lastHeartbeatDetails<D: Decodable & Sendable>(as type: D.Type) throws -> D? {
        guard !task.heartbeatDetails.payloads.isEmpty else { return nil }
        return try converter.fromPayloads(task.heartbeatDetails, as: type)
    }
}

/// A flag set once, readable from any thread.
final class CancellationFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    var isSet: Bool { lock.withLock { value } }
    func set() { lock.withLock { value = true } }
}

/// The activities a worker runs, by name.
public struct ActivityRegistry: Sendable {
    typealias Function = @Sendable (Ballast_V1_Payloads, ActivityContext) async throws -> Ballast_V1_Payloads
    private(set) var functions: [String: Function] = [:]

    /// An empty registry.
    public init() {}

    /// Registers an activity instance (which may hold dependencies such as a database).
    public mutating func register<A: ActivityDefinition>(_ activity: A) {
        register(name: A.name) { (input: A.Input, context: ActivityContext) in
            try await activity.run(input, context: context)
        }
    }

    /// Registers a function as the activity `name`.
    public mutating func register<Input: Codable & Sendable, Output: Codable & Sendable>(
        name: String, _ function: @escaping @Sendable (Input, ActivityContext) async throws -> Output
    ) {
        precondition(functions[name] == nil, "activity type \(name) registered twice")
        functions[name] = { payloads, context in
            let input: Input
            if payloads.payloads.isEmpty, let empty = Empty() as? Input {
                input = empty
            } else {
                do {
                    input = try context.converter.fromPayloads(payloads, as: Input.self)
                } catch {
                    throw ApplicationError("activity \(name) cannot decode its input: \(error)", type: "PayloadConversionError", nonRetryable: true)
                }
            }
            return try context.converter.toPayloads(try await function(input, context))
        }
    }

    /// The registered names, sorted.
    public var names: [String] { functions.keys.sorted() }
}
