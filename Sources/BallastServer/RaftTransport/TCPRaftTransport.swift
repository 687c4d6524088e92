import BallastRaft
import BallastWire
import Logging
import NIOCore
import NIOPosix
import Synchronization

/// Mutual TLS on the Raft port: the listener's certificates (reloadable) and what outbound
/// connections present and trust (this node's own files, read at each connect). A peer must
/// present a certificate naming `node/<id>` of a current member, and say hello as that id.
public struct RaftTLS: Sendable {
    /// The listener's context (and whether cleartext is refused).
    public var server: TLSContextStore
    /// Outbound connections to peers.
    public var client: TLSClientOptions

    /// Creates the settings.
    public init(server: TLSContextStore, client: TLSClientOptions) {
        self.server = server
        self.client = client
    }
}

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
///
/// Peers come and go at runtime: the transport dials whoever its `AddressBook` (or a local
/// `--peer-address` override) has an address for, opening the connection on the first message;
/// a message for a peer with no known address is dropped (Raft retransmits). Every outbound
/// connection opens with a hello and this node's member table, so peers learn addresses too.
public final class TCPRaftTransport: RaftTransport, @unchecked Sendable {
    struct State {
        var book: AddressBook
        var local: NodeInfo
        var connections: [NodeID: PeerConnection] = [:]
        /// Peers a message was dropped for (no address yet), to log each only once.
        var unreachableLogged: Set<NodeID> = []
    }

    private let localID: NodeID
    private let state: Mutex<State>
    private let overrides: [NodeID: PeerAddress]
    private let group: any EventLoopGroup
    private let logger: Logger
    private let codec = RaftMessageCodec()
    private let maxQueuedBytesPerPeer: Int
    /// Inbound connections kept open at most: a member opens one (again after each reconnect,
    /// the old one closing), so this is far above what a cluster needs, and far below what would
    /// take the process's file descriptors.
    let inboundCap: ConnectionCap
    /// `inboundCap`'s limit by default.
    public static let inboundConnectionLimit = 256
    /// How long an inbound connection may take to say hello before it is closed.
    let helloDeadline: TimeAmount
    private let onBookChanged: (@Sendable (AddressBook) -> Void)?
    private let listener = Mutex<(any Channel)?>(nil)
    /// Serializes `onBookChanged` calls, each reading the book inside, so the last one persisted
    /// is always the newest.
    private let reportLock = Mutex(())
    private let tls: RaftTLS?

    /// Creates the transport around `book`; nothing is dialed until a message is sent. `overrides`
    /// (`--peer-address`) win over the book and are never persisted. `onBookChanged` is told every
    /// change of the book (from any thread), so the node can persist it.
    public init(localInfo: NodeInfo, book: AddressBook, overrides: [NodeID: PeerAddress] = [:], group: any EventLoopGroup,
                logger: Logger, maxQueuedBytesPerPeer: Int = 64 << 20, tls: RaftTLS? = nil,
                inboundConnectionLimit: Int = TCPRaftTransport.inboundConnectionLimit, helloDeadline: TimeAmount = .seconds(10),
                onBookChanged: (@Sendable (AddressBook) -> Void)? = nil) {
        self.tls = tls
        inboundCap = ConnectionCap(limit: inboundConnectionLimit)
        self.helloDeadline = helloDeadline
        localID = NodeID(localInfo.id)
        var book = book
        book.learn(localInfo, from: .configEntry)
        state = Mutex(State(book: book, local: localInfo))
        self.overrides = overrides
        self.group = group
        self.logger = logger
        self.maxQueuedBytesPerPeer = maxQueuedBytesPerPeer
        self.onBookChanged = onBookChanged
    }

    /// Creates the transport for a static set of peers (`--peers`), as tests and tools use it.
    public convenience init(localInfo: NodeInfo, peers: [NodeID: PeerAddress], group: any EventLoopGroup, logger: Logger,
                            maxQueuedBytesPerPeer: Int = 64 << 20, tls: RaftTLS? = nil,
                            inboundConnectionLimit: Int = TCPRaftTransport.inboundConnectionLimit, helloDeadline: TimeAmount = .seconds(10)) {
        var book = AddressBook(initialVoters: [])
        for (id, address) in peers where id.rawValue != localInfo.id {
            book.learn(NodeInfo(id: id.rawValue, raft: HostPort(host: address.host, port: address.port).description, api: "", admin: ""),
                       from: .commandLine)
        }
        self.init(localInfo: localInfo, book: book, group: group, logger: logger, maxQueuedBytesPerPeer: maxQueuedBytesPerPeer,
                  tls: tls, inboundConnectionLimit: inboundConnectionLimit, helloDeadline: helloDeadline)
    }

    /// Starts accepting peers on `host:port` (port 0 picks a free one); returns the bound port.
    public func listen(host: String, port: Int, deliver: @escaping @Sendable (Message) -> Void) async throws -> Int {
        let localID = self.localID
        let codec = self.codec
        let logger = self.logger
        let hello: @Sendable (NodeInfo) -> Void = { [self] info in learn(info, from: .hello) }
        let members: @Sendable ([NodeInfo]) -> Void = { [self] infos in
            for info in infos where info.id != localID.rawValue { learn(info, from: .peerTable) }
        }
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 128)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { [self] channel in
                guard inboundCap.admit(channel) else {
                    logger.debug("refusing a Raft connection: the port is at its connection limit",
                                 metadata: ["limit": "\(inboundCap.limit)", "remote": "\(channel.remoteAddress.map { "\($0)" } ?? "?")"])
                    return channel.eventLoop.makeFailedFuture(ConnectionCapReached(port: "Raft", limit: inboundCap.limit))
                }
                return channel.eventLoop.makeCompletedFuture {
                    let inbound = RaftInboundHandler(localID: localID, codec: codec, logger: logger, hello: hello, members: members,
                                                     requireCertificate: tls?.server.options.required ?? false, deliver: deliver)
                    let deadline = ConnectionDeadline(channel: channel, limit: helloDeadline,
                                                      reason: "no hello within \(helloDeadline)", logger: logger)
                    deadline.arm()
                    inbound.helloDeadline = deadline
                    try TLSServerPipeline.configure(
                        channel, store: tls?.server, logger: logger,
                        onPeer: { [self] identity, _ in
                            guard let id = TLSNames.nodeID(of: identity.name) else {
                                return "the certificate names \(identity.name), not a node (node/<id>)"
                            }
                            guard isCurrentMember(id) else { return "\(identity.name) is not a member of this cluster" }
                            inbound.certifiedPeer = NodeID(id)
                            return nil
                        },
                        addProtocolHandlers: { channel in
                            try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(RaftFrameDecoder()))
                            try channel.pipeline.syncOperations.addHandler(inbound)
                        })
                }
            }
            .bind(host: host, port: port).get()
        listener.withLock { $0 = channel }
        return channel.localAddress?.port ?? port
    }

    /// Whether `id` may open a Raft connection to this node: a member it knows (from config
    /// entries, `--peers` or a member's table) or an initial voter, and not removed.
    func isCurrentMember(_ id: UInt64) -> Bool {
        state.withLock { state in
            !state.book.removed.contains(id) && (state.book.members[id] != nil || state.book.initialVoters.contains(id))
        }
    }

    /// Every member this node knows an address for (itself included), by id.
    public var knownNodes: [UInt64: NodeInfo] { state.withLock { $0.book.members } }

    /// The address book as it stands.
    public var book: AddressBook { state.withLock { $0.book } }

    /// Replaces this node's own entry (e.g. once its ports are bound); new connections use it.
    public func updateLocalInfo(_ info: NodeInfo) {
        precondition(info.id == localID.rawValue, "a transport describes only its own node")
        state.withLock { $0.local = info }
        learn(info, from: .configEntry)
    }

    /// Records what `source` says about a member; a changed Raft address replaces the connection.
    public func learn(_ info: NodeInfo, from source: AddressBook.Source) {
        let changed: Bool = state.withLock { state in
            guard state.book.learn(info, from: source) else { return false }
            let id = NodeID(info.id)
            if let connection = state.connections[id], connection.address != dialAddress(id, state.book) {
                connection.close()
                state.connections[id] = nil
            }
            return true
        }
        if changed {
            if source == .configEntry || source == .peerTable {
                logger.info("member address recorded", metadata: ["peer": "\(info.id)", "raft": "\(info.raft)", "source": "\(source)"])
            }
            bookChanged()
        }
    }

    private func bookChanged() {
        guard let onBookChanged else { return }
        reportLock.withLock { _ in onBookChanged(book) }
    }

    /// A committed removal: stop dialling `id`, drop what is queued for it, and forget it.
    public func removeMember(_ id: NodeID) {
        let changed: Bool = state.withLock { state in
            state.connections.removeValue(forKey: id)?.close()
            return state.book.remove(id.rawValue)
        }
        if changed { bookChanged() }
    }

    /// After a snapshot install: forget members outside `membership` and close their connections.
    public func restrictMembers(to membership: Set<NodeID>) {
        let changed: Bool = state.withLock { state in
            guard state.book.restrict(to: Set(membership.map(\.rawValue)), localID: localID.rawValue) else { return false }
            for (id, connection) in state.connections where state.book.members[id.rawValue] == nil && overrides[id] == nil {
                connection.close()
                state.connections[id] = nil
            }
            return true
        }
        if changed { bookChanged() }
    }

    /// Where `id` is dialled: the local override, else the book (never a removed member).
    private func dialAddress(_ id: NodeID, _ book: AddressBook) -> PeerAddress? {
        guard !book.removed.contains(id.rawValue) else { return nil }
        if let override = overrides[id] { return override }
        guard let text = book.dialAddress(for: id.rawValue), let parsed = try? HostPort(parsing: text) else { return nil }
        return PeerAddress(host: parsed.host, port: parsed.port)
    }

    /// The connection to `peer`, opened (lazily) if an address is known.
    private func connection(to peer: NodeID) -> PeerConnection? {
        let (connection, firstMiss): (PeerConnection?, Bool) = state.withLock { state in
            if let existing = state.connections[peer] { return (existing, false) }
            guard let address = dialAddress(peer, state.book) else {
                return (nil, state.unreachableLogged.insert(peer).inserted)
            }
            let members: @Sendable () -> [UInt8] = { [weak self] in
                guard let self else { return [] }
                return MemberTableCodec.encodeList(Array(self.state.withLock { $0.book.members.values }))
            }
            let created = PeerConnection(
                peer: peer, address: address, loop: group.next(), logger: logger, maxQueuedBytes: maxQueuedBytesPerPeer,
                seed: localID.rawValue << 32 ^ peer.rawValue, hello: state.local, tls: tls?.client, members: members)
            state.connections[peer] = created
            state.unreachableLogged.remove(peer)
            return (created, false)
        }
        if firstMiss {
            logger.info("no address known for peer; dropping its messages until one is learned", metadata: ["peer": "\(peer)"])
        }
        return connection
    }

    /// Hands `messages` to their peers' connections. They are encoded on each connection's event
    /// loop, not here: the Raft loop calls this, and a leader catching a follower up can hand it
    /// megabytes of entries in one turn (the chaos soak saw 314 ms of a turn spent encoding).
    public func send(_ messages: [Message]) {
        var byPeer: [NodeID: [Message]] = [:]
        for message in messages {
            precondition(message.from == localID, "a node only sends its own messages")
            byPeer[message.to, default: []].append(message)
        }
        for (peer, batch) in byPeer { connection(to: peer)?.enqueue(batch, codec: codec) }
    }

    /// Stops listening and closes every peer connection.
    public func shutdown() async {
        let connections = state.withLock { state in
            defer { state.connections = [:] }
            return Array(state.connections.values)
        }
        for connection in connections { connection.close() }
        try? await listener.withLock { $0 }?.close()
    }
}
