import BallastRaft
import BallastWire
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import NIOTLS

/// The outbound connection to one peer. All state lives on one event loop. Messages wait in a
/// queue bounded in bytes; past the bound new messages are dropped (Raft retransmits), so a
/// slow or dead follower can never exhaust the leader's memory. Reconnects with exponential
/// backoff and jitter.
final class PeerConnection: @unchecked Sendable {
    let peer: NodeID
    /// The address dialled; a different address for the peer means a new connection.
    let address: PeerAddress
    private var host: String { address.host }
    private var port: Int { address.port }
    private let loop: any EventLoop
    private let logger: Logger
    private let maxQueuedBytes: Int
    private let hello: [UInt8]
    /// This node's member table as of each connect, sent right after the hello.
    private let members: @Sendable () -> [UInt8]
    private var queue: [[UInt8]] = []
    private var queuedBytes = 0
    private var channel: (any Channel)?
    private var connecting = false
    private var failedAttempts = 0
    private var retryAt: NIODeadline = .uptimeNanoseconds(0)
    private var jitter: DeterministicRandom
    private var closed = false
    private var retryScheduled = false
    /// Messages dropped because the queue was full, for metrics and logs.
    private(set) var droppedMessages = 0
    /// Mutual TLS to the peer (this node's own certificate); nil dials in cleartext.
    private let tls: TLSClientOptions?

    init(peer: NodeID, address: PeerAddress, loop: any EventLoop, logger: Logger, maxQueuedBytes: Int, seed: UInt64,
         hello: NodeInfo, tls: TLSClientOptions? = nil, members: @escaping @Sendable () -> [UInt8] = { [] }) {
        self.peer = peer
        self.tls = tls
        self.hello = hello.encoded
        self.members = members
        self.address = address
        self.loop = loop
        self.logger = logger
        self.maxQueuedBytes = maxQueuedBytes
        self.jitter = DeterministicRandom(seed: seed)
    }

    /// Queues messages for the peer (from any thread); they are encoded on this connection's loop.
    func enqueue(_ messages: [Message], codec: RaftMessageCodec) {
        loop.execute { [self] in
            for message in messages {
                // A full queue drops the message without the cost of encoding it.
                let payload = queuedBytes < maxQueuedBytes ? codec.encode(message) : []
                guard !payload.isEmpty, queuedBytes + payload.count <= maxQueuedBytes else {
                    droppedMessages += 1
                    continue
                }
                queue.append(payload)
                queuedBytes += payload.count
            }
            flush()
        }
    }

    /// Closes the connection for good.
    func close() {
        loop.execute { [self] in
            closed = true
            queue = []
            queuedBytes = 0
            channel?.close(promise: nil)
        }
    }

    /// Writes whatever is queued if the channel can take it; connects first if needed.
    func flush() {
        loop.preconditionInEventLoop()
        guard !closed else { return }
        guard let channel else { return connectIfDue() }
        guard channel.isWritable, !queue.isEmpty else { return }
        var buffer = channel.allocator.buffer(capacity: queuedBytes + queue.count * RaftFrame.headerBytes)
        for payload in queue { RaftFrameEncoder.write(payload: payload, to: &buffer) }
        queue.removeAll(keepingCapacity: true)
        queuedBytes = 0
        channel.writeAndFlush(buffer, promise: nil)
    }

    private func connectIfDue() {
        guard !connecting, !queue.isEmpty else { return }
        guard NIODeadline.now() >= retryAt else {
            guard !retryScheduled else { return }
            retryScheduled = true
            loop.scheduleTask(deadline: retryAt) { [self] in
                retryScheduled = false
                flush()
            }
            return
        }
        connecting = true
        ClientBootstrap(group: loop)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelOption(.writeBufferWaterMark, value: .init(low: 1 << 20, high: 4 << 20))
            .channelInitializer { [self] channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls {
                        // Read the files at each connect, so rotated certificates are used.
                        let context = try tls.makeContext()
                        try channel.pipeline.syncOperations.addHandler(try tls.makeHandler(context: context, host: host))
                    }
                    try channel.pipeline.syncOperations.addHandler(PeerWatchHandler(connection: self, tls: tls != nil))
                }
            }
            .connect(host: host, port: port)
            .whenComplete { [self] result in connected(result) }
    }

    private func connected(_ result: Result<any Channel, any Error>) {
        connecting = false
        switch result {
        case .success(let channel):
            if tls == nil { failedAttempts = 0 }
            self.channel = channel
            if closed { channel.close(promise: nil) }
            var frame = channel.allocator.buffer(capacity: RaftFrame.headerBytes + hello.count)
            RaftFrameEncoder.write(payload: hello, kind: .hello, to: &frame)
            let table = members()
            if !table.isEmpty { RaftFrameEncoder.write(payload: table, kind: .members, to: &frame) }
            channel.write(frame, promise: nil)
        case .failure(let error):
            backOff()
            if failedAttempts == 1 || failedAttempts % 50 == 0 {
                logger.info("cannot reach peer; retrying with backoff",
                            metadata: ["peer": "\(peer)", "address": "\(host):\(port)", "attempts": "\(failedAttempts)",
                                       "error": "\(error)"])
            }
        }
        flush()
    }

    private func backOff() {
        failedAttempts += 1
        let base = min(1_000, 10 << min(failedAttempts, 7))
        let delay = Int64(base / 2) + Int64(jitter.next() % UInt64(base / 2 + 1))
        retryAt = .now() + .milliseconds(delay)
    }

    /// The TLS handshake finished and the peer's certificate names `peer`.
    func handshakeCompleted(identity: PeerIdentity?) -> Bool {
        loop.preconditionInEventLoop()
        guard identity.flatMap({ TLSNames.nodeID(of: $0.name) }) == peer.rawValue else {
            backOff()
            logger.warning("closing Raft connection: the peer's certificate does not name the node dialled",
                           metadata: ["peer": "\(peer)", "address": "\(host):\(port)",
                                      "certificate": "\(identity?.name ?? "no identity")"])
            return false
        }
        failedAttempts = 0
        return true
    }

    /// The TLS handshake failed: back off like a failed connect (logging the first and every 50th).
    func handshakeFailed(_ error: any Error) {
        loop.preconditionInEventLoop()
        backOff()
        if failedAttempts == 1 || failedAttempts % 50 == 0 {
            logger.warning("TLS handshake with peer failed; retrying with backoff",
                           metadata: ["peer": "\(peer)", "address": "\(host):\(port)", "attempts": "\(failedAttempts)",
                                      "error": "\(TLSNames.describe(error))"])
        }
    }

    /// The channel closed (peer restarted, network fault): reconnect on the next message.
    func channelClosed() {
        loop.preconditionInEventLoop()
        channel = nil
        retryAt = max(retryAt, .now() + .milliseconds(10))
        flush()
    }
}

/// Tells the connection when its channel can take more bytes or has gone away.
private final class PeerWatchHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    private let connection: PeerConnection
    private let tls: Bool

    init(connection: PeerConnection, tls: Bool) {
        self.connection = connection
        self.tls = tls
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if tls, case TLSUserEvent.handshakeCompleted = event {
            let identity = (try? context.pipeline.syncOperations.nioSSL_peerCertificate())?.flatMap(TLSNames.identity(of:))
            if !connection.handshakeCompleted(identity: identity) { context.close(promise: nil) }
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { connection.flush() }
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        connection.channelClosed()
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        // Peers never answer on our outbound connection; ignore anything that arrives.
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if case NIOSSLError.uncleanShutdown = error {
            // The peer went away without a TLS close (a restart): an ordinary close.
        } else if tls, error is NIOSSLError || error is BoringSSLError || error is NIOSSLExtraError {
            connection.handshakeFailed(error)
        }
        context.close(promise: nil)
    }
}
