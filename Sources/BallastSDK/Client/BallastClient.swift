import BallastProto
import BallastWire
import Foundation
import Logging
import NIOCore
import NIOPosix

/// Options of a `BallastClient`.
public struct BallastClientOptions: Sendable {
    /// The namespace every call uses.
    public var namespace = "default"
    /// Who is calling, recorded in history (e.g. `user@host`).
    public var identity = "swift-client@\(ProcessInfo.processInfo.hostName)"
    /// Deadline of one call, retries included (waiting for a result has its own).
    public var callTimeout: Duration = .seconds(30)
    /// Backoff of retried calls.
    public var retry = CallRetryPolicy()
    /// Turns values into payloads and back (JSON, then its codec chain, e.g. encryption).
    public var dataConverter: DataConverter = .default
    /// HTTP/2 and message limits of the connection.
    public var grpc = GRPCClientConfiguration()
    /// Mutual TLS to the cluster (CA bundle, this client's certificate and key); nil: cleartext.
    /// A worker gets it from the client it is built on.
    public var tls: TLSClientOptions? {
        get { grpc.tls }
        set { grpc.tls = newValue }
    }

    /// Default options.
    public init() {}
}

/// A client of a Ballast cluster: starts, signals, queries, cancels and reads workflows.
///
/// It takes several node addresses and keeps one HTTP/2 connection to the leader, following
/// `ballast-leader` redirects and retrying retriable failures (no leader, leader change, lost
/// connection) with backoff until each call's deadline. Writes carry a request id that stays
/// the same across retries, so a start or signal retried across a failover applies once.
public final class BallastClient: Sendable {
    /// The connection to the cluster.
    public let connection: ClusterConnection
    /// The client's options.
    public let options: BallastClientOptions
    let logger: Logger

    /// Creates a client for the nodes at `endpoints`; nothing is dialed before the first call.
    public init(endpoints: [BallastEndpoint], options: BallastClientOptions = BallastClientOptions(),
                group: EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
                logger: Logger = Logger(label: "ballast.client")) {
        self.connection = ClusterConnection(endpoints: endpoints, configuration: options.grpc, group: group, logger: logger)
        self.options = options
        self.logger = logger
    }

    /// Creates a client from a comma-separated address list (`HOST:PORT,HOST:PORT`).
    public convenience init(addresses: String, options: BallastClientOptions = BallastClientOptions()) throws(BallastClientError) {
        self.init(endpoints: try BallastEndpoint.parseList(addresses), options: options)
    }

    /// Closes the connection.
    public func close() async { await connection.close() }

    /// The namespace and identity headers sent with every call.
    var metadata: GRPCMetadata {
        var metadata = GRPCMetadata()
        metadata.add(GRPCHeaderName.ballastNamespace, options.namespace)
        metadata.add(GRPCHeaderName.ballastIdentity, options.identity)
        return metadata
    }

    /// Calls `path` with the client's retry policy and metadata.
    func call<Request: SwiftProtobuf.Message, Response: SwiftProtobuf.Message>(
        _ path: String, _ request: Request, as: Response.Type = Response.self, timeout: Duration? = nil,
        attemptTimeout: Duration? = nil
    ) async throws(BallastClientError) -> Response {
        let callOptions = CallOptions(timeout: timeout ?? options.callTimeout, metadata: metadata, attemptTimeout: attemptTimeout)
        return try await connection.unary(path, request, as: Response.self, options: callOptions, retry: options.retry)
    }

    /// A handle to an existing workflow (an empty run id means its current run).
    public func handle(workflowID: String, runID: String = "") -> WorkflowHandle {
        WorkflowHandle(client: self, workflowID: workflowID, runID: runID)
    }

    static func execution(_ workflowID: String, _ runID: String) -> Ballast_V1_WorkflowExecution {
        var execution = Ballast_V1_WorkflowExecution()
        execution.workflowID = workflowID
        execution.runID = runID
        return execution
    }

    static func validateID(_ value: String, _ what: String) throws(BallastClientError) {
        guard !value.isEmpty else { throw .invalidArgument("\(what) must not be empty") }
        guard value.utf8.count <= 1000 else { throw .invalidArgument("\(what) is longer than 1000 bytes") }
    }
}

import SwiftProtobuf
