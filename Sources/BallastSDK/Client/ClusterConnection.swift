import BallastWire
import Logging
import NIOCore
import NIOPosix
import SwiftProtobuf
import Synchronization

/// One HTTP/2 connection to the node believed to be the leader, among several addresses.
///
/// A failed call reports its status with the connection's generation: the first report for a
/// generation moves the connection to the leader the status names (`ballast-leader`) or to the
/// next configured address; later reports for the same generation change nothing, so a burst
/// of calls failing together causes one switch, not one per call.
public actor ClusterConnection {
    /// The configured addresses, in the order they are tried.
    public nonisolated let endpoints: [BallastEndpoint]
    let configuration: GRPCClientConfiguration
    let group: EventLoopGroup
    let logger: Logger
    private var endpointIndex = 0
    private var target: BallastEndpoint
    private var generation: UInt64 = 0
    private var client: GRPCClient?
    private var connecting: Task<GRPCClient, Error>?
    private var closed = false

    /// Creates a connection manager; nothing is dialed until the first call.
    public init(endpoints: [BallastEndpoint], configuration: GRPCClientConfiguration = GRPCClientConfiguration(),
                group: EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
                logger: Logger = Logger(label: "ballast.client")) {
        precondition(!endpoints.isEmpty, "a cluster connection needs at least one address")
        self.endpoints = endpoints
        self.configuration = configuration
        self.group = group
        self.logger = logger
        self.target = endpoints[0]
    }

    /// The node calls currently go to.
    public var currentTarget: BallastEndpoint { target }

    /// The open connection to the current target and its generation, if there is one: no
    /// dialing, so no deadline needs to bound it.
    func connected() -> (GRPCClient, UInt64)? {
        guard !closed, let client, client.channel.isActive else { return nil }
        return (client, generation)
    }

    /// The open connection to the current target (dialing it if needed) and its generation.
    public func current() async throws -> (GRPCClient, UInt64) {
        guard !closed else { throw GRPCStatus(.cancelled, "the client was closed") }
        if let client, client.channel.isActive { return (client, generation) }
        let dialing: Task<GRPCClient, Error>
        let dialedGeneration = generation
        if let connecting {
            dialing = connecting
        } else {
            let endpoint = target
            let configuration = configuration
            let group = group
            let logger = logger
            dialing = Task {
                try await GRPCClient.connect(host: endpoint.host, port: endpoint.port, configuration: configuration,
                                             group: group, logger: logger)
            }
            connecting = dialing
            client = nil
        }
        do {
            let dialed = try await Self.cancellableValue(dialing)
            if generation == dialedGeneration, connecting == dialing {
                connecting = nil
                client = dialed
            }
            return (dialed, dialedGeneration)
        } catch is CancellationError {
            // The caller gave up (its deadline); the dial goes on for the next caller.
            throw GRPCStatus(.deadlineExceeded, "gave up waiting for the connection to \(target)")
        } catch {
            let failedTarget = target
            if connecting == dialing {
                connecting = nil
                // Dialing failed: the next caller tries the next address.
                failed(generation: dialedGeneration, leader: nil)
            }
            throw GRPCStatus(.unavailable, "cannot connect to \(failedTarget): \(error)")
        }
    }

    /// The task's value; throws CancellationError as soon as the caller is cancelled (a
    /// task's `value` alone waits for the task even then).
    static func cancellableValue<T: Sendable>(_ task: Task<T, Error>) async throws -> T {
        let slot = ContinuationSlot<T>()
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                slot.set(continuation)
                Task { slot.resume(with: await task.result) }
            }
        } onCancel: {
            slot.resume(with: .failure(CancellationError()))
        }
    }

    /// Reports that a call on `generation` failed with a retriable status: switch to `leader`
    /// if given (and different), else to the next address.
    public func failed(generation failedGeneration: UInt64, leader: BallastEndpoint?) {
        guard failedGeneration == generation, !closed else { return }
        generation += 1
        let previous = target
        if let leader, leader != target {
            target = leader
            if let index = endpoints.firstIndex(of: leader) { endpointIndex = index }
        } else {
            endpointIndex = (endpointIndex + 1) % endpoints.count
            target = endpoints[endpointIndex]
        }
        logger.debug("switching node", metadata: ["from": "\(previous)", "to": "\(target)", "leaderHint": "\(leader.map { "\($0)" } ?? "none")"])
        connecting?.cancel()
        connecting = nil
        if let old = client {
            client = nil
            // Calls in flight on the old connection finish (GOAWAY lets them drain).
            Task { await old.close() }
        }
    }

    /// Closes the connection; later calls fail with CANCELLED.
    public func close() async {
        closed = true
        connecting?.cancel()
        connecting = nil
        if let old = client {
            client = nil
            await old.close()
        }
    }
}

/// A continuation resumed at most once, by whichever comes first (a result or a cancellation).
final class ContinuationSlot<T: Sendable>: Sendable {
    private let state = Mutex<(continuation: CheckedContinuation<T, Error>?, early: Result<T, Error>?)>((nil, nil))

    func set(_ continuation: CheckedContinuation<T, Error>) {
        let early = state.withLock { state -> Result<T, Error>? in
            if let early = state.early { state.early = nil; return early }
            state.continuation = continuation
            return nil
        }
        if let early { continuation.resume(with: early) }
    }

    func resume(with result: Result<T, Error>) {
        let continuation = state.withLock { state -> CheckedContinuation<T, Error>? in
            guard let continuation = state.continuation else {
                if state.early == nil { state.early = result }
                return nil
            }
            state.continuation = nil
            return continuation
        }
        continuation?.resume(with: result)
    }
}
