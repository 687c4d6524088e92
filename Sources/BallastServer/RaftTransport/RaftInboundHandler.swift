import BallastRaft
import Logging
import NIOCore

/// Decodes each frame payload into a Raft message and hands it to the node. Anything malformed
/// closes this connection with a log line; the node itself never sees it.
final class RaftInboundHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    private let localID: NodeID
    private let codec: RaftMessageCodec
    private let deliver: @Sendable (Message) -> Void
    private let logger: Logger

    init(localID: NodeID, codec: RaftMessageCodec, logger: Logger, deliver: @escaping @Sendable (Message) -> Void) {
        self.localID = localID
        self.codec = codec
        self.logger = logger
        self.deliver = deliver
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let payload = Self.unwrapInboundIn(data)
        do {
            let message = try codec.decode(Array(payload.readableBytesView))
            guard message.to == localID else {
                logger.warning("closing Raft connection: message addressed to another node",
                               metadata: ["remote": "\(context.remoteAddress.map { "\($0)" } ?? "?")", "to": "\(message.to)"])
                context.close(promise: nil)
                return
            }
            deliver(message)
        } catch {
            closeOnError(context: context, error)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        closeOnError(context: context, error)
    }

    private func closeOnError(context: ChannelHandlerContext, _ error: any Error) {
        logger.warning("closing Raft connection after bad input",
                       metadata: ["remote": "\(context.remoteAddress.map { "\($0)" } ?? "?")", "error": "\(error)"])
        context.close(promise: nil)
    }
}
