import BallastFuzzSupport
import BallastHTTP2
import NIOCore
import NIOEmbedded
import Testing

/// Seeded fuzzing of the nghttp2 bridge (issue 8 §3): a server connection fed mutated client
/// byte streams or noise answers what is valid and closes on what is not, without trapping or
/// buffering without bound. `BALLAST_FUZZ_ITERATIONS=N` changes the input count.
@Suite("fuzz: HTTP/2 bridge fed garbage")
struct FuzzHTTP2BridgeTests {
    /// What a real client sends for two requests with bodies: preface, SETTINGS, HEADERS, DATA.
    static func clientBytes() throws -> [UInt8] {
        let pair = try ChannelPair()
        var captured: [UInt8] = []
        let headers = [HTTP2Header(":method", "POST"), HTTP2Header(":scheme", "http"),
                       HTTP2Header(":path", "/ballast.v1.WorkflowService/StartWorkflowExecution"), HTTP2Header(":authority", "test"),
                       HTTP2Header("content-type", "application/grpc"), HTTP2Header("te", "trailers")]
        for body in [[UInt8](repeating: 7, count: 300), [0, 0, 0, 0, 3, 1, 2, 3]] {
            if let id = pair.clientHandler.startRequest(headers, endStream: false) {
                pair.clientHandler.sendData(ByteBuffer(bytes: body), streamID: id, endStream: true)
            }
        }
        pair.loop.run()
        while let bytes = try pair.client.readOutbound(as: ByteBuffer.self) { captured += Array(bytes.readableBytesView) }
        return captured
    }

    @Test("a server connection fed mutated client streams in random chunks never traps, and closes on garbage")
    func serverFedGarbage() async throws {
        let valid = try Self.clientBytes()
        // A fresh connection's preface as the client sends it (connection preface + SETTINGS).
        let preface = Array(valid.prefix(24))
        var closedOnNoise = 0
        var noiseCases = 0
        try await forEachFuzzCase(seed: 0x4772_0001, count: fuzzIterations(1_500)) { random, caseSeed in
            let loop = EmbeddedEventLoop()
            let delegate = RecordingDelegate()
            delegate.answerRequests = true
            let handler = HTTP2ConnectionHandler(role: .server, configuration: HTTP2Configuration(), delegate: delegate)
            let channel = EmbeddedChannel(handler: handler, loop: loop)
            defer { _ = try? channel.finish(acceptAlreadyClosed: true) }
            try channel.connect(to: try SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
            let noise = random.below(4) == 0
            let input: [UInt8]
            if noise {
                noiseCases += 1
                input = random.bytes(1 + random.below(600))
            } else if random.below(3) == 0 {
                input = preface + FuzzMutation.mutate(Array(valid.dropFirst(24)), &random)
            } else {
                input = FuzzMutation.mutate(valid, &random)
            }
            var offset = 0
            var answered = 0
            while offset < input.count, channel.isActive {
                let step = 1 + random.below(input.count - offset)
                do { try channel.writeInbound(ByteBuffer(bytes: input[offset ..< offset + step])) } catch {}
                offset += step
                loop.run()
                while let bytes = try channel.readOutbound(as: ByteBuffer.self) { answered += bytes.readableBytes }
            }
            loop.run()
            #expect(handler.openStreamCount <= 2, "case \(caseSeed): streams left open: \(handler.openStreamCount)")
            if noise, input.prefix(3) != preface.prefix(3) {
                if !channel.isActive { closedOnNoise += 1 }
            }
            _ = answered
        }
        #expect(noiseCases == 0 || closedOnNoise > 0, "noise that is not a preface must close the connection")
    }
}
