import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// One parsed HTTP/2 frame as received by the raw client.
struct RawFrame: Sendable, CustomStringConvertible {
    var type: UInt8
    var flags: UInt8
    var streamID: UInt32
    var payload: [UInt8]

    static let data: UInt8 = 0, headers: UInt8 = 1, rstStream: UInt8 = 3, settings: UInt8 = 4
    static let ping: UInt8 = 6, goAway: UInt8 = 7, windowUpdate: UInt8 = 8

    /// The error code of RST_STREAM / GOAWAY frames.
    var errorCode: UInt32? {
        let offset: Int
        switch type {
        case Self.rstStream: offset = 0
        case Self.goAway: offset = 4
        default: return nil
        }
        guard payload.count >= offset + 4 else { return nil }
        return payload[offset..<(offset + 4)].reduce(0) { $0 << 8 | UInt32($1) }
    }

    var description: String { "frame(type \(type), flags \(flags), stream \(streamID), \(payload.count) bytes)" }
}

/// A TCP client that writes hand-made HTTP/2 bytes and records what comes back (no HTTP/2 library).
final class RawHTTP2Client: Sendable {
    let channel: Channel
    private let received: NIOLockedValueBox<[UInt8]>
    private let closed: NIOLockedValueBox<Bool>

    private final class Recorder: ChannelInboundHandler, Sendable {
        typealias InboundIn = ByteBuffer
        let received: NIOLockedValueBox<[UInt8]>
        let closed: NIOLockedValueBox<Bool>
        init(received: NIOLockedValueBox<[UInt8]>, closed: NIOLockedValueBox<Bool>) {
            self.received = received
            self.closed = closed
        }
        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let buffer = unwrapInboundIn(data)
            received.withLockedValue { $0.append(contentsOf: buffer.readableBytesView) }
        }
        func channelInactive(context: ChannelHandlerContext) {
            closed.withLockedValue { $0 = true }
        }
    }

    init(port: Int, autoRead: Bool = true) async throws {
        let received = NIOLockedValueBox<[UInt8]>([])
        let closed = NIOLockedValueBox(false)
        self.received = received
        self.closed = closed
        channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelOption(.autoRead, value: autoRead)
            .channelOption(.socketOption(.so_rcvbuf), value: 4096)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(Recorder(received: received, closed: closed))
                }
            }
            .connect(host: "127.0.0.1", port: port).get()
    }

    static let preface = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)

    static func frame(type: UInt8, flags: UInt8 = 0, streamID: UInt32 = 0, payload: [UInt8] = []) -> [UInt8] {
        let length = UInt32(payload.count)
        return [UInt8(length >> 16 & 0xFF), UInt8(length >> 8 & 0xFF), UInt8(length & 0xFF), type, flags,
                UInt8(streamID >> 24 & 0x7F), UInt8(streamID >> 16 & 0xFF), UInt8(streamID >> 8 & 0xFF), UInt8(streamID & 0xFF)]
            + payload
    }

    /// An HPACK block of literal fields without indexing (no Huffman): enough for tests.
    static func headerBlock(_ fields: [(String, String)]) -> [UInt8] {
        var block: [UInt8] = []
        for (name, value) in fields {
            precondition(name.utf8.count < 127 && value.utf8.count < 127, "test headers must be short")
            block.append(0x00)
            block.append(UInt8(name.utf8.count))
            block.append(contentsOf: name.utf8)
            block.append(UInt8(value.utf8.count))
            block.append(contentsOf: value.utf8)
        }
        return block
    }

    static func grpcRequestHeaders(path: String, port: Int, extra: [(String, String)] = []) -> [UInt8] {
        headerBlock([(":method", "POST"), (":scheme", "http"), (":path", path), (":authority", "127.0.0.1:\(port)"),
                     ("content-type", "application/grpc"), ("te", "trailers")] + extra)
    }

    /// The preface, an empty SETTINGS and an ACK of the server's SETTINGS.
    static let handshake = preface + frame(type: RawFrame.settings) + frame(type: RawFrame.settings, flags: 0x1)

    func send(_ bytes: [UInt8]) async throws {
        try await channel.writeAndFlush(channel.allocator.buffer(bytes: bytes))
    }

    var isClosed: Bool { closed.withLockedValue { $0 } }

    /// Every complete frame received so far (after the server's bytes, which carry no preface).
    var frames: [RawFrame] {
        let bytes = received.withLockedValue { $0 }
        var frames: [RawFrame] = []
        var offset = 0
        while offset + 9 <= bytes.count {
            let length = Int(bytes[offset]) << 16 | Int(bytes[offset + 1]) << 8 | Int(bytes[offset + 2])
            guard offset + 9 + length <= bytes.count else { break }
            let streamID = bytes[(offset + 5)..<(offset + 9)].reduce(UInt32(0)) { $0 << 8 | UInt32($1) } & 0x7FFF_FFFF
            frames.append(RawFrame(type: bytes[offset + 3], flags: bytes[offset + 4], streamID: streamID,
                                   payload: Array(bytes[(offset + 9)..<(offset + 9 + length)])))
            offset += 9 + length
        }
        return frames
    }

    /// Polls until `condition` holds on the received frames, or fails at the deadline.
    func waitUntil(timeout: Duration = .seconds(10), _ what: String,
                   _ condition: ([RawFrame], Bool) -> Bool) async throws {
        let deadline = ContinuousClock.now + timeout
        while !condition(frames, isClosed) {
            guard ContinuousClock.now < deadline else {
                throw ChildProcessError(command: "raw HTTP/2 client", detail: "timed out waiting for \(what); frames: \(frames)")
            }
            try await Task.sleep(for: .milliseconds(10))
        }
    }

    func close() async {
        try? await channel.close()
    }
}
