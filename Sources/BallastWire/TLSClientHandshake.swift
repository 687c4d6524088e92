import NIOCore
import NIOSSL
import NIOTLS

/// Sits right after a client's TLS handler: completes `promise` when the handshake is done, or
/// fails it with a clear `GRPCStatus` (UNAVAILABLE naming the reason: the server's certificate
/// failed verification, or the server refused ours). A TLS failure after the handshake (in TLS
/// 1.3 the server judges the client certificate after the client is done) is reported through
/// `onFailure`, which the connection adds to the status of the calls it fails.
public final class TLSClientHandshakeHandler: ChannelInboundHandler, RemovableChannelHandler {
    public typealias InboundIn = ByteBuffer
    public typealias InboundOut = ByteBuffer

    let authority: String
    /// Completed at the end of the handshake.
    public let promise: EventLoopPromise<Void>
    private let onFailure: (String) -> Void
    private var done = false

    /// Creates the handler; `onFailure` gets the description of any TLS failure.
    public init(authority: String, promise: EventLoopPromise<Void>, onFailure: @escaping (String) -> Void = { _ in }) {
        self.authority = authority
        self.promise = promise
        self.onFailure = onFailure
    }

    public func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case TLSUserEvent.handshakeCompleted = event, !done {
            done = true
            promise.succeed(())
        }
        context.fireUserInboundEventTriggered(event)
    }

    public func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if case NIOSSLError.uncleanShutdown = error { return context.fireErrorCaught(error) }
        let why = "TLS with \(authority) failed: \(TLSNames.describe(error))"
        onFailure(why)
        if !done {
            done = true
            promise.fail(GRPCStatus(.unavailable, why))
        }
        context.fireErrorCaught(error)
    }

    public func channelInactive(context: ChannelHandlerContext) {
        if !done {
            done = true
            promise.fail(GRPCStatus(.unavailable, "the connection to \(authority) closed during the TLS handshake"))
        }
        context.fireChannelInactive()
    }

    public func handlerRemoved(context: ChannelHandlerContext) {
        if !done {
            done = true
            promise.fail(GRPCStatus(.unavailable, "the TLS handshake with \(authority) was abandoned"))
        }
    }
}
