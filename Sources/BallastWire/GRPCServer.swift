import BallastHTTP2
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// Limits and options of a gRPC server; every buffer has a bound.
public struct GRPCServerConfiguration: Sendable {
    /// HTTP/2 settings and keep-alive.
    public var http2 = HTTP2Configuration()
    /// Largest request message accepted (RESOURCE_EXHAUSTED above it).
    public var maxReceiveMessageBytes = 4 << 20
    /// Largest response message sent (RESOURCE_EXHAUSTED above it).
    public var maxSendMessageBytes = 4 << 20
    /// Open connections this server keeps at once (across all clients). A connection accepted
    /// beyond it is closed at once, before any HTTP/2 work, and counted in
    /// `GRPCServer.refusedConnectionCount`; connections already open are not affected.
    public var maxConnections = 1024
    /// New connections accepted per second (a token bucket with as many tokens as this); over it,
    /// accepting pauses and new connections wait in the kernel's backlog (256). Bounds what
    /// clients that reconnect in a loop (stream floods, hang-ups) can cost the node; 0: no limit.
    public var maxNewConnectionsPerSecond = 500
    /// Request bytes all calls of one connection may buffer together; the call whose data crosses
    /// it fails with RESOURCE_EXHAUSTED (bounds memory to this, not streams × message size).
    public var maxBufferedRequestBytesPerConnection = 32 << 20
    /// A request must be complete (end of stream) within this time, or the call is cancelled.
    public var requestReceiveTimeout: TimeAmount = .seconds(30)
    /// After answering a call whose request is still arriving, the stream is reset this much later.
    public var abandonedRequestGracePeriod: TimeAmount = .seconds(1)
    /// Compress responses with LZ4 when the client accepts it.
    public var compressResponses = true
    /// Messages smaller than this are sent uncompressed.
    public var compressionThresholdBytes = 1024
    /// Queued response bytes per stream above which a streaming writer waits.
    public var streamHighWaterMarkBytes = 256 << 10
    /// Mutual TLS (ALPN `h2`) with certificates from this store; nil serves HTTP/2 cleartext.
    public var tls: TLSContextStore?

    /// Creates the default configuration.
    public init() {}
}

/// Why a connection was closed at accept: the server already had `limit` connections open.
public struct ConnectionLimitReached: Error, Sendable {
    /// `GRPCServerConfiguration.maxConnections`.
    public var limit: Int
}

/// A gRPC server on HTTP/2 over nghttp2: cleartext (prior knowledge), or mutual TLS with ALPN
/// `h2` when `GRPCServerConfiguration.tls` is set; each call's context then carries the
/// client's verified identity (`GRPCServerContext.peer`).
public final class GRPCServer: Sendable {
    /// The server's listening channel.
    public let channel: Channel
    private let connections: NIOLockedValueBox<[ObjectIdentifier: Channel]>
    private let refused: NIOLockedValueBox<Int>

    private init(channel: Channel, connections: NIOLockedValueBox<[ObjectIdentifier: Channel]>, refused: NIOLockedValueBox<Int>) {
        self.channel = channel
        self.connections = connections
        self.refused = refused
    }

    /// Connections open now.
    public var connectionCount: Int { connections.withLockedValue { $0.count } }

    /// Connections closed at accept because `maxConnections` were already open.
    public var refusedConnectionCount: Int { refused.withLockedValue { $0 } }

    /// The bound port (useful after binding port 0).
    public var port: Int? { channel.localAddress?.port }

    /// Binds `host:port` and serves the methods of `registry`.
    public static func start(host: String, port: Int, registry: GRPCMethodRegistry,
                             configuration: GRPCServerConfiguration = GRPCServerConfiguration(),
                             group: EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
                             logger: Logger = Logger(label: "ballast.grpc.server")) async throws -> GRPCServer {
        let connections = NIOLockedValueBox<[ObjectIdentifier: Channel]>([:])
        let refused = NIOLockedValueBox(0)
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelInitializer { server in
                let rate = configuration.maxNewConnectionsPerSecond
                guard rate > 0 else { return server.eventLoop.makeSucceededVoidFuture() }
                return server.eventLoop.makeCompletedFuture {
                    try server.pipeline.syncOperations.addHandler(AcceptRateLimiter(perSecond: rate, burst: rate))
                }
            }
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { child in
                let key = ObjectIdentifier(child)
                let admitted = connections.withLockedValue { open in
                    guard open.count < configuration.maxConnections else { return false }
                    open[key] = child
                    return true
                }
                guard admitted else {
                    refused.withLockedValue { $0 += 1 }
                    logger.debug("refusing a connection: the server is at its connection limit",
                                 metadata: ["limit": "\(configuration.maxConnections)"])
                    // A failed initializer makes NIO close the accepted socket before registering it.
                    return child.eventLoop.makeFailedFuture(ConnectionLimitReached(limit: configuration.maxConnections))
                }
                child.closeFuture.whenComplete { _ in _ = connections.withLockedValue { $0.removeValue(forKey: key) } }
                return child.eventLoop.makeCompletedFuture {
                    let delegate = GRPCServerConnection(registry: registry, configuration: configuration,
                                                        eventLoop: child.eventLoop, logger: logger)
                    try TLSServerPipeline.configure(
                        child, store: configuration.tls, logger: logger,
                        onPeer: { identity, _ in
                            delegate.peer = identity
                            return nil
                        },
                        addProtocolHandlers: { channel in
                            let handler = HTTP2ConnectionHandler(role: .server, configuration: configuration.http2,
                                                                 delegate: delegate, logger: logger)
                            delegate.handler = handler
                            try channel.pipeline.syncOperations.addHandler(handler)
                        })
                }
            }
            .bind(host: host, port: port).get()
        return GRPCServer(channel: channel, connections: connections, refused: refused)
    }

    /// Stops accepting, sends GOAWAY on every connection and waits for them to drain and close.
    public func shutdownGracefully() async {
        try? await channel.close()
        let open = connections.withLockedValue { Array($0.values) }
        for child in open {
            child.triggerUserOutboundEvent(HTTP2ConnectionHandler.GracefulShutdownEvent(), promise: nil)
        }
        for child in open {
            try? await child.closeFuture.get()
        }
    }

    /// Closes the listener and every connection at once.
    public func close() async {
        try? await channel.close()
        let open = connections.withLockedValue { Array($0.values) }
        for child in open { try? await child.close() }
    }
}
