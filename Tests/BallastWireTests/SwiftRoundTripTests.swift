import BallastHTTP2
import BallastWire
import Foundation
import NIOCore
import Testing

/// The Swift client against the Swift server: every call shape, compression, deadlines, shutdown.
@Suite("Swift client and server")
struct SwiftRoundTripTests {
    @Test("unary with metadata, a 3 MiB message, 1000 streamed responses, an error with the leader trailer")
    func callShapes() async throws {
        try await EchoService.withServer { _, port in
            let client = try await GRPCClient.connect(host: "127.0.0.1", port: port)
            var request = EchoRequest()
            request.text = "hello"
            request.payload = Data(repeating: 7, count: 3 << 20)
            let reply = try await client.unaryCall(EchoService.echo, request: request, responseType: EchoResponse.self,
                                                   metadata: ["x-request-id": "r-1"])
            #expect(reply.message.payload == request.payload && reply.message.metadata["x-request-id"] == "r-1")

            request.payload = Data()
            request.count = 1000
            var count = 0
            for try await item in try client.serverStreaming(EchoService.expand, request: request, responseType: EchoResponse.self) {
                #expect(item.index == Int32(count))
                count += 1
            }
            #expect(count == 1000)

            request.statusCode = Int32(GRPCStatusCode.unavailable.rawValue)
            request.text = "not the leader"
            request.trailers = [GRPCHeaderName.ballastLeader: "10.1.2.3:7233"]
            let status = await #expect(throws: GRPCStatus.self) {
                _ = try await client.unary(EchoService.fail, request: request, responseType: EchoResponse.self)
            }
            #expect(status?.code == .unavailable && status?.leaderAddress == "10.1.2.3:7233")
            await client.close()
        }
    }

    @Test("a slow stream consumer holds the server back (bounded client buffer) and still gets every message")
    func streamingBackPressure() async throws {
        let probe = StreamProbe()
        try await EchoService.withServer(probe: probe) { _, port in
            let client = try await GRPCClient.connect(host: "127.0.0.1", port: port)
            var request = EchoRequest()
            request.count = 20_000
            var generator = SplitMix64(seed: 7)  // incompressible, so LZ4 does not shrink the stream
            request.payload = Data((0..<1024).map { _ in UInt8(truncatingIfNeeded: generator.next()) })
            var iterator = try client.serverStreaming(EchoService.expand, request: request, responseType: EchoResponse.self)
                .makeAsyncIterator()
            _ = try await iterator.next()
            // Not reading: the server must stall. Poll until its count stops moving.
            var last = -1
            let deadline = ContinuousClock.now + .seconds(10)
            while ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(100))
                let now = probe.sent.withLockedValue { $0 }
                if now == last { break }
                last = now
            }
            // 256 KiB high-water + 1 MiB stream window + server-side queues ≈ 1.6 MB of 1 KiB messages.
            #expect(last > 0 && last < 4_000, "server sent \(last) of 20000 messages to a stalled reader")
            var received = 1
            while let item = try await iterator.next() {
                #expect(item.index == Int32(received))
                received += 1
            }
            #expect(received == 20_000)
            await client.close()
        }
    }

    @Test("a deadline shorter than the handler gives DEADLINE_EXCEEDED on both sides and the connection stays usable")
    func deadline() async throws {
        try await EchoService.withServer { _, port in
            let client = try await GRPCClient.connect(host: "127.0.0.1", port: port)
            var request = EchoRequest()
            request.sleepMs = 5_000
            let status = await #expect(throws: GRPCStatus.self) {
                _ = try await client.unary(EchoService.sleep, request: request, responseType: EchoResponse.self,
                                           timeout: .milliseconds(100))
            }
            #expect(status?.code == .deadlineExceeded)
            request.sleepMs = 0
            request.text = "after"
            #expect(try await client.unary(EchoService.sleep, request: request, responseType: EchoResponse.self).text == "after")
            await client.close()
        }
    }

    @Test("deadlines given out of order each end their call (server and client), calls without one are answered")
    func deadlinesOutOfOrder() async throws {
        try await EchoService.withServer { _, port in
            // The server alone: a raw client sends grpc-timeout and never cancels. The handler
            // sleeps far longer than the test waits, so only the server's deadline can end these.
            let raw = try await HTTP2TestClient(port: port)
            var slow = EchoRequest()
            slow.sleepMs = 60_000
            let message: [UInt8] = try slow.serializedBytes()
            let length = UInt32(message.count)
            let body = [0, UInt8(length >> 24), UInt8(length >> 16 & 0xFF), UInt8(length >> 8 & 0xFF), UInt8(length & 0xFF)] + message
            var timed: [HTTP2StreamID] = []
            for timeout in ["900m", "100m", "400m", "200m"] {
                timed.append(try await raw.call(path: EchoService.sleep, port: port, body: body, end: true,
                                                extra: [HTTP2Header("grpc-timeout", timeout)]))
            }
            let untimed = try await raw.call(path: EchoService.echo, port: port, body: [0, 0, 0, 0, 0], end: true)
            for id in timed {
                let stream = try await raw.waitFor(id) { $0.last("grpc-status") != nil }
                #expect(stream.last("grpc-status") == "\(GRPCStatusCode.deadlineExceeded.rawValue)")
            }
            #expect(try await raw.waitFor(untimed) { $0.last("grpc-status") != nil }.last("grpc-status") == "0")
            await raw.close()

            // The Swift client: concurrent calls with deadlines out of order, then one without.
            let client = try await GRPCClient.connect(host: "127.0.0.1", port: port)
            let sleeper = slow
            let started = ContinuousClock.now
            try await withThrowingTaskGroup(of: (Int, GRPCStatusCode?, Duration).self) { group in
                for milliseconds in [700, 150, 400, 250] {
                    group.addTask {
                        do {
                            _ = try await client.unary(EchoService.sleep, request: sleeper, responseType: EchoResponse.self,
                                                       timeout: .milliseconds(milliseconds))
                            return (milliseconds, .ok, ContinuousClock.now - started)
                        } catch let status as GRPCStatus {
                            return (milliseconds, status.code, ContinuousClock.now - started)
                        }
                    }
                }
                for try await (milliseconds, code, elapsed) in group {
                    #expect(code == .deadlineExceeded, "the \(milliseconds) ms call ended \(String(describing: code))")
                    #expect(elapsed >= .milliseconds(milliseconds), "the \(milliseconds) ms call ended after \(elapsed)")
                }
            }
            var request = EchoRequest()
            request.text = "after"
            #expect(try await client.unary(EchoService.echo, request: request, responseType: EchoResponse.self).text == "after")
            await client.close()
        }
    }

    @Test("cancelling the calling task resets the stream and throws CANCELLED")
    func taskCancellation() async throws {
        try await EchoService.withServer { _, port in
            let client = try await GRPCClient.connect(host: "127.0.0.1", port: port)
            var request = EchoRequest()
            request.sleepMs = 10_000
            let slow = request
            let task = Task { try await client.unary(EchoService.sleep, request: slow, responseType: EchoResponse.self) }
            try await Task.sleep(for: .milliseconds(50))  // let the call start; cancellation before start is also handled
            task.cancel()
            let status = await #expect(throws: GRPCStatus.self) { _ = try await task.value }
            #expect(status?.code == .cancelled)
            await client.close()
        }
    }

    @Test("grpc-encoding lz4: a compressed request is accepted and the response comes back LZ4-compressed")
    func lz4Compression() async throws {
        try await EchoService.withServer { _, port in
            var configuration = GRPCClientConfiguration()
            configuration.compressRequests = true
            let client = try await GRPCClient.connect(host: "127.0.0.1", port: port, configuration: configuration)
            var request = EchoRequest()
            request.payload = Data(String(repeating: "transfer-compressible ", count: 5_000).utf8)
            let reply = try await client.unary(EchoService.echo, request: request, responseType: EchoResponse.self)
            #expect(reply.payload == request.payload)
            await client.close()

            // On the wire: flag byte 1 and an LZ4 frame, both ways.
            let raw = try await HTTP2TestClient(port: port)
            let plain: [UInt8] = try request.serializedBytes()
            let compressed = try LZ4Frame.compress(plain)
            let length = UInt32(compressed.count)
            let body = [1, UInt8(length >> 24), UInt8(length >> 16 & 0xFF), UInt8(length >> 8 & 0xFF), UInt8(length & 0xFF)] + compressed
            let id = try await raw.call(path: EchoService.echo, port: port, body: body, end: true,
                                        extra: [HTTP2Header("grpc-encoding", "lz4"), HTTP2Header("grpc-accept-encoding", "lz4")])
            let stream = try await raw.waitFor(id) { $0.last("grpc-status") != nil }
            #expect(stream.last("grpc-status") == "0")
            #expect(stream.headerBlocks.first?.contains(HTTP2Header("grpc-encoding", "lz4")) == true)
            #expect(stream.data.first == 1)
            let frame = Array(stream.data.dropFirst(5))
            let decoded = try EchoResponse(serializedBytes: try LZ4Frame.decompress(frame, maxOutputBytes: 1 << 20))
            #expect(decoded.payload == request.payload)
            await raw.close()
        }
    }

    @Test("an unsupported grpc-encoding is UNIMPLEMENTED; a compressed message without an encoding is INTERNAL")
    func badEncodings() async throws {
        try await EchoService.withServer { _, port in
            let raw = try await HTTP2TestClient(port: port)
            let gzip = try await raw.call(path: EchoService.echo, port: port, body: [0, 0, 0, 0, 0], end: true,
                                          extra: [HTTP2Header("grpc-encoding", "gzip")])
            let flagged = try await raw.call(path: EchoService.echo, port: port, body: [1, 0, 0, 0, 1, 0], end: true)
            #expect(try await raw.waitFor(gzip) { $0.last("grpc-status") != nil }.last("grpc-status") == "12")
            #expect(try await raw.waitFor(flagged) { $0.last("grpc-status") != nil }.last("grpc-status") == "13")
            await raw.close()
        }
    }

    @Test("graceful shutdown lets a call in flight finish, then closes the connection")
    func gracefulShutdown() async throws {
        let probe = StreamProbe()
        let server = try await GRPCServer.start(host: "127.0.0.1", port: 0, registry: EchoService.registry(probe: probe))
        let port = try #require(server.port)
        let client = try await GRPCClient.connect(host: "127.0.0.1", port: port)
        var slow = EchoRequest()
        slow.sleepMs = 300
        slow.text = "in flight"
        let inFlight = slow
        async let reply = client.unary(EchoService.sleep, request: inFlight, responseType: EchoResponse.self)
        // Wait until the server's handler has the call (the client having its stream open is not
        // enough: under load the GOAWAY could reach the server before the call's HEADERS).
        let deadline = ContinuousClock.now + .seconds(10)
        while probe.sleepsStarted.withLockedValue({ $0 }) == 0, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(5))
        }
        try #require(probe.sleepsStarted.withLockedValue { $0 } == 1, "the call never reached the server's handler")
        await server.shutdownGracefully()
        #expect(try await reply.text == "in flight")
        let status = await #expect(throws: GRPCStatus.self) {
            _ = try await client.unary(EchoService.echo, request: EchoRequest(), responseType: EchoResponse.self)
        }
        #expect(status?.code == .unavailable)
        await #expect(throws: (any Error).self) { _ = try await GRPCClient.connect(host: "127.0.0.1", port: port) }
    }
}
