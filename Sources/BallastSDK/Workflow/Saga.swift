/// Compensations for the steps a workflow has done, run in reverse order when it fails or is
/// canceled (the saga pattern). Each compensation is typically an activity, so it is retried by
/// the cluster like any other.
///
/// Used only from the workflow's own code (single-threaded by the runtime).
public final class Saga: @unchecked Sendable {
    private let context: WorkflowContext
    private var compensations: [@Sendable () async throws -> Void] = []

    /// Creates an empty saga.
    public init(context: WorkflowContext) { self.context = context }

    /// Registers a compensation to run if a later step fails.
    public func addCompensation(_ compensation: @escaping @Sendable () async throws -> Void) {
        compensations.append(compensation)
    }

    /// Registers an activity as a compensation (run with `options`, retried per its policy).
    public func addCompensation<A: ActivityDefinition>(_ activity: A.Type, input: A.Input,
                                                       options: ActivityOptions = ActivityOptions()) {
        let context = self.context
        compensations.append {
            _ = try await context.executeActivity(activity, input: input, options: options)
        }
    }

    /// How many compensations are registered.
    public var count: Int { compensations.count }

    /// Runs the compensations, last registered first, outside the workflow's cancellation (so
    /// they run after a cancel request too). A compensation that fails does not stop the others;
    /// the errors are returned in run order.
    @discardableResult
    public func compensate() async -> [any Error] {
        let pending = compensations
        compensations.removeAll()
        var errors: [any Error] = []
        for compensation in pending.reversed() {
            do {
                try await context.nonCancellable { try await compensation() }
            } catch {
                errors.append(error)
            }
        }
        return errors
    }
}

extension WorkflowContext {
    /// Runs `body` with a saga; if `body` throws (a failed step, a cancellation), runs the
    /// registered compensations in reverse order and rethrows the error.
    public func withSaga<T: Sendable>(_ body: (Saga) async throws -> T) async throws -> T {
        let saga = Saga(context: self)
        do {
            return try await body(saga)
        } catch {
            await saga.compensate()
            throw error
        }
    }
}
