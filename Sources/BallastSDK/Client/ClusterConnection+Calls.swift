import BallastWire
import SwiftProtobuf

/// Options of one client call.
public struct CallOptions: Sendable {
    /// The whole call, retries included.
    public var timeout: Duration
    /// Extra request metadata (namespace, identity, read consistency).
    public var metadata: GRPCMetadata
    /// Each attempt's deadline is at most this (nil: the policy's `attemptTimeout`).
    public var attemptTimeout: Duration?

    /// Creates options.
    public init(timeout: Duration = .seconds(30), metadata: GRPCMetadata = GRPCMetadata(), attemptTimeout: Duration? = nil) {
        self.timeout = timeout
        self.metadata = metadata
        self.attemptTimeout = attemptTimeout
    }
}

extension ClusterConnection {
    /// Calls a unary method on the leader, retrying retriable failures (following
    /// `ballast-leader`, else the next address) with backoff and jitter until the deadline.
    /// The request is sent unchanged on every attempt, so a request id in it makes the
    /// call apply once even when an attempt's answer was lost.
    public nonisolated func unary<Request: SwiftProtobuf.Message, Response: SwiftProtobuf.Message>(
        _ path: String, _ request: Request, as responseType: Response.Type = Response.self,
        options: CallOptions = CallOptions(), retry: CallRetryPolicy = CallRetryPolicy()
    ) async throws(BallastClientError) -> Response {
        let clock = ContinuousClock()
        let deadline = clock.now + options.timeout
        var backoff = Backoff(policy: retry)
        var generator = SystemRandomNumberGenerator()
        var attempts = 0
        var lastError = "no attempt made"
        var immediateRedirects = 0
        while true {
            attempts += 1
            let remaining = deadline - clock.now
            guard remaining > .zero else { throw Self.exhausted(path, lastError, attempts - 1, timedOut: true) }
            if Task.isCancelled { throw .rejected(method: path, status: GRPCStatus(.cancelled, "the calling task was cancelled")) }
            let attemptTimeout = min(remaining, options.attemptTimeout ?? retry.attemptTimeout)
            var generation: UInt64?
            let status: GRPCStatus
            do {
                // Dialing is bounded by the attempt's deadline too (a SYN to a dead host can hang);
                // an open connection needs no such race (a task group and a timer per call).
                let (client, current): (GRPCClient, UInt64)
                if let open = await self.connected() {
                    (client, current) = open
                } else {
                    (client, current) = try await Self.within(attemptTimeout) { try await self.current() }
                }
                generation = current
                return try await client.unary(path, request: request, responseType: Response.self,
                                              metadata: options.metadata, timeout: attemptTimeout)
            } catch let caught as GRPCStatus {
                status = caught
            } catch {
                status = GRPCStatus(.unknown, "\(error)")
            }
            lastError = "\(status)"
            var decision = RetryClassifier.decide(status)
            // An attempt that ran into its own (shorter) deadline is retried elsewhere.
            if status.code == .deadlineExceeded, deadline - clock.now > .zero, attemptTimeout < remaining {
                decision = .retry(leader: nil)
            }
            switch decision {
            case .fail:
                if status.code == .deadlineExceeded { throw .deadlineExceeded(method: path, attempts: attempts) }
                throw .rejected(method: path, status: status)
            case .retrySameNode:
                immediateRedirects = 0
            case .retry(let leader):
                if let generation { await failed(generation: generation, leader: leader) }
                // Follow a fresh leader hint at once; back off when hints go round in circles.
                if leader != nil, immediateRedirects == 0 {
                    immediateRedirects += 1
                    continue
                }
                immediateRedirects = 0
            }
            let delay = backoff.next(using: &generator)
            guard clock.now + delay < deadline else { throw Self.exhausted(path, lastError, attempts, timedOut: false) }
            do { try await Task.sleep(for: delay) } catch {
                throw .rejected(method: path, status: GRPCStatus(.cancelled, "the calling task was cancelled"))
            }
        }
    }

    /// `body`'s value, or DEADLINE_EXCEEDED once `limit` passes (the body is then cancelled).
    static func within<T: Sendable>(_ limit: Duration, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
        try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask { try await body() }
            group.addTask {
                try? await Task.sleep(for: limit)
                return nil
            }
            defer { group.cancelAll() }
            guard let first = try await group.next(), let value = first else {
                throw GRPCStatus(.deadlineExceeded, "connecting took longer than the attempt's deadline")
            }
            return value
        }
    }

    static func exhausted(_ path: String, _ lastError: String, _ attempts: Int, timedOut: Bool) -> BallastClientError {
        if attempts == 0 { return .deadlineExceeded(method: path, attempts: 0) }
        return .unavailable(method: path, lastError: lastError, attempts: attempts)
    }
}
