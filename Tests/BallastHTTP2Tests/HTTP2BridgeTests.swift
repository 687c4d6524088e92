import BallastHTTP2
import NIOCore
import NIOEmbedded
import Testing

/// Records stream events; optionally answers requests (server) or closes the channel mid-callback.
final class RecordingDelegate: HTTP2StreamDelegate {
    var headers: [HTTP2StreamID: [[HTTP2Header]]] = [:]
    var data: [HTTP2StreamID: [UInt8]] = [:]
    var ended: Set<HTTP2StreamID> = []
    var closed: [HTTP2StreamID: UInt32] = [:]
    var goAways: [HTTP2StreamID] = []
    var goAwayCodes: [UInt32] = []
    var connectionClosed = false
    var answerRequests = false
    var closeChannelOnHeaders: Channel?

    func http2(_ connection: HTTP2ConnectionHandler, receivedHeaders headers: [HTTP2Header], streamID: HTTP2StreamID, endStream: Bool) {
        self.headers[streamID, default: []].append(headers)
        if endStream { ended.insert(streamID) }
        if let channel = closeChannelOnHeaders {
            channel.close(promise: nil)  // from inside an nghttp2 callback: teardown must wait
        }
    }

    func http2(_ connection: HTTP2ConnectionHandler, receivedData bytes: UnsafeRawBufferPointer, streamID: HTTP2StreamID) {
        data[streamID, default: []].append(contentsOf: bytes)
    }

    func http2(_ connection: HTTP2ConnectionHandler, receivedEndStream streamID: HTTP2StreamID) {
        ended.insert(streamID)
        guard answerRequests else { return }
        connection.sendResponseHeaders([HTTP2Header(":status", "200")], streamID: streamID, endStream: false)
        connection.sendData(ByteBuffer(bytes: data[streamID] ?? []), streamID: streamID)
        connection.sendTrailers([HTTP2Header("x-trailer", "done")], streamID: streamID)
    }

    func http2(_ connection: HTTP2ConnectionHandler, streamClosed streamID: HTTP2StreamID, errorCode: UInt32) {
        closed[streamID] = errorCode
    }

    func http2(_ connection: HTTP2ConnectionHandler, receivedGoAway lastStreamID: HTTP2StreamID, errorCode: UInt32) {
        goAways.append(lastStreamID)
        goAwayCodes.append(errorCode)
    }

    func http2ConnectionClosed(_ connection: HTTP2ConnectionHandler) { connectionClosed = true }
}

/// A client and a server handler joined by two EmbeddedChannels: the bridge without sockets.
struct ChannelPair {
    let loop = EmbeddedEventLoop()
    let client: EmbeddedChannel
    let server: EmbeddedChannel
    let clientHandler: HTTP2ConnectionHandler
    let serverHandler: HTTP2ConnectionHandler
    let clientDelegate = RecordingDelegate()
    let serverDelegate = RecordingDelegate()

    init(configuration: HTTP2Configuration = HTTP2Configuration(), clientConfiguration: HTTP2Configuration? = nil) throws {
        clientHandler = HTTP2ConnectionHandler(role: .client, configuration: clientConfiguration ?? configuration,
                                               delegate: clientDelegate)
        serverHandler = HTTP2ConnectionHandler(role: .server, configuration: configuration, delegate: serverDelegate)
        client = EmbeddedChannel(handler: clientHandler, loop: loop)
        server = EmbeddedChannel(handler: serverHandler, loop: loop)
        serverDelegate.answerRequests = true
        let address = try SocketAddress(ipAddress: "127.0.0.1", port: 1)
        try client.connect(to: address).wait()
        try server.connect(to: address).wait()
        try shuttle()
    }

    /// Moves bytes both ways until neither side has anything left to send.
    func shuttle() throws {
        var moved = true
        var rounds = 0
        while moved {
            rounds += 1
            precondition(rounds < 10_000, "the two sides never went quiet")
            moved = false
            loop.run()
            while let bytes = try client.readOutbound(as: ByteBuffer.self) {
                if server.isActive { try server.writeInbound(bytes) }
                moved = true
            }
            while let bytes = try server.readOutbound(as: ByteBuffer.self) {
                if client.isActive { try client.writeInbound(bytes) }
                moved = true
            }
        }
    }

    func request(body: [UInt8]) -> HTTP2StreamID? {
        let headers = [HTTP2Header(":method", "POST"), HTTP2Header(":scheme", "http"),
                       HTTP2Header(":path", "/echo"), HTTP2Header(":authority", "test")]
        guard let id = clientHandler.startRequest(headers, endStream: false) else { return nil }
        clientHandler.sendData(ByteBuffer(bytes: body), streamID: id, endStream: true)
        return id
    }
}

@Suite("HTTP/2 bridge (EmbeddedChannel pairs)")
struct HTTP2BridgeTests {
    @Test("a request with a body gets headers, the echoed data and trailers; both sides see the stream close")
    func requestResponseTrailers() throws {
        let pair = try ChannelPair()
        let body = (0..<100_000).map { UInt8(truncatingIfNeeded: $0) }
        let id = try #require(pair.request(body: body))
        try pair.shuttle()
        #expect(pair.serverDelegate.data[id] == body)
        #expect(pair.clientDelegate.data[id] == body)
        let blocks = try #require(pair.clientDelegate.headers[id])
        #expect(blocks.count == 2 && blocks[0].contains(HTTP2Header(":status", "200")))
        #expect(blocks[1] == [HTTP2Header("x-trailer", "done")])
        #expect(pair.clientDelegate.ended.contains(id))
        #expect(pair.clientDelegate.closed[id] == 0 && pair.serverDelegate.closed[id] == 0)
        #expect(pair.clientHandler.openStreamCount == 0 && pair.serverHandler.openStreamCount == 0)
    }

    @Test("with manual window updates, a receiver that consumes nothing gets at most one stream window, then all after consuming")
    func manualWindowUpdates() throws {
        var clientConfiguration = HTTP2Configuration()
        clientConfiguration.automaticInboundWindowUpdates = false
        clientConfiguration.initialWindowSizeBytes = 100_000
        let pair = try ChannelPair(clientConfiguration: clientConfiguration)
        let body = [UInt8](repeating: 9, count: 1_000_000)
        let id = try #require(pair.request(body: body))
        try pair.shuttle()
        #expect(pair.serverDelegate.data[id]?.count == body.count)
        let first = pair.clientDelegate.data[id]?.count ?? 0
        #expect(first > 0 && first <= 100_000, "received \(first) bytes without consuming any")
        var consumed = 0
        for _ in 0..<40 {
            let received = pair.clientDelegate.data[id]?.count ?? 0
            pair.clientHandler.consumeInbound(streamID: id, bytes: received - consumed)
            consumed = received
            try pair.shuttle()
            if pair.clientDelegate.closed[id] != nil { break }
        }
        #expect(pair.clientDelegate.data[id]?.count == body.count)
    }

    @Test("many concurrent streams on one connection all complete")
    func manyStreams() throws {
        let pair = try ChannelPair()
        let ids = (0..<50).compactMap { pair.request(body: [UInt8($0)]) }
        try pair.shuttle()
        #expect(ids.count == 50)
        for (index, id) in ids.enumerated() { #expect(pair.clientDelegate.data[id] == [UInt8(index)]) }
    }

    @Test("a delegate closing the channel from inside an nghttp2 callback does not free the session under it")
    func closeInsideCallback() throws {
        let pair = try ChannelPair()
        pair.serverDelegate.closeChannelOnHeaders = pair.server
        _ = pair.request(body: [1, 2, 3])
        try pair.shuttle()
        #expect(!pair.server.isActive)
        #expect(pair.serverDelegate.connectionClosed)
        #expect(pair.serverHandler.openStreamCount == 0)
    }

    @Test("graceful shutdown: GOAWAY, the open stream still completes, then the connection closes")
    func gracefulShutdown() throws {
        let pair = try ChannelPair()
        pair.serverDelegate.answerRequests = false
        let id = try #require(pair.request(body: [42]))
        try pair.shuttle()
        pair.serverHandler.initiateGracefulShutdown()
        try pair.shuttle()
        // Two phases: the shutdown notice (maximum stream id), then the last processed stream.
        #expect(pair.clientDelegate.goAways == [Int32.max, id])
        #expect(pair.server.isActive, "the server must wait for the open stream")
        #expect(pair.clientHandler.startRequest([HTTP2Header(":method", "GET")], endStream: true) == nil)
        pair.serverHandler.sendResponseHeaders([HTTP2Header(":status", "204")], streamID: id, endStream: true)
        try pair.shuttle()
        #expect(pair.clientDelegate.headers[id]?.first?.contains(HTTP2Header(":status", "204")) == true)
        #expect(!pair.server.isActive && !pair.client.isActive)
    }

    @Test("an unanswered keep-alive PING closes the connection after the timeout; an answered one does not")
    func keepAliveTimeout() throws {
        var configuration = HTTP2Configuration()
        configuration.pingInterval = .seconds(1)
        configuration.pingTimeout = .seconds(2)
        let pair = try ChannelPair(configuration: configuration)
        for _ in 0..<10 {
            pair.loop.advanceTime(by: .milliseconds(500))
            try pair.shuttle()
        }
        #expect(pair.server.isActive && pair.client.isActive, "acknowledged PINGs keep the connection")
        // From now on nothing is delivered: the next PING goes unanswered.
        pair.loop.advanceTime(by: .seconds(1))
        #expect(pair.server.isActive)
        pair.loop.advanceTime(by: .milliseconds(2100))
        #expect(!pair.server.isActive)
    }
}
