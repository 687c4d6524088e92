import BallastHTTP2
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// What a test client saw on one stream.
struct RecordedStream: Sendable {
    var headerBlocks: [[HTTP2Header]] = []
    var data: [UInt8] = []
    var closedWith: UInt32?

    /// The value of `name` in the last header block (trailers, or a trailers-only response).
    func last(_ name: String) -> String? { headerBlocks.last?.first { $0.name == name }?.value }
}

/// An HTTP/2 client on Ballast's own bridge that can send malformed gRPC (partial, truncated, garbage).
final class HTTP2TestClient: Sendable {
    let channel: Channel
    let handler: NIOLoopBound<HTTP2ConnectionHandler>
    let streams: NIOLockedValueBox<[HTTP2StreamID: RecordedStream]>

    private final class Recorder: HTTP2StreamDelegate {
        let streams: NIOLockedValueBox<[HTTP2StreamID: RecordedStream]>
        init(_ streams: NIOLockedValueBox<[HTTP2StreamID: RecordedStream]>) { self.streams = streams }
        func http2(_ connection: HTTP2ConnectionHandler, receivedHeaders headers: [HTTP2Header], streamID: HTTP2StreamID, endStream: Bool) {
            streams.withLockedValue { $0[streamID, default: RecordedStream()].headerBlocks.append(headers) }
        }
        func http2(_ connection: HTTP2ConnectionHandler, receivedData bytes: UnsafeRawBufferPointer, streamID: HTTP2StreamID) {
            streams.withLockedValue { $0[streamID, default: RecordedStream()].data.append(contentsOf: bytes) }
        }
        func http2(_ connection: HTTP2ConnectionHandler, receivedEndStream streamID: HTTP2StreamID) {}
        func http2(_ connection: HTTP2ConnectionHandler, streamClosed streamID: HTTP2StreamID, errorCode: UInt32) {
            streams.withLockedValue { $0[streamID, default: RecordedStream()].closedWith = errorCode }
        }
        func http2(_ connection: HTTP2ConnectionHandler, receivedGoAway lastStreamID: HTTP2StreamID, errorCode: UInt32) {}
        func http2ConnectionClosed(_ connection: HTTP2ConnectionHandler) {}
    }

    init(port: Int) async throws {
        let streams = NIOLockedValueBox<[HTTP2StreamID: RecordedStream]>([:])
        self.streams = streams
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(HTTP2ConnectionHandler(role: .client, delegate: Recorder(streams)))
                }
            }
            .connect(host: "127.0.0.1", port: port).get()
        self.channel = channel
        handler = try await channel.eventLoop.submit {
            NIOLoopBound(try channel.pipeline.syncOperations.handler(type: HTTP2ConnectionHandler.self), eventLoop: channel.eventLoop)
        }.get()
    }

    /// Opens a gRPC stream to `path` and sends `body` (raw bytes), ending the stream if asked.
    func call(path: String, port: Int, body: [UInt8], end: Bool, extra: [HTTP2Header] = []) async throws -> HTTP2StreamID {
        let handler = self.handler
        return try await channel.eventLoop.submit {
            let headers = [HTTP2Header(":method", "POST"), HTTP2Header(":scheme", "http"), HTTP2Header(":path", path),
                           HTTP2Header(":authority", "127.0.0.1:\(port)"), HTTP2Header("content-type", "application/grpc"),
                           HTTP2Header("te", "trailers")] + extra
            guard let id = handler.value.startRequest(headers, endStream: false) else {
                throw GRPCTestError("cannot open a stream")
            }
            handler.value.sendData(ByteBuffer(bytes: body), streamID: id, endStream: end)
            return id
        }.get()
    }

    /// Polls until the stream satisfies `condition`, or throws at the deadline.
    func waitFor(_ streamID: HTTP2StreamID, timeout: Duration = .seconds(10),
                 _ condition: (RecordedStream) -> Bool) async throws -> RecordedStream {
        let deadline = ContinuousClock.now + timeout
        while true {
            let stream = streams.withLockedValue { $0[streamID] } ?? RecordedStream()
            if condition(stream) { return stream }
            guard ContinuousClock.now < deadline else { throw GRPCTestError("stream \(streamID) timed out: \(stream)") }
            try await Task.sleep(for: .milliseconds(10))
        }
    }

    func close() async { try? await channel.close() }
}

/// A test failure with a message.
struct GRPCTestError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
