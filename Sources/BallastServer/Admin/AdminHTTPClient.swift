import BallastWire
import NIOCore
import NIOHTTP1
import NIOPosix

/// A minimal HTTP/1.1 GET client for talking to peers' admin ports (status gathering).
public enum AdminHTTPClient {
    /// Why a GET failed.
    public enum Failure: Error, Sendable, Equatable {
        case timedOut
        case closedEarly
        case bodyTooLarge
    }

    /// GETs `path` from `host:port` (over mutual TLS with `tls`); returns status code and body.
    /// Bodies over `maxBodyBytes` fail.
    public static func get(host: String, port: Int, path: String, timeout: Duration, group: any EventLoopGroup,
                           maxBodyBytes: Int = 1 << 20, tls: TLSClientOptions? = nil) async throws -> (status: Int, body: [UInt8]) {
        let sslContext = try tls?.makeContext(applicationProtocols: ["http/1.1"])
        let loop = group.next()
        let promise = loop.makePromise(of: (Int, [UInt8]).self)
        let nanoseconds = timeout.components.seconds * 1_000_000_000 + timeout.components.attoseconds / 1_000_000_000
        let connecting = ClientBootstrap(group: loop)
            .connectTimeout(.nanoseconds(nanoseconds))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls, let sslContext {
                        try channel.pipeline.syncOperations.addHandler(try tls.makeHandler(context: sslContext, host: host))
                    }
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(ResponseCollector(promise: promise, maxBodyBytes: maxBodyBytes))
                }
            }
            .connect(host: host, port: port)
        let channel: any Channel
        do {
            channel = try await connecting.get()
        } catch {
            promise.fail(error)  // the collector never ran; complete the promise it would have completed
            throw error
        }
        let timer = loop.scheduleTask(in: .nanoseconds(nanoseconds)) { promise.fail(Failure.timedOut) }
        var headers = HTTPHeaders()
        headers.add(name: "host", value: "\(host):\(port)")
        headers.add(name: "connection", value: "close")
        let head = HTTPRequestHead(version: .http1_1, method: .GET, uri: path, headers: headers)
        channel.write(HTTPClientRequestPart.head(head), promise: nil)
        channel.writeAndFlush(HTTPClientRequestPart.end(nil), promise: nil)
        defer {
            timer.cancel()
            channel.close(promise: nil)
        }
        let (status, body) = try await promise.futureResult.get()
        return (status, body)
    }
}

private final class ResponseCollector: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart
    private let promise: EventLoopPromise<(Int, [UInt8])>
    private let maxBodyBytes: Int
    private var status = 0
    private var body: [UInt8] = []

    init(promise: EventLoopPromise<(Int, [UInt8])>, maxBodyBytes: Int) {
        self.promise = promise
        self.maxBodyBytes = maxBodyBytes
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch Self.unwrapInboundIn(data) {
        case .head(let head): status = Int(head.status.code)
        case .body(let chunk):
            guard body.count + chunk.readableBytes <= maxBodyBytes else {
                promise.fail(AdminHTTPClient.Failure.bodyTooLarge)
                context.close(promise: nil)
                return
            }
            body += chunk.readableBytesView
        case .end: promise.succeed((status, body))
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        promise.fail(AdminHTTPClient.Failure.closedEarly)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        promise.fail(error)
        context.close(promise: nil)
    }
}
