import BallastHTTP2
import NIOCore
import NIOEmbedded
import Testing

/// Counts the reads that reach the head of the pipeline (that is, the socket).
final class ReadCounter: ChannelOutboundHandler {
    typealias OutboundIn = ByteBuffer
    var reads = 0

    func read(context: ChannelHandlerContext) {
        reads += 1
        context.read()
    }
}

/// The server side's own protection against clients that connect and say nothing, or never read.
@Suite("HTTP/2 bridge: per-connection limits")
struct HTTP2LimitsTests {
    static let requestHeaders = [HTTP2Header(":method", "POST"), HTTP2Header(":scheme", "http"),
                                 HTTP2Header(":path", "/echo"), HTTP2Header(":authority", "test")]

    @Test("a connection that sends no preface (or half of one) is closed after the handshake timeout")
    func handshakeTimeout() throws {
        var configuration = HTTP2Configuration()
        configuration.handshakeTimeout = .seconds(1)
        configuration.pingInterval = nil
        for sent in [[], Array("PRI * HTTP/2.0\r\n".utf8)] as [[UInt8]] {
            let server = EmbeddedChannel(handler: HTTP2ConnectionHandler(role: .server, configuration: configuration,
                                                                         delegate: RecordingDelegate()))
            try server.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
            if !sent.isEmpty { try server.writeInbound(ByteBuffer(bytes: sent)) }
            server.embeddedEventLoop.advanceTime(by: .milliseconds(900))
            #expect(server.isActive, "closed before the timeout")
            server.embeddedEventLoop.advanceTime(by: .milliseconds(200))
            #expect(!server.isActive, "a peer that sent \(sent.count) bytes still holds the connection")
            _ = try? server.finish(acceptAlreadyClosed: true)
        }
    }

    @Test("a client that completed the handshake is not touched by the handshake timeout")
    func handshakeDone() throws {
        var configuration = HTTP2Configuration()
        configuration.handshakeTimeout = .seconds(1)
        configuration.pingInterval = nil
        let pair = try ChannelPair(configuration: configuration)
        pair.loop.advanceTime(by: .seconds(5))
        try pair.shuttle()
        #expect(pair.server.isActive)
        let id = try #require(pair.request(body: [1, 2, 3]))
        try pair.shuttle()
        #expect(pair.clientDelegate.data[id] == [1, 2, 3])
    }

    /// A pair whose client announces 64 KiB windows and never consumes: what the server queues
    /// beyond that stays pending in the server (the client that does not read).
    static func stalledPair(serverLimit: Int) throws -> ChannelPair {
        var server = HTTP2Configuration()
        server.maxPendingOutboundBytes = serverLimit
        server.pingInterval = nil
        var client = HTTP2Configuration()
        client.pingInterval = nil
        client.initialWindowSizeBytes = 65_535
        client.connectionWindowSizeBytes = 65_535
        client.automaticInboundWindowUpdates = false
        return try ChannelPair(configuration: server, clientConfiguration: client)
    }

    @Test("a client that never reads: the server's unsent output stays under its bound, then GOAWAY(ENHANCE_YOUR_CALM) and close")
    func pendingOutboundBound() throws {
        let limit = 256 << 10
        let pair = try Self.stalledPair(serverLimit: limit)
        let body = [UInt8](repeating: 0x5A, count: 64 << 10)
        for _ in 0..<20 {
            guard pair.server.isActive, pair.request(body: body) != nil else { break }
            try pair.shuttle()
        }
        #expect(!pair.server.isActive, "the server kept a connection whose peer leaves \(pair.serverHandler.peakPendingOutboundBytes) bytes unread")
        // The response that crosses the limit is the last one accepted.
        #expect(pair.serverHandler.peakPendingOutboundBytes <= limit + body.count)
        #expect(pair.clientDelegate.goAwayCodes.contains(HTTP2ErrorCode.enhanceYourCalm.rawValue))
    }

    @Test("the same client within the bound is served: output waits for its window, nothing is closed")
    func pendingOutboundWithinBound() throws {
        let pair = try Self.stalledPair(serverLimit: 4 << 20)
        let body = [UInt8](repeating: 0x5A, count: 64 << 10)
        var ids: [HTTP2StreamID] = []
        for _ in 0..<20 {
            ids.append(try #require(pair.request(body: body)))
            try pair.shuttle()
        }
        #expect(pair.server.isActive)
        #expect(pair.serverHandler.pendingOutboundBytes > 19 * body.count - 65_535, "the client's windows must hold the output back")
        // The client starts reading: it consumes what arrived, its windows reopen, the rest flows.
        var consumed: [HTTP2StreamID: Int] = [:]
        for _ in 0..<100 where pair.serverHandler.pendingOutboundBytes > 0 {
            for id in ids {
                let received = pair.clientDelegate.data[id]?.count ?? 0
                pair.clientHandler.consumeInbound(streamID: id, bytes: received - consumed[id, default: 0])
                consumed[id] = received
            }
            try pair.shuttle()
        }
        #expect(pair.server.isActive)
        #expect(pair.serverHandler.pendingOutboundBytes == 0)
        #expect(ids.allSatisfy { pair.clientDelegate.data[$0]?.count == body.count })
    }

    @Test("a server holds reads back while its channel is not writable and resumes when it drains")
    func readsPauseWhileUnwritable() throws {
        let counter = ReadCounter()
        let server = EmbeddedChannel()
        try server.pipeline.syncOperations.addHandler(counter)
        try server.pipeline.syncOperations.addHandler(HTTP2ConnectionHandler(role: .server, delegate: RecordingDelegate()))
        try server.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        let before = counter.reads
        server.read()
        #expect(counter.reads == before + 1)
        server.isWritable = false
        server.read()
        server.read()
        #expect(counter.reads == before + 1, "a read reached the socket while our output was not drained")
        server.isWritable = true
        server.pipeline.fireChannelWritabilityChanged()
        #expect(counter.reads == before + 2)
        _ = try? server.finish(acceptAlreadyClosed: true)
    }

    @Test("a client keeps reading even while its own channel is not writable (only servers pause)")
    func clientNeverPauses() throws {
        let counter = ReadCounter()
        let client = EmbeddedChannel()
        try client.pipeline.syncOperations.addHandler(counter)
        try client.pipeline.syncOperations.addHandler(HTTP2ConnectionHandler(role: .client, delegate: RecordingDelegate()))
        try client.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        let before = counter.reads
        client.isWritable = false
        client.read()
        #expect(counter.reads == before + 1)
        _ = try? client.finish(acceptAlreadyClosed: true)
    }
}
