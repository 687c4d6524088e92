import BallastRaft
import Logging
import NIOCore

/// Decodes each frame into a Raft message and hands it to the node. A connection must open with
/// a hello frame, and every message on it must come from the node that said hello and be
/// addressed to this node. Anything else closes the connection with a log line; the node itself
/// never sees it.
final class RaftInboundHandler: ChannelInboundHandler {
    typealias InboundIn = (RaftFrame.Kind, ByteBuffer)

    private let localID: NodeID
    private let codec: RaftMessageCodec
    private let deliver: @Sendable (Message) -> Void
    private let hello: @Sendable (NodeInfo) -> Void
    private let members: @Sendable ([NodeInfo]) -> Void
    private let logger: Logger
    private var peer: NodeID?
    /// The node the connection's verified TLS certificate names (set before any frame arrives).
    var certifiedPeer: NodeID?
    /// Refuse a hello on a connection without a verified certificate (TLS required).
    private let requireCertificate: Bool
    /// Closes the connection unless a valid hello arrives in time (set before any frame arrives).
    var helloDeadline: ConnectionDeadline?

    init(localID: NodeID, codec: RaftMessageCodec, logger: Logger, hello: @escaping @Sendable (NodeInfo) -> Void,
         members: @escaping @Sendable ([NodeInfo]) -> Void = { _ in }, requireCertificate: Bool = false,
         deliver: @escaping @Sendable (Message) -> Void) {
        self.requireCertificate = requireCertificate
        self.members = members
        self.localID = localID
        self.codec = codec
        self.logger = logger
        self.hello = hello
        self.deliver = deliver
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let (kind, payload) = Self.unwrapInboundIn(data)
        do {
            switch kind {
            case .hello:
                let info = try NodeInfo(encoded: Array(payload.readableBytesView))
                guard peer == nil || peer?.rawValue == info.id else { return refuse(context, "a second hello with another id") }
                if let certifiedPeer, certifiedPeer.rawValue != info.id {
                    return refuse(context, "a hello from node \(info.id) on a connection certified as node/\(certifiedPeer.rawValue)")
                }
                guard certifiedPeer != nil || !requireCertificate else {
                    return refuse(context, "a hello from node \(info.id) without a verified certificate")
                }
                peer = NodeID(info.id)
                helloDeadline?.disarm()
                hello(info)
            case .members:
                guard peer != nil else { return refuse(context, "a member table before the hello frame") }
                members(try MemberTableCodec.decodeList(Array(payload.readableBytesView)))
            case .message:
                guard let peer else { return refuse(context, "a message before the hello frame") }
                let message = try codec.decode(Array(payload.readableBytesView))
                guard message.from == peer else { return refuse(context, "a message from \(message.from) on \(peer)'s connection") }
                guard message.to == localID else { return refuse(context, "a message addressed to \(message.to)") }
                deliver(message)
            }
        } catch {
            closeOnError(context: context, error)
        }
    }

    private func refuse(_ context: ChannelHandlerContext, _ why: String) {
        logger.warning("closing Raft connection: \(why)",
                       metadata: ["remote": "\(context.remoteAddress.map { "\($0)" } ?? "?")"])
        context.close(promise: nil)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        closeOnError(context: context, error)
    }

    func handlerRemoved(context: ChannelHandlerContext) { helloDeadline?.disarm() }

    private func closeOnError(context: ChannelHandlerContext, _ error: any Error) {
        logger.warning("closing Raft connection after bad input",
                       metadata: ["remote": "\(context.remoteAddress.map { "\($0)" } ?? "?")", "error": "\(error)"])
        context.close(promise: nil)
    }
}
