import BallastRaft
import Logging
import NIOCore
import NIOPosix
import Synchronization

/// Where a peer's Raft port is, as this node dials it (`--peers`, overridable by `--peer-address`).
public struct PeerAddress: Sendable, Hashable {
    /// Host name or IP address.
    public var host: String
    /// TCP port.
    public var port: Int

    /// Creates an address.
    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }
}

/// Raft over TCP: one outbound connection per peer carries this node's messages to it, and a
/// listener accepts the peers' outbound connections (so each direction of a link is its own
/// connection, which lets a fault proxy sit on each directed link).
public final class TCPRaftTransport: RaftTransport, @unchecked Sendable {
    private let localID: NodeID
    private let directory: Mutex<[UInt64: NodeInfo]>
    private let group: any EventLoopGroup
    private let logger: Logger
    private let codec = RaftMessageCodec()
    private let peers: [NodeID: PeerConnection]
    private var listener: (any Channel)?

    /// Creates the transport; nothing is dialed until a message is sent. `localInfo` opens every
    /// outbound connection, so peers learn this node's addresses.
    public init(localInfo: NodeInfo, peers: [NodeID: PeerAddress], group: any EventLoopGroup, logger: Logger,
                maxQueuedBytesPerPeer: Int = 64 << 20) {
        let localID = NodeID(localInfo.id)
        self.localID = localID
        self.directory = Mutex([localInfo.id: localInfo])
        self.group = group
        self.logger = logger
        var connections: [NodeID: PeerConnection] = [:]
        for (id, address) in peers where id != localID {
            connections[id] = PeerConnection(
                peer: id, host: address.host, port: address.port, loop: group.next(), logger: logger,
                maxQueuedBytes: maxQueuedBytesPerPeer, seed: localID.rawValue << 32 ^ id.rawValue, hello: localInfo)
        }
        self.peers = connections
    }

    /// Starts accepting peers on `host:port` (port 0 picks a free one); returns the bound port.
    public func listen(host: String, port: Int, deliver: @escaping @Sendable (Message) -> Void) async throws -> Int {
        let localID = self.localID
        let codec = self.codec
        let logger = self.logger
        let hello: @Sendable (NodeInfo) -> Void = { [self] info in directory.withLock { $0[info.id] = info } }
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 128)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(RaftFrameDecoder()))
                    try channel.pipeline.syncOperations.addHandler(
                        RaftInboundHandler(localID: localID, codec: codec, logger: logger, hello: hello, deliver: deliver))
                }
            }
            .bind(host: host, port: port).get()
        listener = channel
        return channel.localAddress?.port ?? port
    }

    /// Every node this one has heard a hello from, and itself, by id.
    public var knownNodes: [UInt64: NodeInfo] { directory.withLock { $0 } }

    public func send(_ messages: [Message]) {
        var byPeer: [NodeID: [[UInt8]]] = [:]
        for message in messages {
            precondition(message.from == localID, "a node only sends its own messages")
            byPeer[message.to, default: []].append(codec.encode(message))
        }
        for (peer, payloads) in byPeer { peers[peer]?.enqueue(payloads) }
    }

    /// Stops listening and closes every peer connection.
    public func shutdown() async {
        for connection in peers.values { connection.close() }
        try? await listener?.close()
    }
}
