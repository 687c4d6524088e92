import BallastWire
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix

/// A request to the admin port: method, path (without query) and query parameters.
public struct AdminRequest: Sendable {
    /// HTTP method.
    public var method: HTTPMethod
    /// The path, e.g. `/status`.
    public var path: String
    /// Decoded query parameters (last one wins).
    public var query: [String: String]
    /// The request body (bounded by the server's limit).
    public var body: [UInt8]
    /// The request headers.
    public var headers: HTTPHeaders
    /// The peer's IP address, when known (the web UI records it in operator identities).
    public var remoteAddress: String? = nil
    /// The caller's verified TLS client certificate; nil on a cleartext port.
    public var peer: PeerIdentity? = nil
}

/// An admin-port response.
public struct AdminResponse: Sendable {
    /// HTTP status.
    public var status: HTTPResponseStatus
    /// The `content-type`.
    public var contentType: String
    /// The body.
    public var body: [UInt8]
    /// Further headers (the web UI's content security policy, redirects, downloads).
    public var headers: [(name: String, value: String)] = []

    /// Creates a response.
    public init(status: HTTPResponseStatus = .ok, contentType: String, body: [UInt8], headers: [(name: String, value: String)] = []) {
        self.status = status
        self.contentType = contentType
        self.body = body
        self.headers = headers
    }

    /// A plain-text response.
    public static func text(_ text: String, status: HTTPResponseStatus = .ok) -> AdminResponse {
        AdminResponse(status: status, contentType: "text/plain; charset=utf-8", body: Array(text.utf8))
    }

    /// A JSON response.
    public static func json(_ json: String, status: HTTPResponseStatus = .ok) -> AdminResponse {
        AdminResponse(status: status, contentType: "application/json", body: Array(json.utf8))
    }
}

/// Answers admin requests; runs off the event loop.
public typealias AdminRouter = @Sendable (AdminRequest) async -> AdminResponse

/// The HTTP/1.1 server on the admin port (`/healthz`, `/readyz`, `/status`, `/metrics`, the UI).
///
/// Whoever can reach the port gets bounded resources: at most `maxConnections` connections
/// (more are closed at accept), each closed unless a complete request arrives within
/// `requestDeadline` of its opening or of its last answer (idle and trickling clients), and
/// closed after a request that is not HTTP (answered 400 first). Bodies over `maxBodyBytes`
/// get 413.
public final class AdminHTTPServer: Sendable {
    private let channel: any Channel
    private let cap: ConnectionCap

    /// Connections open by default at most: browsers, scrapers and the other members' status
    /// calls need a few dozen.
    public static let defaultMaxConnections = 128
    /// How long a connection may take to deliver a whole request by default.
    public static let defaultRequestDeadline: TimeAmount = .seconds(30)

    /// Binds `host:port` (port 0 picks a free one) and serves `router`; with `tls`, over mutual
    /// TLS only (HTTPS), each request carrying the caller's verified identity.
    public init(host: String, port: Int, group: any EventLoopGroup, logger: Logger, maxBodyBytes: Int = 1 << 20,
                maxConnections: Int = AdminHTTPServer.defaultMaxConnections,
                requestDeadline: TimeAmount = AdminHTTPServer.defaultRequestDeadline,
                tls: TLSContextStore? = nil, router: @escaping AdminRouter) async throws {
        let cap = ConnectionCap(limit: maxConnections)
        self.cap = cap
        channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 64)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                guard cap.admit(channel) else {
                    logger.debug("refusing a connection: the admin port is at its connection limit", metadata: ["limit": "\(cap.limit)"])
                    // A failed initializer makes NIO close the accepted socket before registering it.
                    return channel.eventLoop.makeFailedFuture(ConnectionCapReached(port: "admin", limit: cap.limit))
                }
                return channel.eventLoop.makeCompletedFuture {
                    let deadline = ConnectionDeadline(channel: channel, limit: requestDeadline,
                                                      reason: "no complete admin request within \(requestDeadline)", logger: logger)
                    deadline.arm()
                    let handler = AdminRequestHandler(router: router, maxBodyBytes: maxBodyBytes, deadline: deadline, logger: logger)
                    try TLSServerPipeline.configure(
                        channel, store: tls, logger: logger,
                        onPeer: { identity, _ in
                            handler.peer = identity
                            return nil
                        },
                        addProtocolHandlers: { channel in
                            try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                            try channel.pipeline.syncOperations.addHandler(handler)
                        })
                }
            }
            .bind(host: host, port: port).get()
    }

    /// The bound port.
    public var port: Int { channel.localAddress?.port ?? 0 }
    /// Connections open now.
    public var openConnections: Int { cap.openConnections }
    /// Connections closed at accept because `maxConnections` were open.
    public var refusedConnections: Int { cap.refusedConnections }

    /// Stops accepting connections.
    public func close() async { try? await channel.close() }
}

/// Collects one request, hands it to the router, writes the answer; keeps the connection alive.
private final class AdminRequestHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let router: AdminRouter
    private let maxBodyBytes: Int
    private let deadline: ConnectionDeadline
    private let logger: Logger
    private var head: HTTPRequestHead?
    private var body: [UInt8] = []
    private var tooLarge = false
    /// The connection's verified client identity (TLS), set before any request is read.
    var peer: PeerIdentity?

    init(router: @escaping AdminRouter, maxBodyBytes: Int, deadline: ConnectionDeadline, logger: Logger) {
        self.router = router
        self.maxBodyBytes = maxBodyBytes
        self.deadline = deadline
        self.logger = logger
    }

    func handlerRemoved(context: ChannelHandlerContext) { deadline.disarm() }

    /// Any error closes the connection. Bytes that are not HTTP arrive here after NIO's error
    /// handler has answered them 400 with `Connection: close`, which it does not do itself.
    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        logger.debug("closing an admin connection after an error", metadata: ["error": "\(error)"])
        context.close(promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch Self.unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
            body = []
            tooLarge = false
        case .body(let chunk):
            if body.count + chunk.readableBytes > maxBodyBytes { tooLarge = true } else { body += chunk.readableBytesView }
        case .end:
            guard let head else { return }
            self.head = nil
            deadline.disarm()  // the request is complete: its answer may take as long as it takes
            respond(context: context, head: head)
        }
    }

    private func respond(context: ChannelHandlerContext, head: HTTPRequestHead) {
        let keepAlive = head.isKeepAlive
        let version = head.version
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        if tooLarge {
            return write(.text("request body too large\n", status: .payloadTooLarge), version: version, keepAlive: false, context: context)
        }
        let (path, query) = AdminQuery.split(uri: head.uri)
        let request = AdminRequest(method: head.method, path: path, query: query, body: body, headers: head.headers,
                                   remoteAddress: context.channel.remoteAddress?.ipAddress, peer: peer)
        let router = self.router
        let promise = context.eventLoop.makePromise(of: AdminResponse.self)
        promise.completeWithTask { await router(request) }
        promise.futureResult.whenSuccess { response in
            let (handler, context) = loopBound.value
            handler.write(response, version: version, keepAlive: keepAlive, context: context)
        }
    }

    private func write(_ response: AdminResponse, version: HTTPVersion, keepAlive: Bool, context: ChannelHandlerContext) {
        var headers = HTTPHeaders()
        headers.add(name: "content-type", value: response.contentType)
        headers.add(name: "content-length", value: String(response.body.count))
        headers.add(name: "cache-control", value: "no-store")
        headers.add(name: "x-content-type-options", value: "nosniff")
        for header in response.headers { headers.add(name: header.name, value: header.value) }
        if !keepAlive { headers.add(name: "connection", value: "close") }
        context.write(Self.wrapOutboundOut(.head(HTTPResponseHead(version: version, status: response.status, headers: headers))),
                      promise: nil)
        context.write(Self.wrapOutboundOut(.body(.byteBuffer(ByteBuffer(bytes: response.body)))), promise: nil)
        if keepAlive {
            context.writeAndFlush(Self.wrapOutboundOut(.end(nil)), promise: nil)
            deadline.arm()  // the next request must come within the deadline too
        } else {
            let channel = context.channel
            context.writeAndFlush(Self.wrapOutboundOut(.end(nil))).whenComplete { _ in channel.close(promise: nil) }
        }
    }
}

/// Parsing of request targets on the admin port.
enum AdminQuery {
    /// Splits `/a/b?x=1&y=2` into the path and its percent-decoded query parameters.
    static func split(uri: String) -> (String, [String: String]) {
        let parts = uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
        var query: [String: String] = [:]
        if parts.count == 2 {
            for pair in parts[1].split(separator: "&") {
                let keyValue = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                let key = percentDecoded(keyValue[0])
                query[key] = keyValue.count == 2 ? percentDecoded(keyValue[1]) : ""
            }
        }
        return (String(parts.first ?? "/"), query)
    }

    /// Decodes `%XX` escapes and `+` as a space; malformed escapes are kept as they are.
    static func percentDecoded(_ text: Substring) -> String {
        var bytes: [UInt8] = []
        var iterator = Array(text.utf8)[...]
        while let byte = iterator.popFirst() {
            if byte == UInt8(ascii: "+") { bytes.append(UInt8(ascii: " ")); continue }
            if byte == UInt8(ascii: "%"), iterator.count >= 2,
               let value = UInt8(String(decoding: iterator.prefix(2), as: UTF8.self), radix: 16) {
                bytes.append(value)
                iterator = iterator.dropFirst(2)
                continue
            }
            bytes.append(byte)
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
