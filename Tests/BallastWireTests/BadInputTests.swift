import BallastHTTP2
import BallastWire
import Foundation
import NIOCore
import Testing

/// Hostile or broken peers get the right HTTP/2 or gRPC error; memory stays bounded and other
/// connections keep working.
@Suite("Bad input")
struct BadInputTests {
    /// A well-behaved call on a separate connection still succeeds.
    static func assertOtherConnectionsWork(port: Int) async throws {
        let client = try await GRPCClient.connect(host: "127.0.0.1", port: port)
        var request = EchoRequest()
        request.text = "still fine"
        let response = try await client.unary(EchoService.echo, request: request, responseType: EchoResponse.self,
                                              timeout: .seconds(5))
        #expect(response.text == "still fine")
        await client.close()
    }

    static func framed(_ body: [UInt8], announcedLength: Int? = nil) -> [UInt8] {
        let length = UInt32(announcedLength ?? body.count)
        return [0, UInt8(length >> 24), UInt8(length >> 16 & 0xFF), UInt8(length >> 8 & 0xFF), UInt8(length & 0xFF)] + body
    }

    @Test("garbage instead of the connection preface gets GOAWAY(PROTOCOL_ERROR) and a close")
    func garbagePreface() async throws {
        try await EchoService.withServer { _, port in
            let raw = try await RawHTTP2Client(port: port)
            try await raw.send(Array("GET / HTTP/1.1\r\nHost: x\r\n\r\n".utf8))
            try await raw.waitUntil("GOAWAY and close") { frames, closed in
                closed && frames.contains { $0.type == RawFrame.goAway && $0.errorCode == HTTP2ErrorCode.protocolError.rawValue }
            }
            try await Self.assertOtherConnectionsWork(port: port)
        }
    }

    @Test("a malformed frame (SETTINGS of 5 bytes) gets GOAWAY(FRAME_SIZE_ERROR) and a close")
    func malformedFrame() async throws {
        try await EchoService.withServer { _, port in
            let raw = try await RawHTTP2Client(port: port)
            try await raw.send(RawHTTP2Client.preface + RawHTTP2Client.frame(type: RawFrame.settings, payload: [0, 3, 0, 0, 0]))
            try await raw.waitUntil("GOAWAY and close") { frames, closed in
                closed && frames.contains { $0.type == RawFrame.goAway && $0.errorCode == HTTP2ErrorCode.frameSizeError.rawValue }
            }
            try await Self.assertOtherConnectionsWork(port: port)
        }
    }

    @Test("a flood of streams beyond the acknowledged limit gets GOAWAY(PROTOCOL_ERROR); other connections survive")
    func streamFlood() async throws {
        var configuration = GRPCServerConfiguration()
        configuration.http2.maxConcurrentStreams = 4
        try await EchoService.withServer(configuration: configuration) { _, port in
            let raw = try await RawHTTP2Client(port: port)
            try await raw.send(RawHTTP2Client.handshake)
            try await raw.waitUntil("server SETTINGS") { frames, _ in frames.contains { $0.type == RawFrame.settings && $0.flags & 1 == 1 } }
            var flood: [UInt8] = []
            for index in 0..<40 {
                let block = RawHTTP2Client.grpcRequestHeaders(path: EchoService.sleep, port: port)
                flood += RawHTTP2Client.frame(type: RawFrame.headers, flags: 0x4, streamID: UInt32(2 * index + 1), payload: block)
            }
            try await raw.send(flood)
            // nghttp2 treats a peer that ignores the acknowledged limit as a connection error
            // (RFC 9113 5.1.2 allows PROTOCOL_ERROR); streams over a not-yet-acknowledged
            // limit would get RST_STREAM(REFUSED_STREAM) instead.
            try await raw.waitUntil("GOAWAY(PROTOCOL_ERROR) and close") { frames, closed in
                closed && frames.contains { $0.type == RawFrame.goAway && $0.errorCode == HTTP2ErrorCode.protocolError.rawValue }
            }
            try await Self.assertOtherConnectionsWork(port: port)
        }
    }

    @Test("a client that opens and resets streams faster than the reset budget gets GOAWAY and is closed (rapid reset)")
    func rapidReset() async throws {
        // CVE-2023-44487: HEADERS then RST_STREAM at once, never over the stream limit, each
        // costing the server a call set-up. Small limits here so a few hundred frames cross them;
        // the defaults (1,000 then 33 a second) are in docs/protocol.md.
        var configuration = GRPCServerConfiguration()
        configuration.http2.maxPeerStreamResetBurst = 20
        configuration.http2.peerStreamResetsPerSecond = 1
        try await EchoService.withServer(configuration: configuration) { _, port in
            // Within the budget: a client that cancels a few calls is left alone.
            let polite = try await RawHTTP2Client(port: port)
            try await polite.send(RawHTTP2Client.handshake)
            var cancels: [UInt8] = []
            for index in 0..<10 { cancels += Self.headersThenReset(streamID: UInt32(2 * index + 1), port: port) }
            try await polite.send(cancels + RawHTTP2Client.frame(type: RawFrame.ping, payload: Array(repeating: 7, count: 8)))
            try await polite.waitUntil("PING ack after 10 resets") { frames, _ in
                frames.contains { $0.type == RawFrame.ping && $0.flags & 1 == 1 }
            }
            #expect(!polite.frames.contains { $0.type == RawFrame.goAway })

            let attacker = try await RawHTTP2Client(port: port)
            try await attacker.send(RawHTTP2Client.handshake)
            var burst: [UInt8] = []
            for index in 0..<200 { burst += Self.headersThenReset(streamID: UInt32(2 * index + 1), port: port) }
            try await attacker.send(burst)
            try await attacker.waitUntil("GOAWAY and close") { frames, closed in
                closed && frames.contains { $0.type == RawFrame.goAway }
            }
            #expect(attacker.frames.first { $0.type == RawFrame.goAway }?.errorCode == HTTP2ErrorCode.internalError.rawValue)
            try await Self.assertOtherConnectionsWork(port: port)
            await polite.close()
        }
    }

    private static func headersThenReset(streamID: UInt32, port: Int) -> [UInt8] {
        RawHTTP2Client.frame(type: RawFrame.headers, flags: 0x4, streamID: streamID,
                             payload: RawHTTP2Client.grpcRequestHeaders(path: EchoService.sleep, port: port))
            + RawHTTP2Client.frame(type: RawFrame.rstStream, streamID: streamID, payload: [0, 0, 0, 8])  // CANCEL
    }

    @Test("connections beyond the server's limit are closed at accept; the open ones keep working; a freed slot is reused")
    func connectionLimit() async throws {
        var configuration = GRPCServerConfiguration()
        configuration.maxConnections = 2
        try await EchoService.withServer(configuration: configuration) { server, port in
            var held: [RawHTTP2Client] = []
            for _ in 0..<2 {
                let raw = try await RawHTTP2Client(port: port)
                try await raw.send(RawHTTP2Client.handshake)
                try await raw.waitUntil("server SETTINGS") { frames, _ in frames.contains { $0.type == RawFrame.settings } }
                held.append(raw)
            }
            let refused = try await RawHTTP2Client(port: port)
            try await refused.waitUntil("the third connection closed") { _, closed in closed }
            #expect(server.refusedConnectionCount == 1)
            #expect(server.connectionCount == 2)
            // The held connections still work: a full call on one of them.
            try await held[0].send(RawHTTP2Client.frame(type: RawFrame.headers, flags: 0x4, streamID: 1,
                                                        payload: RawHTTP2Client.grpcRequestHeaders(path: EchoService.echo, port: port))
                                   + RawHTTP2Client.frame(type: RawFrame.data, flags: 0x1, streamID: 1, payload: Self.framed([])))
            try await held[0].waitUntil("grpc-status on stream 1") { frames, _ in
                frames.contains { $0.type == RawFrame.headers && $0.streamID == 1 && $0.flags & 0x1 == 1 }
            }
            await held[1].close()
            let deadline = ContinuousClock.now + .seconds(10)
            while server.connectionCount > 1, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(10)) }
            try await Self.assertOtherConnectionsWork(port: port)
            await held[0].close()
            await refused.close()
        }
    }

    @Test("connections opened in a burst are accepted no faster than the server's rate; all are served in the end")
    func acceptRate() async throws {
        var configuration = GRPCServerConfiguration()
        configuration.maxNewConnectionsPerSecond = 4
        try await EchoService.withServer(configuration: configuration) { _, port in
            let started = ContinuousClock.now
            var clients: [RawHTTP2Client] = []
            for _ in 0..<12 {
                let raw = try await RawHTTP2Client(port: port)
                try await raw.send(RawHTTP2Client.handshake)
                clients.append(raw)
            }
            for raw in clients {
                try await raw.waitUntil(timeout: .seconds(30), "server SETTINGS") { frames, _ in
                    frames.contains { $0.type == RawFrame.settings }
                }
            }
            // 4 at once, then 4 per second (NIO may accept up to 4 more in the read that spends
            // the last token): 12 connections cannot all be accepted in under one second.
            let elapsed = ContinuousClock.now - started
            #expect(elapsed >= .seconds(1), "12 connections accepted in \(elapsed) at 4 per second")
            for raw in clients { await raw.close() }
            try await Self.assertOtherConnectionsWork(port: port)
        }
    }

    @Test("a connection that never sends the HTTP/2 preface is closed after the handshake timeout")
    func silentConnection() async throws {
        var configuration = GRPCServerConfiguration()
        configuration.http2.handshakeTimeout = .milliseconds(300)
        try await EchoService.withServer(configuration: configuration) { _, port in
            let silent = try await RawHTTP2Client(port: port)
            try await silent.waitUntil(timeout: .seconds(10), "closed by the server") { _, closed in closed }
            try await Self.assertOtherConnectionsWork(port: port)
            await silent.close()
        }
    }

    @Test("a client that respects the limit gets all 40 concurrent calls served, 4 at a time")
    func limitRespected() async throws {
        var configuration = GRPCServerConfiguration()
        configuration.http2.maxConcurrentStreams = 4
        try await EchoService.withServer(configuration: configuration) { _, port in
            let client = try await GRPCClient.connect(host: "127.0.0.1", port: port)
            let texts = try await withThrowingTaskGroup(of: String.self) { group in
                for index in 0..<40 {
                    group.addTask {
                        var request = EchoRequest()
                        request.text = "\(index)"
                        request.sleepMs = 20
                        return try await client.unary(EchoService.sleep, request: request, responseType: EchoResponse.self).text
                    }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(Set(texts) == Set((0..<40).map { "\($0)" }))
            await client.close()
        }
    }

    @Test("a header block over SETTINGS_MAX_HEADER_LIST_SIZE resets only that stream")
    func oversizedHeaders() async throws {
        try await EchoService.withServer { _, port in
            let client = try await HTTP2TestClient(port: port)
            let big = String(repeating: "x", count: 20_000)
            let id = try await client.call(path: EchoService.echo, port: port, body: Self.framed([]), end: true,
                                           extra: [HTTP2Header("x-big", big)])
            let stream = try await client.waitFor(id) { $0.closedWith != nil }
            #expect(stream.closedWith != HTTP2ErrorCode.noError.rawValue && stream.headerBlocks.isEmpty)
            let ok = try await client.call(path: EchoService.echo, port: port, body: Self.framed([]), end: true)
            #expect(try await client.waitFor(ok) { $0.last("grpc-status") != nil }.last("grpc-status") == "0")
            await client.close()
        }
    }

    @Test("a request stream that never ends is cancelled after the receive timeout")
    func neverEndingStream() async throws {
        var configuration = GRPCServerConfiguration()
        configuration.requestReceiveTimeout = .milliseconds(300)
        try await EchoService.withServer(configuration: configuration) { _, port in
            let client = try await HTTP2TestClient(port: port)
            let id = try await client.call(path: EchoService.echo, port: port, body: Self.framed([0x0A, 0x01]), end: false)
            let stream = try await client.waitFor(id) { $0.last("grpc-status") != nil }
            #expect(stream.last("grpc-status") == "1")
            let closed = try await client.waitFor(id) { $0.closedWith != nil }
            #expect(closed.closedWith == HTTP2ErrorCode.noError.rawValue)
            await client.close()
        }
    }

    @Test("a truncated gRPC message is INTERNAL; invalid protobuf is INTERNAL; an announced oversize is RESOURCE_EXHAUSTED at once")
    func brokenMessages() async throws {
        var configuration = GRPCServerConfiguration()
        configuration.maxReceiveMessageBytes = 1024
        try await EchoService.withServer(configuration: configuration) { _, port in
            let client = try await HTTP2TestClient(port: port)
            let truncated = try await client.call(path: EchoService.echo, port: port,
                                                  body: Self.framed(Array(repeating: 1, count: 10), announcedLength: 100), end: true)
            let invalid = try await client.call(path: EchoService.echo, port: port, body: Self.framed([0xFF, 0xFF, 0xFF]), end: true)
            let oversized = try await client.call(path: EchoService.echo, port: port,
                                                  body: Self.framed([1, 2], announcedLength: 2_000), end: false)
            let empty = try await client.call(path: EchoService.echo, port: port, body: [], end: true)
            for (id, code) in [(truncated, "13"), (invalid, "13"), (oversized, "8"), (empty, "13")] {
                let stream = try await client.waitFor(id) { $0.last("grpc-status") != nil }
                #expect(stream.last("grpc-status") == code, "stream \(id): \(stream.headerBlocks)")
            }
            await client.close()
            try await Self.assertOtherConnectionsWork(port: port)
        }
    }

    @Test("many streams with large unfinished messages: the connection's request buffer stays under its budget")
    func bufferedBytesBudget() async throws {
        var configuration = GRPCServerConfiguration()
        configuration.maxBufferedRequestBytesPerConnection = 1 << 20
        try await EchoService.withServer(configuration: configuration) { _, port in
            let client = try await HTTP2TestClient(port: port)
            let part = Self.framed(Array(repeating: 0x41, count: 400_000), announcedLength: 3 << 20)
            var ids: [HTTP2StreamID] = []
            for _ in 0..<4 { ids.append(try await client.call(path: EchoService.echo, port: port, body: part, end: false)) }
            // Four × 400 KB cannot fit in 1 MiB: whichever two streams' data crosses the budget
            // (the client interleaves them) fail with RESOURCE_EXHAUSTED; the other two keep waiting.
            let deadline = ContinuousClock.now + .seconds(10)
            var failed: [HTTP2StreamID] = []
            while failed.count < 2, ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(10))
                failed = client.streams.withLockedValue { streams in
                    ids.filter { streams[$0]?.last("grpc-status") != nil }
                }
            }
            #expect(failed.count == 2)
            for id in ids {
                let stream = client.streams.withLockedValue { $0[id] } ?? RecordedStream()
                if failed.contains(id) {
                    #expect(stream.last("grpc-status") == "8", "\(stream.headerBlocks)")
                } else {
                    #expect(stream.headerBlocks.isEmpty, "stream \(id) must still be waiting")
                }
            }
            await client.close()
            try await Self.assertOtherConnectionsWork(port: port)
        }
    }

    @Test("a client that stops reading: the server stops producing (bounded memory) and the dead peer is closed by keep-alive")
    func clientStopsReading() async throws {
        var configuration = GRPCServerConfiguration()
        // Long enough that a loaded machine starts the handler before keep-alive gives up.
        configuration.http2.pingInterval = .seconds(2)
        configuration.http2.pingTimeout = .seconds(2)
        let probe = StreamProbe()
        try await EchoService.withServer(configuration: configuration, probe: probe) { _, port in
            let raw = try await RawHTTP2Client(port: port, autoRead: false)
            // Open flow control wide (2^31-1 stream window, +1 GiB connection window) so only the
            // socket and channel writability can hold the server back.
            let settings: [UInt8] = [0, 4, 0x7F, 0xFF, 0xFF, 0xFF]
            var request = EchoRequest()
            request.count = 1_000_000
            request.payload = Data(repeating: 0x5A, count: 1024)
            let body = Self.framed(try request.serializedBytes())
            let bytes = RawHTTP2Client.preface + RawHTTP2Client.frame(type: RawFrame.settings, payload: settings)
                + RawHTTP2Client.frame(type: RawFrame.windowUpdate, payload: [0x40, 0, 0, 0])
                + RawHTTP2Client.frame(type: RawFrame.headers, flags: 0x4, streamID: 1,
                                       payload: RawHTTP2Client.grpcRequestHeaders(path: EchoService.expand, port: port))
                + RawHTTP2Client.frame(type: RawFrame.data, flags: 0x1, streamID: 1, payload: body)
            try await raw.send(bytes)
            // The handler is stopped by back-pressure long before a million messages, then the
            // unanswered keep-alive PING closes the connection and the writer fails.
            let deadline = ContinuousClock.now + .seconds(30)
            while !probe.failed.withLockedValue({ $0 }), ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(20))
            }
            let sent = probe.sent.withLockedValue { $0 }
            #expect(probe.failed.withLockedValue { $0 }, "the writer was never released")
            #expect(sent > 0 && sent < 20_000, "sent \(sent) messages of 1 KiB to a client that reads nothing")
            try await Self.assertOtherConnectionsWork(port: port)
            await raw.close()
        }
    }
}
