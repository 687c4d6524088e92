import BallastWire
import NIOCore
import NIOPosix
import Testing

/// A peer that dies in the middle of a call: it answers the HTTP/2 handshake with an empty
/// SETTINGS frame, then closes the connection as soon as the client's first HEADERS frame (the
/// call) arrives.
private final class DropOnFirstCall: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    private var received: [UInt8] = []
    private var prefaceSkipped = false

    func channelActive(context: ChannelHandlerContext) {
        let settings: [UInt8] = [0, 0, 0, 0x04, 0, 0, 0, 0, 0]
        context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(bytes: settings)), promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        received += buffer.readBytes(length: buffer.readableBytes) ?? []
        if !prefaceSkipped {
            guard received.count >= 24 else { return }
            received.removeFirst(24)
            prefaceSkipped = true
        }
        while received.count >= 9 {
            let length = Int(received[0]) << 16 | Int(received[1]) << 8 | Int(received[2])
            if received[3] == 0x01 {  // HEADERS: the call has started
                context.close(promise: nil)
                return
            }
            guard received.count >= 9 + length else { return }
            received.removeFirst(9 + length)
        }
    }
}

@Suite("A connection lost mid-call")
struct ConnectionLossTests {
    @Test("a call in flight when the server's connection drops fails UNAVAILABLE (retriable), not CANCELLED")
    func connectionDroppedMidCall() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let server = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { $0.pipeline.addHandler(DropOnFirstCall()) }
            .bind(host: "127.0.0.1", port: 0).get()
        let port = try #require(server.localAddress?.port)
        let client = try await GRPCClient.connect(host: "127.0.0.1", port: port)
        var request = EchoRequest()
        request.text = "lost"
        let status = await #expect(throws: GRPCStatus.self) {
            _ = try await client.unary(EchoService.echo, request: request, responseType: EchoResponse.self,
                                       timeout: .seconds(30))
        }
        #expect(status?.code == .unavailable, "\(String(describing: status))")
        await client.close()
        try await server.close()
        try await group.shutdownGracefully()
    }
}
