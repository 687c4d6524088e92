import BallastProto
import NIOCore
import SwiftProtobuf

/// Who is at the other end of a connection, as its verified TLS client certificate says.
/// Only the TLS layer creates one; nothing a caller sends in a header or a field can.
public struct PeerIdentity: Sendable, Hashable {
    /// The identity used for authorization and recorded in history (see docs/security.md).
    public let name: String
    /// The certificate's subject, as a distinguished-name string.
    public let subject: String
    /// The certificate's subject alternative names (DNS names, URIs, e-mail addresses).
    public let alternativeNames: [String]

    public init(name: String, subject: String, alternativeNames: [String]) {
        self.name = name
        self.subject = subject
        self.alternativeNames = alternativeNames
    }
}

/// What a handler sees of its call: path, request metadata, deadline, verified peer.
public struct GRPCServerContext: Sendable {
    /// The method path, `/package.Service/Method`.
    public let path: String
    /// Request metadata (custom headers; reserved gRPC headers excluded).
    public let metadata: GRPCMetadata
    /// When the caller gives up, from `grpc-timeout`; nil when none was sent.
    public let deadline: NIODeadline?
    /// The verified client certificate's identity; nil on a cleartext connection.
    public let peer: PeerIdentity?

    public init(path: String, metadata: GRPCMetadata, deadline: NIODeadline?, peer: PeerIdentity? = nil) {
        self.path = path
        self.metadata = metadata
        self.deadline = deadline
        self.peer = peer
    }
}

/// Sends responses of one server call; usable from any thread (it hops to the event loop).
public struct GRPCServerResponder: Sendable {
    let eventLoop: EventLoop
    let connection: NIOLoopBound<GRPCServerConnection>
    let streamID: Int32

    /// Sends one serialized response message; the future completes when HTTP/2 took it
    /// (immediately while little is queued), which bounds what a streaming handler buffers.
    public func send(_ payload: [UInt8]) -> EventLoopFuture<Void> {
        if eventLoop.inEventLoop {
            return connection.value.sendMessage(streamID: streamID, payload: payload)
        }
        return eventLoop.flatSubmit { [connection, streamID] in
            connection.value.sendMessage(streamID: streamID, payload: payload)
        }
    }

    /// Sends one response message and ends the call with OK, in one hop to the event loop
    /// (a unary call's answer).
    public func finish(sending payload: [UInt8]) {
        let answer = { @Sendable [connection, streamID] in
            _ = connection.value.sendMessage(streamID: streamID, payload: payload)
            connection.value.finish(streamID: streamID, status: .ok)
        }
        if eventLoop.inEventLoop { answer() } else { eventLoop.execute(answer) }
    }

    /// Ends the call with `status` (trailers, or a trailers-only response if nothing was sent).
    public func finish(_ status: GRPCStatus) {
        if eventLoop.inEventLoop {
            connection.value.finish(streamID: streamID, status: status)
        } else {
            eventLoop.execute { [connection, streamID] in connection.value.finish(streamID: streamID, status: status) }
        }
    }
}

/// A registered method: its shape and the closure the server runs on the event loop.
public struct GRPCMethodHandler: Sendable {
    /// The call shapes Ballast serves.
    public enum Kind: Sendable { case unary, serverStreaming }
    /// Unary or server-streaming.
    public let kind: Kind
    /// Starts the call; returns a cancellation hook (deadline hit or stream reset), if any.
    public let start: @Sendable (_ request: [UInt8], _ context: GRPCServerContext,
                                 _ responder: GRPCServerResponder) -> (@Sendable () -> Void)?

    /// Creates a handler from its raw form.
    public init(kind: Kind, start: @escaping @Sendable (_ request: [UInt8], _ context: GRPCServerContext,
                                                         _ responder: GRPCServerResponder) -> (@Sendable () -> Void)?) {
        self.kind = kind
        self.start = start
    }
}

/// Writes the responses of a server-streaming call, waiting while HTTP/2 cannot take more.
public struct GRPCStreamWriter<Response: SwiftProtobuf.Message>: Sendable {
    let responder: GRPCServerResponder

    /// Sends one message; suspends while the stream's outbound queue is full.
    public func send(_ message: Response) async throws {
        let bytes = try DeterministicBinaryEncoder.encode(message)
        try await responder.send(bytes).get()
    }
}

/// The table of methods a server answers, keyed by path (`/package.Service/Method`).
public struct GRPCMethodRegistry: Sendable {
    /// Handlers by path.
    public private(set) var methods: [String: GRPCMethodHandler] = [:]

    /// Creates an empty registry.
    public init() {}

    /// Registers a raw handler under `path`.
    public mutating func register(_ path: String, _ handler: GRPCMethodHandler) {
        precondition(methods[path] == nil, "method \(path) registered twice")
        methods[path] = handler
    }

    /// Registers an async unary handler; throwing a `GRPCStatus` answers that status.
    public mutating func unary<Request: SwiftProtobuf.Message, Response: SwiftProtobuf.Message>(
        _ path: String, _ body: @escaping @Sendable (Request, GRPCServerContext) async throws -> Response
    ) {
        register(path, GRPCMethodHandler(kind: .unary) { bytes, context, responder in
            let task = Task {
                do {
                    let request = try Self.decode(Request.self, bytes)
                    let response = try await body(request, context)
                    let payload = try DeterministicBinaryEncoder.encode(response)
                    responder.finish(sending: payload)
                } catch {
                    responder.finish(Self.status(for: error))
                }
            }
            return { task.cancel() }
        })
    }

    /// Registers a unary handler that starts on the event loop and answers through `respond`,
    /// exactly once, from any thread: for handlers whose work finishes on another thread (a
    /// Raft proposal, completed on the node's loop thread), so the call needs no Swift task and
    /// no hop through the concurrency pool. `body` must not block; an error passed to
    /// `respond` answers its status as with `unary`.
    public mutating func unaryCompleting<Request: SwiftProtobuf.Message, Response: SwiftProtobuf.Message>(
        _ path: String,
        _ body: @escaping @Sendable (Request, GRPCServerContext, _ respond: @escaping @Sendable (Result<Response, any Error>) -> Void) -> Void
    ) {
        register(path, GRPCMethodHandler(kind: .unary) { bytes, context, responder in
            let request: Request
            do { request = try Self.decode(Request.self, bytes) } catch {
                responder.finish(Self.status(for: error))
                return nil
            }
            body(request, context) { result in
                do {
                    let payload = try DeterministicBinaryEncoder.encode(result.get())
                    responder.finish(sending: payload)
                } catch {
                    responder.finish(Self.status(for: error))
                }
            }
            return nil
        })
    }

    /// Registers a synchronous unary handler run on the event loop (cheap methods, benchmarks).
    public mutating func unaryOnEventLoop<Request: SwiftProtobuf.Message, Response: SwiftProtobuf.Message>(
        _ path: String, _ body: @escaping @Sendable (Request, GRPCServerContext) throws -> Response
    ) {
        register(path, GRPCMethodHandler(kind: .unary) { bytes, context, responder in
            do {
                let response = try body(try Self.decode(Request.self, bytes), context)
                let payload = try DeterministicBinaryEncoder.encode(response)
                responder.finish(sending: payload)
            } catch {
                responder.finish(Self.status(for: error))
            }
            return nil
        })
    }

    /// Registers an async server-streaming handler.
    public mutating func serverStreaming<Request: SwiftProtobuf.Message, Response: SwiftProtobuf.Message>(
        _ path: String,
        _ body: @escaping @Sendable (Request, GRPCServerContext, GRPCStreamWriter<Response>) async throws -> Void
    ) {
        register(path, GRPCMethodHandler(kind: .serverStreaming) { bytes, context, responder in
            let task = Task {
                do {
                    try await body(try Self.decode(Request.self, bytes), context, GRPCStreamWriter(responder: responder))
                    responder.finish(.ok)
                } catch {
                    responder.finish(Self.status(for: error))
                }
            }
            return { task.cancel() }
        })
    }

    /// How deep a request's messages may nest. A node stores what a request carries a few levels
    /// deeper than the request has it — inside an engine entry in the Raft log, a history event, a
    /// pending activity in a snapshot, a describe or history response — and every decoder, a
    /// follower's and a worker's included, stops at swift-protobuf's 100 levels. A request
    /// accepted at 99 levels (a failure's cause chain is the one field that can nest without
    /// end) made an entry no follower could decode: each stopped rather than diverge
    /// (reliability.md, bug 35). 40 leaves room for a cause chain of about 30 failures.
    public static let requestDepthLimit = 40

    static func decode<Request: SwiftProtobuf.Message>(_ type: Request.Type, _ bytes: [UInt8]) throws -> Request {
        var options = BinaryDecodingOptions()
        options.messageDepthLimit = requestDepthLimit
        do {
            return try Request(serializedBytes: bytes, options: options)
        } catch BinaryDecodingError.messageDepthLimit {
            throw GRPCStatus(.invalidArgument, "\(Request.protoMessageName) nests messages more than \(requestDepthLimit) deep "
                             + "(a failure's cause chain?): refused, as the cluster stores what it carries deeper still")
        } catch {
            throw GRPCStatus(.internal, "cannot decode \(Request.protoMessageName): \(error)")
        }
    }

    static func status(for error: any Error) -> GRPCStatus {
        if let status = error as? GRPCStatus { return status }
        if error is CancellationError { return GRPCStatus(.cancelled, "the call was cancelled") }
        return GRPCStatus(.unknown, "handler failed: \(error)")
    }
}
