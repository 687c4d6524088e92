import BallastRaft
@testable import BallastServer
import Logging
import NIOCore
import NIOEmbedded
import NIOPosix
import NIOTestUtils
import Synchronization
import Testing

@Suite("Raft frames and TCP transport")
struct RaftTransportTests {
    private func frame(_ payload: [UInt8]) -> ByteBuffer {
        var buffer = ByteBuffer()
        RaftFrameEncoder.write(payload: payload, to: &buffer)
        return buffer
    }

    @Test("the frame decoder yields the same payloads for every split of the input")
    func everySplit() throws {
        let payloads: [[UInt8]] = [[], [1], Array(repeating: 7, count: 300), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]]
        let pairs = payloads.map { (frame($0), [FrameView(kind: .message, payload: ByteBuffer(bytes: $0))]) }
        try ByteToMessageDecoderVerifier.verifyDecoder(inputOutputPairs: pairs) { FrameViewDecoder() }
    }

    @Test("a corrupted payload, an unknown version, an unknown frame kind and an oversized length are refused")
    func badFrames() {
        let decoder = RaftFrameDecoder(maxPayloadBytes: 1024)
        var corrupted = frame([1, 2, 3])
        corrupted.setInteger(UInt8(9), at: RaftFrame.headerBytes)
        #expect(throws: RaftWireError.self) { _ = try decoder.nextFrame(&corrupted) }
        var badVersion = frame([1])
        badVersion.setInteger(UInt8(2), at: 0)
        #expect(throws: RaftWireError.unsupportedVersion(2)) { _ = try decoder.nextFrame(&badVersion) }
        var badFlags = frame([1])
        badFlags.setInteger(UInt8(7), at: 1)
        #expect(throws: RaftWireError.invalidValue(field: "frame kind", offset: 1)) { _ = try decoder.nextFrame(&badFlags) }
        var huge = frame([1])
        huge.setInteger(UInt32(1 << 30), at: 2)
        #expect(throws: RaftWireError.tooLarge(field: "frame", bytes: 1 << 30, limit: 1024)) { _ = try decoder.nextFrame(&huge) }
    }

    @Test("a connection that ends mid-frame is an error, not a silent partial message")
    func truncatedAtEOF() throws {
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(RaftFrameDecoder()))
        var partial = frame([1, 2, 3, 4])
        partial.moveWriterIndex(to: partial.writerIndex - 2)
        try channel.writeInbound(partial)
        #expect(throws: (any Error).self) { _ = try channel.finish() }
    }

    @Test("two nodes exchange messages over loopback TCP, and garbage on the port disturbs neither")
    func loopbackExchange() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let received = Mutex<[Message]>([])
        let logger = Logger(label: "test.raft.transport")
        let receiver = TCPRaftTransport(localInfo: info(2), peers: [:], group: group, logger: logger)
        let port = try await receiver.listen(host: "127.0.0.1", port: 0) { message in received.withLock { $0.append(message) } }
        let sender = TCPRaftTransport(localInfo: info(1), peers: [NodeID(2): PeerAddress(host: "127.0.0.1", port: port)],
                                      group: group, logger: logger)

        try await sendGarbage(to: port, group: group)
        let messages = everyMessageKind.map { Message(from: NodeID(1), to: NodeID(2), term: $0.term, body: $0.body) }
        sender.send(messages)
        try await waitUntil("all messages arrive") { received.withLock { $0.count } == messages.count }
        #expect(received.withLock { $0 } == messages)
        #expect(receiver.knownNodes[1] == info(1), "the receiver learned the sender's addresses from its hello")

        await sender.shutdown()
        await receiver.shutdown()
        try await group.shutdownGracefully()
    }

    @Test("messages to a peer that is down are bounded and delivered once it comes up")
    func reconnect() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let logger = Logger(label: "test.raft.transport")
        let port = try await freePort(group: group)
        let sender = TCPRaftTransport(localInfo: info(1), peers: [NodeID(2): PeerAddress(host: "127.0.0.1", port: port)],
                                      group: group, logger: logger, maxQueuedBytesPerPeer: 4096)
        let heartbeat = Message(from: NodeID(1), to: NodeID(2), term: Term(1), body: .heartbeat(commit: .zero, readContext: 0))
        sender.send(Array(repeating: heartbeat, count: 1000))
        let received = Mutex<Int>(0)
        let receiver = TCPRaftTransport(localInfo: info(2), peers: [:], group: group, logger: logger)
        _ = try await receiver.listen(host: "127.0.0.1", port: port) { _ in received.withLock { $0 += 1 } }
        sender.send([heartbeat])
        try await waitUntil("the queued messages arrive after reconnecting") { received.withLock { $0 } > 0 }
        #expect(received.withLock { $0 } < 1000, "the queue must have been bounded")
        await sender.shutdown()
        await receiver.shutdown()
        try await group.shutdownGracefully()
    }

    @Test("a connection must say hello first, and may only carry its own node's messages to this node")
    func helloRules() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let received = Mutex<Int>(0)
        let receiver = TCPRaftTransport(localInfo: info(2), peers: [:], group: group, logger: Logger(label: "test"))
        let port = try await receiver.listen(host: "127.0.0.1", port: 0) { _ in received.withLock { $0 += 1 } }
        let codec = RaftMessageCodec()
        let fromOne = codec.encode(Message(from: NodeID(1), to: NodeID(2), term: Term(1), body: .timeoutNow))
        let fromThree = codec.encode(Message(from: NodeID(3), to: NodeID(2), term: Term(1), body: .timeoutNow))
        let toFour = codec.encode(Message(from: NodeID(1), to: NodeID(4), term: Term(1), body: .timeoutNow))
        for frames in [[(RaftFrame.Kind.message, fromOne)], [(.hello, info(1).encoded), (.message, fromThree)],
                       [(.hello, info(1).encoded), (.message, toFour)], [(.hello, [1, 2, 3])]] {
            var buffer = ByteBuffer()
            for (kind, payload) in frames { RaftFrameEncoder.write(payload: payload, kind: kind, to: &buffer) }
            let channel = try await ClientBootstrap(group: group).connect(host: "127.0.0.1", port: port).get()
            try await channel.writeAndFlush(buffer).get()
            try await channel.closeFuture.get()
        }
        #expect(received.withLock { $0 } == 0)
        await receiver.shutdown()
        try await group.shutdownGracefully()
    }

    @Test("a connection that does not say hello in time is closed, one that did stays; connections over the cap are closed at accept")
    func helloDeadlineAndConnectionCap() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let received = Mutex<Int>(0)
        let receiver = TCPRaftTransport(localInfo: info(2), peers: [:], group: group, logger: Logger(label: "test"),
                                        inboundConnectionLimit: 3, helloDeadline: .seconds(2))
        let port = try await receiver.listen(host: "127.0.0.1", port: 0) { _ in received.withLock { $0 += 1 } }
        func connect() async throws -> any Channel { try await ClientBootstrap(group: group).connect(host: "127.0.0.1", port: port).get() }
        // Opened together: one says hello, one says nothing, one trickles a frame's first bytes.
        let greeted = try await connect()
        var hello = ByteBuffer()
        RaftFrameEncoder.write(payload: info(1).encoded, kind: .hello, to: &hello)
        try await greeted.writeAndFlush(hello).get()
        let silent = try await connect()
        let trickling = try await connect()
        try await trickling.writeAndFlush(ByteBuffer(bytes: Array(hello.readableBytesView.prefix(3)))).get()
        // A fourth is over the cap: closed at accept.
        let over = try await connect()
        try await waitUntil("the connection over the cap is closed") { !over.isActive }
        #expect(receiver.inboundCap.refusedConnections == 1)
        // The silent and the trickling ones are closed at the deadline; the greeted one stays.
        try await waitUntil("the silent and the trickling connections are closed") { !silent.isActive && !trickling.isActive }
        #expect(greeted.isActive, "a connection that said hello is not subject to the deadline")
        var message = ByteBuffer()
        RaftFrameEncoder.write(payload: RaftMessageCodec().encode(Message(from: NodeID(1), to: NodeID(2), term: Term(1), body: .timeoutNow)),
                               kind: .message, to: &message)
        try await greeted.writeAndFlush(message).get()
        try await waitUntil("the greeted connection's message is delivered") { received.withLock { $0 } == 1 }
        // With room again, a new connection is admitted.
        try await waitUntil("the closed connections are uncounted") { receiver.inboundCap.openConnections == 1 }
        let another = try await connect()
        try await another.writeAndFlush(hello).get()
        try await another.writeAndFlush(message).get()
        try await waitUntil("the new connection's message is delivered") { received.withLock { $0 } == 2 }
        try await greeted.close()
        try await another.close()
        await receiver.shutdown()
        try await group.shutdownGracefully()
    }

    private func info(_ id: UInt64) -> NodeInfo {
        NodeInfo(id: id, raft: "127.0.0.1:\(7000 + id)", api: "127.0.0.1:\(8000 + id)", admin: "127.0.0.1:\(9000 + id)")
    }

    private func sendGarbage(to port: Int, group: any EventLoopGroup) async throws {
        let channel = try await ClientBootstrap(group: group).connect(host: "127.0.0.1", port: port).get()
        try await channel.writeAndFlush(ByteBuffer(bytes: Array("GET / HTTP/1.1\r\n\r\n".utf8))).get()
        try await channel.closeFuture.get()
    }

    private func freePort(group: any EventLoopGroup) async throws -> Int {
        let channel = try await ServerBootstrap(group: group).bind(host: "127.0.0.1", port: 0).get()
        let port = channel.localAddress?.port ?? 0
        try await channel.close()
        return port
    }
}

/// A decoded frame, comparable, for the every-split verifier.
struct FrameView: Equatable {
    var kind: RaftFrame.Kind
    var payload: ByteBuffer
}

/// `RaftFrameDecoder` with an `Equatable` output.
struct FrameViewDecoder: ByteToMessageDecoder {
    typealias InboundOut = FrameView
    let inner = RaftFrameDecoder()

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let (kind, payload) = try inner.nextFrame(&buffer) else { return .needMoreData }
        context.fireChannelRead(Self.wrapInboundOut(FrameView(kind: kind, payload: payload)))
        return .continue
    }
}

/// Polls `condition` every few milliseconds until it holds, failing the test once a look that
/// began after `timeout` finds it false. (A look that began before the deadline may come back
/// long after it, when the test waited for a thread of the busy test pool: its answer is old,
/// so one more look is taken.)
func waitUntil(_ what: String, timeout: Duration = .seconds(10), _ condition: () async throws -> Bool) async throws {
    let deadline = ContinuousClock.now + timeout
    while true {
        let lookBegan = ContinuousClock.now
        if try await condition() { return }
        guard lookBegan < deadline else {
            Issue.record("timed out waiting until \(what)")
            throw CancellationError()
        }
        try await Task.sleep(for: .milliseconds(5))
    }
}
