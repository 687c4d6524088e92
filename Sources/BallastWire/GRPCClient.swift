import BallastHTTP2
import BallastProto
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOSSL
import SwiftProtobuf

/// Options of a client connection.
public struct GRPCClientConfiguration: Sendable {
    /// HTTP/2 settings and keep-alive.
    public var http2 = HTTP2Configuration()
    /// Largest response message accepted (RESOURCE_EXHAUSTED above it).
    public var maxReceiveMessageBytes = 4 << 20
    /// Send requests with `grpc-encoding: lz4` (only to servers known to accept it).
    public var compressRequests = false
    /// Requests smaller than this are sent uncompressed.
    public var compressionThresholdBytes = 1024
    /// How long connecting may take.
    public var connectTimeout: TimeAmount = .seconds(5)
    /// Bytes of streamed responses the consumer may lag behind before the server is held back.
    public var streamingHighWaterMarkBytes = 256 << 10
    /// Mutual TLS with ALPN `h2`; nil connects in cleartext (prior knowledge).
    public var tls: TLSClientOptions?

    /// Creates the default configuration: window updates are driven by the consumer.
    public init() {
        http2.automaticInboundWindowUpdates = false
    }
}

/// The outcome of a unary call with its metadata.
public struct GRPCUnaryResponse<Response: Sendable>: Sendable {
    /// The response message.
    public var message: Response
    /// Response headers (custom metadata only).
    public var initialMetadata: GRPCMetadata
    /// Trailers besides grpc-status / grpc-message.
    public var trailingMetadata: GRPCMetadata
}

/// A gRPC client over one HTTP/2 connection, multiplexing calls: cleartext (prior knowledge),
/// or TLS with ALPN `h2` when `GRPCClientConfiguration.tls` is set.
public final class GRPCClient: Sendable {
    /// The connection's channel.
    public let channel: Channel
    let connection: NIOLoopBound<GRPCClientConnection>

    private init(channel: Channel, connection: NIOLoopBound<GRPCClientConnection>) {
        self.channel = channel
        self.connection = connection
    }

    /// Connects to `host:port`.
    public static func connect(host: String, port: Int, configuration: GRPCClientConfiguration = GRPCClientConfiguration(),
                               group: EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
                               logger: Logger = Logger(label: "ballast.grpc.client")) async throws -> GRPCClient {
        let authority = "\(host):\(port)"
        let sslContext: NIOSSLContext?
        do {
            sslContext = try configuration.tls?.makeContext(applicationProtocols: ["h2"])
        } catch {
            throw GRPCStatus(.failedPrecondition, "cannot use the TLS files to connect to \(authority): \(error)")
        }
        let tls = configuration.tls
        // The handshake's outcome, kept outside the pipeline (a failed handshake empties it).
        let handshake = NIOLockedValueBox<EventLoopFuture<Void>?>(nil)
        // The connection object, kept outside the pipeline too (a peer may close at once).
        let bound = NIOLockedValueBox<NIOLoopBound<GRPCClientConnection>?>(nil)
        let channel = try await ClientBootstrap(group: group)
            .connectTimeout(configuration.connectTimeout)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let delegate = GRPCClientConnection(configuration: configuration, eventLoop: channel.eventLoop, authority: authority)
                    bound.withLockedValue { $0 = NIOLoopBound(delegate, eventLoop: channel.eventLoop) }
                    if let sslContext, let tls {
                        let watcher = TLSClientHandshakeHandler(authority: authority, promise: channel.eventLoop.makePromise()) {
                            delegate.closeReason = $0
                        }
                        handshake.withLockedValue { $0 = watcher.promise.futureResult }
                        try channel.pipeline.syncOperations.addHandlers([try tls.makeHandler(context: sslContext, host: host), watcher])
                    }
                    let handler = HTTP2ConnectionHandler(role: .client, configuration: configuration.http2,
                                                         delegate: delegate, logger: logger)
                    delegate.handler = handler
                    try channel.pipeline.syncOperations.addHandler(handler)
                }
            }
            .connect(host: host, port: port).get()
        if let handshake = handshake.withLockedValue({ $0 }) {
            do {
                try await handshake.get()
            } catch {
                try? await channel.close()
                throw error
            }
        }
        guard let connection = bound.withLockedValue({ $0 }) else {
            throw GRPCStatus(.internal, "client pipeline has no gRPC connection")
        }
        return GRPCClient(channel: channel, connection: connection)
    }

    /// Calls a unary method and returns its response; throws `GRPCStatus` when not OK.
    public func unary<Request: SwiftProtobuf.Message, Response: SwiftProtobuf.Message>(
        _ path: String, request: Request, responseType: Response.Type = Response.self,
        metadata: GRPCMetadata = GRPCMetadata(), timeout: Duration? = nil
    ) async throws -> Response {
        try await unaryCall(path, request: request, responseType: responseType, metadata: metadata, timeout: timeout).message
    }

    /// Calls a unary method and returns the response with its metadata.
    public func unaryCall<Request: SwiftProtobuf.Message, Response: SwiftProtobuf.Message>(
        _ path: String, request: Request, responseType: Response.Type = Response.self,
        metadata: GRPCMetadata = GRPCMetadata(), timeout: Duration? = nil
    ) async throws -> GRPCUnaryResponse<Response> {
        let payload = try DeterministicBinaryEncoder.encode(request)
        let (status, messages, initial) = await rawUnary(path, payload: payload, metadata: metadata, timeout: timeout)
        guard status.code == .ok else { throw status }
        guard messages.count == 1, let only = messages.first else {
            throw GRPCStatus(.internal, "unary response carried \(messages.count) messages")
        }
        do {
            let message = try Response(serializedBytes: only)
            return GRPCUnaryResponse(message: message, initialMetadata: initial, trailingMetadata: status.trailers)
        } catch {
            throw GRPCStatus(.internal, "cannot decode \(Response.protoMessageName): \(error)")
        }
    }

    /// Sends serialized request bytes and collects serialized responses and the status.
    public func rawUnary(_ path: String, payload: [UInt8], metadata: GRPCMetadata = GRPCMetadata(),
                         timeout: Duration? = nil) async -> (GRPCStatus, [[UInt8]], GRPCMetadata) {
        let connection = self.connection
        let timeoutNanoseconds = timeout.map(Self.nanoseconds)
        // Set on the event loop: the stream to reset if the calling task is cancelled.
        let state = NIOLockedValueBox<(streamID: HTTP2StreamID?, cancelled: Bool)>((nil, false))
        return await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                connection.eventLoop.execute {
                    var messages: [[UInt8]] = []
                    let streamID = connection.value.startCall(
                        path: path, payload: payload, metadata: metadata, timeoutNanoseconds: timeoutNanoseconds,
                        onMessage: { messages.append($0) },
                        onFinish: { status, initial in continuation.resume(returning: (status, messages, initial)) })
                    let cancelled = state.withLockedValue { $0.streamID = streamID; return $0.cancelled }
                    if cancelled, let streamID { connection.value.cancel(streamID: streamID, status: Self.cancelledStatus) }
                }
            }
        } onCancel: {
            connection.eventLoop.execute {
                let streamID = state.withLockedValue { $0.cancelled = true; return $0.streamID }
                if let streamID { connection.value.cancel(streamID: streamID, status: Self.cancelledStatus) }
            }
        }
    }

    static let cancelledStatus = GRPCStatus(.cancelled, "the calling task was cancelled")

    /// Calls a server-streaming method; the sequence throws `GRPCStatus` when the call fails.
    /// The server is held back (HTTP/2 flow control) while the consumer lags behind.
    public func serverStreaming<Request: SwiftProtobuf.Message, Response: SwiftProtobuf.Message>(
        _ path: String, request: Request, responseType: Response.Type = Response.self,
        metadata: GRPCMetadata = GRPCMetadata(), timeout: Duration? = nil
    ) throws -> GRPCResponseStream<Response> {
        let payload = try DeterministicBinaryEncoder.encode(request)
        let connection = self.connection
        let timeoutNanoseconds = timeout.map(Self.nanoseconds)
        let current = NIOLockedValueBox<HTTP2StreamID?>(nil)
        let base = AsyncThrowingStream<Response, Error> { continuation in
            connection.eventLoop.execute {
                connection.value.startCall(
                    path: path, payload: payload, metadata: metadata, timeoutNanoseconds: timeoutNanoseconds,
                    streaming: true, onStreamID: { id in current.withLockedValue { $0 = id } },
                    onMessage: { bytes in
                        do { continuation.yield(try Response(serializedBytes: bytes)) } catch {
                            continuation.finish(throwing: GRPCStatus(.internal, "cannot decode \(Response.protoMessageName): \(error)"))
                        }
                    },
                    onFinish: { status, _ in
                        if status.code == .ok { continuation.finish() } else { continuation.finish(throwing: status) }
                    })
            }
            continuation.onTermination = { _ in
                connection.eventLoop.execute {
                    guard let streamID = current.withLockedValue({ $0 }) else { return }
                    connection.value.cancel(streamID: streamID, status: GRPCStatus(.cancelled, "the caller stopped reading"))
                }
            }
        }
        return GRPCResponseStream(base: base) {
            connection.eventLoop.execute {
                if let streamID = current.withLockedValue({ $0 }) { connection.value.messageTaken(streamID: streamID) }
            }
        }
    }

    /// Sends GOAWAY and closes the connection once calls in flight finish.
    public func close() async {
        channel.triggerUserOutboundEvent(HTTP2ConnectionHandler.GracefulShutdownEvent(), promise: nil)
        try? await channel.closeFuture.get()
    }

    /// A timeout in whole nanoseconds, `Int64.max` for one too long to count (292 years): the
    /// plain product trapped, stopping the caller's process.
    static func nanoseconds(_ duration: Duration) -> Int64 {
        let (seconds, attoseconds) = duration.components
        let (whole, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        if overflow { return seconds < 0 ? .min : .max }
        let (sum, overflowed) = whole.addingReportingOverflow(attoseconds / 1_000_000_000)
        return overflowed ? (seconds < 0 ? .min : .max) : sum
    }
}

/// The responses of a server-streaming call; taking each one lets the server send more.
public struct GRPCResponseStream<Response: Sendable>: AsyncSequence, Sendable {
    /// Each element is one response message.
    public typealias Element = Response
    let base: AsyncThrowingStream<Response, Error>
    let taken: @Sendable () -> Void

    /// Iterates the responses.
    public struct AsyncIterator: AsyncIteratorProtocol {
        var base: AsyncThrowingStream<Response, Error>.AsyncIterator
        let taken: @Sendable () -> Void

        /// The next response, nil at the end; throws the call's `GRPCStatus` on failure.
        public mutating func next() async throws -> Response? {
            let value = try await base.next()
            if value != nil { taken() }
            return value
        }
    }

    /// Starts iterating.
    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(base: base.makeAsyncIterator(), taken: taken)
    }
}
