import NIOCore
import NIOPosix
import Synchronization

/// Polls `condition` until it holds or `timeout` passes; returns whether it held.
func proxyEventually(_ timeout: Duration = .seconds(10), _ condition: @Sendable () async throws -> Bool) async rethrows -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await condition() { return true }
        try? await Task.sleep(for: .milliseconds(5))
    }
    return try await condition()
}

/// Whether `condition` holds at every check for `duration` (for absences: what must not happen
/// can only be watched for a while).
func proxyStaysTrue(for duration: Duration, _ condition: @Sendable () -> Bool) async -> Bool {
    let deadline = ContinuousClock.now + duration
    while ContinuousClock.now < deadline {
        if !condition() { return false }
        try? await Task.sleep(for: .milliseconds(5))
    }
    return condition()
}

/// What one side of a test connection saw.
final class ProxyTestSink: Sendable {
    private let state = Mutex<(bytes: [UInt8], closed: Bool, firstByteAt: ContinuousClock.Instant?)>(([], false, nil))

    func append(_ buffer: ByteBuffer) {
        state.withLock {
            if $0.firstByteAt == nil { $0.firstByteAt = .now }
            $0.bytes += buffer.readableBytesView
        }
    }

    func markClosed() { state.withLock { $0.closed = true } }
    var bytes: [UInt8] { state.withLock { $0.bytes } }
    var closed: Bool { state.withLock { $0.closed } }
    var firstByteAt: ContinuousClock.Instant? { state.withLock { $0.firstByteAt } }
}

/// Records what a channel reads and whether it closed; echoes if asked.
final class ProxyTestRecorder: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    let sink: ProxyTestSink
    let echo: Bool

    init(sink: ProxyTestSink, echo: Bool) {
        self.sink = sink
        self.echo = echo
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        sink.append(buffer)
        if echo { context.writeAndFlush(wrapOutboundOut(buffer), promise: nil) }
    }

    func channelInactive(context: ChannelHandlerContext) {
        sink.markClosed()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}

/// A target server on 127.0.0.1: records every accepted connection's bytes, echoing them back
/// unless `echo` is false; with `reads` false it never reads (to test back-pressure).
final class ProxyTestTarget: Sendable {
    let channel: any Channel
    private let recorder: ProxyTestAccepts

    init(group: any EventLoopGroup, echo: Bool, reads: Bool = true) async throws {
        let recorder = ProxyTestAccepts()
        channel = try await ServerBootstrap(group: group)
            .childChannelOption(.autoRead, value: reads)
            .childChannelInitializer { child in
                child.eventLoop.makeCompletedFuture {
                    let sink = ProxyTestSink()
                    recorder.add(sink, channel: child)
                    try child.pipeline.syncOperations.addHandler(ProxyTestRecorder(sink: sink, echo: echo))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        self.recorder = recorder
    }

    var port: Int { channel.localAddress?.port ?? 0 }
    var connections: [ProxyTestSink] { recorder.all }
    /// Every byte received, all connections in accept order.
    var allBytes: [UInt8] { connections.flatMap(\.bytes) }

    func close() async { try? await channel.close() }

    /// Starts reading on every accepted connection (of a target made with `reads` false).
    func resumeReading() {
        for child in recorder.channels {
            child.setOption(.autoRead, value: true).whenSuccess { child.read() }
        }
    }
}

final class ProxyTestAccepts: Sendable {
    private let sinks = Mutex<[ProxyTestSink]>([])
    private let children = Mutex<[any Channel]>([])
    func add(_ sink: ProxyTestSink, channel: any Channel) {
        sinks.withLock { $0.append(sink) }
        children.withLock { $0.append(channel) }
    }
    var all: [ProxyTestSink] { sinks.withLock { $0 } }
    var channels: [any Channel] { children.withLock { $0 } }
}

/// A client connection to the proxy, recording what comes back.
struct ProxyTestClient: Sendable {
    let channel: any Channel
    let received: ProxyTestSink

    static func connect(group: any EventLoopGroup, port: Int) async throws -> ProxyTestClient {
        let sink = ProxyTestSink()
        let channel = try await ClientBootstrap(group: group)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ProxyTestRecorder(sink: sink, echo: false))
                }
            }
            .connect(host: "127.0.0.1", port: port).get()
        return ProxyTestClient(channel: channel, received: sink)
    }

    func send(_ bytes: [UInt8]) async throws {
        try await channel.writeAndFlush(channel.allocator.buffer(bytes: bytes))
    }

    func close() async { try? await channel.close() }
}

/// Seeded bytes for payloads.
func proxyPayload(_ count: Int, seed: UInt64) -> [UInt8] {
    var state = seed
    return (0 ..< count).map { _ in
        state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        return UInt8(truncatingIfNeeded: state >> 33)
    }
}
