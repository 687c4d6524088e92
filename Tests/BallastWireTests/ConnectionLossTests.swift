import BallastWire
import NIOCore
import NIOPosix
import Testing

/// Closes every accepted connection once the client's first bytes (preface and HEADERS) arrive:
/// a peer that dies in the middle of a call.
private final class CloseOnFirstRead: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        context.close(promise: nil)
    }
}

@Suite("A connection lost mid-call")
struct ConnectionLossTests {
    @Test("a call in flight when the server's connection drops fails UNAVAILABLE (retriable), not CANCELLED")
    func connectionDroppedMidCall() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let server = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { $0.pipeline.addHandler(CloseOnFirstRead()) }
            .bind(host: "127.0.0.1", port: 0).get()
        let port = try #require(server.localAddress?.port)
        let client = try await GRPCClient.connect(host: "127.0.0.1", port: port)
        var request = EchoRequest()
        request.text = "lost"
        let status = await #expect(throws: GRPCStatus.self) {
            _ = try await client.unary(EchoService.echo, request: request, responseType: EchoResponse.self,
                                       timeout: .seconds(5))
        }
        #expect(status?.code == .unavailable, "\(String(describing: status))")
        await client.close()
        try await server.close()
        try await group.shutdownGracefully()
    }
}
